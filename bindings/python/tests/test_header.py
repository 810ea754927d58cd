"""The ctypes table, enums and result codes against include/fleets.h (parsed, not copied)."""

from __future__ import annotations

import ctypes
import re
from typing import Dict, List, Tuple

import pytest

import fleets
from fleets import _ffi, _workflows
from fleets._enums import LogLevel
from fleets._errors import FleetsError, error_class

from conftest import HEADER


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_defines() -> Dict[str, str]:
    return dict(re.findall(r"^#define\s+(FLEETS_\w+)\s+(\S+)", HEADER.read_text(), re.M))


def header_functions() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (return type, [parameter types]) for every prototype in the header."""
    text = _strip_comments(HEADER.read_text())
    out: Dict[str, Tuple[str, List[str]]] = {}
    for m in re.finditer(r"([A-Za-z_][\w \t\*]*?)\b(fleets_\w+)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = " ".join(m.group(1).split()), m.group(2), m.group(3)
        types: List[str] = []
        for p in params.split(","):
            p = " ".join(p.split())
            if not p or p == "void":
                continue
            # drop the parameter name: the last identifier
            pm = re.match(r"(.*?)(\w+)$", p)
            assert pm, p
            types.append(pm.group(1).replace(" *", "*").strip())
        out[name] = (ret.replace(" *", "*"), types)
    return out


# C type spelling in the header -> the ctypes type the table must use for it.
C_TO_CTYPES = {
    "fleets_result": _ffi.fleets_result,
    "fleets_severity": _ffi.fleets_severity,
    "fleets_execution_status": _ffi.fleets_execution_status,
    "fleets_log_level": _ffi.fleets_log_level,
    "fleets_log_fn": _ffi.fleets_log_fn,
    "fleets_client_t*": ctypes.c_void_p,
    "const fleets_client_t*": ctypes.c_void_p,
    "fleets_client_stats_t*": ctypes.POINTER(_ffi.fleets_client_stats_t),
    "void*": ctypes.c_void_p,
    "bool": ctypes.c_bool,
    "const fleets_config_t*": ctypes.c_void_p,
    "fleets_config_t*": ctypes.c_void_p,
    "fleets_config_t**": ctypes.POINTER(ctypes.c_void_p),
    "fleets_client_t**": ctypes.POINTER(ctypes.c_void_p),
    "const char*": ctypes.c_char_p,
    "char*": ctypes.POINTER(ctypes.c_char),
    "size_t": ctypes.c_size_t,
    "size_t*": ctypes.POINTER(ctypes.c_size_t),
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "double*": ctypes.POINTER(ctypes.c_double),
    "int64_t*": ctypes.POINTER(ctypes.c_int64),
    "bool*": ctypes.POINTER(ctypes.c_bool),
    "void": None,
    # The durable outbox
    "fleets_outbox_t*": ctypes.c_void_p,
    "const fleets_outbox_t*": ctypes.c_void_p,
    "fleets_outbox_t**": ctypes.POINTER(ctypes.c_void_p),
    "const fleets_outbox_options_t*": ctypes.POINTER(_ffi.OutboxOptions),
    "fleets_outbox_stats_t*": ctypes.POINTER(_ffi.OutboxStats),
    "uint64_t*": ctypes.POINTER(ctypes.c_uint64),
    # the workflows
    "const fleets_client_t*": ctypes.c_void_p,
    "void*": ctypes.c_void_p,
    "fleets_delta_fn": _ffi.fleets_delta_fn,
    "fleets_progress_fn": _ffi.fleets_progress_fn,
    "const fleets_job_handlers_t*": ctypes.POINTER(_ffi.fleets_job_handlers),
    "fleets_job_outcome_t*": ctypes.POINTER(_ffi.fleets_job_outcome),
}


def test_header_parses() -> None:
    funcs = header_functions()
    assert len(funcs) >= 25, sorted(funcs)
    assert funcs["fleets_shadow_report"][1][-1] == "size_t*"


def test_every_header_function_is_declared_and_nothing_else() -> None:
    funcs = header_functions()
    assert sorted(_ffi.FUNCTIONS) == sorted(funcs)


@pytest.mark.parametrize("name", sorted(header_functions()))
def test_declaration_matches_header(name: str) -> None:
    c_ret, c_args = header_functions()[name]
    restype, argtypes = _ffi.FUNCTIONS[name]
    assert c_ret in C_TO_CTYPES, f"unmapped C type {c_ret!r}: extend C_TO_CTYPES"
    assert restype is C_TO_CTYPES[c_ret], f"{name} returns {c_ret}"
    assert len(argtypes) == len(c_args), f"{name} takes {len(c_args)} arguments: {c_args}"
    for i, (py, c) in enumerate(zip(argtypes, c_args)):
        assert c in C_TO_CTYPES, f"unmapped C type {c!r}: extend C_TO_CTYPES"
        assert py is C_TO_CTYPES[c], f"{name} argument {i} is {c}, declared {py}"


def test_result_codes_equal_header() -> None:
    defs = header_defines()
    header = {k[len("FLEETS_"):]: int(v) for k, v in defs.items() if k == "FLEETS_OK" or k.startswith("FLEETS_ERR_")}
    assert {m.name: int(m) for m in fleets.ResultCode} == header


def test_severity_equals_header() -> None:
    defs = header_defines()
    header = {k[len("FLEETS_SEVERITY_"):]: int(v) for k, v in defs.items() if k.startswith("FLEETS_SEVERITY_")}
    assert {m.name: int(m) for m in fleets.Severity} == header


def test_execution_status_equals_header() -> None:
    defs = header_defines()
    header = {k[len("FLEETS_EXECUTION_"):]: int(v) for k, v in defs.items() if k.startswith("FLEETS_EXECUTION_")}
    assert {m.name: int(m) for m in fleets.ExecutionStatus} == header


def test_log_levels_equal_header() -> None:
    defs = header_defines()
    header = {k[len("FLEETS_LOG_"):]: int(v) for k, v in defs.items() if k.startswith("FLEETS_LOG_")}
    assert {m.name: int(m) for m in LogLevel} == header


def test_stats_struct_equals_header() -> None:
    text = _strip_comments(HEADER.read_text())
    m = re.search(r"typedef struct \{([^}]*)\} fleets_client_stats_t;", text)
    assert m, "fleets_client_stats_t not found in the header"
    fields = [tuple(f.split()) for f in m.group(1).split(";") if f.strip()]
    assert all(t == "uint64_t" for t, _ in fields), fields
    assert [(name, ctypes.c_uint64) for _, name in fields] == _ffi.fleets_client_stats_t._fields_


def test_max_response_bytes_limit_agrees_with_library() -> None:
    """The binding refuses what fleets_config_set_max_response_bytes refuses, no more."""
    lib = fleets._client._lib
    cfg = ctypes.c_void_p()
    assert lib.fleets_config_new(b"https://127.0.0.1:1", b"k", b"s", ctypes.byref(cfg)) == fleets.ResultCode.OK
    try:
        limit = fleets.MAX_RESPONSE_BYTES_LIMIT
        assert lib.fleets_config_set_max_response_bytes(cfg, limit) == fleets.ResultCode.OK
        assert lib.fleets_config_set_max_response_bytes(cfg, limit + 1) == fleets.ResultCode.ERR_INVALID_CONFIG
    finally:
        lib.fleets_config_free(cfg)
    # The header names the limit; once it defines it (cbindgen), the values must agree.
    defined = header_defines().get("FLEETS_MAX_RESPONSE_BYTES_LIMIT")
    if defined is not None:
        assert int(defined.rstrip("uUlL")) == limit


def test_request_sent_equals_library() -> None:
    lib = fleets._client._lib
    for m in fleets.ResultCode:
        e = FleetsError("x", code=m)
        assert e.request_sent is bool(lib.fleets_result_request_sent(m)), m
    # the groups: refused before sending, or no connection, is "not sent"
    assert not FleetsError("x", code=fleets.ResultCode.ERR_INVALID_ARGUMENT).request_sent
    assert not FleetsError("x", code=fleets.ResultCode.ERR_CONNECT).request_sent
    assert not FleetsError("x", code=fleets.ResultCode.ERR_TLS).request_sent
    assert FleetsError("x", code=fleets.ResultCode.ERR_TIMEOUT).request_sent
    assert FleetsError("x", code=fleets.ResultCode.ERR_IO).request_sent
    assert FleetsError("x", code=fleets.ResultCode.ERR_SERVER).request_sent
    assert FleetsError("x", code=12345).request_sent  # unknown: may have been sent


def test_every_header_constant_is_covered() -> None:
    known = {"FLEETS_VERSION", "FLEETS_VERSION_MAJOR", "FLEETS_VERSION_MINOR", "FLEETS_VERSION_PATCH", "FLEETS_H"}
    known.add("FLEETS_MAX_RESPONSE_BYTES_LIMIT")  # test_max_response_bytes_limit_agrees_with_library
    covered = {m.c_name for m in fleets.ResultCode}
    covered |= {f"FLEETS_SEVERITY_{m.name}" for m in fleets.Severity}
    covered |= {f"FLEETS_EXECUTION_{m.name}" for m in fleets.ExecutionStatus}
    covered |= {f"FLEETS_LOG_{m.name}" for m in LogLevel}
    covered |= set(fleets._outbox.C_CONSTANTS)  # values checked in test_outbox.py
    covered |= {f"FLEETS_JOB_STEP_{m.name}" for m in fleets.StepResult}
    covered |= {f"FLEETS_JOB_OUTCOME_{m.name}" for m in fleets.JobOutcomeKind}
    covered |= set(_workflows.C_CONSTANTS)
    assert set(header_defines()) - known - covered == set()


def test_workflow_constants_equal_header() -> None:
    defs = {k: int(v) for k, v in header_defines().items() if v.isdigit()}
    for m in fleets.StepResult:
        assert defs[f"FLEETS_JOB_STEP_{m.name}"] == m
    for m in fleets.JobOutcomeKind:
        assert defs[f"FLEETS_JOB_OUTCOME_{m.name}"] == m
    for name, value in _workflows.C_CONSTANTS.items():
        assert defs[name] == value, name


def test_job_structs_match_the_header_layout() -> None:
    """Field order and types of the ctypes structs, against the header's struct bodies."""
    text = _strip_comments(HEADER.read_text())
    for name, struct in (
        ("fleets_job_step", _ffi.fleets_job_step),
        ("fleets_job_handler", _ffi.fleets_job_handler),
        ("fleets_job_handlers", _ffi.fleets_job_handlers),
        ("fleets_job_outcome", _ffi.fleets_job_outcome),
    ):
        m = re.search(r"typedef struct \{([^}]*)\} " + name + r";", text)
        assert m, name
        fields = [re.sub(r"\[\d+\]", "", f.split()[-1]).lstrip("*") for f in m.group(1).split(";") if f.strip()]
        assert [f[0] for f in struct._fields_] == fields, name


def test_versions_agree() -> None:
    defs = header_defines()
    assert defs["FLEETS_VERSION"].strip('"') == fleets.__version__ == fleets.library_version()


def test_result_names_match_library() -> None:
    lib = fleets._client._lib
    for m in fleets.ResultCode:
        assert lib.fleets_result_name(m).decode() == m.c_name
    assert lib.fleets_result_name(12345).decode() == "FLEETS_ERR_UNKNOWN"


@pytest.mark.parametrize("code", [m for m in fleets.ResultCode if m not in (fleets.ResultCode.OK, fleets.ResultCode.ERR_BUFFER_TOO_SMALL)])
def test_every_error_code_has_a_specific_exception(code: fleets.ResultCode) -> None:
    cls = error_class(code)
    assert issubclass(cls, FleetsError) and cls is not FleetsError
    e = cls("x", code=code)
    assert e.code == code and e.code_name == code.c_name


def test_exception_hierarchy() -> None:
    assert issubclass(fleets.FleetsTimeout, TimeoutError)
    assert issubclass(fleets.FleetsConnectionError, ConnectionError)
    assert issubclass(fleets.TLSError, ConnectionError)
    assert issubclass(fleets.InvalidArgument, ValueError)
    assert issubclass(fleets.ConfigError, ValueError)
    assert issubclass(fleets.ClientClosedError, RuntimeError)
    for cls in (fleets.AuthError, fleets.NotFoundError, fleets.ConflictError, fleets.RateLimitedError, fleets.ServerError):
        assert issubclass(cls, fleets.ApiError) and issubclass(cls, fleets.FleetsError)
    assert issubclass(fleets.LibraryError, ImportError)


def test_exceptions_pickle() -> None:
    import pickle

    e = fleets.NotFoundError("no thing", code=fleets.ResultCode.ERR_NOT_FOUND, http_status=404, body='{"code":"NotFound"}')
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is fleets.NotFoundError
    assert (back.code, back.http_status, back.body, back.message) == (e.code, 404, e.body, "no thing")
    assert back.body_json == {"code": "NotFound"}


def test_enum_coercion() -> None:
    S, E = fleets.Severity, fleets.ExecutionStatus
    assert S.coerce("warn") is S.WARN and S.coerce("ERROR") is S.ERROR and S.coerce(S.INFO) is S.INFO
    assert E.coerce("SUCCEEDED") is E.SUCCEEDED and E.coerce("in_progress") is E.IN_PROGRESS
    assert E.coerce(3) is E.FAILED
    assert S.WARN.wire == "warn" and E.IN_PROGRESS.wire == "IN_PROGRESS" and S.UNSET.wire is None
    for bad in ("warning", "", True, 2.0, None, 99):
        with pytest.raises(fleets.InvalidArgument, match="not a"):
            S.coerce(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        E.coerce("DONE")
