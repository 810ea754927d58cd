#!/usr/bin/env bash
# Measures the emulator's keep-alive HTTPS request rate with wrk (Debian package `wrk`) and the
# server CPU time per request. Usage: emulator/bench/run.sh [SECONDS] (default 10).
# Needs a release build: cargo build --release -p fleets-emulator
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../../target/release/fleets-emulator"
secs="${1:-10}"
out="$(mktemp)"
"$bin" --listen 127.0.0.1:0 --auto-register >"$out" 2>/dev/null &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 50); do [[ -s "$out" ]] && break; sleep 0.1; done
endpoint="$(sed -n 's/.*"endpoint":"\([^"]*\)".*/\1/p' "$out")"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before="$(cpu)"
result="$(wrk -t2 -c16 -d"${secs}s" -s "$here/report.lua" "$endpoint")"
after="$(cpu)"
echo "$result"
requests="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$result")"
ticks="$(getconf CLK_TCK)"
awk -v r="$requests" -v c="$((after - before))" -v t="$ticks" \
    'BEGIN { us = c / t * 1e6 / r; printf "server CPU: %.2f s for %d requests = %.1f us/request (%.0f requests/s per core)\n", c / t, r, us, 1e6 / us }'
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
