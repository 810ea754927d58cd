#!/usr/bin/env bash
# Security checks for libfleets (issue 7): cargo-deny, Miri, and a fuzz smoke run.
# Installs what is missing (idempotent), runs every check even after a failure, prints one
# summary line per check and exits non-zero if any failed.
#
#   FLEETS_DENY_ADVISORIES=1   also `cargo deny check advisories` (needs the RustSec DB from
#                              GitHub; off by default because this CI has no GitHub access)
#   FLEETS_FUZZ_SECONDS=15     seconds per fuzz target
#   FLEETS_SKIP_DENY / FLEETS_SKIP_MIRI / FLEETS_SKIP_FUZZ=1   skip a check
#
# Measured on the 2-core machine: warm (tools installed, builds cached) 1 min 45 s; tools
# installed but fresh clone (cold target/) about 8 min; cold (installs cargo-deny 3 min 54 s,
# cargo-fuzz 1 min 19 s, miri component) about 14 min.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
FUZZ_SECONDS=${FLEETS_FUZZ_SECONDS:-15}
declare -a SUMMARY=()
FAILED=0
START=$SECONDS

step() { # name, command...
    local name=$1; shift
    local t0=$SECONDS
    echo "::group::$name"
    if "$@"; then
        SUMMARY+=("PASS  $name ($((SECONDS - t0)) s)")
    else
        SUMMARY+=("FAIL  $name ($((SECONDS - t0)) s)")
        FAILED=1
    fi
    echo "::endgroup::"
}

install_tools() {
    command -v cargo-deny >/dev/null || cargo install --locked cargo-deny || return 1
    command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz || return 1
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal || return 1
    if ! cargo +nightly miri --version >/dev/null 2>&1; then
        rustup +nightly component add miri rust-src || return 1
    fi
    # cargo-fuzz links libFuzzer, built from C++ sources by libfuzzer-sys.
    command -v c++ >/dev/null || { apt-get update && apt-get install -y g++; } || return 1
}

deny() {
    # Whole workspace: licenses, banned crates, sources (errors only).
    cargo deny --log-level error check licenses bans sources || return 1
    # Duplicate versions in the shipped library graph (no dev-deps, no test crates): warnings.
    cargo deny --exclude-dev --exclude fleets-emulator --exclude fleets-abi-check check bans || return 1
    if [ "${FLEETS_DENY_ADVISORIES:-0}" = 1 ]; then
        cargo deny check advisories || return 1
    else
        echo "advisories not checked (set FLEETS_DENY_ADVISORIES=1 where GitHub is reachable)"
    fi
}

fuzz_smoke() {
    local work rc=0 t
    work=$(mktemp -d)
    (cd fuzz && cargo +nightly fuzz build) || return 1
    for t in $(cd fuzz && cargo +nightly fuzz list); do
        mkdir -p "$work/$t"
        # New corpus entries go to the temporary dir; the committed seeds are read only.
        if (cd fuzz && cargo +nightly fuzz run "$t" "$work/$t" "corpus/$t" -- \
                -max_total_time="$FUZZ_SECONDS" -print_final_stats=1) >"$work/$t.log" 2>&1; then
            echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$t.log" | grep -o '[0-9]*$') execs, no crash"
        else
            echo "fuzz $t: FAILED; last lines:"; tail -40 "$work/$t.log"
            ls "$ROOT/fuzz/artifacts/$t" 2>/dev/null
            rc=1
        fi
    done
    rm -rf "$work"
    return $rc
}

step "install tools" install_tools
[ "${FLEETS_SKIP_DENY:-0}" = 1 ] || step "cargo deny (licenses, bans, sources)" deny
[ "${FLEETS_SKIP_MIRI:-0}" = 1 ] || step "miri (pure-Rust + FFI boundary tests)" bash tests/miri.sh
[ "${FLEETS_SKIP_FUZZ:-0}" = 1 ] || step "fuzz smoke (${FUZZ_SECONDS}s per target)" fuzz_smoke

echo "== security checks ($((SECONDS - START)) s)"
printf '%s\n' "${SUMMARY[@]}"
exit $FAILED
