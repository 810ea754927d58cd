"""Enumerations of the C API. Values equal the header's ``FLEETS_*`` constants (a test parses
``include/fleets.h`` to keep them so)."""

from __future__ import annotations

import enum
from typing import Optional, Type, TypeVar, Union

_E = TypeVar("_E", bound="_WireEnum")


class ResultCode(enum.IntEnum):
    """``fleets_result``: what every fallible C function returns (``FLEETS_OK`` or ``FLEETS_ERR_*``)."""

    OK = 0
    ERR_NULL_ARGUMENT = 100
    ERR_INVALID_ARGUMENT = 101
    ERR_INVALID_JSON = 102
    ERR_BUFFER_TOO_SMALL = 103
    ERR_INVALID_CONFIG = 104
    ERR_JSON_NO_VALUE = 105
    ERR_JSON_TYPE = 106
    ERR_CANCELED = 107
    ERR_CONNECT = 200
    ERR_TLS = 201
    ERR_TIMEOUT = 202
    ERR_IO = 203
    ERR_BAD_REQUEST = 300
    ERR_UNAUTHORIZED = 301
    ERR_FORBIDDEN = 302
    ERR_NOT_FOUND = 303
    ERR_CONFLICT = 304
    ERR_PAYLOAD_TOO_LARGE = 305
    ERR_RATE_LIMITED = 306
    ERR_SERVER = 307
    ERR_HTTP = 308
    ERR_BAD_RESPONSE = 309
    ERR_HASH_MISMATCH = 310
    ERR_RANGE_NOT_SUPPORTED = 311
    ERR_STORAGE_IO = 400
    ERR_OUTBOX_FULL = 401
    ERR_OUTBOX_LOCKED = 402
    ERR_OUTBOX_CORRUPT = 403
    ERR_DISK_FULL = 420
    ERR_LOCAL_FILE = 421
    ERR_PANIC = 900
    ERR_INTERNAL = 901

    @property
    def c_name(self) -> str:
        """The C constant's name, e.g. ``"FLEETS_ERR_TIMEOUT"``."""
        return "FLEETS_" + self.name


class _WireEnum(enum.IntEnum):
    """An integer enum whose members are also accepted as (case-insensitive) wire strings."""

    @property
    def wire(self) -> Optional[str]:
        """The string sent on the wire for this member (None when nothing is sent)."""
        return self.name.lower()

    @classmethod
    def _missing_(cls, value: object) -> Optional["_WireEnum"]:
        if isinstance(value, str):
            for member in cls:
                if member.wire is not None and member.wire.lower() == value.lower():
                    return member
        return None

    @classmethod
    def coerce(cls: Type[_E], value: Union[_E, str, int]) -> _E:
        """A member from a member, its wire string (any case) or its integer value.

        Raises :class:`ValueError` (as :class:`fleets.InvalidArgument`) naming the accepted values.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                return cls(value)  # type: ignore[arg-type]  # strings via _missing_
            except ValueError:
                pass
        from ._errors import InvalidArgument

        accepted = ", ".join(repr(m.wire) for m in cls if m.wire is not None)
        raise InvalidArgument(
            f"{value!r} is not a {cls.__name__}: use a fleets.{cls.__name__} member or one of {accepted}",
            code=ResultCode.ERR_INVALID_ARGUMENT,
        )


class Severity(_WireEnum):
    """Severity of an event (``fleets_severity``); sent as ``"info"``, ``"warn"``, ``"error"``."""

    UNSET = 0
    INFO = 1
    WARN = 2
    ERROR = 3

    @property
    def wire(self) -> Optional[str]:
        return None if self is Severity.UNSET else self.name.lower()


class ExecutionStatus(_WireEnum):
    """Status of a command or job execution (``fleets_execution_status``); sent as
    ``"IN_PROGRESS"``, ``"SUCCEEDED"``, ``"FAILED"``, ``"REJECTED"``."""

    IN_PROGRESS = 1
    SUCCEEDED = 2
    FAILED = 3
    REJECTED = 4

    @property
    def wire(self) -> Optional[str]:
        return self.name


class LogLevel(enum.IntEnum):
    """``fleets_log_level`` (``FLEETS_LOG_*``), for ``fleets_set_log_callback``. The Python API
    takes :mod:`logging` levels instead (:func:`fleets.enable_logging`)."""

    OFF = 0
    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4
