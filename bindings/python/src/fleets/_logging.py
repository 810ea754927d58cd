"""libfleets' log callback (``fleets_set_log_callback``) routed to the :mod:`logging` module.

Nothing is logged until :func:`enable_logging` is called: libfleets never writes to stderr
by itself. One ctypes trampoline is created at import and never freed, and the logger it
forwards to is read from a module variable on every message. So replacing or turning off
the callback while another thread is inside it cannot call freed memory: the C library may
still hand a message to the old callback for a moment, which then goes to the logger that is
current (or nowhere).
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Optional

from . import _ffi
from ._client import _check_global, _lib
from ._enums import LogLevel

#: The logger libfleets' messages go to by default.
LOGGER_NAME = "fleets"

#: libfleets level -> logging level.
_TO_LOGGING = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
}

_lock = threading.Lock()
#: Where messages go; None when logging is off.
_target: Optional[logging.Logger] = None
_atexit_registered = False


def _forward(level: int, message: Optional[bytes], user: Optional[int]) -> None:
    # Runs on the thread that made the call (ctypes takes the GIL), possibly on several
    # threads at once; an exception here must not escape into C.
    logger = _target
    if logger is None or message is None:
        return
    try:
        py_level = _TO_LOGGING.get(LogLevel(level), logging.DEBUG)
    except ValueError:
        py_level = logging.DEBUG
    try:
        if logger.isEnabledFor(py_level):
            logger.log(py_level, "%s", message.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - a broken handler must not break the call
        pass


_TRAMPOLINE = _ffi.fleets_log_fn(_forward)
#: A NULL ``fleets_log_fn``: turns logging off.
_NO_CALLBACK = _ffi.fleets_log_fn()


def _library_level(level: int) -> LogLevel:
    """The most verbose libfleets level whose messages pass a logging ``level``."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be a logging level (an int such as logging.INFO), not {type(level).__name__}")
    if level <= logging.DEBUG:
        return LogLevel.DEBUG
    if level <= logging.INFO:
        return LogLevel.INFO
    if level <= logging.WARNING:
        return LogLevel.WARN
    if level <= logging.ERROR:
        return LogLevel.ERROR
    return LogLevel.OFF  # CRITICAL and above: libfleets logs nothing that important


def enable_logging(level: int = logging.INFO, logger: Optional[logging.Logger] = None) -> None:
    """Sends libfleets' log messages to ``logger`` (default: the ``"fleets"`` logger).

    ``level`` is a :mod:`logging` level: libfleets produces the messages at that level and
    above, mapped as ``FLEETS_LOG_ERROR`` -> ``ERROR``, ``WARN`` -> ``WARNING``, ``INFO`` ->
    ``INFO`` (retries with their wait, resends after a stale connection, new connections),
    ``DEBUG`` -> ``DEBUG`` (one line per request: method, path, status, time). The logger's
    own level and handlers still apply (e.g. ``logging.basicConfig(level=logging.INFO)``).
    Messages are one printable line each and never contain the API secret.

    Nothing is logged by default. Process-wide (the C callback is global): a later call
    replaces the earlier one; :func:`disable_logging` turns it off.
    """
    global _target, _atexit_registered
    lib_level = _library_level(level)
    if logger is not None and not isinstance(logger, logging.Logger):
        raise TypeError(f"logger must be a logging.Logger, not {type(logger).__name__}")
    with _lock:
        if lib_level is LogLevel.OFF:
            _target = None
            _check_global(_lib.fleets_set_log_callback(LogLevel.OFF, _NO_CALLBACK, None))
            return
        _target = logger if logger is not None else logging.getLogger(LOGGER_NAME)
        _check_global(_lib.fleets_set_log_callback(lib_level, _TRAMPOLINE, None))
        if not _atexit_registered:
            # No callback into an interpreter that is shutting down.
            atexit.register(disable_logging)
            _atexit_registered = True


def disable_logging() -> None:
    """Turns libfleets' logging off (the default). Idempotent."""
    global _target
    with _lock:
        _target = None
        _check_global(_lib.fleets_set_log_callback(LogLevel.OFF, _NO_CALLBACK, None))
