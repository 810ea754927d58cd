"""Loading the library: FLEETS_LIBRARY, the bundled copy, and the import-time failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest

import fleets
from fleets import _ffi


def run_import(env_extra: Dict[str, Optional[str]], pythonpath: Optional[Path] = None, code: str = "import fleets; print(fleets.LIBRARY_PATH)") -> "subprocess.CompletedProcess[str]":
    env = dict(os.environ)
    for k, v in env_extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_bundled_library_is_used_without_environment() -> None:
    if os.environ.get(_ffi.LIBRARY_ENV):
        pytest.skip("FLEETS_LIBRARY is set for this test run")
    r = run_import({_ffi.LIBRARY_ENV: None})
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).parent == Path(fleets.__file__).parent


def test_fleets_library_overrides(tmp_path: Path) -> None:
    copy = tmp_path / "libfleets-copy.so"
    shutil.copyfile(fleets.LIBRARY_PATH, copy)
    r = run_import({_ffi.LIBRARY_ENV: str(copy)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy)


def test_missing_override_says_what_and_how(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "libfleets.so"
    r = run_import({_ffi.LIBRARY_ENV: str(missing)})
    assert r.returncode != 0
    assert "LibraryError" in r.stderr and "ImportError" not in r.stdout
    assert str(missing) in r.stderr
    assert "does not exist" in r.stderr and "FLEETS_LIBRARY" in r.stderr


def test_missing_bundled_library_says_what_and_how(tmp_path: Path) -> None:
    pkg = tmp_path / "fleets"
    shutil.copytree(Path(fleets.__file__).parent, pkg, ignore=shutil.ignore_patterns("*.so", "*.dylib", "*.dll", "__pycache__"))
    r = run_import({_ffi.LIBRARY_ENV: None}, pythonpath=tmp_path)
    assert r.returncode != 0
    assert str(pkg / _ffi.library_file_names()[0]) in r.stderr
    assert "pip install" in r.stderr and "FLEETS_LIBRARY" in r.stderr


def test_import_error_is_catchable_as_import_error(tmp_path: Path) -> None:
    code = (
        "try:\n    import fleets\nexcept ImportError as e:\n"
        "    print(type(e).__name__, e.path)\nelse:\n    print('imported')"
    )
    r = run_import({_ffi.LIBRARY_ENV: str(tmp_path / "x.so")}, code=code)
    assert r.stdout.strip() == f"LibraryError {tmp_path / 'x.so'}", r.stderr


def test_not_a_shared_library(tmp_path: Path) -> None:
    junk = tmp_path / "libjunk.so"
    junk.write_bytes(b"this is not a shared library")
    r = run_import({_ffi.LIBRARY_ENV: str(junk)})
    assert r.returncode != 0
    assert str(junk) in r.stderr and "could not be loaded" in r.stderr


def _cc() -> Optional[str]:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def _stub_library(tmp_path: Path, version: str, skip: str = "") -> Path:
    cc = _cc()
    if not cc or sys.platform == "win32":
        pytest.skip("no C compiler to build a stub library")
    src = tmp_path / "stub.c"
    lines = [f'const char *fleets_version(void) {{ return "{version}"; }}']
    lines += [f"void {name}(void) {{}}" for name in _ffi.FUNCTIONS if name not in ("fleets_version", skip)]
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "libfleets.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out


def test_incompatible_version_is_refused(tmp_path: Path) -> None:
    stub = _stub_library(tmp_path, "9.9.9")
    r = run_import({_ffi.LIBRARY_ENV: str(stub)})
    assert r.returncode != 0
    assert str(stub) in r.stderr and "version 9.9.9" in r.stderr
    assert fleets.__version__ in r.stderr and "0.1.x" in r.stderr


def test_library_lacking_a_function_is_refused(tmp_path: Path) -> None:
    stub = _stub_library(tmp_path, fleets.__version__, skip="fleets_jobs_update")
    r = run_import({_ffi.LIBRARY_ENV: str(stub)})
    assert r.returncode != 0
    assert "not a compatible libfleets library" in r.stderr and "fleets_jobs_update" in r.stderr


def test_system_library_without_fleets_symbols_is_refused() -> None:
    import ctypes.util

    name = ctypes.util.find_library("m")
    candidates = [Path(p) / name for p in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib", "/lib")] if name else []
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        pytest.skip("libm not found at a known path")
    r = run_import({_ffi.LIBRARY_ENV: str(path)})
    assert r.returncode != 0
    assert "not a compatible libfleets library" in r.stderr and "fleets_shadow_report" in r.stderr


@pytest.mark.parametrize(
    "lib,pkg,ok",
    [
        ("0.1.0", "0.1.0", True),
        ("0.1.7", "0.1.0", True),
        ("0.1.0", "0.1.3", True),
        ("0.2.0", "0.1.0", False),
        ("1.0.0", "0.1.0", False),
        ("1.3.0", "1.2.0", True),
        ("1.1.0", "1.2.0", False),
        ("2.0.0", "1.2.0", False),
        ("garbage", "0.1.0", False),
        ("0.1.0-rc.1", "0.1.0", True),
    ],
)
def test_version_compatibility_rule(lib: str, pkg: str, ok: bool) -> None:
    assert _ffi.version_compatible(lib, pkg) is ok
