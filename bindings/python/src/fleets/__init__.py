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
    ClientClosedError,
    ConfigError,
    ConflictError,
    FleetsConnectionError,
    FleetsError,
    FleetsTimeout,
    ForbiddenError,
    InternalError,
    InvalidArgument,
    NotFoundError,
    OutboxCorruptError,
    OutboxFullError,
    OutboxLockedError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    StorageError,
    TLSError,
)
from ._ffi import LibraryError
from ._client import LIBRARY_PATH, Client, library_version
from ._outbox import Outbox, OutboxStats

__all__ = [
    "__version__",
    "Client",
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
    "LibraryError",
    "LIBRARY_PATH",
    "library_version",
]
