#!/usr/bin/env bash
# Stripped size of libfleets.so for aarch64, step by step from the default build to the
# smallest one stable Rust can make (docs/device-build.md, "Going further"). Each step keeps
# the previous ones. Builds into target/size-ladder (not target/), ~10 minutes on 2 cores.
#
#   bench/footprint/size_ladder.sh [rust-target [gcc-prefix]]   (default aarch64-unknown-linux-gnu)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
t=${1:-aarch64-unknown-linux-gnu}
case $t in aarch64*) pfx=${2:-aarch64-linux-gnu} ;; armv7*) pfx=${2:-arm-linux-gnueabihf} ;; *) pfx=${2:?gcc prefix} ;; esac
T=$(tr 'a-z-' 'A-Z_' <<<"$t")
export "CARGO_TARGET_${T}_LINKER=$pfx-gcc" "CC_${t//-/_}=$pfx-gcc" "AR_${t//-/_}=$pfx-ar"
out=${CARGO_TARGET_DIR:-$root/target}/size-ladder
lld_dir=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld
prev=

step() { # step "label" profile "cargo args" "rustflags" [env...]
  local label=$1 profile=$2 args=$3 flags=$4; shift 4
  (cd "$root" && env "$@" "CARGO_TARGET_${T}_RUSTFLAGS=$flags" \
     cargo build --locked -q -p fleets --lib --target "$t" --profile "$profile" --target-dir "$out" $args)
  local dir=$profile; [[ $profile == dev ]] && dir=debug
  "$pfx-strip" -o "$out/stripped.so" "$out/$t/$dir/libfleets.so"
  local size; size=$(stat -c %s "$out/stripped.so")
  printf "%-76s %9d B %6d KiB %s\n" "$label" "$size" "$(((size + 512) / 1024))" \
    "${prev:+($((size - prev)) B)}"
  prev=$size
}
lld="-Clink-arg=-B$lld_dir -Clink-arg=-fuse-ld=lld"
step "release (default build)" release "" ""
step "device profile" device "" ""
# Devices that use neither the outbox nor the workflows (cargo features, on by default).
lean="--no-default-features --features bundled-roots"
step "  + without the outbox and the workflows ($lean)" device "$lean" ""
step "  + rust-lld with identical code folding (--icf=all)" device "$lean" "$lld -Clink-arg=-Wl,--icf=all"
step "  + packed relative relocations (DT_RELR: glibc >= 2.36 on the device)" device "$lean" \
  "$lld -Clink-arg=-Wl,--icf=all -Clink-arg=-Wl,-z,pack-relative-relocs"
step "  + no unwind tables for Rust code (-Cforce-unwind-tables=no)" device "$lean" \
  "$lld -Clink-arg=-Wl,--icf=all -Clink-arg=-Wl,-z,pack-relative-relocs -Cforce-unwind-tables=no"
step "  + opt-level s for every crate (~+30 % CPU per request)" device "$lean" \
  "$lld -Clink-arg=-Wl,--icf=all -Clink-arg=-Wl,-z,pack-relative-relocs -Cforce-unwind-tables=no" \
  CARGO_PROFILE_DEVICE_OPT_LEVEL=s
step "  + without bundled roots (--no-default-features: a CA must be configured)" device \
  "--no-default-features" \
  "$lld -Clink-arg=-Wl,--icf=all -Clink-arg=-Wl,-z,pack-relative-relocs -Cforce-unwind-tables=no" \
  CARGO_PROFILE_DEVICE_OPT_LEVEL=s
rm -f "$out/stripped.so"
