"""ctypes declarations of the libfleets C API and the code that loads the library.

``FUNCTIONS`` is the one table of every ``fleets_*`` function's return and argument types; a
test parses ``include/fleets.h`` and checks the table against it, so it cannot drift.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import CFUNCTYPE, POINTER, Structure, c_bool, c_char, c_char_p, c_double, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._version import __version__

# Opaque handles and the integer typedefs of the header.
fleets_client_p = c_void_p
fleets_config_p = c_void_p
fleets_result = c_uint32
fleets_severity = c_uint32
fleets_execution_status = c_uint32
fleets_log_level = c_uint32
#: ``void (*)(fleets_log_level level, const char *message, void *user)``.
fleets_log_fn = CFUNCTYPE(None, fleets_log_level, c_char_p, c_void_p)


class fleets_client_stats_t(Structure):
    """``fleets_client_stats_t``: the counters of ``fleets_client_stats`` (field order and
    types are checked against the header by the tests)."""

    _fields_ = [
        ("calls", c_uint64),
        ("failures", c_uint64),
        ("requests", c_uint64),
        ("retries", c_uint64),
        ("stale_resends", c_uint64),
        ("connections", c_uint64),
        ("bytes_sent", c_uint64),
        ("bytes_received", c_uint64),
        ("last_latency_us", c_uint64),
    ]


# Caller-owned output buffers (`char *`): a ctypes char array is passed.
out_buf = POINTER(c_char)
size_p = POINTER(c_size_t)

_RESPONSE: List[Any] = [out_buf, c_size_t, size_p]

# Workflows (fleets_shadow_sync, fleets_job_agent_run_once, fleets_download): callback types,
# the structs of the job agent, and the flag and size constants of the header.
DOWNLOAD_SEND_CREDENTIALS = 1
DOWNLOAD_NO_RESTART = 2
JOB_DETAILS_CAP = 1025
fleets_delta_fn = CFUNCTYPE(c_bool, c_char_p, c_char_p, c_void_p)
fleets_progress_fn = CFUNCTYPE(c_bool, c_uint64, c_uint64, c_void_p)


class fleets_job_step(Structure):
    _fields_ = [
        ("client", c_void_p),
        ("thing_name", c_char_p),
        ("job_id", c_char_p),
        ("action", c_char_p),
        ("document_json", c_char_p),
        ("step", c_uint32),
        ("attempt", c_uint32),
        ("details", POINTER(c_char)),
        ("details_cap", c_size_t),
    ]


fleets_job_handler_fn = CFUNCTYPE(c_uint32, POINTER(fleets_job_step), c_void_p)
fleets_job_gate_fn = CFUNCTYPE(c_bool, POINTER(fleets_job_step), c_void_p)


class fleets_job_handler(Structure):
    _fields_ = [("action", c_char_p), ("run", fleets_job_handler_fn), ("user", c_void_p)]


class fleets_job_handlers(Structure):
    _fields_ = [
        ("handlers", POINTER(fleets_job_handler)),
        ("count", c_size_t),
        ("gate", fleets_job_gate_fn),
        ("gate_user", c_void_p),
        ("job_timeout_minutes", c_uint32),
        ("max_attempts", c_uint32),
    ]


class fleets_job_outcome(Structure):
    _fields_ = [("kind", c_uint32), ("step", c_uint32), ("resumed", c_bool), ("job_id", c_char * 129)]


# The durable outbox: an opaque handle and two structs, field for field as in the header.
fleets_outbox_p = c_void_p
#: Size of fleets_outbox_stats_t.last_error_message (FLEETS_OUTBOX_MESSAGE_BYTES).
OUTBOX_MESSAGE_BYTES = 256


class OutboxOptions(ctypes.Structure):
    """``fleets_outbox_options_t``."""

    _fields_ = [
        ("sync", c_uint32),
        ("batch_max_ms", c_uint32),
        ("batch_max_records", c_uint32),
        ("when_full", c_uint32),
        ("max_bytes", c_uint64),
        ("ttl_ms", c_uint64),
    ]


class OutboxStats(ctypes.Structure):
    """``fleets_outbox_stats_t``."""

    _fields_ = [
        ("queued_records", c_uint64),
        ("queued_bytes", c_uint64),
        ("oldest_age_ms", c_uint64),
        ("delivered_records", c_uint64),
        ("dropped_records", c_uint64),
        ("dead_lettered_records", c_uint64),
        ("corrupt_records", c_uint64),
        ("torn_bytes", c_uint64),
        ("disk_bytes", c_uint64),
        ("written_bytes", c_uint64),
        ("syncs", c_uint64),
        ("last_error", c_uint32),
        ("last_error_http_status", c_int32),
        ("last_error_message", c_char * OUTBOX_MESSAGE_BYTES),
    ]

#: name -> (restype, argtypes) for every function of include/fleets.h.
FUNCTIONS: Dict[str, Tuple[Any, List[Any]]] = {
    # ThingDatas calls
    "fleets_shadow_report": (fleets_result, [fleets_client_p, c_char_p, c_char_p, c_char_p, c_uint64] + _RESPONSE),
    "fleets_shadow_get": (fleets_result, [fleets_client_p, c_char_p] + _RESPONSE),
    "fleets_event_publish": (
        fleets_result,
        [fleets_client_p, c_char_p, c_char_p, fleets_severity, c_int64, c_char_p, c_char_p] + _RESPONSE,
    ),
    "fleets_command_respond": (
        fleets_result,
        [fleets_client_p, c_char_p, c_char_p, fleets_execution_status, c_char_p, c_int64] + _RESPONSE,
    ),
    "fleets_jobs_get_pending": (fleets_result, [fleets_client_p, c_char_p, c_char_p] + _RESPONSE),
    "fleets_jobs_start_next": (fleets_result, [fleets_client_p, c_char_p, c_char_p, c_uint32, c_char_p] + _RESPONSE),
    "fleets_jobs_describe": (fleets_result, [fleets_client_p, c_char_p, c_char_p, c_char_p] + _RESPONSE),
    "fleets_jobs_update": (
        fleets_result,
        [fleets_client_p, c_char_p, c_char_p, fleets_execution_status, c_char_p, c_uint64, c_char_p] + _RESPONSE,
    ),
    # Workflows
    "fleets_shadow_sync": (fleets_result, [fleets_client_p, c_char_p, fleets_delta_fn, c_void_p, POINTER(c_uint64)]),
    "fleets_shadow_sync_with_state_file": (
        fleets_result,
        [fleets_client_p, c_char_p, fleets_delta_fn, c_void_p, c_char_p, POINTER(c_uint64)],
    ),
    "fleets_job_agent_run_once": (
        fleets_result,
        [fleets_client_p, c_char_p, POINTER(fleets_job_handlers), c_char_p, POINTER(fleets_job_outcome)],
    ),
    "fleets_download": (
        fleets_result,
        [fleets_client_p, c_char_p, c_char_p, c_char_p, c_uint32, fleets_progress_fn, c_void_p],
    ),
    # Configuration and client
    "fleets_config_new": (fleets_result, [c_char_p, c_char_p, c_char_p, POINTER(fleets_config_p)]),
    "fleets_config_from_env": (fleets_result, [POINTER(fleets_config_p)]),
    "fleets_config_set_ca_file": (fleets_result, [fleets_config_p, c_char_p]),
    "fleets_config_set_timeouts": (fleets_result, [fleets_config_p, c_uint32, c_uint32]),
    "fleets_config_set_ca_pem": (fleets_result, [fleets_config_p, c_char_p]),
    "fleets_config_use_system_roots": (fleets_result, [fleets_config_p]),
    "fleets_config_set_client_cert": (fleets_result, [fleets_config_p, c_char_p, c_char_p]),
    "fleets_config_set_proxy": (fleets_result, [fleets_config_p, c_char_p]),
    "fleets_config_set_retry": (fleets_result, [fleets_config_p, c_uint32, c_uint32, c_uint32]),
    "fleets_config_set_max_response_bytes": (fleets_result, [fleets_config_p, c_size_t]),
    "fleets_config_free": (None, [fleets_config_p]),
    "fleets_client_new": (fleets_result, [fleets_config_p, POINTER(fleets_client_p)]),
    "fleets_client_free": (None, [fleets_client_p]),
    "fleets_client_stats": (fleets_result, [fleets_client_p, POINTER(fleets_client_stats_t)]),
    # JSON helpers (declared for completeness; Python code uses the json module)
    "fleets_json_get": (fleets_result, [c_char_p, c_char_p] + _RESPONSE),
    "fleets_json_get_string": (fleets_result, [c_char_p, c_char_p] + _RESPONSE),
    "fleets_json_get_f64": (fleets_result, [c_char_p, c_char_p, POINTER(c_double)]),
    "fleets_json_get_i64": (fleets_result, [c_char_p, c_char_p, POINTER(c_int64)]),
    "fleets_json_get_bool": (fleets_result, [c_char_p, c_char_p, POINTER(c_bool)]),
    # Library-level
    "fleets_version": (c_char_p, []),
    "fleets_result_name": (c_char_p, [fleets_result]),
    "fleets_result_request_sent": (c_bool, [fleets_result]),
    "fleets_last_error_message": (c_size_t, [out_buf, c_size_t]),
    "fleets_last_http_status": (c_int32, []),
    "fleets_last_retry_after_ms": (c_int64, []),
    "fleets_last_response": (fleets_result, _RESPONSE),
    "fleets_set_log_callback": (fleets_result, [fleets_log_level, fleets_log_fn, c_void_p]),
    # Durable outbox
    "fleets_outbox_open": (fleets_result, [c_char_p, POINTER(OutboxOptions), POINTER(fleets_outbox_p)]),
    "fleets_outbox_close": (fleets_result, [fleets_outbox_p]),
    "fleets_outbox_enqueue_report": (fleets_result, [fleets_outbox_p, c_char_p, c_char_p, c_char_p, c_uint64]),
    "fleets_outbox_enqueue_event": (
        fleets_result,
        [fleets_outbox_p, c_char_p, c_char_p, fleets_severity, c_int64, c_char_p, c_char_p],
    ),
    "fleets_outbox_enqueue_command_response": (
        fleets_result,
        [fleets_outbox_p, c_char_p, c_char_p, fleets_execution_status, c_char_p, c_int64],
    ),
    "fleets_outbox_enqueue_job_update": (
        fleets_result,
        [fleets_outbox_p, c_char_p, c_char_p, fleets_execution_status, c_char_p, c_uint64, c_char_p],
    ),
    "fleets_outbox_flush": (fleets_result, [fleets_outbox_p, fleets_client_p, c_uint32, POINTER(c_uint64)]),
    "fleets_outbox_stats": (fleets_result, [fleets_outbox_p, POINTER(OutboxStats)]),
}

#: Environment variable naming the shared library to load instead of the bundled one.
LIBRARY_ENV = "FLEETS_LIBRARY"


class LibraryError(ImportError):
    """The libfleets shared library is missing or does not match this package."""


def library_file_names() -> Sequence[str]:
    """File names the shared library has on this platform."""
    if sys.platform == "win32":
        return ("fleets.dll",)
    if sys.platform == "darwin":
        return ("libfleets.dylib",)
    return ("libfleets.so",)


def bundled_candidates() -> List[Path]:
    """Where the library is looked for inside the installed package."""
    here = Path(__file__).resolve().parent
    return [here / name for name in library_file_names()]


_FIX = (
    "To fix it, reinstall the package so that it builds and bundles the library "
    "(`pip install --force-reinstall ./bindings/python` from a libfleets checkout, which needs "
    "cargo), or set {env} to the path of a libfleets shared library of version {version}."
)


def _fix() -> str:
    return _FIX.format(env=LIBRARY_ENV, version=_compatible_range())


def _compatible_range() -> str:
    major, minor = _major_minor(__version__)
    return f"{major}.{minor}.x" if major == 0 else f">= {major}.{minor}, < {major + 1}"


def _major_minor(version: str) -> Tuple[int, int]:
    parts = version.split("+")[0].split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {version!r}") from None


def version_compatible(library_version: str, package_version: str = __version__) -> bool:
    """True when a library of ``library_version`` implements the C API this package expects.

    Semantic versioning: the major versions must be equal; for 0.x the minor versions must be
    equal too (a 0.x minor release may break the ABI); from 1.0 on the library's minor
    version must be at least the package's (newer libraries only add functions).
    """
    try:
        lib_major, lib_minor = _major_minor(library_version)
        pkg_major, pkg_minor = _major_minor(package_version)
    except ValueError:
        return False
    if lib_major != pkg_major:
        return False
    if pkg_major == 0:
        return lib_minor == pkg_minor
    return lib_minor >= pkg_minor


def _declare(lib: ctypes.CDLL, path: str) -> None:
    missing = [name for name in FUNCTIONS if not hasattr(lib, name)]
    if missing:
        raise LibraryError(
            f"{path} is not a compatible libfleets library: it lacks "
            f"{', '.join(missing[:5])}{' and more' if len(missing) > 5 else ''}. " + _fix(),
            path=path,
        )
    for name, (restype, argtypes) in FUNCTIONS.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def load(path: Optional[str] = None) -> Tuple[ctypes.CDLL, str]:
    """Loads, declares and version-checks libfleets. Returns the library and its path.

    ``path`` (or ``$FLEETS_LIBRARY``) overrides the library bundled in the package. Raises
    :class:`LibraryError` (an :class:`ImportError`) saying what was looked for and how to fix it.
    """
    override = path if path is not None else os.environ.get(LIBRARY_ENV) or None
    if override is not None:
        candidates = [Path(override)]
        origin = f"{LIBRARY_ENV}={override}" if path is None else repr(override)
        if not candidates[0].exists():
            raise LibraryError(
                f"libfleets was not found: {origin} names a file that does not exist. "
                f"Point {LIBRARY_ENV} at an existing libfleets shared library "
                f"(e.g. target/release/{library_file_names()[0]}), or unset it to use the "
                "library bundled in the package.",
                path=str(candidates[0]),
            )
    else:
        candidates = bundled_candidates()
        existing = [c for c in candidates if c.exists()]
        if not existing:
            looked = ", ".join(str(c) for c in candidates)
            raise LibraryError(
                f"libfleets was not found: looked for the bundled library at {looked} "
                f"and {LIBRARY_ENV} is not set. " + _fix(),
                path=looked,
            )
        candidates = existing
    where = str(candidates[0])
    try:
        lib = ctypes.CDLL(where)
    except OSError as e:
        raise LibraryError(f"libfleets at {where} could not be loaded ({e}). " + _fix(), path=where) from e
    _declare(lib, where)
    lib_version = lib.fleets_version().decode("utf-8", "replace")
    if not version_compatible(lib_version):
        raise LibraryError(
            f"libfleets at {where} is version {lib_version}, but this fleets package "
            f"({__version__}) needs a library of version {_compatible_range()}. " + _fix(),
            path=where,
        )
    return lib, where
