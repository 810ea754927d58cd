"""Python binding of libfleets, the device SDK for the EMQX Fleets ThingDatas HTTPS API.

Quickstart::

    import fleets

    with fleets.Client("https://fleets.example.com", "ak_...", "secret") as client:
        client.shadow_report("thermostat-001", {"temperature": 21.5})
        shadow = client.shadow_get("thermostat-001")

Operation names are those of the C API without the ``fleets_`` prefix (``shadow_report``,
``event_publish``, ``jobs_update``...). Durations are in seconds (floats); libfleets' log
messages go to the ``logging`` module once :func:`enable_logging` is called (nothing is
logged by default).

The shared library is bundled in the package; set ``FLEETS_LIBRARY`` to a path to load another
one. Importing fails with an :class:`ImportError` that says what was looked for when the
library is missing or its version does not match the package.
"""

from ._version import __version__
from ._enums import ExecutionStatus, ResultCode, Severity
from ._errors import (
    ApiError,
    AuthError,
    BadRequestError,
    BadResponseError,
    CanceledError,
    ClientClosedError,
    ConfigError,
    ConflictError,
    DiskFullError,
    FleetsConnectionError,
    FleetsError,
    FleetsTimeout,
    ForbiddenError,
    HashMismatchError,
    InternalError,
    InvalidArgument,
    LocalFileError,
    NotFoundError,
    OutboxCorruptError,
    OutboxFullError,
    OutboxLockedError,
    PayloadTooLargeError,
    RangeNotSupportedError,
    RateLimitedError,
    ServerError,
    StorageError,
    TLSError,
)
from ._ffi import LibraryError
from ._client import LIBRARY_PATH, MAX_RESPONSE_BYTES_LIMIT, Client, library_version
from ._logging import disable_logging, enable_logging
from ._stats import ClientStats
from ._outbox import Outbox, OutboxStats
from ._workflows import JobAgent, JobOutcome, JobOutcomeKind, JobStep, StepResult

__all__ = [
    "__version__",
    "Client",
    "ClientStats",
    "Outbox",
    "OutboxStats",
    "ExecutionStatus",
    "Severity",
    "ResultCode",
    "FleetsError",
    "InvalidArgument",
    "ConfigError",
    "ClientClosedError",
    "FleetsConnectionError",
    "TLSError",
    "FleetsTimeout",
    "ApiError",
    "BadRequestError",
    "AuthError",
    "ForbiddenError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "ServerError",
    "BadResponseError",
    "InternalError",
    "StorageError",
    "OutboxFullError",
    "OutboxLockedError",
    "OutboxCorruptError",
    "CanceledError",
    "HashMismatchError",
    "RangeNotSupportedError",
    "LocalFileError",
    "DiskFullError",
    "JobAgent",
    "JobOutcome",
    "JobOutcomeKind",
    "JobStep",
    "StepResult",
    "LibraryError",
    "LIBRARY_PATH",
    "library_version",
    "MAX_RESPONSE_BYTES_LIMIT",
    "enable_logging",
    "disable_logging",
]
