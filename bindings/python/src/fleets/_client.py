"""The :class:`Client`: a thread-safe handle on a libfleets client."""

from __future__ import annotations

import ctypes
import json
import math
import os
import threading
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from . import _ffi
from ._enums import ExecutionStatus, ResultCode, Severity
from ._errors import ClientClosedError, ConfigError, FleetsError, InvalidArgument, error_class
from ._redact import Credentials, printable, redact_url
from ._stats import ClientStats

_lib, LIBRARY_PATH = _ffi.load()

#: First response buffer size per thread; grown (up to the largest response seen) on demand.
_INITIAL_BUFFER = 16 * 1024
#: Buffers larger than this are not kept between calls.
_MAX_KEPT_BUFFER = 1024 * 1024 + 1

JSON = Dict[str, Any]
PathLike = Union[str, "os.PathLike[str]"]
StatusLike = Union[ExecutionStatus, str]
SeverityLike = Union[Severity, str]


class _ThreadBuffers(threading.local):
    """Per-thread response buffer and length out-parameter (a ctypes call runs on the
    calling thread, and so does the thread-local ``fleets_last_response``)."""

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(_INITIAL_BUFFER)
        self.cap = _INITIAL_BUFFER
        self.out_len = ctypes.c_size_t(0)
        self.out_len_p = ctypes.pointer(self.out_len)


_tls = _ThreadBuffers()


def _last_error_message() -> str:
    n = _lib.fleets_last_error_message(None, 0)
    if n == 0:
        return ""
    buf = ctypes.create_string_buffer(n + 1)
    _lib.fleets_last_error_message(buf, n + 1)
    return buf.value.decode("utf-8", "replace")


def _last_response() -> Optional[bytes]:
    """The calling thread's last response body, fetched with no new request."""
    needed = ctypes.c_size_t(0)
    code = _lib.fleets_last_response(None, 0, ctypes.byref(needed))
    if code != ResultCode.OK:
        return None
    buf = ctypes.create_string_buffer(needed.value + 1)
    code = _lib.fleets_last_response(buf, needed.value + 1, ctypes.byref(needed))
    if code != ResultCode.OK:  # pragma: no cover - the body cannot change on this thread
        raise FleetsError("fleets_last_response failed", code=code)
    return ctypes.string_at(buf, needed.value)


def _last_exchange() -> Tuple[Optional[int], Optional[float]]:
    """The calling thread's last HTTP status and ``Retry-After`` (seconds), read right after
    the call that produced them, on the same thread."""
    status = _lib.fleets_last_http_status()
    retry_after_ms = _lib.fleets_last_retry_after_ms()
    return (status or None), (retry_after_ms / 1000.0 if retry_after_ms >= 0 else None)


def _raise_for(
    code: int,
    credentials: Credentials,
    body: Optional[bytes] = None,
    exchange: Tuple[Optional[int], Optional[float]] = (None, None),
) -> None:
    """Raises the exception for a failed call. ``exchange`` is the ``_last_exchange()`` of a
    call that sent a request (the default, nothing, for calls rejected before sending). The
    message may quote the server or a configuration value: it is scrubbed of the client's
    credentials and of control characters. The body is kept as received."""
    message = credentials.scrub(_last_error_message() or _lib.fleets_result_name(code).decode())
    status, retry_after = exchange
    text = body.decode("utf-8", "replace") if body else None
    raise error_class(code)(message, code=code, http_status=status, body=text, retry_after=retry_after)


def _check(code: int, credentials: Credentials) -> None:
    """Raises for a failed configuration call (nothing was sent)."""
    if code != ResultCode.OK:
        _raise_for(code, credentials)


def _check_global(code: int) -> None:
    """Raises for a failed library-level call (no client, so no credentials to scrub)."""
    if code != ResultCode.OK:
        _raise_for(code, Credentials(None, None, ()))


#: Encoded identifiers (thing names, client tokens) by their text: a device reports under
#: the same few names on every call, so each is checked and encoded once. Bounded.
_ENCODED: Dict[str, bytes] = {}
_MAX_ENCODED = 256
_JSON_DECODE = json.JSONDecoder().decode
#: One encoder for every call: json.dumps with non-default options builds a new JSONEncoder
#: (and its C encoder) on each call, about half of what encoding a small object costs.
_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _text(value: Optional[str], name: str, required: bool = True, cache: bool = True) -> Optional[bytes]:
    if type(value) is str:
        cached = _ENCODED.get(value)
        if cached is not None:
            return cached
    if value is None:
        if required:
            raise InvalidArgument(f"{name} is required", code=ResultCode.ERR_NULL_ARGUMENT)
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgument(f"{name} contains a NUL character", code=ResultCode.ERR_INVALID_ARGUMENT)
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name} is not valid Unicode text", code=ResultCode.ERR_INVALID_ARGUMENT) from None
    if cache and len(value) <= 128 and type(value) is str:  # identifiers and tokens
        if len(_ENCODED) >= _MAX_ENCODED:
            _ENCODED.clear()
        _ENCODED[value] = encoded
    return encoded


def _object(value: Optional[Mapping[str, Any]], name: str, required: bool = False) -> Optional[bytes]:
    if value is None:
        if required:
            raise InvalidArgument(f"{name} is required", code=ResultCode.ERR_NULL_ARGUMENT)
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict (a JSON object), not {type(value).__name__}")
    try:
        text = _JSON_ENCODE(value)
    except RecursionError:
        raise InvalidArgument(f"{name} is nested too deeply to encode as JSON", code=ResultCode.ERR_INVALID_JSON) from None
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"{name} is not JSON-serializable: {e}", code=ResultCode.ERR_INVALID_JSON) from e
    return _text(text, name, cache=False)


def _int(value: Optional[int], name: str, lo: int, hi: int, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidArgument(f"{name} must be within {lo}..={hi}, got {value}", code=ResultCode.ERR_INVALID_ARGUMENT)
    return value


def _timeout_ms(value: float, name: str) -> int:
    """Positive seconds (int or float) as the C API's u32 milliseconds (at least 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value < 4_294_967:  # also rejects NaN; the C API takes u32 milliseconds
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}", code=ResultCode.ERR_INVALID_ARGUMENT)
    ms = max(1, round(value * 1000))
    if ms > 0xFFFFFFFF:
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}", code=ResultCode.ERR_INVALID_ARGUMENT)
    return ms


def _count(value: Optional[int], name: str, hi: int) -> int:
    """A positive int (None: 0, the library's default)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= hi:
        raise InvalidArgument(f"{name} must be a positive int, got {value}", code=ResultCode.ERR_INVALID_ARGUMENT)
    return value


def _response_limit(value: int) -> int:
    """``max_response_bytes``: a positive int, at most :data:`MAX_RESPONSE_BYTES_LIMIT`
    (over it: :class:`ConfigError`, as ``fleets_config_set_max_response_bytes`` answers)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_response_bytes must be an int, not {type(value).__name__}")
    if value < 1:
        raise InvalidArgument(f"max_response_bytes must be a positive int, got {value}", code=ResultCode.ERR_INVALID_ARGUMENT)
    if value > MAX_RESPONSE_BYTES_LIMIT:
        raise ConfigError(
            f"max_response_bytes must be at most {MAX_RESPONSE_BYTES_LIMIT} (16 MiB), got {value}",
            code=ResultCode.ERR_INVALID_CONFIG,
        )
    return value


def _minutes(value: float, name: str) -> int:
    """Positive seconds (int or float) as whole minutes, rounded up (the wire's unit)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value <= _U32 * 60:  # also rejects NaN; the C API takes u32 minutes
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}", code=ResultCode.ERR_INVALID_ARGUMENT)
    return math.ceil(value / 60)


def _path(value: Any, name: str) -> bytes:
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike path, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a str path, not {type(path).__name__}")
    return _text(path, name)  # type: ignore[return-value]


class _UndecodableBody(Exception):
    """A 2xx body that libfleets accepted as JSON but Python's json module cannot decode."""


def _decode_body(body: bytes) -> JSON:
    """The 2xx body as Python data. libfleets has checked that it is UTF-8 JSON, without a
    depth limit; Python's decoder has one (the recursion limit) and refuses integers of more
    than ``sys.get_int_max_str_digits()`` digits."""
    try:
        # Decoded first: json.loads of bytes would detect the encoding on every call, and the
        # library has checked that the body is UTF-8 (issue 16: ~0.7 us less per call).
        return _JSON_DECODE(body.decode("utf-8"))  # type: ignore[no-any-return]
    except RecursionError:
        raise _UndecodableBody("JSON nested too deeply") from None
    except ValueError as e:  # also UnicodeDecodeError, though libfleets refuses non-UTF-8
        raise _UndecodableBody(printable(str(e))[:200]) from None


_U64 = (1 << 64) - 1
_I64 = (1 << 63) - 1
_U32 = (1 << 32) - 1

#: The largest ``max_response_bytes`` the library accepts (``FLEETS_MAX_RESPONSE_BYTES_LIMIT``):
#: a response is held in memory whole.
MAX_RESPONSE_BYTES_LIMIT = 16 * 1024 * 1024


class Client:
    """A client of the Fleets ThingDatas HTTPS API (a pool of keep-alive connections).

    Safe to share between threads: calls release the GIL and run concurrently. Use it as a
    context manager or call :meth:`close`. Every method returns the response body as plain
    Python data and raises a :class:`fleets.FleetsError` subclass on failure.

    Args:
        endpoint: ``https://host[:port][/base]`` (``http://`` only for loopback hosts).
        api_key: the Deployment API key.
        api_secret: its secret; never shown in repr or errors (the client keeps a reference to
            this str only to scrub it from error messages a server might echo it in).
        ca_file: a PEM bundle (path) to trust instead of the bundled Mozilla roots.
        ca_pem: the same as text (``str`` or ``bytes`` holding PEM certificates).
        use_system_roots: trust the operating system's certificate store
            (``SSL_CERT_FILE``/``SSL_CERT_DIR``, else the distribution's bundle) instead of
            the bundled roots, e.g. behind a TLS-inspecting corporate proxy. At most one of
            ``ca_file``, ``ca_pem`` and ``use_system_roots`` may be given.
        client_cert: ``(cert_path, key_path)`` for mutual TLS: a PEM certificate chain (leaf
            first) and its PEM private key (PKCS#8, PKCS#1 or SEC1).
        proxy: ``http://[user:password@]host:port``, an HTTP CONNECT proxy for every request
            (TLS still runs end to end). The password is never shown in repr or errors, even
            when it holds ``/ ? # @ : %``. A loopback endpoint (``localhost``,
            ``127.0.0.0/8``, ``::1``) never goes through the proxy, as with curl's default
            ``NO_PROXY``. Overrides ``HTTPS_PROXY`` for :meth:`from_env`.
        max_attempts: attempts per call, including the first (1 disables retries; at most
            10). Default 3.
        initial_backoff: seconds; the wait before the first retry is random up to this,
            doubling per retry. Default 0.2.
        max_backoff: seconds; the longest wait between attempts, also the cap on what a
            server's ``Retry-After`` can ask. Default 5.0.
        max_response_bytes: the largest response body accepted (default 1 MiB, at most
            :data:`MAX_RESPONSE_BYTES_LIMIT`, 16 MiB); a larger body raises
            :class:`BadResponseError`.
        connect_timeout: seconds for DNS, TCP and the TLS handshake.
        timeout: seconds for a whole call, all retries included; no call takes longer.

    Durations are seconds (int or float) throughout, Python's unit for the settings that C
    takes in integer milliseconds (``fleets_config_set_timeouts``) and Go as a
    ``time.Duration``; they are rounded to whole milliseconds.

    Only calls that are safe to repeat are retried: :meth:`shadow_get`, :meth:`shadow_report`
    and the four ``jobs_*`` calls (with retries enabled and no ``client_token`` given, the
    library sends a generated one, ``fleets-`` and 16 hex digits, which the server echoes in
    the response). :meth:`event_publish` and :meth:`command_respond` are sent once. Retried
    failures: connection failures, timeouts before any response byte, HTTP 429, 502, 503, 504.

    Raises:
        ConfigError: bad endpoint, unreadable CA file, PEM without a certificate, client
            certificate and key that do not match, malformed proxy URL, retry settings out of
            range (``max_attempts`` over 10, ``initial_backoff`` over ``max_backoff``),
            ``max_response_bytes`` over 16 MiB...
        InvalidArgument: a bad argument (e.g. a non-positive timeout, backoff or size).
        TypeError: an argument of the wrong type.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        api_secret: str,
        *,
        ca_file: Optional[PathLike] = None,
        ca_pem: Optional[Union[str, bytes]] = None,
        use_system_roots: bool = False,
        client_cert: Optional[Tuple[PathLike, PathLike]] = None,
        proxy: Optional[str] = None,
        max_attempts: Optional[int] = None,
        initial_backoff: Optional[float] = None,
        max_backoff: Optional[float] = None,
        max_response_bytes: Optional[int] = None,
        connect_timeout: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        self._init_state(Credentials(api_key, api_secret, (endpoint, proxy)))
        self._endpoint = endpoint
        endpoint_b = _text(endpoint, "endpoint")
        key_b = _text(api_key, "api_key")
        secret_b = _text(api_secret, "api_secret")
        cfg = ctypes.c_void_p()
        code = _lib.fleets_config_new(endpoint_b, key_b, secret_b, ctypes.byref(cfg))
        del secret_b
        _check(code, self._credentials)
        self._finish(
            cfg,
            ca_file=ca_file,
            ca_pem=ca_pem,
            use_system_roots=use_system_roots,
            client_cert=client_cert,
            proxy=proxy,
            max_attempts=max_attempts,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            max_response_bytes=max_response_bytes,
            connect_timeout=connect_timeout,
            timeout=timeout,
        )

    @classmethod
    def from_env(
        cls,
        *,
        ca_file: Optional[PathLike] = None,
        ca_pem: Optional[Union[str, bytes]] = None,
        use_system_roots: bool = False,
        client_cert: Optional[Tuple[PathLike, PathLike]] = None,
        proxy: Optional[str] = None,
        max_attempts: Optional[int] = None,
        initial_backoff: Optional[float] = None,
        max_backoff: Optional[float] = None,
        max_response_bytes: Optional[int] = None,
        connect_timeout: float = 10.0,
        timeout: float = 30.0,
    ) -> "Client":
        """A client configured from ``FLEETS_ENDPOINT``, ``FLEETS_API_KEY``,
        ``FLEETS_API_SECRET`` and, when set and non-empty, ``FLEETS_CA_FILE``; a proxy from
        ``HTTPS_PROXY`` (lower-case name accepted) unless ``NO_PROXY`` names the endpoint's
        host; a loopback endpoint never uses a proxy. The other settings are the keyword
        arguments of :class:`Client`.

        ``ca_file``, ``ca_pem`` or ``use_system_roots`` override ``FLEETS_CA_FILE``; ``proxy``
        overrides ``HTTPS_PROXY``. A missing variable raises :class:`ConfigError` naming it.
        """
        self = cls.__new__(cls)
        env = os.environ.get
        proxies = [env(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")]
        self._init_state(Credentials(env("FLEETS_API_KEY"), env("FLEETS_API_SECRET"), [env("FLEETS_ENDPOINT"), proxy, *proxies]))
        cfg = ctypes.c_void_p()
        code = _lib.fleets_config_from_env(ctypes.byref(cfg))
        _check(code, self._credentials)
        self._endpoint = os.environ.get("FLEETS_ENDPOINT", "")
        self._finish(
            cfg,
            ca_file=ca_file,
            ca_pem=ca_pem,
            use_system_roots=use_system_roots,
            client_cert=client_cert,
            proxy=proxy,
            max_attempts=max_attempts,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            max_response_bytes=max_response_bytes,
            connect_timeout=connect_timeout,
            timeout=timeout,
        )
        return self

    def _init_state(self, credentials: Credentials) -> None:
        # Scrubbed from error messages; a reference to the caller's strings, never shown.
        self._credentials = credentials
        self._handle: Optional[int] = None
        # The call path takes the condition's lock directly: entering a Lock is one C call,
        # entering the Condition a Python-level method around the same lock.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._inflight = 0
        self._closed = False
        self._endpoint = ""
        self._proxy_shown: Optional[str] = None
        self._final_stats: Optional[ClientStats] = None

    def _finish(
        self,
        cfg: ctypes.c_void_p,
        *,
        ca_file: Optional[PathLike],
        ca_pem: Optional[Union[str, bytes]],
        use_system_roots: bool,
        client_cert: Optional[Tuple[PathLike, PathLike]],
        proxy: Optional[str],
        max_attempts: Optional[int],
        initial_backoff: Optional[float],
        max_backoff: Optional[float],
        max_response_bytes: Optional[int],
        connect_timeout: float,
        timeout: float,
    ) -> None:
        """Applies the settings to ``cfg``, creates the client and frees ``cfg`` (always)."""

        def check(code: int) -> None:
            _check(code, self._credentials)

        try:
            # Trust anchors: one source at most.
            if not isinstance(use_system_roots, bool):
                raise TypeError(f"use_system_roots must be a bool, not {type(use_system_roots).__name__}")
            given = [n for n, v in (("ca_file", ca_file), ("ca_pem", ca_pem)) if v is not None]
            if use_system_roots:
                given.append("use_system_roots")
            if len(given) > 1:
                raise ConfigError(
                    f"give at most one of ca_file, ca_pem and use_system_roots (got {' and '.join(given)})",
                    code=ResultCode.ERR_INVALID_CONFIG,
                )
            if ca_file is not None:
                check(_lib.fleets_config_set_ca_file(cfg, _path(ca_file, "ca_file")))
            if ca_pem is not None:
                if isinstance(ca_pem, bytes):
                    try:
                        ca_pem = ca_pem.decode("utf-8")
                    except UnicodeDecodeError:
                        raise InvalidArgument("ca_pem is not PEM text", code=ResultCode.ERR_INVALID_ARGUMENT) from None
                check(_lib.fleets_config_set_ca_pem(cfg, _text(ca_pem, "ca_pem")))
            if use_system_roots:
                check(_lib.fleets_config_use_system_roots(cfg))

            if client_cert is not None:
                if isinstance(client_cert, (str, bytes, os.PathLike)) or not isinstance(client_cert, Sequence) or len(client_cert) != 2:
                    raise TypeError("client_cert must be a (cert_path, key_path) tuple")
                cert_path, key_path = client_cert
                check(_lib.fleets_config_set_client_cert(cfg, _path(cert_path, "client_cert[0]"), _path(key_path, "client_cert[1]")))

            if proxy is not None:
                if not isinstance(proxy, str):
                    raise TypeError(f"proxy must be a str URL, not {type(proxy).__name__}")
                check(_lib.fleets_config_set_proxy(cfg, _text(proxy, "proxy")))
                self._proxy_shown = redact_url(proxy)

            if max_attempts is not None or initial_backoff is not None or max_backoff is not None:
                check(
                    _lib.fleets_config_set_retry(
                        cfg,
                        _count(max_attempts, "max_attempts", _U32),  # 0 = the library's default
                        _timeout_ms(initial_backoff, "initial_backoff") if initial_backoff is not None else 0,
                        _timeout_ms(max_backoff, "max_backoff") if max_backoff is not None else 0,
                    )
                )

            if max_response_bytes is not None:
                check(_lib.fleets_config_set_max_response_bytes(cfg, _response_limit(max_response_bytes)))

            check(_lib.fleets_config_set_timeouts(cfg, _timeout_ms(connect_timeout, "connect_timeout"), _timeout_ms(timeout, "timeout")))
            client = ctypes.c_void_p()
            check(_lib.fleets_client_new(cfg, ctypes.byref(client)))
            self._handle = client.value
        finally:
            _lib.fleets_config_free(cfg)

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> str:
        """The endpoint URL this client talks to."""
        return self._endpoint

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Closes the pooled connections and frees the client. Idempotent.

        Waits for calls running in other threads to finish (each is bounded by ``timeout``);
        calls started after ``close()`` raise :class:`ClientClosedError`. :meth:`stats` still
        returns the counters as they were at ``close()``.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._inflight:
                self._cond.wait()
            if self._handle:
                self._final_stats = _read_stats(self._handle, self._credentials)
            handle, self._handle = self._handle, None
        if handle:
            _lib.fleets_client_free(handle)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Nothing can be running: every call holds a reference to the client.
        handle = getattr(self, "_handle", None)
        if handle and _lib is not None:
            self._handle = None
            _lib.fleets_client_free(handle)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        proxy = f" proxy={self._proxy_shown!r}" if self._proxy_shown else ""
        return f"<fleets.Client endpoint={redact_url(self._endpoint)!r}{proxy} {state}>"

    def __reduce__(self) -> Any:
        raise TypeError("a fleets.Client cannot be pickled or copied; create one per process")

    # ------------------------------------------------------------------ the call path

    def _call(self, fn: Callable[..., int], *args: Any) -> JSON:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed", code=ResultCode.ERR_NULL_ARGUMENT)
            self._inflight += 1
            handle = self._handle
        try:
            tls = _tls
            tls.out_len.value = 0
            code = fn(handle, *args, tls.buf, tls.cap, tls.out_len_p)
            # Read everything that is per thread right away, on this same thread.
            # Result codes >= 200 mean a request was sent (transport or HTTP failure).
            exchange = _last_exchange() if code >= 200 else (None, None)
            n = tls.out_len.value
            body: Optional[bytes]
            if code == ResultCode.OK:
                body = ctypes.string_at(tls.buf, n)
            elif code == ResultCode.ERR_BUFFER_TOO_SMALL:
                body = _last_response()
                if n < _MAX_KEPT_BUFFER:
                    tls.cap = max(n + 1, tls.cap * 2)
                    tls.buf = ctypes.create_string_buffer(tls.cap)
                if body is None:  # pragma: no cover - the library keeps it
                    raise FleetsError("the response body was lost", code=code)
            else:
                body = None
                if n:
                    body = ctypes.string_at(tls.buf, n) if n < tls.cap else _last_response()
                _raise_for(code, self._credentials, body, exchange)
        finally:
            with self._lock:
                self._inflight -= 1
                if self._closed and not self._inflight:
                    self._cond.notify_all()
        if not body:
            return {}
        try:
            return _decode_body(body)
        except _UndecodableBody as e:
            # Still on the calling thread: its last HTTP status is this call's.
            status = _lib.fleets_last_http_status() or None
            raise error_class(ResultCode.ERR_BAD_RESPONSE)(
                f"HTTP {status}: response body cannot be decoded: {e}",
                code=ResultCode.ERR_BAD_RESPONSE,
                http_status=status,
                body=body.decode("utf-8", "replace"),
            ) from None

    # ------------------------------------------------------------------ observing

    def stats(self) -> ClientStats:
        """The client's counters since it was created (``fleets_client_stats``).

        After :meth:`close`, the counters as they were when the client was closed. A snapshot
        taken while other threads call may mix values from just before and just after a
        concurrent call.
        """
        with self._cond:
            handle = self._handle
            if handle is None:
                if self._final_stats is None:  # pragma: no cover - set by close()
                    raise ClientClosedError("the client is closed", code=ResultCode.ERR_NULL_ARGUMENT)
                return self._final_stats
            return _read_stats(handle, self._credentials)

    # ------------------------------------------------------------------ ThingDatas calls

    def shadow_report(
        self,
        thing_name: str,
        reported: Mapping[str, Any],
        *,
        client_token: Optional[str] = None,
        version: int = 0,
    ) -> JSON:
        """Reports the device's state (``POST /api/v1/thing-datas/shadow/reported``).

        Args:
            thing_name: the thing name (``[A-Za-z0-9._:-]{1,128}``).
            reported: the state; deep-merged by the server, a ``None`` value deletes that key.
            client_token: echoed back in the response (at most 64 printable ASCII characters).
                None with retries enabled sends a generated ``fleets-<16 hex>`` token.
            version: the expected current shadow version; 0 auto-increments. A stale version
                raises :class:`ConflictError`.

        Returns:
            The response, e.g. ``{"state": {"reported": {...}}, "version": 6, "timestamp": ...}``.
        """
        return self._call(
            _lib.fleets_shadow_report,
            _text(thing_name, "thing_name"),
            _object(reported, "reported", required=True),
            _text(client_token, "client_token", required=False),
            _int(version, "version", 0, _U64),
        )

    def shadow_get(self, thing_name: str) -> JSON:
        """Reads the current shadow (``GET /api/v1/thing-datas/{thing_name}/shadow``).

        Returns:
            ``{"reported": {...}, "desired": {...}, "delta": {...}, "version": N, "updatedAt": "..."}``;
            a non-empty ``delta`` holds desired values the device has not reported yet.
        """
        return self._call(_lib.fleets_shadow_get, _text(thing_name, "thing_name"))

    def event_publish(
        self,
        thing_name: str,
        event_type: str,
        *,
        data: Optional[Mapping[str, Any]] = None,
        severity: Optional[SeverityLike] = None,
        timestamp_ms: Optional[int] = None,
        app_id: Optional[str] = None,
    ) -> JSON:
        """Publishes an event (``POST /api/v1/thing-datas/events``).

        Args:
            thing_name: the thing name.
            event_type: e.g. ``"highTemperature"`` (1 to 128 bytes).
            data: a JSON object with the event's details.
            severity: ``Severity.INFO``/``WARN``/``ERROR`` or ``"info"``/``"warn"``/``"error"``;
                None leaves it out.
            timestamp_ms: Unix milliseconds (the wire's unit); None means now.
            app_id: an application label (at most 128 bytes).

        Never retried: a failure raises after the one attempt.
        """
        sev = Severity.UNSET if severity is None else Severity.coerce(severity)
        return self._call(
            _lib.fleets_event_publish,
            _text(thing_name, "thing_name"),
            _text(event_type, "event_type"),
            int(sev),
            _int(timestamp_ms, "timestamp_ms", 0, _I64),
            _object(data, "data"),
            _text(app_id, "app_id", required=False),
        )

    def command_respond(
        self,
        thing_name: str,
        execution_id: str,
        status: StatusLike,
        *,
        result: Optional[Mapping[str, Any]] = None,
        timestamp: Optional[int] = None,
    ) -> JSON:
        """Answers a command execution (``POST /api/v1/thing-datas/command/response``).

        Args:
            thing_name: the thing name.
            execution_id: the command execution's id.
            status: an :class:`ExecutionStatus` member or its name (``"SUCCEEDED"``...).
            result: a JSON object with the command's result.
            timestamp: Unix seconds (the wire's unit); None means now.

        Never retried: a failure raises after the one attempt.

        Raises:
            NotFoundError: unknown execution. ConflictError: already answered.
        """
        return self._call(
            _lib.fleets_command_respond,
            _text(thing_name, "thing_name"),
            _text(execution_id, "execution_id"),
            int(ExecutionStatus.coerce(status)),
            _object(result, "result"),
            _int(timestamp, "timestamp", 0, _I64),
        )

    def jobs_get_pending(self, thing_name: str, *, client_token: Optional[str] = None) -> JSON:
        """Lists pending jobs (``POST /api/v1/thing-datas/jobs/get``).

        Returns:
            ``{"inProgressJobs": [...], "queuedJobs": [...]}`` of job summaries.
        """
        return self._call(
            _lib.fleets_jobs_get_pending,
            _text(thing_name, "thing_name"),
            _text(client_token, "client_token", required=False),
        )

    def jobs_start_next(
        self,
        thing_name: str,
        *,
        status_details: Optional[Mapping[str, Any]] = None,
        step_timeout: Optional[float] = None,
        client_token: Optional[str] = None,
    ) -> JSON:
        """Starts the next pending job (``POST /api/v1/thing-datas/jobs/start-next``): the
        in-progress one first, else the oldest queued.

        Args:
            status_details: a JSON object stored with the execution.
            step_timeout: seconds the device has to update the execution before it times
                out; sent in whole minutes, rounded up. None leaves it out.

        Returns:
            ``{"execution": {..., "jobDocument": {...}}}``, or ``{}`` when nothing is pending.
        """
        return self._call(
            _lib.fleets_jobs_start_next,
            _text(thing_name, "thing_name"),
            _object(status_details, "status_details"),
            _minutes(step_timeout, "step_timeout") if step_timeout is not None else 0,
            _text(client_token, "client_token", required=False),
        )

    def jobs_describe(self, thing_name: str, job_id: str, *, client_token: Optional[str] = None) -> JSON:
        """Describes this thing's execution of a job (``POST /api/v1/thing-datas/jobs/{job_id}/get``).

        Returns:
            ``{"execution": {...}}``. Raises :class:`NotFoundError` when there is no such execution.
        """
        return self._call(
            _lib.fleets_jobs_describe,
            _text(thing_name, "thing_name"),
            _text(job_id, "job_id"),
            _text(client_token, "client_token", required=False),
        )

    def jobs_update(
        self,
        thing_name: str,
        job_id: str,
        status: StatusLike,
        *,
        status_details: Optional[Mapping[str, Any]] = None,
        expected_version: Optional[int] = None,
        client_token: Optional[str] = None,
    ) -> JSON:
        """Reports a job execution's status (``POST /api/v1/thing-datas/jobs/{job_id}/update``).

        Args:
            status: an :class:`ExecutionStatus` member or its name.
            status_details: a JSON object stored with the execution.
            expected_version: the execution's current ``versionNumber`` (optimistic locking);
                None leaves it out. A mismatch, or leaving a terminal state, raises
                :class:`ConflictError`.

        Returns:
            ``{"executionState": {"status", "statusDetails", "versionNumber"}, "jobDocument": ...}``.
        """
        return self._call(
            _lib.fleets_jobs_update,
            _text(thing_name, "thing_name"),
            _text(job_id, "job_id"),
            int(ExecutionStatus.coerce(status)),
            _object(status_details, "status_details"),
            _int(expected_version, "expected_version", 1, _U64) if expected_version is not None else 0,
            _text(client_token, "client_token", required=False),
        )


    # ------------------------------------------------------------------ workflows

    def _run(self, name: str, *args: Any) -> None:
        """Runs the C workflow function ``name(client, *args)``; raises on failure."""
        with self._cond:
            if self._closed:
                raise ClientClosedError("the client is closed", code=ResultCode.ERR_NULL_ARGUMENT)
            self._inflight += 1
            handle = self._handle
        try:
            code = getattr(_lib, name)(handle, *args)
            if code != ResultCode.OK:
                # Transport and HTTP failures (2xx, 3xx) keep the exchange, as for the calls.
                exchange = _last_exchange() if 200 <= code < 400 else (None, None)
                body = _last_response() if exchange[0] else None
                _raise_for(code, self._credentials, body, exchange)
        finally:
            with self._cond:
                self._inflight -= 1
                if self._closed and not self._inflight:
                    self._cond.notify_all()

    def shadow_sync(
        self,
        thing_name: str,
        on_delta: Any,
        *,
        applied_version: int = 0,
        state_file: Optional[PathLike] = None,
    ) -> int:
        """Syncs the desired state into the device (``fleets_shadow_sync``).

        Reads the shadow; when its delta is not empty and its version is newer than
        ``applied_version``, offers each top-level delta property to ``on_delta``, reports the
        accepted values with the shadow's version, and on a version conflict reads the shadow
        again (4 reads at most).

        Args:
            on_delta: ``callable(key, value) -> bool`` (True: applied, reported back; False:
                declined, offered again next time), or a dict ``{key: callable(value)}``
                whose callables accept unless they return False (keys not in the dict are
                declined). ``value`` is the decoded JSON value (for an object, only the
                members that differ from the reported state).
            applied_version: the version of the last shadow whose values the device applied
                (0 at first): an older or equal shadow is never offered.
            state_file: keep the applied version in this file instead (then
                ``applied_version`` is ignored).

        Returns:
            The applied version to pass next time. A value may be offered again (after a
            conflict, a failed report, or when declined): applying must be idempotent.

        Raises:
            ConflictError: the desired state kept changing. LocalFileError: the state file.
            Any exception ``on_delta`` raised (the remaining values are declined; what was
            accepted before it is reported).
        """
        from ._workflows import shadow_sync

        return shadow_sync(self, thing_name, on_delta, applied_version=applied_version, state_file=state_file)

    def download(
        self,
        url: str,
        sha256: str,
        dest: PathLike,
        *,
        progress: Optional[Callable[[int, int], Any]] = None,
        send_credentials: bool = False,
        restart: bool = True,
    ) -> None:
        """Downloads ``url`` into ``dest``, verified against ``sha256`` (64 hex digits), and
        resumes an earlier interrupted download of the same content (``fleets_download``).

        Same TLS trust, proxy and timeouts as the client's calls. The bytes go to
        ``<dest>.part``; after an interruption the next call asks for the rest with
        ``Range``. The SHA-256 is checked before the file is synced and renamed over
        ``dest``: ``dest`` holds its old content or the complete verified new one. Memory
        stays bounded (one 64 KiB buffer). Credentials are sent only to the client's own
        endpoint, or with ``send_credentials=True`` to the host of ``url``; never to a host a
        redirect points at.

        Args:
            progress: ``callable(received, total)``, called when the transfer starts and
                after every 64 KiB (``total`` 0 when unknown); returning False stops the
                download (:class:`CanceledError`), as does an exception (raised again).
            restart: False: fail with :class:`RangeNotSupportedError` instead of starting over
                when a resumed download meets a server that sends the whole file.

        Raises:
            HashMismatchError, RangeNotSupportedError, DiskFullError (the partial file stays),
            LocalFileError, CanceledError, and the errors of the calls (connection, TLS, HTTP).
        """
        from ._workflows import download

        download(self, url, sha256, dest, progress=progress, send_credentials=send_credentials, restart=restart)


def _read_stats(handle: int, credentials: Credentials) -> ClientStats:
    raw = _ffi.fleets_client_stats_t()
    _check(_lib.fleets_client_stats(handle, ctypes.byref(raw)), credentials)
    return ClientStats(
        calls=raw.calls,
        failures=raw.failures,
        requests=raw.requests,
        retries=raw.retries,
        stale_resends=raw.stale_resends,
        connections=raw.connections,
        bytes_sent=raw.bytes_sent,
        bytes_received=raw.bytes_received,
        last_latency=raw.last_latency_us / 1_000_000,
    )


def library_version() -> str:
    """The loaded libfleets version (``fleets_version()``)."""
    return str(_lib.fleets_version().decode())
