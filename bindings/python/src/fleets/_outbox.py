"""The :class:`Outbox`: a durable store-and-forward queue on top of ``fleets_outbox_*``."""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from . import _ffi
from ._client import _I64, _U32, _U64, Client, _int, _last_exchange, _lib, _object, _path, _raise_for, _text
from ._redact import Credentials
from ._enums import ExecutionStatus, ResultCode, Severity
from ._errors import ClientClosedError, FleetsError, InvalidArgument, error_class

PathLike = Union[str, "os.PathLike[str]"]
StatusLike = Union[ExecutionStatus, str]
SeverityLike = Union[Severity, str]

#: The header's FLEETS_OUTBOX_* constants, as this module uses them (tests check them).
C_CONSTANTS = {
    "FLEETS_OUTBOX_SYNC_ALWAYS": 0,
    "FLEETS_OUTBOX_SYNC_BATCH": 1,
    "FLEETS_OUTBOX_FULL_DROP_OLDEST_EVENTS": 0,
    "FLEETS_OUTBOX_FULL_REFUSE": 1,
    "FLEETS_OUTBOX_DEFAULT_MAX_BYTES": 8 * 1024 * 1024,
    "FLEETS_OUTBOX_MESSAGE_BYTES": 256,
}
#: Outbox calls carry no credentials: nothing to scrub beyond what the library does.
_NO_CREDENTIALS = Credentials(None, None, ())

_SYNC = {"always": C_CONSTANTS["FLEETS_OUTBOX_SYNC_ALWAYS"], "batch": C_CONSTANTS["FLEETS_OUTBOX_SYNC_BATCH"]}
_WHEN_FULL = {
    "drop_oldest_events": C_CONSTANTS["FLEETS_OUTBOX_FULL_DROP_OLDEST_EVENTS"],
    "refuse": C_CONSTANTS["FLEETS_OUTBOX_FULL_REFUSE"],
}


@dataclass(frozen=True)
class OutboxStats:
    """What :meth:`Outbox.stats` reports; counts are since the outbox was opened.

    Attributes:
        queued_records: records waiting for delivery.
        queued_bytes: their size as stored (at most ``max_bytes``).
        oldest_age: age in seconds of the oldest queued record, None when the queue is empty.
        delivered_records: records the server accepted.
        dropped_records: records dropped unsent (older than ``ttl``, or evicted when full).
        dead_lettered_records: records the server rejected for good (HTTP 4xx other than 401,
            403, 408, 429); not retried.
        corrupt_records: damaged records skipped.
        torn_bytes: bytes of a torn write cut off at open.
        disk_bytes: size of the outbox's files.
        written_bytes: bytes written to them since open.
        syncs: fsync calls since open.
        last_error: the last failure (a dead-lettered record's, a flush stopped by an outage,
            a storage error) as the exception it would raise, or None.
    """

    queued_records: int
    queued_bytes: int
    oldest_age: Optional[float]
    delivered_records: int
    dropped_records: int
    dead_lettered_records: int
    corrupt_records: int
    torn_bytes: int
    disk_bytes: int
    written_bytes: int
    syncs: int
    last_error: Optional[FleetsError]


def _seconds_ms(value: Optional[float], name: str, default: int = 0, limit: int = _U32) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    ms = round(value * 1000)
    if not 0 < value or not 1 <= ms <= limit:  # also rejects NaN
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}", code=ResultCode.ERR_INVALID_ARGUMENT)
    return ms


def _choice(value: str, name: str, choices: Mapping[str, int]) -> int:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    try:
        return choices[value]
    except KeyError:
        accepted = ", ".join(repr(c) for c in choices)
        raise InvalidArgument(f"{name} must be one of {accepted}, got {value!r}", code=ResultCode.ERR_INVALID_ARGUMENT) from None


class Outbox:
    """A durable outbox: events, shadow reports, command responses and job updates kept in a
    directory until :meth:`flush` delivers them, surviving crashes and power cuts.

    Enqueues check their arguments exactly as the matching :class:`Client` calls do and store
    nothing when one is refused. Records are delivered in order, at least once; reports for
    the same thing still queued are merged into one. Safe to share between threads. Use it as
    a context manager or call :meth:`close`.

    Args:
        directory: where the outbox keeps its files (created if missing). One process (one
            :class:`Outbox`) at a time: a second opener raises :class:`OutboxLockedError`.
        sync: ``"always"`` (default): every enqueue is on stable storage (fsync) before it
            returns, so a crash or power cut loses nothing enqueued. ``"batch"``: records are
            synced ``batch_max_delay`` seconds after the first unsynced one at the latest, or
            every ``batch_max_records`` records; a power cut may lose those newest records (a
            process crash loses nothing).
        batch_max_delay: seconds (default 1.0).
        batch_max_records: records (default 100).
        max_bytes: most bytes of queued records (default 8 MiB, at least 64 KiB).
        ttl: seconds after which a queued record is dropped unsent; None keeps it.
        when_full: ``"drop_oldest_events"`` (default): drop the oldest queued events (never
            reports, command responses or job updates) to make room; ``"refuse"``: raise
            :class:`OutboxFullError` for the new record.

    Raises:
        OutboxLockedError, OutboxCorruptError, StorageError, InvalidArgument, TypeError.
    """

    def __init__(
        self,
        directory: PathLike,
        *,
        sync: str = "always",
        batch_max_delay: Optional[float] = None,
        batch_max_records: Optional[int] = None,
        max_bytes: Optional[int] = None,
        ttl: Optional[float] = None,
        when_full: str = "drop_oldest_events",
    ) -> None:
        self._handle: Optional[int] = None
        self._cond = threading.Condition(threading.Lock())
        self._inflight = 0
        self._closed = False
        self._directory = os.fspath(directory) if isinstance(directory, (str, os.PathLike)) else directory
        opts = _ffi.OutboxOptions()
        opts.sync = _choice(sync, "sync", _SYNC)
        opts.batch_max_ms = _seconds_ms(batch_max_delay, "batch_max_delay")
        opts.batch_max_records = _int(batch_max_records, "batch_max_records", 1, _U32) if batch_max_records is not None else 0
        opts.when_full = _choice(when_full, "when_full", _WHEN_FULL)
        opts.max_bytes = _int(max_bytes, "max_bytes", 1, _U64) if max_bytes is not None else 0
        opts.ttl_ms = _seconds_ms(ttl, "ttl", limit=_U64)
        handle = ctypes.c_void_p()
        code = _lib.fleets_outbox_open(_path(directory, "directory"), ctypes.byref(opts), ctypes.byref(handle))
        if code != ResultCode.OK:
            _raise_for(code, _NO_CREDENTIALS)
        self._handle = handle.value

    # ------------------------------------------------------------------ lifecycle

    @property
    def directory(self) -> Any:
        """The directory given to the constructor."""
        return self._directory

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Syncs what is not synced yet, releases the directory and frees the outbox.
        Idempotent. Waits for calls running in other threads (a flush is bounded by its
        ``max_time`` and the client's timeouts).

        Raises:
            StorageError: the final sync failed (the outbox is closed anyway).
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._inflight:
                self._cond.wait()
            handle, self._handle = self._handle, None
        if handle:
            code = _lib.fleets_outbox_close(handle)
            if code != ResultCode.OK:
                _raise_for(code, _NO_CREDENTIALS)

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle and _lib is not None:
            self._handle = None
            _lib.fleets_outbox_close(handle)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<fleets.Outbox directory={self._directory!r} {state}>"

    def __reduce__(self) -> Any:
        raise TypeError("a fleets.Outbox cannot be pickled or copied; open one per process")

    # ------------------------------------------------------------------ calls

    def _enter(self) -> int:
        with self._cond:
            if self._closed:
                raise ClientClosedError("the outbox is closed", code=ResultCode.ERR_NULL_ARGUMENT)
            self._inflight += 1
            return self._handle  # type: ignore[return-value]

    def _leave(self) -> None:
        with self._cond:
            self._inflight -= 1
            if self._closed and not self._inflight:
                self._cond.notify_all()

    def _enqueue(self, fn: Any, *args: Any) -> None:
        handle = self._enter()
        try:
            code = fn(handle, *args)
            if code != ResultCode.OK:
                _raise_for(code, _NO_CREDENTIALS)
        finally:
            self._leave()

    def enqueue_report(
        self,
        thing_name: str,
        reported: Mapping[str, Any],
        *,
        client_token: Optional[str] = None,
        version: int = 0,
    ) -> None:
        """Queues a shadow report (arguments as :meth:`Client.report_shadow`).

        Reports for the same thing still queued at delivery are merged in order into one (a
        ``None`` value deletes, as the server would); one with a non-zero ``version`` is never
        merged. Without ``client_token`` one is generated now and kept, so that a repeat
        after an ambiguous failure carries the same token.
        """
        self._enqueue(
            _lib.fleets_outbox_enqueue_report,
            _text(thing_name, "thing_name"),
            _object(reported, "reported", required=True),
            _text(client_token, "client_token", required=False),
            _int(version, "version", 0, _U64),
        )

    def enqueue_event(
        self,
        thing_name: str,
        event_type: str,
        *,
        data: Optional[Mapping[str, Any]] = None,
        severity: Optional[SeverityLike] = None,
        timestamp_ms: Optional[int] = None,
        app_id: Optional[str] = None,
    ) -> None:
        """Queues an event (arguments as :meth:`Client.publish_event`). ``timestamp_ms`` None
        means the time of the enqueue, not of the delivery."""
        sev = Severity.UNSET if severity is None else Severity.coerce(severity)
        self._enqueue(
            _lib.fleets_outbox_enqueue_event,
            _text(thing_name, "thing_name"),
            _text(event_type, "event_type"),
            int(sev),
            _int(timestamp_ms, "timestamp_ms", 0, _I64),
            _object(data, "data"),
            _text(app_id, "app_id", required=False),
        )

    def enqueue_command_response(
        self,
        thing_name: str,
        execution_id: str,
        status: StatusLike,
        *,
        result: Optional[Mapping[str, Any]] = None,
        timestamp: Optional[int] = None,
    ) -> None:
        """Queues a command response (arguments as :meth:`Client.respond_command`)."""
        self._enqueue(
            _lib.fleets_outbox_enqueue_command_response,
            _text(thing_name, "thing_name"),
            _text(execution_id, "execution_id"),
            int(ExecutionStatus.coerce(status)),
            _object(result, "result"),
            _int(timestamp, "timestamp", 0, _I64),
        )

    def enqueue_job_update(
        self,
        thing_name: str,
        job_id: str,
        status: StatusLike,
        *,
        status_details: Optional[Mapping[str, Any]] = None,
        expected_version: Optional[int] = None,
        client_token: Optional[str] = None,
    ) -> None:
        """Queues a job execution update (arguments as :meth:`Client.update_job`). Without
        ``client_token`` one is generated now and kept with the record."""
        self._enqueue(
            _lib.fleets_outbox_enqueue_job_update,
            _text(thing_name, "thing_name"),
            _text(job_id, "job_id"),
            int(ExecutionStatus.coerce(status)),
            _object(status_details, "status_details"),
            _int(expected_version, "expected_version", 1, _U64) if expected_version is not None else 0,
            _text(client_token, "client_token", required=False),
        )

    def flush(self, client: Client, *, max_time: Optional[float] = None) -> int:
        """Delivers queued records in order through ``client`` for at most ``max_time``
        seconds (None: until the queue is empty or a request fails). Returns how many records
        the server accepted.

        A record the server rejects for good (HTTP 4xx other than 401, 403, 408, 429) is
        dead-lettered (see :meth:`stats`) and the flush goes on. Any other failure (no
        connection, timeout, 5xx, 429, credentials, TLS) stops it, keeps the record and the
        order, and is raised; the exception's ``delivered`` attribute says how many records
        were delivered before it. The GIL is released during the flush.
        """
        if not isinstance(client, Client):
            raise TypeError(f"client must be a fleets.Client, not {type(client).__name__}")
        max_ms = _seconds_ms(max_time, "max_time")
        handle = self._enter()
        try:
            with client._cond:
                if client._closed:
                    raise ClientClosedError("the client is closed", code=ResultCode.ERR_NULL_ARGUMENT)
                client._inflight += 1
                client_handle = client._handle
            try:
                delivered = ctypes.c_uint64(0)
                code = _lib.fleets_outbox_flush(handle, client_handle, max_ms, ctypes.byref(delivered))
                if code != ResultCode.OK:
                    exchange = _last_exchange() if code >= 200 else (None, None)
                    try:
                        _raise_for(code, client._credentials, None, exchange)
                    except FleetsError as e:
                        e.delivered = delivered.value  # type: ignore[attr-defined]
                        raise
                return int(delivered.value)
            finally:
                with client._cond:
                    client._inflight -= 1
                    if client._closed and not client._inflight:
                        client._cond.notify_all()
        finally:
            self._leave()

    def stats(self) -> OutboxStats:
        """The outbox's counters and last error (no I/O)."""
        handle = self._enter()
        try:
            raw = _ffi.OutboxStats()
            code = _lib.fleets_outbox_stats(handle, ctypes.byref(raw))
            if code != ResultCode.OK:
                _raise_for(code, _NO_CREDENTIALS)
        finally:
            self._leave()
        last: Optional[FleetsError] = None
        if raw.last_error != ResultCode.OK:
            message = raw.last_error_message.decode("utf-8", "replace")
            last = error_class(raw.last_error)(
                message, code=raw.last_error, http_status=raw.last_error_http_status or None
            )
        return OutboxStats(
            queued_records=raw.queued_records,
            queued_bytes=raw.queued_bytes,
            oldest_age=raw.oldest_age_ms / 1000.0 if raw.queued_records else None,
            delivered_records=raw.delivered_records,
            dropped_records=raw.dropped_records,
            dead_lettered_records=raw.dead_lettered_records,
            corrupt_records=raw.corrupt_records,
            torn_bytes=raw.torn_bytes,
            disk_bytes=raw.disk_bytes,
            written_bytes=raw.written_bytes,
            syncs=raw.syncs,
            last_error=last,
        )
