"""Python binding of libfleets, the device SDK for the EMQX Fleets ThingDatas HTTPS API.

Quickstart::

    import fleets

    with fleets.Client("https://fleets.example.com", "ak_...", "secret") as client:
        client.report_shadow("thermostat-001", {"temperature": 21.5})
        shadow = client.get_shadow("thermostat-001")

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
    NotFoundError,
    PayloadTooLargeError,
    RangeNotSupportedError,
    RateLimitedError,
    ServerError,
    StorageError,
    TLSError,
)
from ._ffi import LibraryError
from ._client import LIBRARY_PATH, Client, library_version
from ._workflows import JobAgent, JobOutcome, JobOutcomeKind, JobStep, StepResult

__all__ = [
    "__version__",
    "Client",
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
    "CanceledError",
    "HashMismatchError",
    "RangeNotSupportedError",
    "StorageError",
    "DiskFullError",
    "JobAgent",
    "JobOutcome",
    "JobOutcomeKind",
    "JobStep",
    "StepResult",
    "LibraryError",
    "LIBRARY_PATH",
    "library_version",
]
