#!/usr/bin/env bash
# Runs the exact curl commands of the seed document (shared/seed/https-integration.md) against
# a running fleets-emulator, with `--cacert` added and the emulator's endpoint and credentials
# substituted, and checks that each one succeeds (curl --fail-with-body) and answers what the
# seed describes.
#
# Usage:
#   emulator/tests/seed_curl.sh [PATH_TO_fleets-emulator]
#       starts the binary itself (default: target/debug/fleets-emulator), parses its ready
#       line, runs the checks, stops it with SIGTERM and checks the exit status is 0.
#   FLEETS_ENDPOINT=... FLEETS_CA_FILE=... FLEETS_API_KEY=... FLEETS_API_SECRET=... \
#   FLEETS_ADMIN_TOKEN=... emulator/tests/seed_curl.sh
#       uses an emulator that is already running.
#
# Before the seed's commands it registers thermostat-001, creates the seed's command execution
# id 8d88790c-9171-4526-8637-e6d6168bce22 and a job through the admin API.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
emu_pid=""
out_dir="$(mktemp -d)"
cleanup() {
    if [[ -n "$emu_pid" ]] && kill -0 "$emu_pid" 2>/dev/null; then kill -TERM "$emu_pid" || true; fi
    rm -rf "$out_dir"
}
trap cleanup EXIT

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$2"; }

if [[ -z "${FLEETS_ENDPOINT:-}" ]]; then
    bin="${1:-$here/../../target/debug/fleets-emulator}"
    [[ -x "$bin" ]] || { echo "seed_curl: no emulator binary at $bin (cargo build -p fleets-emulator)" >&2; exit 2; }
    "$bin" --listen 127.0.0.1:0 >"$out_dir/stdout" 2>"$out_dir/stderr" &
    emu_pid=$!
    for _ in $(seq 1 100); do
        [[ -s "$out_dir/stdout" ]] && break
        sleep 0.1
    done
    ready="$(head -n 1 "$out_dir/stdout")"
    [[ "$ready" == *'"event":"ready"'* ]] || { echo "seed_curl: no ready line: $ready" >&2; cat "$out_dir/stderr" >&2; exit 1; }
    FLEETS_ENDPOINT="$(field endpoint "$ready")"
    FLEETS_CA_FILE="$(field ca_file "$ready")"
    FLEETS_API_KEY="$(field api_key "$ready")"
    FLEETS_API_SECRET="$(field api_secret "$ready")"
    FLEETS_ADMIN_TOKEN="$(field admin_token "$ready")"
fi
: "${FLEETS_CA_FILE:?}" "${FLEETS_API_KEY:?}" "${FLEETS_API_SECRET:?}" "${FLEETS_ADMIN_TOKEN:?}"
host="${FLEETS_ENDPOINT#https://}"
CA="$FLEETS_CA_FILE"

passed=0
failed=0
# check NAME EXPECTED_SUBSTRING -- curl ARGS...: runs the curl command with -sS --fail-with-body
# added, and requires success and the substring in the response body.
check() {
    local name="$1" expect="$2"
    shift 3
    [[ "$1" == curl ]] || { echo "check: the command must start with curl" >&2; exit 2; }
    shift
    local body
    if body="$(curl -sS --fail-with-body "$@" 2>&1)" && [[ "$body" == *"$expect"* ]]; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: $body" >&2
        failed=$((failed + 1))
    fi
}

admin=(--cacert "$CA" -H "Authorization: Bearer $FLEETS_ADMIN_TOKEN" -H "Content-Type: application/json")
check "admin: register thermostat-001" '"thingName":"thermostat-001"' -- \
    curl -X PUT "https://$host/admin/v1/things/thermostat-001" "${admin[@]}"
check "admin: desired targetTemperature" '"targetTemperature":24' -- \
    curl -X PUT "https://$host/admin/v1/things/thermostat-001/shadow/desired" "${admin[@]}" -d '{"targetTemperature": 24}'
check "admin: command 8d88790c-..." '"executionId":"8d88790c-9171-4526-8637-e6d6168bce22"' -- \
    curl -X POST "https://$host/admin/v1/things/thermostat-001/commands" "${admin[@]}" \
    -d '{"action": "setTemperature", "params": {"target": 24}, "ttl": 600, "executionId": "8d88790c-9171-4526-8637-e6d6168bce22"}'
job_json="$(curl -sS --fail-with-body -X POST "https://$host/admin/v1/jobs" "${admin[@]}" \
    -d '{"document": {"operation": "ota", "version": "2.0.0"}, "targets": {"thingNames": ["thermostat-001"]}, "description": "seed job"}')"
jobId="$(field jobId "$job_json")"
[[ -n "$jobId" ]] || { echo "FAIL admin: create job: $job_json" >&2; exit 1; }
echo "ok   admin: create job $jobId"

# ---- the seed document's commands, as written, plus --cacert ----------------------------
AUTH="Basic $(printf '%s:%s' "$FLEETS_API_KEY" "$FLEETS_API_SECRET" | base64)"

check "seed: report shadow state" '"clientToken":"tok-001"' -- \
curl -X POST https://$host/api/v1/thing-datas/shadow/reported --cacert "$CA" \
  -H "Content-Type: application/json" \
  -H "Authorization: $AUTH" \
  -d '{
    "thingName": "thermostat-001",
    "state": {
      "reported": {
        "temperature": 21.5,
        "humidity": 58
      }
    },
    "clientToken": "tok-001",
    "version": 0
  }'

check "seed: read the current shadow" '"delta":{"targetTemperature":24}' -- \
curl https://$host/api/v1/thing-datas/thermostat-001/shadow --cacert "$CA" \
  -H "Authorization: $AUTH"

check "seed: publish event" '"eventId"' -- \
curl -X POST https://$host/api/v1/thing-datas/events --cacert "$CA" \
  -H "Content-Type: application/json" \
  -H "Authorization: $AUTH" \
  -d '{
    "thingName": "thermostat-001",
    "eventType": "highTemperature",
    "severity": "warn",
    "timestamp": 1748390400000,
    "data": { "currentTemp": 45.2 }
  }'

check "seed: submit command response" '"status":"SUCCEEDED"' -- \
curl -X POST https://$host/api/v1/thing-datas/command/response --cacert "$CA" \
  -H "Content-Type: application/json" \
  -H "Authorization: $AUTH" \
  -d '{
    "thingName": "thermostat-001",
    "executionId": "8d88790c-9171-4526-8637-e6d6168bce22",
    "status": "SUCCEEDED",
    "result": { "currentTemperature": 24 },
    "timestamp": 1748390405
  }'

check "seed: request pending jobs" "\"jobId\":\"$jobId\"" -- \
curl -X POST https://$host/api/v1/thing-datas/jobs/get --cacert "$CA" \
  -H "Content-Type: application/json" \
  -H "Authorization: $AUTH" \
  -d '{"thingName": "thermostat-001", "clientToken": "req-1"}'

check "seed: report job execution status" '"status":"SUCCEEDED"' -- \
curl -X POST https://$host/api/v1/thing-datas/jobs/$jobId/update --cacert "$CA" \
  -H "Content-Type: application/json" \
  -H "Authorization: $AUTH" \
  -d '{
    "thingName": "thermostat-001",
    "status": "SUCCEEDED",
    "statusDetails": { "installedVersion": "2.0.0" },
    "expectedVersion": 1,
    "clientToken": "req-3"
  }'

# ---- the two endpoints the seed lists without a curl example ------------------------------
job2="$(field jobId "$(curl -sS --fail-with-body -X POST "https://$host/admin/v1/jobs" "${admin[@]}" \
    -d '{"document": {"operation": "reboot"}, "targets": {"thingNames": ["thermostat-001"]}}')")"
check "start the next pending job" "\"jobId\":\"$job2\"" -- \
curl -X POST https://$host/api/v1/thing-datas/jobs/start-next --cacert "$CA" \
  -H "Content-Type: application/json" \
  -H "Authorization: $AUTH" \
  -d '{"thingName": "thermostat-001", "clientToken": "req-2"}'
check "get a specific job execution" '"status":"IN_PROGRESS"' -- \
curl -X POST https://$host/api/v1/thing-datas/jobs/$job2/get --cacert "$CA" \
  -H "Content-Type: application/json" \
  -H "Authorization: $AUTH" \
  -d '{"thingName": "thermostat-001"}'

if [[ -n "$emu_pid" ]]; then
    kill -TERM "$emu_pid"
    status=0
    wait "$emu_pid" || status=$?
    emu_pid=""
    if [[ $status -eq 0 ]]; then echo "ok   emulator exited 0 on SIGTERM"; passed=$((passed + 1)); else echo "FAIL emulator exit status $status" >&2; failed=$((failed + 1)); fi
fi

echo "seed_curl: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
