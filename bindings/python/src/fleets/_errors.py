"""The exception hierarchy. Every error the client raises is a :class:`FleetsError`; the
subclasses also derive from the built-in exception a Python programmer would catch."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type

from ._enums import ResultCode


class FleetsError(Exception):
    """An error from libfleets or the Fleets server.

    Attributes:
        code: the C result code (:class:`fleets.ResultCode`), e.g. ``ResultCode.ERR_NOT_FOUND``.
        code_name: its C name, e.g. ``"FLEETS_ERR_NOT_FOUND"``.
        http_status: the HTTP status of the response, or None when there was none.
        message: a human-readable description (never contains the API secret).
        body: the response body text, or None when there was none.
        retry_after: the wait in seconds (a float) that the server asked for with a
            ``Retry-After`` header (HTTP 429 or 503), or None when it sent none. Set on the
            error of the last attempt, after the library's own retries.
        request_sent: whether the request may have reached the server (see the property).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int = ResultCode.ERR_INTERNAL,
        http_status: Optional[int] = None,
        body: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        try:
            self.code: int = ResultCode(code)
        except ValueError:
            self.code = code
        self.code_name: str = self.code.c_name if isinstance(self.code, ResultCode) else "FLEETS_ERR_UNKNOWN"
        self.http_status: Optional[int] = http_status
        self.message: str = message
        self.body: Optional[str] = body
        self.retry_after: Optional[float] = retry_after

    @property
    def request_sent(self) -> bool:
        """Whether the failed call may have delivered its request to the server
        (``fleets_result_request_sent``).

        False only when the request certainly was not sent: an argument or setting refused
        before sending (:class:`InvalidArgument`, :class:`ConfigError`,
        :class:`ClientClosedError`), a connection that could not be made or a TLS handshake
        that failed. Then sending it again cannot make a duplicate. True for timeouts and
        broken connections (the server may have acted on the request), every HTTP error
        status and internal errors.
        """
        from ._client import _lib  # the library is loaded by the time an error exists

        return bool(_lib.fleets_result_request_sent(int(self.code)))

    @property
    def body_json(self) -> Any:
        """The body parsed as JSON (e.g. ``{"code": "NotFound", "message": ...}``), or None."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # not JSON, or nested too deeply for Python
            return None

    def __str__(self) -> str:
        status = f", HTTP {self.http_status}" if self.http_status else ""
        return f"{self.message} ({self.code_name}{status})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code_name}, http_status={self.http_status!r})"

    # Exceptions travel between processes (multiprocessing, concurrent.futures): keep the fields.
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), self.message, int(self.code), self.http_status, self.body, self.retry_after))


def _rebuild(
    cls: Type[FleetsError],
    message: str,
    code: int,
    http_status: Optional[int],
    body: Optional[str],
    retry_after: Optional[float] = None,
) -> FleetsError:
    return cls(message, code=code, http_status=http_status, body=body, retry_after=retry_after)


class InvalidArgument(FleetsError, ValueError):
    """An argument was rejected before anything was sent (bad identifier, JSON, enum value...)."""


class ConfigError(FleetsError, ValueError):
    """Bad endpoint URL, unreadable CA file or PEM without a certificate, client certificate
    and key that cannot be read or do not match, malformed proxy URL, retry settings out of
    range, ``http://`` to a non-loopback host, missing environment variable."""


class ClientClosedError(FleetsError, RuntimeError):
    """The client was used after :meth:`fleets.Client.close`."""


class FleetsConnectionError(FleetsError, ConnectionError):
    """No usable connection: DNS failure, refused, unreachable, or the connection broke
    mid-request (truncated body, a reply that is not HTTP)."""


class TLSError(FleetsConnectionError):
    """The TLS handshake or the server certificate verification failed."""


class FleetsTimeout(FleetsError, TimeoutError):
    """The connect timeout or the request deadline expired."""


class ApiError(FleetsError):
    """The server answered with a non-2xx HTTP status (``http_status``, ``body``)."""


class BadRequestError(ApiError):
    """HTTP 400: the server rejected the request."""


class AuthError(ApiError):
    """HTTP 401 (wrong or missing API key/secret) or 403 (not allowed)."""


class ForbiddenError(AuthError):
    """HTTP 403."""


class NotFoundError(ApiError):
    """HTTP 404: unknown thing, job or command execution."""


class ConflictError(ApiError):
    """HTTP 409: version mismatch or invalid state transition."""


class PayloadTooLargeError(ApiError):
    """HTTP 413: the request body is too large."""


class RateLimitedError(ApiError):
    """HTTP 429: rate limited (after the library's retries, unless disabled). ``retry_after``
    is the wait in seconds the server asked for, or None."""


class ServerError(ApiError):
    """HTTP 5xx (502, 503 and 504 after the library's retries, unless disabled).
    ``retry_after`` is the wait in seconds a 503 asked for, or None."""


class BadResponseError(FleetsError):
    """A 2xx response whose body is not JSON, or a response over the size limit."""


class StorageError(FleetsError, OSError):
    """The outbox could not read, write or sync its files (disk full, read-only, I/O error)."""


class OutboxFullError(FleetsError):
    """The record does not fit in the outbox's ``max_bytes`` under its full policy."""


class OutboxLockedError(FleetsError):
    """Another outbox handle, in this process or another, has the directory open."""


class OutboxCorruptError(FleetsError):
    """The outbox directory holds files of a newer format; they were left untouched."""


class CanceledError(FleetsError):
    """A callback stopped a workflow (a download's progress callback returned False)."""


class HashMismatchError(BadResponseError):
    """A downloaded file's SHA-256 is not the expected one; nothing was installed."""


class RangeNotSupportedError(BadResponseError):
    """A download had to resume, the server sent the whole file, and ``restart=False``."""


class LocalFileError(FleetsError, OSError):
    """A workflow's local file (a state file, a download) could not be created, read, written,
    synced or renamed (``FLEETS_ERR_LOCAL_FILE``)."""


class DiskFullError(LocalFileError):
    """A workflow's local storage is full; a partial download is kept for when space is freed."""


class InternalError(FleetsError):
    """A bug in libfleets or the binding (a caught panic, resource exhaustion)."""


_BY_CODE: Dict[int, Type[FleetsError]] = {
    ResultCode.ERR_NULL_ARGUMENT: InvalidArgument,
    ResultCode.ERR_INVALID_ARGUMENT: InvalidArgument,
    ResultCode.ERR_INVALID_JSON: InvalidArgument,
    ResultCode.ERR_INVALID_CONFIG: ConfigError,
    ResultCode.ERR_JSON_NO_VALUE: InvalidArgument,
    ResultCode.ERR_JSON_TYPE: InvalidArgument,
    ResultCode.ERR_CONNECT: FleetsConnectionError,
    ResultCode.ERR_TLS: TLSError,
    ResultCode.ERR_TIMEOUT: FleetsTimeout,
    ResultCode.ERR_IO: FleetsConnectionError,
    ResultCode.ERR_BAD_REQUEST: BadRequestError,
    ResultCode.ERR_UNAUTHORIZED: AuthError,
    ResultCode.ERR_FORBIDDEN: ForbiddenError,
    ResultCode.ERR_NOT_FOUND: NotFoundError,
    ResultCode.ERR_CONFLICT: ConflictError,
    ResultCode.ERR_PAYLOAD_TOO_LARGE: PayloadTooLargeError,
    ResultCode.ERR_RATE_LIMITED: RateLimitedError,
    ResultCode.ERR_SERVER: ServerError,
    ResultCode.ERR_HTTP: ApiError,
    ResultCode.ERR_BAD_RESPONSE: BadResponseError,
    ResultCode.ERR_CANCELED: CanceledError,
    ResultCode.ERR_HASH_MISMATCH: HashMismatchError,
    ResultCode.ERR_RANGE_NOT_SUPPORTED: RangeNotSupportedError,
    ResultCode.ERR_STORAGE_IO: StorageError,
    ResultCode.ERR_OUTBOX_FULL: OutboxFullError,
    ResultCode.ERR_OUTBOX_LOCKED: OutboxLockedError,
    ResultCode.ERR_OUTBOX_CORRUPT: OutboxCorruptError,
    ResultCode.ERR_DISK_FULL: DiskFullError,
    ResultCode.ERR_LOCAL_FILE: LocalFileError,
    ResultCode.ERR_PANIC: InternalError,
    ResultCode.ERR_INTERNAL: InternalError,
}


def error_class(code: int) -> Type[FleetsError]:
    """The exception class raised for a C result code."""
    return _BY_CODE.get(code, FleetsError)
