#!/usr/bin/env bash
# Tests of the Python binding, from a clean checkout:
#   1. a venv (target/python-venv, reusing the system's pytest when it has one),
#   2. `pip install ./bindings/python` into it: cargo builds libfleets in the repo's target/
#      directory (incremental) and the wheel bundles it,
#   3. `cargo build -p fleets-emulator`,
#   4. pytest against the installed package (not the source tree) and the emulator.
# Extra arguments go to pytest. Environment: PYTHON (default python3), FLEETS_PY_VENV (venv
# path), FLEETS_CARGO_PROFILE (release by default; `debug` skips the LTO build), CARGO_TARGET_DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${FLEETS_PY_VENV:-$target/python-venv}"
python="${PYTHON:-python3}"
cargo="${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv --system-site-packages "$venv"
fi
vpy="$venv/bin/python"
if ! "$vpy" -c "import pytest" 2>/dev/null; then
    "$vpy" -m pip install -q "pytest>=7"
fi

# No build isolation needed: the backend is in-tree and requires nothing (tomli on < 3.11).
"$vpy" -m pip install -q --no-deps --force-reinstall "$here"
(cd "$root" && "$cargo" build --locked -q -p fleets-emulator)

export FLEETS_EMULATOR="$target/debug/fleets-emulator"
unset FLEETS_LIBRARY
cd "$here/tests"
exec "$vpy" -m pytest -q -p no:cacheprovider "$@" .
