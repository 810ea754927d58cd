"""Every Client method against a fleets-emulator: success paths and error mapping."""

from __future__ import annotations

import pickle
import re
from typing import Any

import pytest

import fleets
from conftest import Emulator

THING = "thermostat-001"
R = fleets.ResultCode
GENERATED_TOKEN = re.compile(r"fleets-[0-9a-f]{16}")


# ------------------------------------------------------------------ construction


def test_repr_and_properties(client: fleets.Client, emu: Emulator) -> None:
    assert client.endpoint == emu.endpoint
    assert repr(client) == f"<fleets.Client endpoint={emu.endpoint!r} open>"
    assert emu.api_secret not in repr(client) and emu.api_secret not in str(vars(client))


def test_client_cannot_be_pickled(client: fleets.Client) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(client)


@pytest.mark.parametrize(
    "endpoint",
    ["not a url", "ftp://127.0.0.1", "http://example.com", ""],
)
def test_bad_endpoint_is_config_error(endpoint: str) -> None:
    with pytest.raises(fleets.ConfigError) as ei:
        fleets.Client(endpoint, "k", "super-secret-value")
    assert isinstance(ei.value, ValueError)
    assert ei.value.code == R.ERR_INVALID_CONFIG and ei.value.code_name == "FLEETS_ERR_INVALID_CONFIG"
    assert "super-secret-value" not in str(ei.value) + repr(ei.value)


def test_unreadable_ca_file_is_config_error(emu: Emulator, tmp_path: Any) -> None:
    with pytest.raises(fleets.ConfigError, match="nope.pem"):
        fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=tmp_path / "nope.pem")
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    with pytest.raises(fleets.ConfigError):
        fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=empty)


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"timeout": -1}, {"connect_timeout": 0.0}, {"timeout": float("nan")}])
def test_bad_timeouts(emu: Emulator, kw: Any) -> None:
    with pytest.raises(fleets.InvalidArgument):
        fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, **kw)


def test_wrong_argument_types() -> None:
    with pytest.raises(TypeError):
        fleets.Client(b"https://x", "k", "s")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fleets.Client("https://x", "k", "s", timeout="3")  # type: ignore[arg-type]


def test_from_env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETS_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("FLEETS_API_KEY", emu.api_key)
    monkeypatch.setenv("FLEETS_API_SECRET", emu.api_secret)
    monkeypatch.setenv("FLEETS_CA_FILE", emu.ca_file)
    emu.register(THING)
    with fleets.Client.from_env(timeout=5) as c:
        assert c.endpoint == emu.endpoint
        assert c.shadow_report(THING, {"t": 1})["version"] == 1
    monkeypatch.delenv("FLEETS_API_SECRET")
    with pytest.raises(fleets.ConfigError, match="FLEETS_API_SECRET"):
        fleets.Client.from_env()


def test_from_env_ca_file_argument_overrides(emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("FLEETS_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("FLEETS_API_KEY", emu.api_key)
    monkeypatch.setenv("FLEETS_API_SECRET", emu.api_secret)
    monkeypatch.setenv("FLEETS_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(fleets.ConfigError):
        fleets.Client.from_env()
    monkeypatch.setenv("FLEETS_CA_FILE", "")
    emu.register(THING)
    with fleets.Client.from_env(ca_file=emu.ca_file) as c:
        c.shadow_get(THING)


# ------------------------------------------------------------------ shadow


def test_shadow_report_and_get(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    r = client.shadow_report(THING, {"temperature": 21.5, "humidity": 58, "name": "küche ✓"}, client_token="tok-001")
    assert r["state"]["reported"] == {"temperature": 21.5, "humidity": 58, "name": "küche ✓"}
    assert r["version"] == 1 and r["clientToken"] == "tok-001"
    r = client.shadow_report(THING, {"humidity": None, "nested": {"a": [1, 2]}}, version=1)
    assert r["version"] == 2
    emu.admin("PUT", f"things/{THING}/shadow/desired", {"targetTemperature": 24})
    s = client.shadow_get(THING)
    assert s["reported"] == {"temperature": 21.5, "name": "küche ✓", "nested": {"a": [1, 2]}}
    assert s["desired"] == {"targetTemperature": 24} and s["delta"] == {"targetTemperature": 24}
    assert s["version"] == 3 and isinstance(s["updatedAt"], str)


def test_report_version_conflict(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    client.shadow_report(THING, {"a": 1})
    with pytest.raises(fleets.ConflictError) as ei:
        client.shadow_report(THING, {"a": 2}, version=7)
    e = ei.value
    assert e.http_status == 409 and e.code == R.ERR_CONFLICT and e.code_name == "FLEETS_ERR_CONFLICT"
    assert e.body_json["version"] == 1 and "VersionConflict" in (e.body or "")
    assert e.message and "409" in str(e)


def test_unknown_thing_is_not_found(client: fleets.Client) -> None:
    with pytest.raises(fleets.NotFoundError) as ei:
        client.shadow_get("nobody")
    assert ei.value.http_status == 404 and "nobody" in (ei.value.body or "")
    with pytest.raises(fleets.NotFoundError):
        client.shadow_report("nobody", {"a": 1})


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.shadow_report("bad/name", {"a": 1}),
        lambda c: c.shadow_report("", {"a": 1}),
        lambda c: c.shadow_report("..", {"a": 1}),
        lambda c: c.shadow_report("x" * 129, {"a": 1}),
        lambda c: c.shadow_report("a\0b", {"a": 1}),
        lambda c: c.shadow_report(THING, {"a": float("nan")}),
        lambda c: c.shadow_report(THING, {"a": object()}),
        lambda c: c.shadow_report(THING, {"a": 1}, client_token="x" * 65),
        lambda c: c.shadow_report(THING, {"a": 1}, version=-1),
        lambda c: c.shadow_report(THING, {"a": 1}, client_token="\ud800"),
        lambda c: c.event_publish(THING, ""),
        lambda c: c.event_publish(THING, "e" * 129),
        lambda c: c.event_publish(THING, "e", app_id="a" * 129),
        lambda c: c.event_publish(THING, "e", severity="warning"),
        lambda c: c.event_publish(THING, "e", timestamp_ms=-5),
        lambda c: c.command_respond(THING, "id-1", "DONE"),
        lambda c: c.command_respond(THING, "id-1", "SUCCEEDED", timestamp=-1),
        lambda c: c.jobs_update(THING, "job-1", 0),
        lambda c: c.jobs_update(THING, "job/1", "SUCCEEDED"),
        lambda c: c.jobs_update(THING, "job-1", "SUCCEEDED", expected_version=0),
        lambda c: c.jobs_start_next(THING, step_timeout=0),
        lambda c: c.jobs_describe(THING, "job 1"),
        lambda c: c.jobs_get_pending(THING, client_token="tok\n"),
    ],
)
def test_invalid_arguments_send_nothing(client: fleets.Client, emu: Emulator, call: Any) -> None:
    emu.register(THING)
    with pytest.raises(fleets.InvalidArgument) as ei:
        call(client)
    assert isinstance(ei.value, ValueError) and ei.value.http_status is None
    assert ei.value.code in (R.ERR_INVALID_ARGUMENT, R.ERR_INVALID_JSON, R.ERR_NULL_ARGUMENT)
    assert emu.total() == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.shadow_report(THING, [1, 2]),
        lambda c: c.shadow_report(THING, "{}"),
        lambda c: c.shadow_report(42, {}),
        lambda c: c.shadow_report(THING, {}, version="1"),
        lambda c: c.event_publish(THING, "e", data=[1]),
        lambda c: c.event_publish(THING, "e", timestamp_ms=1.5),
        lambda c: c.jobs_update(THING, "j", "SUCCEEDED", status_details="{}"),
    ],
)
def test_wrong_types_are_type_errors(client: fleets.Client, emu: Emulator, call: Any) -> None:
    with pytest.raises(TypeError):
        call(client)
    assert emu.total() == 0


def test_required_arguments(client: fleets.Client) -> None:
    with pytest.raises(fleets.InvalidArgument, match="required"):
        client.shadow_report(THING, None)  # type: ignore[arg-type]
    with pytest.raises(fleets.InvalidArgument, match="required"):
        client.shadow_get(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ events


@pytest.mark.parametrize("severity,wire", [(fleets.Severity.WARN, "warn"), ("error", "error"), ("INFO", "info"), (None, None)])
def test_event_publish(client: fleets.Client, emu: Emulator, severity: Any, wire: Any) -> None:
    emu.register(THING)
    r = client.event_publish(
        THING, "highTemperature", data={"currentTemp": 45.2}, severity=severity, timestamp_ms=1748390400000, app_id="app-1"
    )
    assert r["thingName"] == THING and r["eventId"]
    (ev,) = emu.admin("GET", f"things/{THING}/events")["events"]
    assert ev["eventType"] == "highTemperature" and ev["timestamp"] == 1748390400000
    assert ev["data"] == {"currentTemp": 45.2} and ev["appId"] == "app-1"
    assert ev.get("severity") == wire


def test_event_publish_defaults(client: fleets.Client, emu: Emulator) -> None:
    import time

    emu.register(THING)
    before = int(time.time() * 1000)
    client.event_publish(THING, "boot")
    (ev,) = emu.admin("GET", f"things/{THING}/events")["events"]
    assert abs(ev["timestamp"] - before) < 60_000
    assert "data" not in ev and "appId" not in ev and "severity" not in ev


# ------------------------------------------------------------------ commands


def test_command_respond(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    exe = emu.admin("POST", f"things/{THING}/commands", {"action": "setTemp", "params": {"t": 24}})["executionId"]
    r = client.command_respond(THING, exe, fleets.ExecutionStatus.SUCCEEDED, result={"currentTemperature": 24}, timestamp=1748390405)
    assert r == {"executionId": exe, "thingName": THING, "status": "SUCCEEDED"}
    cmd = emu.admin("GET", f"things/{THING}/commands/{exe}")
    assert cmd["status"] == "SUCCEEDED" and cmd["result"] == {"currentTemperature": 24}
    with pytest.raises(fleets.ConflictError) as ei:
        client.command_respond(THING, exe, "FAILED")
    assert ei.value.http_status == 409
    with pytest.raises(fleets.NotFoundError):
        client.command_respond(THING, "8d88790c-9171-4526-8637-e6d6168bce22", "rejected")


def test_command_respond_status_strings(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    exe = emu.admin("POST", f"things/{THING}/commands", {"action": "reboot"})["executionId"]
    assert client.command_respond(THING, exe, "in_progress")["status"] == "IN_PROGRESS"
    assert client.command_respond(THING, exe, "REJECTED")["status"] == "REJECTED"


# ------------------------------------------------------------------ jobs


def _job(emu: Emulator, job_id: str, doc: Any = None) -> str:
    body = {"jobId": job_id, "document": doc or {"operation": "firmware-update", "version": "2.0.0"}, "targets": {"thingNames": [THING]}}
    return emu.admin("POST", "jobs", body)["jobId"]  # type: ignore[no-any-return]


def test_job_flow(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    # Retries are on by default: calls without a client token get a generated one, echoed back.
    empty = client.jobs_start_next(THING)
    assert list(empty) == ["clientToken"] and GENERATED_TOKEN.fullmatch(empty["clientToken"])
    pending = client.jobs_get_pending(THING)
    assert GENERATED_TOKEN.fullmatch(pending.pop("clientToken"))
    assert pending == {"inProgressJobs": [], "queuedJobs": []}
    _job(emu, "job-1")
    _job(emu, "job-2")
    p = client.jobs_get_pending(THING, client_token="req-1")
    assert [j["jobId"] for j in p["queuedJobs"]] == ["job-1", "job-2"] and p["clientToken"] == "req-1"
    s = client.jobs_start_next(THING, status_details={"step": "download"}, step_timeout=1800, client_token="req-2")
    ex = s["execution"]
    assert ex["jobId"] == "job-1" and ex["status"] == "IN_PROGRESS" and s["clientToken"] == "req-2"
    assert ex["jobDocument"] == {"operation": "firmware-update", "version": "2.0.0"}
    assert ex["statusDetails"] == {"step": "download"}
    d = client.jobs_describe(THING, "job-1", client_token="req-3")["execution"]
    assert d["jobId"] == "job-1" and d["status"] == "IN_PROGRESS"
    v = d["versionNumber"]
    u = client.jobs_update(THING, "job-1", "SUCCEEDED", status_details={"installedVersion": "2.0.0"}, expected_version=v, client_token="req-4")
    assert u["executionState"]["status"] == "SUCCEEDED" and u["executionState"]["versionNumber"] == v + 1
    assert u["executionState"]["statusDetails"] == {"installedVersion": "2.0.0"} and u["clientToken"] == "req-4"
    assert u["jobDocument"]["version"] == "2.0.0"
    # leaving a terminal state is a conflict
    with pytest.raises(fleets.ConflictError):
        client.jobs_update(THING, "job-1", fleets.ExecutionStatus.FAILED)
    p = client.jobs_get_pending(THING)
    assert [j["jobId"] for j in p["queuedJobs"]] == ["job-2"] and p["inProgressJobs"] == []
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, max_attempts=1) as once:
        # without retries no token is invented
        assert once.jobs_start_next(THING)["execution"]["jobId"] == "job-2"
        assert "clientToken" not in once.jobs_get_pending(THING)


def test_jobs_update_version_mismatch(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    _job(emu, "job-1")
    client.jobs_start_next(THING)
    with pytest.raises(fleets.ConflictError) as ei:
        client.jobs_update(THING, "job-1", "IN_PROGRESS", expected_version=99)
    assert ei.value.http_status == 409 and ei.value.body_json


def test_unknown_job_is_not_found(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    with pytest.raises(fleets.NotFoundError):
        client.jobs_describe(THING, "nope")
    with pytest.raises(fleets.NotFoundError):
        client.jobs_update(THING, "nope", "SUCCEEDED")


# ------------------------------------------------------------------ error mapping


@pytest.mark.parametrize(
    "status,cls,code",
    [
        (400, fleets.BadRequestError, R.ERR_BAD_REQUEST),
        (401, fleets.AuthError, R.ERR_UNAUTHORIZED),
        (403, fleets.ForbiddenError, R.ERR_FORBIDDEN),
        (404, fleets.NotFoundError, R.ERR_NOT_FOUND),
        (409, fleets.ConflictError, R.ERR_CONFLICT),
        (413, fleets.PayloadTooLargeError, R.ERR_PAYLOAD_TOO_LARGE),
        (429, fleets.RateLimitedError, R.ERR_RATE_LIMITED),
        (500, fleets.ServerError, R.ERR_SERVER),
        (503, fleets.ServerError, R.ERR_SERVER),
        (418, fleets.ApiError, R.ERR_HTTP),
        (302, fleets.ApiError, R.ERR_HTTP),
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.shadow_report(THING, {"a": 1}),
        lambda c: c.shadow_get(THING),
        lambda c: c.event_publish(THING, "e"),
        lambda c: c.command_respond(THING, "x-1", "SUCCEEDED"),
        lambda c: c.jobs_get_pending(THING),
        lambda c: c.jobs_start_next(THING),
        lambda c: c.jobs_describe(THING, "j-1"),
        lambda c: c.jobs_update(THING, "j-1", "SUCCEEDED"),
    ],
    ids=["shadow_report", "shadow_get", "event_publish", "command_respond", "jobs_get_pending", "jobs_start_next", "jobs_describe", "jobs_update"],
)
def test_http_status_mapping(emu: Emulator, call: Any, status: int, cls: type, code: int, request: pytest.FixtureRequest) -> None:
    emu.register(THING)
    emu.fault(kind="status", status=status, times=0, body={"code": "Injected", "message": f"status {status}"})
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, initial_backoff=0.01, max_backoff=0.02) as c:
        with pytest.raises(cls) as ei:
            call(c)
    e = ei.value
    assert type(e) is cls and isinstance(e, fleets.FleetsError)
    assert (e.code, e.http_status) == (code, status)
    assert e.body_json == {"code": "Injected", "message": f"status {status}"}
    assert e.retry_after is None
    # the default policy: 3 attempts of the calls that are safe to repeat, on 429/502/503/504
    retried = status in (429, 502, 503, 504) and not any(n in request.node.callspec.id for n in ("event_publish", "command_respond"))
    assert emu.total() == (3 if retried else 1)
    assert ("(after 3 attempts)" in e.message) == retried


def test_wrong_secret_is_auth_error_without_the_secret(emu: Emulator) -> None:
    emu.register(THING)
    secret = "my-very-secret-password-123"
    with fleets.Client(emu.endpoint, emu.api_key, secret, ca_file=emu.ca_file) as c:
        with pytest.raises(fleets.AuthError) as ei:
            c.shadow_report(THING, {"a": 1})
        e = ei.value
        assert e.http_status == 401 and e.code == R.ERR_UNAUTHORIZED
        for text in (str(e), repr(e), e.message, e.body or "", repr(c), repr(e.__dict__)):
            assert secret not in text
        assert secret not in repr(pickle.loads(pickle.dumps(e)).__dict__)


def test_untrusted_certificate_is_tls_error(emu: Emulator) -> None:
    emu.register(THING)
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret) as c:  # Mozilla roots only
        with pytest.raises(fleets.TLSError) as ei:
            c.shadow_get(THING)
    assert isinstance(ei.value, ConnectionError) and ei.value.code == R.ERR_TLS
    assert ei.value.http_status is None


def test_connection_refused(emu: Emulator) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with fleets.Client(f"https://127.0.0.1:{port}", "k", "s", connect_timeout=2) as c:
        with pytest.raises(fleets.FleetsConnectionError) as ei:
            c.shadow_get(THING)
    assert isinstance(ei.value, ConnectionError) and ei.value.code == R.ERR_CONNECT


def test_stall_is_timeout(emu: Emulator) -> None:
    emu.register(THING)
    emu.fault(kind="stall", delay_ms=5000)
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, timeout=0.5) as c:
        with pytest.raises(fleets.FleetsTimeout) as ei:
            c.shadow_get(THING)
    assert isinstance(ei.value, TimeoutError) and ei.value.code == R.ERR_TIMEOUT


@pytest.mark.parametrize("kind", ["garbage", "truncate", "reset"])
def test_broken_connection_is_connection_error(client: fleets.Client, emu: Emulator, kind: str) -> None:
    emu.register(THING)
    emu.fault(kind=kind, times=0)
    with pytest.raises(fleets.FleetsConnectionError) as ei:
        client.shadow_get(THING)
    assert ei.value.code in (R.ERR_IO, R.ERR_CONNECT)
    emu.admin("DELETE", "faults")
    assert client.shadow_get(THING)["version"] == 0


def test_non_json_2xx_is_bad_response(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    emu.fault(kind="status", status=200, body="this is not json")
    with pytest.raises(fleets.BadResponseError) as ei:
        client.shadow_get(THING)
    assert ei.value.code == R.ERR_BAD_RESPONSE and ei.value.http_status == 200


def test_error_with_plain_text_body(emu: Emulator) -> None:
    emu.fault(kind="status", status=502, body="Bad Gateway from a proxy")
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, max_attempts=1) as c:
        with pytest.raises(fleets.ServerError) as ei:
            c.shadow_get(THING)
    assert ei.value.body == "Bad Gateway from a proxy" and ei.value.body_json is None
    assert emu.total() == 1
