#!/usr/bin/env bash
# Builds and tests libfleets against the newest ureq 3.x and ureq-proto 0.x. Cargo.toml pins
# ureq to 3.5.x because src/transport and src/resolve use `ureq::unversioned`, which ureq may
# change in a minor release; this tells us early when a newer release breaks us.
# Never fails the CI run, but a failure is printed loudly (and the exit status of the tests
# is in the last line), never silently skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git ls-files -z | xargs -0 cp --parents -t "$work"
cd "$work"
sed -i -e 's/^ureq = { version = "~3.5"/ureq = { version = "3"/' \
       -e 's/^ureq-proto = { version = "~0.7"/ureq-proto = { version = "0"/' Cargo.toml
# The main target dir: dependencies that did not change are reused, not rebuilt (a newer ureq
# gets its own artifacts). Runs last in CI, so overwriting target/debug/libfleets.so is fine.
export CARGO_TARGET_DIR="$root/target"
status=0
cargo update -p ureq -p ureq-proto || status=$?
versions=$(grep -A1 -E '^name = "ureq(-proto)?"$' Cargo.lock | grep version | tr -d '"' | tr '\n' ' ')
if [ "$status" -eq 0 ]; then
  cargo build -p fleets --lib && \
  cargo test -p fleets --lib --test api --test stale_connection --test proxy \
    || status=$?
fi
if [ "$status" -ne 0 ]; then
  printf '\n%s\n' "################################################################"
  printf '%s\n'   "## NEWEST UREQ BREAKS LIBFLEETS ($versions)"
  printf '%s\n'   "## The pinned build is unaffected; update src/transport before raising the pin."
  printf '%s\n\n' "################################################################"
else
  echo "newest ureq: libfleets builds and passes its transport tests ($versions)"
fi
echo "newest-ureq exit status: $status"
exit 0
