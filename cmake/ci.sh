#!/usr/bin/env bash
# CMake / C part of the libfleets CI, and the C demo.
#
#   cmake/ci.sh [STEP...]      STEP: all (default) | native | install | consumers | memcheck |
#                              cross | aarch64 | armv7 | sizes | demo
#
#   native     configure + build (cargo release build of the library, the C examples) and ctest:
#              library SONAME/exports, C++17 header check, thermostat / job_agent / static
#              thermostat against a fresh fleets-emulator, and both examples under valgrind
#   install    cmake --install into a temporary prefix; checks the installed files
#   consumers  builds and runs tests/cmake/consumer-find-package (find_package) and
#              tests/cmake/consumer-pkg-config (pkg-config only), each against the shared and
#              the static library of that prefix (runs install first), and
#              tests/cmake/consumer-add-subdirectory (libfleets vendored via add_subdirectory)
#   memcheck   tests/c programs and C examples built with -fsanitize=address,undefined and run
#              (LeakSanitizer on), then under valgrind, each against a fresh emulator
#              (tests/memcheck/memcheck.py; build dir <build>/memcheck)
#   cross      aarch64 and armv7: cross build + ctest under qemu-user against the emulator
#   sizes      prints the stripped libfleets.so sizes of the builds present
#   demo       builds natively and runs the C thermostat against a fresh emulator, step by step
#
# Environment: FLEETS_CMAKE_BUILD_DIR (default <repo>/build/cmake-ci), FLEETS_CI_JOBS
# (default nproc), CARGO_TARGET_DIR (default <repo>/target, shared with cargo), CMAKE_GENERATOR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FLEETS_CMAKE_BUILD_DIR:-$ROOT/build/cmake-ci}
JOBS=${FLEETS_CI_JOBS:-$(nproc)}
CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z "${CMAKE_GENERATOR:-}" ]] && command -v ninja >/dev/null; then
  export CMAKE_GENERATOR=Ninja
fi
PREFIX=$BUILD/prefix
VERSION=$(sed -n 's/^#define FLEETS_VERSION "\(.*\)"$/\1/p' "$ROOT/include/fleets.h")

say() { printf '\n==== %s\n' "$*"; }
die() { printf 'cmake/ci.sh: FAILED: %s\n' "$*" >&2; exit 1; }
timed() {
  local name=$1; shift
  local t0=$SECONDS
  "$@"
  printf '==== %s: %ss\n' "$name" $((SECONDS - t0))
}

configure() { # configure <build dir> [cmake args...]
  local dir=$1; shift
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_LIBDIR=lib \
        -DFLEETS_BUILD_TESTS=ON "-DFLEETS_CARGO_TARGET_DIR=$CARGO_TARGET" "$@"
}

build_and_test() { # build_and_test <build dir>
  cmake --build "$1" --parallel "$JOBS"
  ctest --test-dir "$1" --output-on-failure --parallel "$JOBS" --timeout 900
}

step_native() {
  say "native: configure, build, ctest (incl. valgrind)"
  configure "$BUILD/native" -DFLEETS_TEST_VALGRIND=ON
  build_and_test "$BUILD/native"
}

check_lib() { # check_lib <libfleets.so.X.Y.Z> <readelf> <nm>
  local lib=$1 readelf=$2 nm=$3
  [[ "$("$readelf" -d "$lib")" == *"Library soname: [libfleets.so.0]"* ]] || die "$lib: SONAME is not libfleets.so.0"
  local others
  others=$("$nm" -D --defined-only "$lib" | awk '{print $NF}' | grep -v '^fleets_' || true)
  [[ -z "$others" ]] || die "$lib exports non-fleets_ symbols: $others"
  echo "$lib: SONAME libfleets.so.0, $("$nm" -D --defined-only "$lib" | wc -l) exported symbols, all fleets_*"
}

step_install() {
  [[ -f "$BUILD/native/CMakeCache.txt" ]] || step_native
  say "install into $PREFIX"
  cmake --build "$BUILD/native" --parallel "$JOBS" # up to date with the sources first
  rm -rf "$PREFIX"
  cmake --install "$BUILD/native" --prefix "$PREFIX"
  local f
  for f in include/fleets.h lib/libfleets.so.$VERSION lib/libfleets.a \
           lib/cmake/fleets/fleetsConfig.cmake lib/cmake/fleets/fleetsConfigVersion.cmake \
           lib/pkgconfig/fleets.pc lib/pkgconfig/fleets-static.pc; do
    [[ -f "$PREFIX/$f" ]] || die "not installed: $f"
  done
  [[ "$(readlink "$PREFIX/lib/libfleets.so.0")" == "libfleets.so.$VERSION" ]] || die "libfleets.so.0 symlink"
  [[ "$(readlink "$PREFIX/lib/libfleets.so")" == "libfleets.so.0" ]] || die "libfleets.so symlink"
  grep -q "^prefix=$PREFIX\$" "$PREFIX/lib/pkgconfig/fleets.pc" || die "fleets.pc prefix"
  check_lib "$PREFIX/lib/libfleets.so.$VERSION" readelf nm
  (cd "$PREFIX" && find . -mindepth 1 | sort | sed 's/^/  /')
}

needs_libfleets() { [[ "$(readelf -d "$1")" == *"Shared library: [libfleets.so.0]"* ]]; }

step_consumers() {
  step_install
  local kind static
  for kind in shared static; do
    static=OFF; [[ $kind == static ]] && static=ON
    say "consumer find_package ($kind)"
    local dir=$BUILD/consumer-find-package-$kind
    rm -rf "$dir"
    cmake -S "$ROOT/tests/cmake/consumer-find-package" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
          "-DCMAKE_PREFIX_PATH=$PREFIX" "-DFLEETS_CONSUMER_STATIC=$static"
    cmake --build "$dir"
    ctest --test-dir "$dir" --output-on-failure
    if [[ $kind == shared ]]; then needs_libfleets "$dir/consumer" || die "find_package shared consumer does not load libfleets.so.0"
    else ! needs_libfleets "$dir/consumer" || die "find_package static consumer loads libfleets.so.0"; fi

    say "consumer pkg-config ($kind)"
    dir=$BUILD/consumer-pkg-config-$kind
    rm -rf "$dir"
    local s=0; [[ $kind == static ]] && s=1
    PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig make -C "$ROOT/tests/cmake/consumer-pkg-config" \
      BUILD="$dir" STATIC=$s run
    if [[ $kind == shared ]]; then needs_libfleets "$dir/consumer" || die "pkg-config shared consumer does not load libfleets.so.0"
    else ! needs_libfleets "$dir/consumer" || die "pkg-config static consumer loads libfleets.so.0"; fi
  done

  say "consumer add_subdirectory (shared and static)"
  local dir=$BUILD/consumer-add-subdirectory
  cmake -S "$ROOT/tests/cmake/consumer-add-subdirectory" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
        "-DFLEETS_CARGO_TARGET_DIR=$CARGO_TARGET"
  cmake --build "$dir" --parallel "$JOBS"
  ctest --test-dir "$dir" --output-on-failure
  needs_libfleets "$dir/consumer_shared" || die "add_subdirectory shared consumer does not load libfleets.so.0"
  ! needs_libfleets "$dir/consumer_static" || die "add_subdirectory static consumer loads libfleets.so.0"
}

step_cross_one() { # step_cross_one <name> <toolchain file>
  say "cross $1: configure, build, ctest under qemu-user"
  configure "$BUILD/$1" "-DCMAKE_TOOLCHAIN_FILE=$ROOT/cmake/toolchains/$2"
  build_and_test "$BUILD/$1"
}
step_aarch64() { step_cross_one aarch64 aarch64-linux-gnu.cmake; }
step_armv7() { step_cross_one armv7 armv7-linux-gnueabihf.cmake; }
step_cross() { timed aarch64 step_aarch64; timed armv7 step_armv7; }

step_sizes() {
  say "stripped libfleets.so sizes (cargo profile.release: strip = true)"
  local name lib
  for name in native aarch64 armv7; do
    lib=$BUILD/$name/fleets-lib/libfleets.so.$VERSION
    [[ -f $lib ]] || continue
    local stripped=stripped
    [[ "$(readelf -S "$lib")" == *".symtab"* ]] && stripped="NOT stripped"
    printf '  %-8s %9d bytes  (%s; %s)\n' "$name" "$(stat -c %s "$lib")" \
      "$(readelf -h "$lib" | sed -n 's/^ *Machine: *//p')" "$stripped"
  done
}

step_memcheck() {
  say "memcheck: C programs under ASan+UBSan (LeakSanitizer) and valgrind"
  command -v python3 >/dev/null || die "memcheck needs python3"
  python3 "$ROOT/tests/memcheck/memcheck.py" --build-dir "$BUILD/memcheck" \
    --cargo-target "$CARGO_TARGET" --jobs "$JOBS"
}

step_demo() {
  # The demo needs no valgrind: where it is missing, configure without the valgrind tests
  # (make test's native step turns them on again, and requires valgrind).
  local valgrind=()
  local vg
  vg=$(type -P valgrind) && [[ -x $vg ]] || valgrind=(-DFLEETS_TEST_VALGRIND=OFF)
  say "demo: build directory $BUILD/native (the thermostat is $BUILD/native/examples-c/thermostat)"
  configure "$BUILD/native" "${valgrind[@]}" >/dev/null
  cmake --build "$BUILD/native" --parallel "$JOBS" --target demo
}

step_all() {
  timed native step_native
  timed consumers step_consumers
  timed memcheck step_memcheck
  step_cross
  step_sizes
}

[[ $# -gt 0 ]] || set -- all
for step in "$@"; do
  case $step in
    all|native|install|consumers|memcheck|cross|aarch64|armv7|sizes|demo) "step_$step" ;;
    *) die "unknown step '$step' (all native install consumers memcheck cross aarch64 armv7 sizes demo)" ;;
  esac
done
say "cmake/ci.sh $*: OK"
