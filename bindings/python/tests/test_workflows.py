"""The workflows against a fleets-emulator: Client.shadow_sync, Client.download and JobAgent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

import fleets
from conftest import Emulator

THING = "thermostat-001"
R = fleets.ResultCode


def desired(emu: Emulator, patch: Dict[str, Any]) -> None:
    emu.admin("PUT", f"things/{THING}/shadow/desired", patch)


def shadow(emu: Emulator) -> Dict[str, Any]:
    return emu.admin("GET", f"things/{THING}/shadow")  # type: ignore[no-any-return]


def generated_file(emu: Emulator, name: str, size: int, **options: Any) -> Dict[str, Any]:
    return emu.admin("POST", f"files/{name}", {"size": size, "seed": 7, **options})  # type: ignore[no-any-return]


def requests_of(emu: Emulator, name: str) -> List[Dict[str, Any]]:
    return emu.admin("GET", f"files/{name}/requests")["requests"]  # type: ignore[no-any-return]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ shadow sync


def test_shadow_sync_with_a_callable(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    desired(emu, {"targetTemperature": 24, "led": {"color": "red"}})
    offered: List[Any] = []

    def on_delta(key: str, value: Any) -> bool:
        offered.append((key, value))
        return True

    version = client.shadow_sync(THING, on_delta)
    assert offered == [("led", {"color": "red"}), ("targetTemperature", 24)]
    s = shadow(emu)
    assert s["delta"] == {} and s["reported"] == {"targetTemperature": 24, "led": {"color": "red"}}
    assert version == s["version"] - 1, "the version whose values were applied"
    assert client.shadow_sync(THING, on_delta, applied_version=version) == s["version"]
    assert len(offered) == 2, "in sync: nothing offered"


def test_shadow_sync_with_a_dict_of_handlers(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    desired(emu, {"targetTemperature": 22, "mode": "turbo", "fan": 3})
    applied: Dict[str, Any] = {}
    handlers = {
        "targetTemperature": lambda v: applied.__setitem__("targetTemperature", v),  # None: accepted
        "mode": lambda v: v in ("eco", "comfort"),  # False: declined
    }
    client.shadow_sync(THING, handlers)
    assert applied == {"targetTemperature": 22}
    assert shadow(emu)["delta"] == {"mode": "turbo", "fan": 3}, "declined and unknown keys stay"


def test_shadow_sync_keeps_its_version_in_a_state_file(client: fleets.Client, emu: Emulator, tmp_path: Path) -> None:
    emu.register(THING)
    desired(emu, {"a": 1})
    state = tmp_path / "shadow.json"
    version = client.shadow_sync(THING, lambda k, v: True, state_file=state)
    assert state.exists() and str(version) in state.read_text()
    state.write_text("not json")
    with pytest.raises(fleets.LocalFileError) as ei:
        client.shadow_sync(THING, lambda k, v: True, state_file=state)
    assert ei.value.code == R.ERR_LOCAL_FILE and isinstance(ei.value, OSError)


def test_an_exception_in_the_callback_is_raised_after_the_sync(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    desired(emu, {"a": 1, "b": 2, "c": 3})
    calls: List[str] = []

    def on_delta(key: str, value: Any) -> bool:
        calls.append(key)
        if key == "b":
            raise RuntimeError("cannot apply b")
        return True

    with pytest.raises(RuntimeError, match="cannot apply b"):
        client.shadow_sync(THING, on_delta)
    assert calls == ["a", "b"], "after the exception the rest is declined without calling back"
    assert shadow(emu)["reported"] == {"a": 1}, "what was accepted before it is reported"


def test_shadow_sync_conflict_and_argument_errors(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    desired(emu, {"n": 0})
    n = [0]

    def moving(key: str, value: Any) -> bool:
        n[0] += 1
        desired(emu, {"n": n[0]})
        return True

    with pytest.raises(fleets.ConflictError) as ei:
        client.shadow_sync(THING, moving)
    assert ei.value.http_status == 409
    with pytest.raises(TypeError):
        client.shadow_sync(THING, "not callable")  # type: ignore[arg-type]
    with pytest.raises(fleets.InvalidArgument):
        client.shadow_sync("bad thing", lambda k, v: True)


# ------------------------------------------------------------------ download


def test_download_verifies_and_reports_progress(client: fleets.Client, emu: Emulator, tmp_path: Path) -> None:
    info = generated_file(emu, "fw.bin", 300_000)
    dest = tmp_path / "fw.bin"
    seen: List[Any] = []
    client.download(info["url"], info["sha256"], dest, progress=lambda got, total: seen.append((got, total)))
    assert sha256_of(dest) == info["sha256"]
    assert seen[0] == (0, 300_000) and seen[-1] == (300_000, 300_000)
    assert not (tmp_path / "fw.bin.part").exists()
    assert requests_of(emu, "fw.bin")[0]["authorization_present"]


def test_an_interrupted_download_resumes(emu: Emulator, tmp_path: Path) -> None:
    info = generated_file(emu, "fw.bin", 1_000_000)
    emu.fault(path_prefix="/files/fw.bin", kind="truncate", after_bytes=400_000)
    dest = tmp_path / "fw.bin"
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, max_attempts=1) as c:
        with pytest.raises(fleets.FleetsConnectionError):
            c.download(info["url"], info["sha256"], dest)
        assert (tmp_path / "fw.bin.part").stat().st_size == 400_000
        c.download(info["url"], info["sha256"], dest)
    assert sha256_of(dest) == info["sha256"]
    assert [r["range"] for r in requests_of(emu, "fw.bin")] == [None, "bytes=400000-"]


def test_download_errors(client: fleets.Client, emu: Emulator, tmp_path: Path) -> None:
    info = generated_file(emu, "fw.bin", 200_000)
    dest = tmp_path / "fw.bin"
    with pytest.raises(fleets.HashMismatchError) as ei:
        client.download(info["url"], "0" * 64, dest)
    assert ei.value.code == R.ERR_HASH_MISMATCH and not dest.exists()
    with pytest.raises(fleets.CanceledError):
        client.download(info["url"], info["sha256"], dest, progress=lambda got, total: got < 100_000)
    assert (tmp_path / "fw.bin.part").exists(), "kept for the next call"

    def interrupted(got: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.download(info["url"], info["sha256"], dest, progress=interrupted)
    client.download(info["url"], info["sha256"], dest)
    assert sha256_of(dest) == info["sha256"]

    no_ranges = generated_file(emu, "plain.bin", 200_000, ranges=False)
    emu.fault(path_prefix="/files/plain.bin", kind="truncate", after_bytes=100_000)
    plain = tmp_path / "plain.bin"
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, max_attempts=1) as c:
        with pytest.raises(fleets.FleetsConnectionError):
            c.download(no_ranges["url"], no_ranges["sha256"], plain)
        with pytest.raises(fleets.RangeNotSupportedError):
            c.download(no_ranges["url"], no_ranges["sha256"], plain, restart=False)
        c.download(no_ranges["url"], no_ranges["sha256"], plain)
    assert sha256_of(plain) == no_ranges["sha256"]

    with pytest.raises(fleets.NotFoundError):
        client.download(f"{emu.endpoint}/files/missing", info["sha256"], tmp_path / "m")
    with pytest.raises(fleets.InvalidArgument):
        client.download("http://example.com/fw.bin", info["sha256"], tmp_path / "x")
    with pytest.raises(fleets.LocalFileError):
        client.download(info["url"], info["sha256"], tmp_path / "no-such-dir" / "fw.bin")


# ------------------------------------------------------------------ job agent


def create_job(emu: Emulator, document: Dict[str, Any]) -> str:
    return emu.admin("POST", "jobs", {"document": document, "targets": {"thingNames": [THING]}})["jobId"]  # type: ignore[no-any-return]


def execution(emu: Emulator, job: str) -> Dict[str, Any]:
    return emu.admin("GET", f"jobs/{job}/things/{THING}")  # type: ignore[no-any-return]


def test_job_agent_runs_steps_with_a_gate(client: fleets.Client, emu: Emulator, tmp_path: Path) -> None:
    emu.register(THING)
    info = generated_file(emu, "fw.bin", 100_000)
    job = create_job(emu, {"action": "updateFirmware", "params": {"url": info["url"], "sha256": info["sha256"]}})
    allow = [False]
    seen: List[Any] = []

    def update(step: fleets.JobStep) -> fleets.StepResult:
        seen.append((step.step, step.attempt))
        if step.step == 0:
            client.download(step.document["params"]["url"], step.document["params"]["sha256"], tmp_path / "fw.new")
            step.details = {"downloaded": info["size"]}
            return fleets.StepResult.NEXT_GATED
        step.details = {"installedVersion": "2.0"}
        return "SUCCEEDED"  # type: ignore[return-value]

    agent = fleets.JobAgent(client, THING, tmp_path, {"updateFirmware": update}, gate=lambda step: allow[0])
    assert agent.state_file == str(tmp_path / f"fleets-job-{THING}.json")
    first = agent.run_once()
    assert first == fleets.JobOutcome(fleets.JobOutcomeKind.DEFERRED, job, 1, False)
    e = execution(emu, job)
    assert e["status"] == "IN_PROGRESS"
    assert e["statusDetails"] == {"agentStep": 1, "waitingFor": "gate"}
    allow[0] = True
    done = agent.run_once()
    assert (done.kind, done.resumed) == (fleets.JobOutcomeKind.SUCCEEDED, True)
    assert seen == [(0, 1), (1, 1)]
    assert execution(emu, job)["statusDetails"] == {"installedVersion": "2.0"}
    assert agent.run_once().kind == fleets.JobOutcomeKind.NONE


def test_job_agent_handler_exceptions_and_unknown_actions(client: fleets.Client, emu: Emulator, tmp_path: Path) -> None:
    emu.register(THING)
    flaky = create_job(emu, {"action": "flaky"})
    unknown = create_job(emu, {"action": "selfDestruct"})

    def boom(step: fleets.JobStep) -> fleets.StepResult:
        raise ValueError(f"attempt {step.attempt}")

    agent = fleets.JobAgent(client, THING, tmp_path, {"flaky": boom}, max_attempts=2)
    with pytest.raises(ValueError, match="attempt 1"):
        agent.run_once()
    with pytest.raises(ValueError, match="attempt 2"):
        agent.run_once()
    assert agent.run_once().kind == fleets.JobOutcomeKind.FAILED
    assert execution(emu, flaky)["statusDetails"]["reason"] == "step 0 did not complete in 2 attempts"
    rejected = agent.run_once()
    assert (rejected.kind, rejected.job_id) == (fleets.JobOutcomeKind.REJECTED, unknown)
    assert "selfDestruct" in execution(emu, unknown)["statusDetails"]["reason"]


def test_job_agent_arguments(client: fleets.Client, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        fleets.JobAgent(client, THING, tmp_path, {"a": "not callable"})  # type: ignore[dict-item]
    with pytest.raises(fleets.LocalFileError):
        fleets.JobAgent(client, THING, tmp_path / "missing", {}).run_once()
    assert "fleets.JobAgent" in repr(fleets.JobAgent(client, THING, tmp_path, {"b": print, "a": print}))
    assert os.listdir(tmp_path) == []
