"""The device workflows of libfleets: shadow sync, the crash-safe job agent and the
resumable verified download (``fleets_shadow_sync``, ``fleets_job_agent_run_once``,
``fleets_download``).

Callbacks run on the calling thread, inside the C call. An exception raised by a callback
(``KeyboardInterrupt`` included) cannot cross the C library: it is kept, the workflow is told
to stop or to decline, and the exception is raised again once the C call has returned.
Callbacks may call other methods of the same client; they must not close it.
"""

from __future__ import annotations

import ctypes
import enum
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Union

from . import _ffi
from ._enums import ResultCode
from ._errors import InvalidArgument

if TYPE_CHECKING:  # pragma: no cover
    from ._client import Client

JSON = Dict[str, Any]
PathLike = Union[str, "os.PathLike[str]"]

#: Values of the header's other constants (``tests/test_header.py`` compares them).
C_CONSTANTS = {
    "FLEETS_DOWNLOAD_SEND_CREDENTIALS": _ffi.DOWNLOAD_SEND_CREDENTIALS,
    "FLEETS_DOWNLOAD_NO_RESTART": _ffi.DOWNLOAD_NO_RESTART,
    "FLEETS_JOB_DETAILS_CAP": _ffi.JOB_DETAILS_CAP,
}


class StepResult(enum.IntEnum):
    """What a job handler returns after a step (``FLEETS_JOB_STEP_*``)."""

    #: The step is done; the next one runs now.
    NEXT = 1
    #: The step is done; the next one is disruptive (a reboot) and waits for the gate.
    NEXT_GATED = 2
    #: The job is done: ``SUCCEEDED`` with the step's details.
    SUCCEEDED = 3
    #: The job failed: ``FAILED`` with the step's details.
    FAILED = 4
    #: This device will not do the job: ``REJECTED``.
    REJECTED = 5
    #: The step could not run now; it runs again on a later :meth:`JobAgent.run_once`.
    RETRY = 6


class JobOutcomeKind(enum.IntEnum):
    """How :meth:`JobAgent.run_once` ended (``FLEETS_JOB_OUTCOME_*``)."""

    NONE = 0
    SUCCEEDED = 1
    FAILED = 2
    REJECTED = 3
    DEFERRED = 4
    RETRY_LATER = 5
    ABANDONED = 6


@dataclass
class JobStep:
    """The step a job handler is asked to run.

    ``attempt`` is 1 the first time the step runs, more when it was started before and did
    not finish (a crash, a reboot, a :attr:`StepResult.RETRY`): the step may have run partly.
    Set ``details`` to a dict (at most 1 KiB of JSON) to send it with the update that follows.
    """

    thing_name: str
    job_id: str
    action: str
    document: JSON
    step: int
    attempt: int
    details: Optional[JSON] = None


@dataclass(frozen=True)
class JobOutcome:
    """What :meth:`JobAgent.run_once` did."""

    kind: JobOutcomeKind
    job_id: Optional[str]
    step: int
    resumed: bool


class _Pending:
    """The first exception a callback raised, to raise again after the C call."""

    def __init__(self) -> None:
        self.error: Optional[BaseException] = None

    def keep(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error

    def raise_if_any(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def _text(value: Any, name: str) -> bytes:
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str path, not {type(text).__name__}")
    if "\0" in text:
        raise InvalidArgument(f"{name} contains a NUL character", code=ResultCode.ERR_INVALID_ARGUMENT)
    return text.encode("utf-8")


# ------------------------------------------------------------------ shadow sync

DeltaHandler = Union[Callable[[str, Any], Any], Mapping[str, Callable[[Any], Any]]]


def shadow_sync(
    client: "Client",
    thing_name: str,
    on_delta: DeltaHandler,
    *,
    applied_version: int = 0,
    state_file: Optional[PathLike] = None,
) -> int:
    """See :meth:`fleets.Client.shadow_sync`."""
    if isinstance(on_delta, Mapping):
        handlers = dict(on_delta)
        for key, fn in handlers.items():
            if not callable(fn):
                raise TypeError(f"the handler for {key!r} is not callable")

        def decide(key: str, value: Any) -> bool:
            fn = handlers.get(key)
            return fn is not None and fn(value) is not False

    elif callable(on_delta):

        def decide(key: str, value: Any) -> bool:
            return bool(on_delta(key, value))  # type: ignore[operator]

    else:
        raise TypeError("on_delta must be a callable(key, value) or a dict of callables")
    if isinstance(applied_version, bool) or not isinstance(applied_version, int) or not 0 <= applied_version < 1 << 64:
        raise TypeError("applied_version must be an int from 0 to 2**64-1")
    pending = _Pending()

    def trampoline(key: bytes, value_json: bytes, _user: Any) -> bool:
        if pending.error is not None:
            return False
        try:
            return decide(key.decode("utf-8"), json.loads(value_json))
        except BaseException as e:  # noqa: B902 - kept and raised after the C call
            pending.keep(e)
            return False

    callback = _ffi.fleets_delta_fn(trampoline)
    version = ctypes.c_uint64(applied_version)
    if state_file is None:
        client._run("fleets_shadow_sync", _text(thing_name, "thing_name"), callback, None, ctypes.byref(version))
    else:
        client._run(
            "fleets_shadow_sync_with_state_file",
            _text(thing_name, "thing_name"),
            callback,
            None,
            _text(state_file, "state_file"),
            ctypes.byref(version),
        )
    pending.raise_if_any()
    return int(version.value)


# ------------------------------------------------------------------ download


def download(
    client: "Client",
    url: str,
    sha256: str,
    dest: PathLike,
    *,
    progress: Optional[Callable[[int, int], Any]] = None,
    send_credentials: bool = False,
    restart: bool = True,
) -> None:
    """See :meth:`fleets.Client.download`."""
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a callable(received, total)")
    flags = (_ffi.DOWNLOAD_SEND_CREDENTIALS if send_credentials else 0) | (0 if restart else _ffi.DOWNLOAD_NO_RESTART)
    pending = _Pending()

    def trampoline(received: int, total: int, _user: Any) -> bool:
        try:
            return progress(int(received), int(total)) is not False  # type: ignore[misc]
        except BaseException as e:  # noqa: B902 - kept and raised after the C call
            pending.keep(e)
            return False

    callback = _ffi.fleets_progress_fn(trampoline) if progress is not None else _ffi.fleets_progress_fn()
    try:
        client._run(
            "fleets_download",
            _text(url, "url"),
            _text(sha256, "sha256"),
            _text(dest, "dest"),
            flags,
            callback,
            None,
        )
    except BaseException:
        pending.raise_if_any()  # the callback's exception, not FLEETS_ERR_CANCELED
        raise


# ------------------------------------------------------------------ job agent

Handler = Callable[[JobStep], Union[StepResult, str, int]]
Gate = Callable[[JobStep], Any]


class JobAgent:
    """Runs the thing's jobs one at a time, surviving crashes and reboots
    (``fleets_job_agent_run_once``).

    Each job goes to the handler registered for its document's ``action`` and runs as steps
    0, 1, 2... A handler gets a :class:`JobStep` and returns a :class:`StepResult` (or its
    name). libfleets records the claimed job and each step in ``state_dir``
    (``fleets-job-<thing>.json``, replaced atomically): a later :meth:`run_once` resumes the
    job, never claims it twice, never runs a finished step again, and sends a decided final
    status again if it was not confirmed. Jobs with an action no handler knows are REJECTED.

    Args:
        client: the :class:`fleets.Client` to run with.
        thing_name: the thing name.
        state_dir: an existing directory that survives reboots.
        handlers: action -> handler.
        gate: asked before a step that follows :attr:`StepResult.NEXT_GATED`; return False to
            defer it (the job stays IN_PROGRESS; :meth:`run_once` returns DEFERRED).
        job_timeout_minutes: minutes the server gives a claimed job before it times it out;
            None leaves it to the server.
        max_attempts: starts of one step (crashes included) before the job is FAILED
            (default 3).

    A handler or gate that raises: the step counts as attempted and is retried on a later
    run (the job ends FAILED after ``max_attempts``); :meth:`run_once` raises the exception.
    One agent per (``state_dir``, ``thing_name``) may run at a time.
    """

    def __init__(
        self,
        client: "Client",
        thing_name: str,
        state_dir: PathLike,
        handlers: Mapping[str, Handler],
        *,
        gate: Optional[Gate] = None,
        job_timeout_minutes: Optional[int] = None,
        max_attempts: Optional[int] = None,
    ) -> None:
        if not isinstance(handlers, Mapping):
            raise TypeError("handlers must be a dict of action -> callable(JobStep)")
        for action, fn in handlers.items():
            if not isinstance(action, str) or not callable(fn):
                raise TypeError(f"handlers[{action!r}] must be a callable for a str action")
        if gate is not None and not callable(gate):
            raise TypeError("gate must be a callable(JobStep)")
        for name, value in (("job_timeout_minutes", job_timeout_minutes), ("max_attempts", max_attempts)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 32):
                raise TypeError(f"{name} must be an int from 0 to 2**32-1")
        self.client = client
        self.thing_name = thing_name
        self.state_dir = state_dir
        self.handlers = dict(handlers)
        self.gate = gate
        self.job_timeout_minutes = job_timeout_minutes or 0
        self.max_attempts = max_attempts or 0

    @property
    def state_file(self) -> str:
        """The file where the agent keeps the job it holds."""
        return os.path.join(os.fspath(self.state_dir), f"fleets-job-{self.thing_name}.json")

    def __repr__(self) -> str:
        return f"<fleets.JobAgent thing_name={self.thing_name!r} actions={sorted(self.handlers)!r}>"

    def run_once(self) -> JobOutcome:
        """Resumes the held job or claims the next one and runs it as far as it goes now.

        Returns a :class:`JobOutcome`. Raises a :class:`fleets.FleetsError` when a call or
        the state directory failed (the next run picks up from the last recorded state), or
        the exception a handler raised.
        """
        pending = _Pending()
        keep: List[Any] = []

        def step_of(c_step: Any) -> JobStep:
            s = c_step.contents
            document_json = s.document_json.decode("utf-8")
            return JobStep(
                thing_name=s.thing_name.decode("utf-8"),
                job_id=s.job_id.decode("utf-8"),
                action=s.action.decode("utf-8"),
                document=json.loads(document_json),
                step=int(s.step),
                attempt=int(s.attempt),
            )

        def make_handler(fn: Handler) -> Any:
            def trampoline(c_step: Any, _user: Any) -> int:
                try:
                    step = step_of(c_step)
                    result = fn(step)
                    if isinstance(result, str):
                        result = StepResult[result.upper()]
                    result = StepResult(result)
                    if step.details is not None:
                        text = json.dumps(step.details, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
                        data = text.encode("utf-8")
                        if not isinstance(step.details, Mapping) or len(data) >= _ffi.JOB_DETAILS_CAP:
                            raise InvalidArgument(
                                f"JobStep.details must be a dict of at most {_ffi.JOB_DETAILS_CAP - 1} bytes of JSON",
                                code=ResultCode.ERR_INVALID_JSON,
                            )
                        ctypes.memmove(c_step.contents.details, data, len(data))
                        c_step.contents.details[len(data)] = b"\0"
                    return int(result)
                except BaseException as e:  # noqa: B902 - kept and raised after the C call
                    pending.keep(e)
                    return int(StepResult.RETRY)

            return _ffi.fleets_job_handler_fn(trampoline)

        entries = (_ffi.fleets_job_handler * max(1, len(self.handlers)))()
        for i, (action, fn) in enumerate(self.handlers.items()):
            callback = make_handler(fn)
            keep.append(callback)
            action_b = _text(action, "action")
            keep.append(action_b)
            entries[i].action = action_b
            entries[i].run = callback
            entries[i].user = None
        table = _ffi.fleets_job_handlers()
        table.handlers = entries if self.handlers else None
        table.count = len(self.handlers)
        if self.gate is not None:
            gate = self.gate

            def gate_trampoline(c_step: Any, _user: Any) -> bool:
                try:
                    return bool(gate(step_of(c_step)))
                except BaseException as e:  # noqa: B902 - kept and raised after the C call
                    pending.keep(e)
                    return False

            table.gate = _ffi.fleets_job_gate_fn(gate_trampoline)
            keep.append(table.gate)
        table.job_timeout_minutes = self.job_timeout_minutes
        table.max_attempts = self.max_attempts
        outcome = _ffi.fleets_job_outcome()
        try:
            self.client._run(
                "fleets_job_agent_run_once",
                _text(self.thing_name, "thing_name"),
                ctypes.byref(table),
                _text(self.state_dir, "state_dir"),
                ctypes.byref(outcome),
            )
        except BaseException:
            pending.raise_if_any()
            raise
        pending.raise_if_any()
        job_id = outcome.job_id.decode("utf-8")
        return JobOutcome(
            kind=JobOutcomeKind(outcome.kind),
            job_id=job_id or None,
            step=int(outcome.step),
            resumed=bool(outcome.resumed),
        )
