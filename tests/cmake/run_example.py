#!/usr/bin/env python3
"""Runs a libfleets C example against a freshly started fleets-emulator and checks the outcome.

    run_example.py --emulator PATH --scenario thermostat|job_agent|device_loop [--timeout S] -- CMD...

CMD is the example, possibly behind a wrapper (qemu-user for cross builds, valgrind). The
driver starts the emulator on a free loopback port with a generated CA (HTTPS), reads its
ready line, prepares the scenario through the admin API (/admin/v1, Bearer token), runs CMD
with FLEETS_ENDPOINT / FLEETS_API_KEY / FLEETS_API_SECRET / FLEETS_CA_FILE set, and then checks
through the admin API that the device's calls had their effect. Exit 0 only if CMD exited 0
and every check passed. Only the Python standard library is used.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def log(msg):
    print(f"[run_example] {msg}", flush=True)


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)
    log(f"ok: {what}")


class Emulator:
    """A fleets-emulator process and a small client for its admin API."""

    def __init__(self, binary, workdir, ready_timeout):
        self.ca_out = os.path.join(workdir, "ca.pem")
        args = [binary, "--listen", "127.0.0.1:0", "--ca-out", self.ca_out]
        log("starting " + " ".join(args))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self._read_ready_line(ready_timeout)
        try:
            ready = json.loads(line)
        except ValueError:
            self.stop()
            raise CheckFailed(f"emulator ready line is not JSON: {line!r}")
        if ready.get("event") != "ready":
            self.stop()
            raise CheckFailed(f"unexpected emulator line: {line!r}")
        self.ready = ready
        self.endpoint = ready["endpoint"]
        self.ca_file = ready["ca_file"]
        self.ssl = ssl.create_default_context(cafile=self.ca_file)
        # Keep draining stdout so the emulator never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        log(f"emulator ready: {self.endpoint} (CA {self.ca_file})")

    def _read_ready_line(self, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not box or not box[0]:
            self.stop()
            raise CheckFailed(f"fleets-emulator printed no ready line within {timeout} s")
        return box[0].strip()

    def _drain(self):
        for _ in self.proc.stdout:
            pass

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def admin(self, method, path, body=None):
        url = self.endpoint.rstrip("/") + "/admin/v1/" + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.ready["admin_token"])
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=10) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise CheckFailed(f"admin {method} {path}: HTTP {e.code}: {e.read()[:500]!r}")

    def device_env(self):
        env = dict(os.environ)
        env.update(
            FLEETS_ENDPOINT=self.endpoint,
            FLEETS_API_KEY=self.ready["api_key"],
            FLEETS_API_SECRET=self.ready["api_secret"],
            FLEETS_CA_FILE=self.ca_file,
        )
        return env


def q(s):
    return urllib.parse.quote(s, safe="")


# ---------------------------------------------------------------------------- scenarios
# Each scenario: setup(emu) -> extra example arguments; check(emu, stdout).


class Thermostat:
    thing = "thermostat-ci-001"
    temperature = 45.2

    def setup(self, emu):
        emu.admin("PUT", f"things/{q(self.thing)}")
        shadow = emu.admin("PUT", f"things/{q(self.thing)}/shadow/desired", {"targetTemperature": 24.5, "mode": "cool"})
        log(f"admin: desired state set, shadow version {shadow['version']}")
        self.desired_version = shadow["version"]
        return ["--thing", self.thing, "--temperature", str(self.temperature), "--threshold", "40"]

    def check(self, emu, out):
        shadow = emu.admin("GET", f"things/{q(self.thing)}/shadow")
        log(f"admin: shadow {json.dumps(shadow)}")
        rep = shadow["reported"]
        expect(rep.get("temperature") == self.temperature, "reported temperature arrived")
        expect(rep.get("humidity") == 58, "reported humidity arrived")
        expect(rep.get("targetTemperature") == 24.5, "delta targetTemperature applied and reported")
        expect(rep.get("mode") == "cool", "delta mode applied and reported")
        expect(shadow["delta"] == {}, "delta is empty after the device reported")
        hist = emu.admin("GET", f"things/{q(self.thing)}/shadow/history")["history"]
        reports = [h for h in hist if "reported" in h.get("state", {})]
        expect(len(reports) == 2, f"two reports in the shadow history (got {len(reports)})")
        expect(shadow["version"] == self.desired_version + 2, "shadow version advanced by the two reports")
        events = emu.admin("GET", f"things/{q(self.thing)}/events")["events"]
        high = [e for e in events if e.get("eventType") == "highTemperature"]
        expect(len(high) == 1, "one highTemperature event published")
        ev = high[0]
        expect(ev.get("severity") == "warn", "event severity is warn")
        expect(ev.get("data", {}).get("currentTemp") == self.temperature, "event data.currentTemp is the temperature")
        now_ms = time.time() * 1000
        expect(abs(ev.get("timestamp", 0) - now_ms) < 600_000, "event timestamp is 'now' in Unix milliseconds")


class JobAgent:
    """examples-c/job_agent.c, the OTA agent: shadow sync, an updateFirmware job whose image the
    emulator serves (downloaded, verified, installed, "rebooted": the agent exits 3 and is run
    again), a job with an unknown action (REJECTED by libfleets), another device's job."""

    thing = "thermostat-ci-002"
    # The agent exits 3 to be started again after its "reboot".
    restart_exit_code = 3
    max_runs = 4

    def setup(self, emu):
        self.tmp = tempfile.mkdtemp(prefix="fleets-ctest-agent-")
        for d in ("state", "fw"):
            os.makedirs(os.path.join(self.tmp, d))
        emu.admin("PUT", f"things/{q(self.thing)}")
        emu.admin("PUT", f"things/{q(self.thing)}/shadow/desired", {"autoReboot": True, "color": "blue"})
        self.image = emu.admin("POST", "files/thermostat-2.0.0.bin", {"size": 300000, "seed": 2})
        emu.admin("POST", "jobs", {
            "jobId": "fw-2-0-0",
            "document": {"action": "updateFirmware",
                         "params": {"version": "2.0.0", "url": self.image["url"], "sha256": self.image["sha256"]}},
            "targets": {"thingNames": [self.thing]},
        })
        emu.admin("POST", "jobs", {
            "jobId": "recovery-reboot",
            "document": {"action": "rebootIntoRecovery"},
            "targets": {"thingNames": [self.thing]},
        })
        # A job for another device must stay untouched.
        emu.admin("POST", "jobs", {
            "jobId": "other-device-job",
            "document": {"action": "updateFirmware", "params": {}},
            "targets": {"thingNames": ["thermostat-other"]},
        })
        log(f"admin: 2 jobs queued, image {self.image['name']} ({self.image['size']} bytes) served")
        return ["--thing", self.thing, "--state-dir", os.path.join(self.tmp, "state"),
                "--firmware-dir", os.path.join(self.tmp, "fw")]

    def check(self, emu, out):
        try:
            ok = emu.admin("GET", f"jobs/fw-2-0-0/things/{q(self.thing)}")
            log(f"admin: execution fw-2-0-0 {json.dumps(ok)}")
            expect(ok["status"] == "SUCCEEDED", "job fw-2-0-0 reached SUCCEEDED")
            expect(ok["statusDetails"] == {"installedVersion": "2.0.0"}, "SUCCEEDED statusDetails carry installedVersion")
            with open(os.path.join(self.tmp, "fw", "firmware.bin"), "rb") as f:
                installed = hashlib.sha256(f.read()).hexdigest()
            expect(installed == self.image["sha256"], "the installed image is the verified download")
            reqs = emu.admin("GET", f"files/{q(self.image['name'])}/requests")["requests"]
            expect(len(reqs) == 1, "the image was downloaded once (not again after the reboot)")
            expect(reqs[0]["authorization_present"], "the endpoint's own file server got the credentials")
            bad = emu.admin("GET", f"jobs/recovery-reboot/things/{q(self.thing)}")
            log(f"admin: execution recovery-reboot {json.dumps(bad)}")
            expect(bad["status"] == "REJECTED", "job recovery-reboot (no handler) reached REJECTED")
            expect("rebootIntoRecovery" in bad["statusDetails"].get("reason", ""), "REJECTED statusDetails carry the reason")
            other = emu.admin("GET", "jobs/other-device-job/things/thermostat-other")
            expect(other["status"] == "QUEUED", "the other device's job stayed QUEUED")
            shadow = emu.admin("GET", f"things/{q(self.thing)}/shadow")
            log(f"admin: shadow {json.dumps(shadow)}")
            expect(shadow["reported"].get("autoReboot") is True, "desired autoReboot applied and reported")
            expect(shadow["delta"] == {"color": "blue"}, "the unsupported desired color stays in the delta")
            expect(shadow["reported"].get("firmwareVersion") == "2.0.0", "the new firmware version reported after the reboot")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class DeviceLoop:
    """The outbox loop through a real outage: once the device has delivered two ticks, the
    emulator's device port goes offline in blackhole mode (connections are accepted and never
    answered, as behind a dead link) for three ticks of the device, then comes back. Every
    reading must arrive, once, in order."""

    thing = "thermostat-ci-003"
    ticks = 8

    def setup(self, emu):
        emu.admin("PUT", f"things/{q(self.thing)}")
        self.dir = os.path.join(os.path.dirname(emu.ca_out), "outbox")
        return ["--thing", self.thing, "--dir", self.dir, "--ticks", str(self.ticks), "--interval-ms", "200"]

    def drive(self, emu, argv, timeout):
        """Runs the example, pausing the emulator while it runs; returns (exit code, stdout)."""
        p = subprocess.Popen(argv, env=emu.device_env(), stdout=subprocess.PIPE, text=True)
        lines, paused, offline = [], False, 0
        deadline = time.monotonic() + timeout
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        try:
            for line in p.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                lines.append(line)
                if not paused and not offline and line.startswith("tick 1: online"):
                    self.outage(emu, "offline", {"mode": "blackhole"})
                    paused = True
                    log("outage: device port offline (blackhole)")
                elif paused and ": offline" in line:
                    offline += 1
                    if offline == 3:
                        self.outage(emu, "online")
                        paused = False
                        log("outage over: device port online")
            p.wait(max(1, deadline - time.monotonic()))
        finally:
            killer.cancel()
            if paused:
                self.outage(emu, "online")
        self.offline = offline
        return p.returncode, "".join(lines)

    @staticmethod
    def outage(emu, path, body=None):
        """POST to the admin-only port, which stays up while the device port is offline."""
        url = emu.ready["admin_endpoint"].rstrip("/") + "/admin/v1/" + path
        req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST")
        req.add_header("Authorization", "Bearer " + emu.ready["admin_token"])
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=emu.ssl, timeout=10) as r:
            r.read()

    def check(self, emu, out):
        expect(self.offline == 3, "the device saw the outage (3 offline ticks)")
        expect("all delivered" in out, "the device drained its outbox")
        events = emu.admin("GET", f"things/{q(self.thing)}/events")["events"]
        ticks = [e["data"]["tick"] for e in events]
        log(f"admin: event ticks {ticks}")
        first = sorted(set(ticks), key=ticks.index)
        expect(first == list(range(self.ticks)), "every reading arrived, in order")
        # Nothing sent into the blackhole is handled, so each reading arrives once.
        expect(len(ticks) == len(first), "no reading repeated")
        shadow = emu.admin("GET", f"things/{q(self.thing)}/shadow")
        expect(shadow["reported"].get("tick") == self.ticks - 1, "the shadow holds the last reading")
        hist = emu.admin("GET", f"things/{q(self.thing)}/shadow/history")["history"]
        expect(len(hist) < self.ticks, f"reports queued during the outage were merged ({len(hist)} reports for {self.ticks} ticks)")


SCENARIOS = {"thermostat": Thermostat, "job_agent": JobAgent, "device_loop": DeviceLoop}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emulator", required=True, help="path of the fleets-emulator binary")
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed for CMD")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD... (the example, maybe wrapped)")
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("missing -- CMD")
    if not os.access(a.emulator, os.X_OK):
        log(f"fleets-emulator not found at {a.emulator} (cargo build -p fleets-emulator)")
        return 1

    scenario = SCENARIOS[a.scenario]()
    with tempfile.TemporaryDirectory(prefix="fleets-ctest-") as tmp:
        emu = None
        try:
            emu = Emulator(a.emulator, tmp, ready_timeout=30)
            argv = cmd + scenario.setup(emu)
            if hasattr(scenario, "drive"):
                log("running " + " ".join(argv))
                t0 = time.monotonic()
                returncode, stdout = scenario.drive(emu, argv, a.timeout)
                log(f"example exited {returncode} after {time.monotonic() - t0:.1f} s")
            else:
                stdout = ""
                # A scenario may ask for restarts (the OTA agent exits 3 to be "rebooted").
                for _ in range(getattr(scenario, "max_runs", 1)):
                    log("running " + " ".join(argv))
                    t0 = time.monotonic()
                    p = subprocess.run(argv, env=emu.device_env(), timeout=a.timeout,
                                       stdout=subprocess.PIPE, text=True)
                    sys.stdout.write(p.stdout)
                    sys.stdout.flush()
                    stdout += p.stdout
                    returncode = p.returncode
                    log(f"example exited {returncode} after {time.monotonic() - t0:.1f} s")
                    if returncode != getattr(scenario, "restart_exit_code", None):
                        break
                    log("the example asked to be started again")
            expect(returncode == 0, "example exited 0")
            scenario.check(emu, stdout)
        except CheckFailed as e:
            log(f"FAILED: {e}")
            return 1
        except subprocess.TimeoutExpired:
            log(f"FAILED: example still running after {a.timeout} s")
            return 1
        finally:
            if emu is not None:
                rc = emu.stop()
                if rc not in (0, -signal.SIGTERM):
                    log(f"FAILED: fleets-emulator exited {rc}")
                    return 1
    log(f"PASSED: {a.scenario}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
