"""In-tree PEP 517 build backend of the ``fleets`` Python package.

``build_wheel`` runs ``cargo build --lib -p fleets`` in the libfleets checkout that contains
this directory (``bindings/python/../..``), reusing that checkout's target directory (or
``$CARGO_TARGET_DIR``), and writes a platform wheel with the shared library inside the
``fleets`` package. No download is needed (tomli on Python < 3.11 only).

Settings (environment variables, or ``pip install --config-settings KEY=VALUE``):

- ``FLEETS_CARGO_PROFILE`` / ``profile``: ``release`` (default) or ``debug``/``dev`` or any
  custom cargo profile.
- ``FLEETS_PREBUILT_LIBRARY`` / ``library``: bundle this already built library; no cargo run.
- ``FLEETS_SOURCE_DIR`` / ``source-dir``: the libfleets checkout, when the package directory
  was copied out of it.
- ``CARGO``: the cargo executable (default: ``cargo`` on PATH, then ``~/.cargo/bin/cargo``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent.parent  # bindings/python
PKG = HERE / "src" / "fleets"

__all__ = [
    "build_wheel",
    "build_editable",
    "get_requires_for_build_wheel",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
]


class BuildError(RuntimeError):
    pass


def _log(msg: str) -> None:
    print(f"fleets-build: {msg}", file=sys.stderr, flush=True)


def _setting(config: Optional[dict], key: str, env: str) -> Optional[str]:
    if config and config.get(key):
        return str(config[key])
    return os.environ.get(env) or None


# ---------------------------------------------------------------- metadata


def _load_toml(path: Path) -> dict:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[import-not-found,no-redef]
    with open(path, "rb") as f:
        return tomllib.load(f)


def _version() -> str:
    m = re.search(r'^__version__\s*=\s*"([^"]+)"', (PKG / "_version.py").read_text(), re.M)
    if not m:
        raise BuildError(f"no __version__ in {PKG / '_version.py'}")
    return m.group(1)


def _crate_version(root: Path) -> str:
    text = (root / "Cargo.toml").read_text()
    m = re.search(r'^\[package\]\s*$(.*?)(?=^\[|\Z)', text, re.M | re.S)
    v = re.search(r'^version\s*=\s*"([^"]+)"', m.group(1) if m else "", re.M)
    if not v:
        raise BuildError(f"no [package] version in {root / 'Cargo.toml'}")
    return v.group(1)


def _metadata() -> str:
    project = _load_toml(HERE / "pyproject.toml")["project"]
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {_version()}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
        f"License: {project['license']}",
    ]
    if project.get("keywords"):
        lines.append("Keywords: " + ",".join(project["keywords"]))
    for a in project.get("authors", []):
        lines.append(f"Author: {a['name']}")
    for c in project.get("classifiers", []):
        lines.append(f"Classifier: {c}")
    for name, url in project.get("urls", {}).items():
        lines.append(f"Project-URL: {name}, {url}")
    for extra, reqs in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for r in reqs:
            lines.append(f'Requires-Dist: {r}; extra == "{extra}"')
    lines.append("Description-Content-Type: text/markdown")
    readme = (HERE / project.get("readme", "README.md")).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + readme


def _tag() -> str:
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{plat}"


def _dist_info_files(tag: str) -> Dict[str, bytes]:
    name = f"fleets-{_version()}.dist-info"
    wheel = f"Wheel-Version: 1.0\nGenerator: fleets_build\nRoot-Is-Purelib: false\nTag: {tag}\n"
    return {f"{name}/METADATA": _metadata().encode(), f"{name}/WHEEL": wheel.encode()}


def _write_metadata_dir(metadata_directory: str) -> str:
    files = _dist_info_files(_tag())
    for rel, data in files.items():
        p = Path(metadata_directory) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return next(iter(files)).split("/")[0]


# ---------------------------------------------------------------- cargo


def _source_dir(config: Optional[dict]) -> Path:
    given = _setting(config, "source-dir", "FLEETS_SOURCE_DIR")
    root = Path(given).resolve() if given else HERE.parent.parent
    cargo_toml = root / "Cargo.toml"
    if not cargo_toml.is_file() or not re.search(r'^name\s*=\s*"fleets"', cargo_toml.read_text(), re.M):
        raise BuildError(
            f"cannot find the libfleets Rust sources at {root} (expected the `fleets` crate's "
            "Cargo.toml there). Install from a libfleets checkout (`pip install ./bindings/python`, "
            "pip >= 21.3 builds in place), set FLEETS_SOURCE_DIR to the checkout, or set "
            "FLEETS_PREBUILT_LIBRARY to an already built libfleets shared library."
        )
    return root


def _cargo() -> str:
    exe = os.environ.get("CARGO") or shutil.which("cargo")
    if not exe:
        home = Path.home() / ".cargo" / "bin" / ("cargo.exe" if os.name == "nt" else "cargo")
        if home.exists():
            exe = str(home)
    if not exe:
        raise BuildError(
            "cargo was not found (neither on PATH nor in ~/.cargo/bin). Install Rust "
            "(https://rustup.rs), or set CARGO to cargo's path, or set FLEETS_PREBUILT_LIBRARY to an "
            "already built libfleets shared library."
        )
    return exe


def _cdylib_suffix() -> Tuple[str, ...]:
    return (".dll",) if sys.platform == "win32" else (".dylib",) if sys.platform == "darwin" else (".so",)


def _build_library(config: Optional[dict]) -> Path:
    prebuilt = _setting(config, "library", "FLEETS_PREBUILT_LIBRARY")
    if prebuilt:
        p = Path(prebuilt).resolve()
        if not p.is_file():
            raise BuildError(f"FLEETS_PREBUILT_LIBRARY={prebuilt} does not exist")
        _log(f"bundling the prebuilt library {p}")
        return p
    root = _source_dir(config)
    crate = _crate_version(root)
    if crate != _version():
        raise BuildError(
            f"version mismatch: the Rust crate is {crate} but bindings/python/src/fleets/_version.py "
            f"says {_version()}; update _version.py"
        )
    profile = _setting(config, "profile", "FLEETS_CARGO_PROFILE") or "release"
    cmd = [_cargo(), "build", "--locked", "--lib", "-p", "fleets", "--message-format=json-render-diagnostics"]
    cmd += ["--release"] if profile == "release" else [] if profile in ("debug", "dev") else ["--profile", profile]
    _log(f"running {' '.join(cmd)} in {root}")
    proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, stderr=None, text=True)
    if proc.returncode != 0:
        raise BuildError(f"cargo build failed (exit status {proc.returncode}); see the messages above")
    found: Optional[Path] = None
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "fleets" and "cdylib" in msg["target"]["kind"]:
            for f in msg["filenames"]:
                if f.endswith(_cdylib_suffix()):
                    found = Path(f)
    if found is None or not found.is_file():
        raise BuildError("cargo did not report the libfleets shared library (cdylib)")
    _log(f"built {found}")
    return found


def _bundled_name() -> str:
    return "fleets.dll" if sys.platform == "win32" else "libfleets.dylib" if sys.platform == "darwin" else "libfleets.so"


# ---------------------------------------------------------------- wheels


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: Dict[str, bytes], tag: str) -> str:
    name = f"fleets-{_version()}-{tag}.whl"
    dist_info = f"fleets-{_version()}.dist-info"
    files = dict(files)
    files.update(_dist_info_files(tag))
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = Path(wheel_directory) / name
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for p, d in files.items():
            info = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if p.endswith(_cdylib_suffix()) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, d)
    _log(f"wrote {out}")
    return name


def _python_files() -> Dict[str, bytes]:
    files = {}
    for p in sorted(PKG.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(_cdylib_suffix() + (".pyc",)):
            files["fleets/" + p.relative_to(PKG).as_posix()] = p.read_bytes()
    return files


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return [] if sys.version_info >= (3, 11) else ["tomli>=1.1"]


get_requires_for_build_editable = get_requires_for_build_wheel


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    return _write_metadata_dir(metadata_directory)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(
    wheel_directory: str, config_settings: Optional[dict] = None, metadata_directory: Optional[str] = None
) -> str:
    lib = _build_library(config_settings)
    files = _python_files()
    files["fleets/" + _bundled_name()] = lib.read_bytes()
    return _write_wheel(wheel_directory, files, _tag())


def build_editable(
    wheel_directory: str, config_settings: Optional[dict] = None, metadata_directory: Optional[str] = None
) -> str:
    """PEP 660: a wheel holding a .pth to ``src/``; the library is copied next to the sources
    (``src/fleets/libfleets.so``, ignored by git). Re-run the install after changing Rust code,
    or set FLEETS_LIBRARY."""
    lib = _build_library(config_settings)
    dest = PKG / _bundled_name()
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    shutil.copyfile(lib, tmp)
    os.replace(tmp, dest)
    files = {"_fleets_editable.pth": (str(HERE / "src") + "\n").encode()}
    return _write_wheel(wheel_directory, files, _tag())
