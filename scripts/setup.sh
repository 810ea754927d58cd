#!/usr/bin/env bash
# Prerequisites of `make demo` and `make test`: checks every tool up front, one line per tool,
# and installs what is missing on Debian/Ubuntu.
#
#   scripts/setup.sh check [-q] [GOAL...]   check; exit 1 with the exact fix when something is
#                                           missing (-q: print only what is missing)
#   scripts/setup.sh install [GOAL...]      install what is missing, then check again
#                                           (`make setup`; idempotent, seconds when complete)
#   scripts/setup.sh go-bin                 print the bin directory of a Go >= 1.24, or exit 1
#
# GOAL: demo, test (= lint test-rust test-soak test-c test-python test-go test-readme) or one
# of those make targets, or bench (make bench / bench-smoke; bench/run.sh installs its own
# libcurl, wrk and valgrind); default: demo test bench.
#
# What install does: Debian packages through apt-get (sudo when not root); rustup components
# and targets; Go ${GO_VERSION} when no Go >= 1.24 is installed (Debian 12 ships 1.19): the
# golang.org/toolchain module zip that GOTOOLCHAIN would download, fetched from the Go module
# proxy ($GOPROXY), checked against the SHA-256 pinned below and unpacked into
# ${XDG_CACHE_HOME:-~/.cache}/libfleets/go${GO_VERSION} (no Go needed to fetch it); pytest into
# the Python binding's venv (target/python-venv, as bindings/python/run_tests.sh uses it),
# with cryptography for its client-certificate tests.
# Rust itself is not installed here (Debian's rustc is too old): https://rustup.rs.
#
# Environment: FLEETS_TOOLS_DIR (where Go is unpacked), FLEETS_PY_VENV, CARGO_TARGET_DIR, GOPROXY.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUST_MIN=1.85
CMAKE_MIN=3.18
GO_MIN=1.24
GO_VERSION=1.24.13
# sha256sum of golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-<arch>.zip from the proxy.
declare -A GO_ZIP_SHA256=(
  [amd64]=d2b048367a3d1a748b87f756fa06df12ce3b419e1d5f2a3612acb8950d615f9f
  [arm64]=50c7b3e59fa87479d8edf3e9ad81daa477c050fb580f2661cb3b8adaf70af86c
)
TOOLS_DIR=${FLEETS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/libfleets}
CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PY_VENV=${FLEETS_PY_VENV:-$CARGO_TARGET/python-venv}
CROSS_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

# Where rustup puts cargo when the shell profile has not been reloaded yet.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

SUDO=
if [[ $(id -u) != 0 ]]; then SUDO="sudo "; fi

# ---- helpers ------------------------------------------------------------------------------
have() { # a program on PATH (not a shell builtin such as kill), executable
  local p
  p=$(type -P "$1" 2>/dev/null) && [[ -x $p && -f $p ]]
}

version_ge() { # version_ge 1.25.1 1.24 -> true
  local IFS=. i
  local -a a=($1) b=($2)
  for ((i = 0; i < ${#b[@]}; i++)); do
    local x=${a[i]:-0} y=${b[i]:-0}
    ((10#$x > 10#$y)) && return 0
    ((10#$x < 10#$y)) && return 1
  done
  return 0
}

go_arch() {
  case $(uname -m) in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) return 1 ;;
  esac
}

go_version_of() { # go_version_of <go binary> -> 1.24.13 (never switches toolchains)
  local v
  v=$(GOTOOLCHAIN=local GOFLAGS= "$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [[ $v =~ ^[0-9]+\.[0-9]+ ]] || return 1
  echo "${v%%[!0-9.]*}"
}

# The first Go >= GO_MIN: the one on PATH, the usual install places, then ours.
find_go() {
  local g v
  for g in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go /usr/lib/go-1.*/bin/go \
           "$TOOLS_DIR/go$GO_VERSION/bin/go"; do
    [[ -n $g && -x $g ]] || continue
    v=$(go_version_of "$g") || continue
    if version_ge "$v" "$GO_MIN"; then
      echo "$g"
      return 0
    fi
  done
  return 1
}

# ---- goals ---------------------------------------------------------------------------------
TEST_GOALS=(lint test-rust test-soak test-c test-python test-go test-readme)
declare -A WANT=()
GOAL_NAMES=()
set_goals() {
  local g
  [[ $# -gt 0 ]] || set -- demo test bench
  for g in "$@"; do
    case $g in
      test) for t in "${TEST_GOALS[@]}"; do WANT[$t]=1; done ;;
      demo | lint | test-rust | test-soak | test-c | test-python | test-go | test-readme | bench) WANT[$g]=1 ;;
      *) echo "scripts/setup.sh: unknown goal '$g' (demo test ${TEST_GOALS[*]} bench)" >&2; exit 2 ;;
    esac
    GOAL_NAMES+=("make $g")
  done
}
wanted() { # wanted GOAL...: true when any of them was asked for
  local g
  for g in "$@"; do [[ -n ${WANT[$g]:-} ]] && return 0; done
  return 1
}
ALL_C=(demo test-rust test-c test-python test-go test-readme bench) # goals that compile C

# ---- results -------------------------------------------------------------------------------
QUIET=0
MISSING=0
APT_PKGS=()       # Debian packages to install
RUSTUP_CMDS=()    # rustup commands to run
MANUAL=()         # fixes this script cannot do
FETCH_GO=0
INSTALL_PYTEST=0

ok() { # ok <tool> <detail>
  ((QUIET)) || printf '  ok       %-24s %s\n' "$1" "$2"
}
missing() { # missing <tool> <what is wrong> <fix text>
  MISSING=$((MISSING + 1))
  printf '  MISSING  %-24s %s\n           %-24s fix: %s\n' "$1" "$2" "" "$3"
}
apt_fix() { # apt_fix <tool> <what is wrong> <package...>
  local tool=$1 what=$2
  shift 2
  APT_PKGS+=("$@")
  missing "$tool" "$what" "${SUDO}apt-get install -y $*"
}

# ---- the checks ----------------------------------------------------------------------------
check_rust() {
  local v
  if ! have cargo || ! have rustc; then
    missing "Rust (cargo, rustc)" "not found" "install Rust >= $RUST_MIN with rustup (https://rustup.rs), then open a new shell"
    MANUAL+=("install Rust >= $RUST_MIN with rustup: https://rustup.rs")
    return 1
  fi
  v=$(rustc --version 2>/dev/null | awk '{print $2}')
  if ! version_ge "${v%%-*}" "$RUST_MIN"; then
    missing "Rust (cargo, rustc)" "rustc $v is older than $RUST_MIN" "rustup update stable"
    MANUAL+=("rustup update stable   (rustc $v < $RUST_MIN)")
    return 1
  fi
  ok "Rust (cargo, rustc)" "rustc $v (>= $RUST_MIN)"
}

check_rust_components() {
  local c absent=()
  for c in fmt clippy; do
    (cd "$ROOT" && cargo "$c" --version) >/dev/null 2>&1 || absent+=("$c")
  done
  if ((${#absent[@]} == 0)); then
    ok "rustfmt, clippy" "cargo fmt, cargo clippy"
    return
  fi
  local names=("${absent[@]/fmt/rustfmt}")
  if have rustup; then
    RUSTUP_CMDS+=("rustup component add ${names[*]}")
    missing "rustfmt, clippy" "${names[*]} not installed" "rustup component add ${names[*]}"
  else
    MANUAL+=("install ${names[*]} for your Rust toolchain")
    missing "rustfmt, clippy" "${names[*]} not installed" "install ${names[*]} for your Rust toolchain"
  fi
}

check_rust_targets() {
  local t d absent=()
  for t in "${CROSS_TARGETS[@]}"; do
    d=$(rustc --print target-libdir --target "$t" 2>/dev/null) || { absent+=("$t"); continue; }
    compgen -G "$d/libstd-*.rlib" >/dev/null || absent+=("$t")
  done
  if ((${#absent[@]} == 0)); then
    ok "Rust ARM targets" "${CROSS_TARGETS[*]}"
  elif have rustup; then
    RUSTUP_CMDS+=("rustup target add ${absent[*]}")
    missing "Rust ARM targets" "${absent[*]} not installed" "rustup target add ${absent[*]}"
  else
    MANUAL+=("install the Rust standard library for ${absent[*]}")
    missing "Rust ARM targets" "${absent[*]} not installed" "install the Rust std for ${absent[*]}"
  fi
}

check_cmd() { # check_cmd <tool> <command> <package...>: one command from one package
  local tool=$1 cmd=$2
  shift 2
  if have "$cmd"; then
    ok "$tool" "$(type -P "$cmd")"
  else
    apt_fix "$tool" "$cmd not found" "$@"
  fi
}

check_cc() {
  local cc
  for cc in cc gcc clang; do
    if have "$cc"; then
      ok "C compiler" "$("$cc" --version 2>/dev/null | head -1)"
      return
    fi
  done
  apt_fix "C compiler" "cc not found" gcc libc6-dev
}

check_cmake() {
  local v
  if ! have cmake; then
    apt_fix "cmake" "not found" cmake
    return
  fi
  v=$(cmake --version | head -1 | awk '{print $3}')
  if version_ge "$v" "$CMAKE_MIN"; then
    ok "cmake" "cmake $v (>= $CMAKE_MIN)"
  else
    missing "cmake" "cmake $v is older than $CMAKE_MIN" "install cmake >= $CMAKE_MIN (e.g. from your distribution's backports)"
    MANUAL+=("cmake >= $CMAKE_MIN (found $v)")
  fi
}

check_python() {
  if ! have python3; then
    local pkgs=(python3)
    wanted test-python && pkgs+=(python3-venv) # checked once python3 is there
    apt_fix "python3" "not found" "${pkgs[@]}"
    return 1
  fi
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
    missing "python3" "$(python3 --version 2>&1) is older than 3.8" "install Python >= 3.8"
    MANUAL+=("Python >= 3.8")
    return 1
  fi
  ok "python3" "$(python3 --version 2>&1)"
}

check_python_venv() {
  # Debian splits ensurepip (what `python3 -m venv` needs) into python3-venv.
  if python3 -c 'import ensurepip, venv' 2>/dev/null; then
    ok "python3-venv" "python3 -m venv"
    return 0
  fi
  apt_fix "python3-venv" "python3 -m venv cannot install pip" python3-venv
  return 1
}

# pytest, and cryptography for the client-certificate tests (skipped without it), in the
# binding's venv, or in the system's Python, which the venv sees.
PY_TEST_PKGS=(pytest cryptography)
check_pytest() {
  local imports="import ${PY_TEST_PKGS[*]}"
  imports=${imports// /, }
  imports=${imports/import,/import}
  if [[ -x $PY_VENV/bin/python ]] && "$PY_VENV/bin/python" -c "$imports" 2>/dev/null; then
    ok "pytest, cryptography" "in ${PY_VENV#"$ROOT"/}"
  elif [[ ! -e $PY_VENV ]] && python3 -c "$imports" 2>/dev/null; then
    ok "pytest, cryptography" "system's (the venv sees them)"
  else
    INSTALL_PYTEST=1
    missing "pytest, cryptography" "not in ${PY_VENV#"$ROOT"/}" "make setup   (python3 -m venv --system-site-packages; pip install ${PY_TEST_PKGS[*]}, from PyPI)"
  fi
}

check_libclang() { # bindgen (tests/abi) loads libclang at run time and needs clang's stddef.h
  local lib='' hdr='' d
  for d in ${LIBCLANG_PATH:-} /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu \
           /usr/lib64 /usr/lib /usr/local/lib; do
    lib=$(compgen -G "$d/libclang*.so*") && break
  done
  lib=${lib%%$'\n'*}
  hdr=$(compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" ||
        compgen -G "/usr/lib/clang/*/include/stddef.h" ||
        compgen -G "/usr/lib64/clang/*/include/stddef.h" ||
        compgen -G "/usr/local/lib/clang/*/include/stddef.h") || true
  if [[ -n $lib && -n $hdr ]]; then
    ok "libclang" "$lib"
  else
    apt_fix "libclang" "libclang or its headers not found (bindgen, tests/abi)" libclang-dev
  fi
}

check_cross_gcc() { # check_cross_gcc <gcc triple> <libc package>
  local triple=$1 libc=$2 absent=()
  have "$triple-gcc" || absent+=("gcc-$triple")
  [[ -e /usr/$triple/lib/libc.so || -e /usr/$triple/lib/libc.so.6 ]] &&
    [[ -e /usr/$triple/include/stdio.h ]] || absent+=("$libc")
  if ((${#absent[@]} == 0)); then
    ok "$triple-gcc" "$(command -v "$triple-gcc"), /usr/$triple"
  else
    apt_fix "$triple-gcc" "cross compiler or its libc not found" "${absent[@]}"
  fi
}

check_qemu() {
  if have qemu-aarch64 && have qemu-arm; then
    ok "qemu-user" "qemu-aarch64, qemu-arm"
  else
    apt_fix "qemu-user" "qemu-aarch64/qemu-arm not found" qemu-user
  fi
}

check_go() {
  local g
  if g=$(find_go); then
    ok "Go >= $GO_MIN" "$g (go$(go_version_of "$g"))"
    return
  fi
  local found=none
  if have go; then found="go$(go_version_of "$(command -v go)" || echo '?')"; fi
  if ! go_arch >/dev/null; then
    missing "Go >= $GO_MIN" "found $found; no pinned Go for $(uname -m)" "install Go >= $GO_MIN (https://go.dev/dl)"
    MANUAL+=("Go >= $GO_MIN")
    return
  fi
  FETCH_GO=1
  have curl || APT_PKGS+=(curl ca-certificates) # what the fetch itself needs
  have python3 || APT_PKGS+=(python3)
  missing "Go >= $GO_MIN" "found $found" "make setup   (go$GO_VERSION from the Go module proxy into ${TOOLS_DIR/#"$HOME"/\~})"
}

run_checks() {
  ((QUIET)) || (IFS=,; echo "Prerequisites of ${GOAL_NAMES[*]}:" | sed 's/,/, /g')
  local rust=0
  check_rust && rust=1
  if ((rust)); then
    wanted lint && check_rust_components
    wanted test-c && check_rust_targets
  fi
  check_cmd "make" make make
  wanted "${ALL_C[@]}" && check_cc
  wanted demo test-c test-readme && check_cmake
  if wanted demo test-c test-python test-readme bench; then
    if check_python && wanted test-python bench && check_python_venv && wanted test-python; then
      check_pytest
    fi
  fi
  wanted test-c test-go test-readme && check_cmd "pkg-config" pkg-config pkg-config
  if wanted test-rust; then
    check_libclang
    check_cmd "curl" curl curl ca-certificates  # the emulator's seed_curl.sh test
    check_cmd "kill" kill procps                # the emulator's signal test
  fi
  if wanted test-c; then
    check_cmd "C++ compiler" c++ g++            # the C++17 header check
    check_cmd "binutils" readelf binutils        # SONAME and export checks
    check_cmd "valgrind" valgrind valgrind
    check_qemu
    check_cross_gcc aarch64-linux-gnu libc6-dev-arm64-cross
    check_cross_gcc arm-linux-gnueabihf libc6-dev-armhf-cross
  fi
  wanted bench && check_cmd "git" git git         # bench.py records the commit measured
  wanted test-go test-readme bench && check_go
  return 0
}

summary() { # after run_checks: the fix, or nothing
  ((MISSING)) || return 0
  local c
  echo
  if ((${#APT_PKGS[@]} + ${#RUSTUP_CMDS[@]} + FETCH_GO + INSTALL_PYTEST == 0)); then
    echo "$MISSING prerequisite(s) missing, which make setup cannot install:"
    for c in "${MANUAL[@]}"; do echo "  by hand: $c"; done
    return 1
  fi
  echo "$MISSING prerequisite(s) missing. Install them with:  make setup"
  echo "  (= scripts/setup.sh install; without make: bash scripts/setup.sh install)"
  if ((${#APT_PKGS[@]})); then
    echo "  which runs: ${SUDO}apt-get install -y $(printf '%s\n' "${APT_PKGS[@]}" | awk '!seen[$0]++' | paste -sd' ')"
  fi
  for c in "${RUSTUP_CMDS[@]}"; do echo "              $c"; done
  ((FETCH_GO)) && echo "              fetch go$GO_VERSION from the Go module proxy into $TOOLS_DIR"
  ((INSTALL_PYTEST)) && echo "              $PY_VENV/bin/pip install ${PY_TEST_PKGS[*]}"
  for c in "${MANUAL[@]}"; do echo "  by hand: $c"; done
  return 1
}

# ---- installers ----------------------------------------------------------------------------
install_apt() {
  local pkgs
  mapfile -t pkgs < <(printf '%s\n' "${APT_PKGS[@]}" | awk '!seen[$0]++')
  if ! have apt-get; then
    echo "setup: no apt-get: install by hand the equivalents of: ${pkgs[*]}" >&2
    return 1
  fi
  if [[ -n $SUDO ]] && ! have sudo; then
    echo "setup: not root and no sudo: run as root: apt-get install -y ${pkgs[*]}" >&2
    return 1
  fi
  echo "==> ${SUDO}apt-get install ${pkgs[*]}"
  ${SUDO}apt-get update -qq || return 1
  ${SUDO}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${pkgs[@]}" >/dev/null || return 1
}

install_pytest() {
  echo "==> ${PY_TEST_PKGS[*]} into $PY_VENV"
  if [[ ! -x $PY_VENV/bin/python ]]; then
    python3 -m venv --system-site-packages "$PY_VENV" || return 1
  fi
  "$PY_VENV/bin/python" -m pip install -q "pytest>=7" cryptography || return 1
}

go_proxy_url() { # the first http(s) entry of GOPROXY
  local list=${GOPROXY:-} g entry
  if [[ -z $list ]]; then
    for g in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go; do
      [[ -n $g && -x $g ]] && list=$(GOTOOLCHAIN=local "$g" env GOPROXY 2>/dev/null) && break
    done
  fi
  for entry in ${list//[,|]/ }; do
    [[ $entry == http://* || $entry == https://* ]] && { echo "${entry%/}"; return 0; }
  done
  [[ -z $list ]] && { echo https://proxy.golang.org; return 0; }
  echo "setup: GOPROXY=$list names no proxy to fetch golang.org/toolchain from" >&2
  return 1
}

install_go() {
  local arch proxy mod zip url tmp dest=$TOOLS_DIR/go$GO_VERSION
  arch=$(go_arch) || return 1
  proxy=$(go_proxy_url) || return 1
  mod=golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$arch
  url="$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip"
  echo "==> go$GO_VERSION: $url"
  mkdir -p "$TOOLS_DIR" || return 1
  tmp=$(mktemp -d "$TOOLS_DIR/.go-download.XXXXXX") || return 1
  zip=$tmp/go.zip
  if ! curl -fsSL --retry 3 -o "$zip" "$url"; then
    rm -rf "$tmp"
    return 1
  fi
  if ! echo "${GO_ZIP_SHA256[$arch]}  $zip" | sha256sum -c --quiet -; then
    echo "setup: $url does not have the pinned SHA-256 ${GO_ZIP_SHA256[$arch]}" >&2
    rm -rf "$tmp"
    return 1
  fi
  # Unpack with the modes the zip records (bin/go and pkg/tool/* are executable).
  python3 - "$zip" "$tmp/x" <<'PY' || { rm -rf "$tmp"; return 1; }
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = (info.external_attr >> 16) & 0o777
        if mode and not info.is_dir():
            os.chmod(path, mode)
PY
  rm -rf "$dest"
  mv "$tmp/x/$mod" "$dest" && rm -rf "$tmp" || return 1
  "$dest/bin/go" version || return 1
}

install_missing() {
  local failed=0 c
  if ((${#APT_PKGS[@]})); then install_apt || failed=1; fi
  for c in "${RUSTUP_CMDS[@]}"; do
    echo "==> $c"
    $c || failed=1
  done
  if ((INSTALL_PYTEST)); then install_pytest || failed=1; fi
  if ((FETCH_GO)); then install_go || failed=1; fi
  return $failed
}

reset_results() {
  MISSING=0 APT_PKGS=() RUSTUP_CMDS=() MANUAL=() FETCH_GO=0 INSTALL_PYTEST=0
}

# ---- main ----------------------------------------------------------------------------------
cmd=${1:-check}
shift || true
case $cmd in
  check)
    if [[ ${1:-} == -q ]]; then QUIET=1; shift; fi
    set_goals "$@"
    run_checks
    summary
    ;;
  install)
    set_goals "$@"
    QUIET=1
    # Two rounds: some checks only run once apt has installed what they need (python3-venv
    # before pytest).
    for round in 1 2; do
      run_checks >/dev/null
      ((MISSING)) || break
      install_missing || echo "setup: some installs failed (see above)" >&2
      reset_results
    done
    QUIET=0
    run_checks
    summary
    ;;
  go-bin)
    g=$(find_go) || { echo "no Go >= $GO_MIN found: make setup" >&2; exit 1; }
    dirname "$g"
    ;;
  -h | --help | help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) echo "usage: scripts/setup.sh check [-q] [GOAL...] | install [GOAL...] | go-bin" >&2; exit 2 ;;
esac
