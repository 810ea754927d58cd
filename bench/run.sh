#!/usr/bin/env bash
# libfleets benchmark: builds what it needs, then runs every row against one fleets-emulator
# (release build, HTTPS on loopback, keep-alive) and prints one table (bench/README.md).
#
#   bench/run.sh            full run (median of >= 3 runs per row); writes bench/results/latest.json
#                           and bench/results/latest.svg
#   bench/run.sh --smoke    one short iteration of each row (CI); fails if any program fails;
#                           writes $CARGO_TARGET_DIR/bench/smoke.{json,svg}, not bench/results
#
# Installs what is missing with apt-get (libcurl4-openssl-dev, valgrind, wrk, python3-venv,
# cross gcc/binutils) and pip (requests, httpx into target/bench/venv).
# Env: CARGO_TARGET_DIR (default <repo>/target), FLEETS_BENCH_NO_CROSS=1 skips the cross builds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
work=$target/bench
smoke=0
for arg in "$@"; do
  case $arg in
    --smoke) smoke=1 ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
  esac
done
say() { printf '==== bench: %s\n' "$*" >&2; }
t_start=$SECONDS
mkdir -p "$work"

# ---- tools -----------------------------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need cc gcc
need curl-config libcurl4-openssl-dev
need curl curl
need valgrind valgrind
need wrk wrk
need strip binutils
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [[ $smoke == 0 && ${FLEETS_BENCH_NO_CROSS:-0} != 1 ]]; then
  need aarch64-linux-gnu-gcc "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
  need arm-linux-gnueabihf-gcc "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"
fi
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  # shellcheck disable=SC2068
  $SUDO apt-get install -y -q ${missing[@]} >&2 || { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q ${missing[@]} >&2; }
fi

# ---- builds ----------------------------------------------------------------------------------
say "cargo build --release -p fleets -p fleets-emulator -p fleets-cli"
(cd "$root" && cargo build --locked --release -q -p fleets -p fleets-emulator -p fleets-cli)

cross_built=()
cross() { # cross <rust target> <gcc prefix>
  local t=$1 gcc=$2-gcc env
  env=$(tr 'a-z-' 'A-Z_' <<<"$t")
  if [[ -f "$target/$t/release/libfleets.so" && $smoke == 1 ]]; then cross_built+=("$t"); return; fi
  [[ $smoke == 0 && ${FLEETS_BENCH_NO_CROSS:-0} != 1 ]] || return 0
  if ! rustc --print target-libdir --target "$t" >/dev/null 2>&1 || \
     [[ ! -d "$(rustc --print target-libdir --target "$t")" ]]; then
    rustup target add "$t" >&2 || { say "no Rust target $t: its size row is skipped"; return 0; }
  fi
  say "cargo build --release -p fleets -p fleets-cli --target $t"
  (cd "$root" && env "CARGO_TARGET_${env}_LINKER=$gcc" "CC_${t//-/_}=$gcc" "AR_${t//-/_}=$2-ar" \
     cargo build --locked --release -q -p fleets -p fleets-cli --target "$t") && cross_built+=("$t")
}
cross aarch64-unknown-linux-gnu aarch64-linux-gnu
cross armv7-unknown-linux-gnueabihf arm-linux-gnueabihf

say "C programs (bench/c/loop.c against libfleets and libcurl)"
mkdir -p "$work/lib"
ln -sfn "$target/release/libfleets.so" "$work/lib/libfleets.so.0"
cflags=(-O2 -g -std=c11 -Wall -Wextra -Werror)
cc "${cflags[@]}" -DBACKEND_FLEETS -I"$root/include" "$here/c/loop.c" -o "$work/fleets_loop" \
   -L"$target/release" -lfleets -Wl,-rpath,"$work/lib" -lpthread
cc "${cflags[@]}" -DBACKEND_CURL "$here/c/loop.c" -o "$work/curl_loop" $(curl-config --libs) -lpthread
cc "${cflags[@]}" -I"$root/include" "$here/c/outbox.c" -o "$work/outbox_bench" \
   -L"$target/release" -lfleets -Wl,-rpath,"$work/lib"
cc "${cflags[@]}" -I"$root/include" "$here/c/download.c" -o "$work/fleets_download" \
   -L"$target/release" -lfleets -Wl,-rpath,"$work/lib"

say "static thermostat vs empty main (-Wl,--gc-sections -s)"
static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc" # as fleets-static.pc lists them
printf 'int main(void) { return 0; }\n' >"$work/empty.c"
cc -O2 "$work/empty.c" -o "$work/empty_static" -Wl,--gc-sections -s
# shellcheck disable=SC2086
cc -O2 -std=c99 -I"$root/include" "$root/examples-c/thermostat.c" -o "$work/thermostat_static" \
   "$target/release/libfleets.a" $static_libs -Wl,--gc-sections -s

say "stripped sizes"
stripped() { "$1" -o "$work/stripped.tmp" "$2" && stat -c %s "$work/stripped.tmp"; }
{
  printf '{"libfleets": {"x86_64": %d' "$(stripped strip "$target/release/libfleets.so")"
  for t in "${cross_built[@]}"; do
    case $t in
      aarch64*) printf ', "aarch64": %d' "$(stripped aarch64-linux-gnu-strip "$target/$t/release/libfleets.so")" ;;
      armv7*) printf ', "armv7": %d' "$(stripped arm-linux-gnueabihf-strip "$target/$t/release/libfleets.so")" ;;
    esac
  done
  # The fleets CLI (cli/): one static executable, libfleets linked in.
  printf '}, "cli": {"x86_64": %d' "$(stripped strip "$target/release/fleets")"
  for t in "${cross_built[@]}"; do
    [[ -f "$target/$t/release/fleets" ]] || continue # a smoke run reuses a library-only build
    case $t in
      aarch64*) printf ', "aarch64": %d' "$(stripped aarch64-linux-gnu-strip "$target/$t/release/fleets")" ;;
      armv7*) printf ', "armv7": %d' "$(stripped arm-linux-gnueabihf-strip "$target/$t/release/fleets")" ;;
    esac
  done
  printf '}'
  if command -v curl >/dev/null; then
    printf ', "curl_tool": %d' "$(stripped strip "$(command -v curl)")"
  fi
  printf ', "debian": {'
  sep=
  for l in libcurl.so.4 libssl.so.3 libcrypto.so.3; do
    p=$(ldd "$work/curl_loop" | awk -v l="$l" '$1 == l {print $3}')
    printf '%s"%s": %d' "$sep" "$l" "$(stripped strip "$(readlink -f "$p")")"; sep=', '
  done
  printf '}, "static_thermostat": %d, "static_empty": %d, "static_delta": %d}\n' \
    "$(stat -c %s "$work/thermostat_static")" "$(stat -c %s "$work/empty_static")" \
    $(( $(stat -c %s "$work/thermostat_static") - $(stat -c %s "$work/empty_static") ))
} >"$work/sizes.json"
rm -f "$work/stripped.tmp"

# Issue 15: the device profile, wake.c (bench/footprint/).
# shellcheck source=bench/footprint/build.sh
source "$here/footprint/build.sh"

say "Python venv with requests and httpx ($work/venv)"
[[ -x "$work/venv/bin/python" ]] || python3 -m venv "$work/venv"
"$work/venv/bin/python" -c 'import requests, httpx' 2>/dev/null || \
  "$work/venv/bin/python" -m pip install -q requests httpx >&2

go_ok=1
if command -v go >/dev/null; then
  say "Go benchmark binary (bindings/go, go test -c)"
  mkdir -p "$work/go/lib/pkgconfig"
  ln -sfn "$target/release/libfleets.so" "$work/go/lib/libfleets.so"
  ln -sfn "$target/release/libfleets.so" "$work/go/lib/libfleets.so.0"
  cat >"$work/go/lib/pkgconfig/fleets.pc" <<PC
prefix=$work/go
libdir=\${prefix}/lib
includedir=$root/include

Name: fleets
Description: libfleets from the source checkout (bench/run.sh)
Version: 0.1.0
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lfleets
PC
  (cd "$root/bindings/go" && PKG_CONFIG_PATH=$work/go/lib/pkgconfig CGO_ENABLED=1 go test -c -o "$work/go.test" .)
else
  say "WARNING: no go command: the Go row is skipped"; go_ok=0
fi
say "builds done in $((SECONDS - t_start)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- measure ---------------------------------------------------------------------------------
args=(--work "$work")
if [[ $smoke == 1 ]]; then
  json=$work/smoke.json svg=$work/smoke.svg; args+=(--smoke)
else
  json=$here/results/latest.json svg=$here/results/latest.svg
fi
args+=(--json "$json")
[[ $go_ok == 1 ]] || args+=(--skip go)
python3 "$here/bench.py" "${args[@]}"
python3 "$here/chart.py" "$json" "$svg"
say "done in $((SECONDS - t_start)) s (chart: $svg)"
