#!/usr/bin/env python3
"""Memory checks of the C side: the C test programs and the C examples, built with
AddressSanitizer + UndefinedBehaviorSanitizer and run, then built plainly and run under
valgrind memcheck, each run against a freshly started fleets-emulator. Any sanitizer report,
valgrind error or leak fails the run.

    memcheck.py [--build-dir DIR] [--cargo-target DIR] [--no-cargo] [--jobs N]
                [--only asan|valgrind] [--program NAME]...

The library is the release libfleets.so (cargo build --release --lib -p fleets); the Rust
side is not instrumented, but ASan intercepts every malloc/free in the process, so a handle
the C program forgets to free is a LeakSanitizer leak. No LeakSanitizer suppression is
needed: what Rust's std keeps until exit (the main thread's handle, which valgrind calls
"possibly lost") is still referenced through an interior pointer, which LSan counts as
reachable. valgrind uses tests/cmake/valgrind.supp, as the ctest valgrind tests do.
The emulator is the host debug build (cargo build -p fleets-emulator), as in the ctest
tests. The emulator driver and the two example scenarios (set-up and checks through the
admin API) come from tests/cmake/run_example.py; the scenarios of the tests/c programs are
the ones of tests/c_programs.rs. Only the Python standard library is used.

Environment: CC (default cc), CARGO (default cargo).
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in tests/cmake
sys.path.insert(0, os.path.join(ROOT, "tests", "cmake"))

import run_example  # noqa: E402  (the emulator driver and the example scenarios)
from run_example import CheckFailed, expect, q  # noqa: E402

ASAN_OPTIONS = "detect_leaks=1:abort_on_error=1"
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1"
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
VALGRIND = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--suppressions=" + os.path.join(ROOT, "tests", "cmake", "valgrind.supp"),
            "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--track-origins=yes"]
# What a sanitizer prints when it finds something (the exit status is checked too).
SANITIZER_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: \w+Sanitizer")
VALGRIND_REPORT = re.compile(r"^==\d+==", re.M)

THING = "thermostat-001"  # tests/common/mod.rs


class DeviceFlow:
    """tests/c/device_flow.c, set up and checked as tests/c_programs.rs::c_device_flow."""

    def setup(self, emu):
        emu.admin("PUT", f"things/{q(THING)}")
        emu.admin("PUT", f"things/{q(THING)}/shadow/desired", {"targetTemperature": 24})
        self.execution_id = emu.admin("POST", f"things/{q(THING)}/commands",
                                      {"action": "setTarget", "params": {"target": 24}, "ttl": 600})["executionId"]
        self.job_id = emu.admin("POST", "jobs", {"document": {"firmware": "2.0.0"},
                                                 "targets": {"thingNames": [THING]}})["jobId"]
        return [], {"FLEETS_TEST_THING": THING, "FLEETS_TEST_EXECUTION_ID": self.execution_id}

    def check(self, emu, out):
        expect("all steps passed" in out, "device_flow printed 'all steps passed'")
        shadow = emu.admin("GET", f"things/{q(THING)}/shadow")
        expect(shadow["reported"].get("targetTemperature") == 24, "reported targetTemperature is 24")
        expect(shadow["delta"] == {}, "delta is empty")
        events = emu.admin("GET", f"things/{q(THING)}/events")["events"]
        expect(events and events[0].get("eventType") == "highTemperature", "highTemperature event published")
        cmd = emu.admin("GET", f"things/{q(THING)}/commands/{q(self.execution_id)}")
        expect(cmd["status"] == "SUCCEEDED", "command answered SUCCEEDED")
        ex = emu.admin("GET", f"jobs/{q(self.job_id)}/things/{q(THING)}")
        expect(ex["status"] == "SUCCEEDED", "job execution SUCCEEDED")
        expect(ex["statusDetails"].get("installedVersion") == "2.0.0", "installedVersion 2.0.0")


class ErrorPaths:
    """tests/c/error_paths.c, as tests/c_programs.rs::c_error_paths."""

    def setup(self, emu):
        emu.admin("PUT", f"things/{q(THING)}")
        return [], {"FLEETS_TEST_THING": THING}

    def check(self, emu, out):
        expect("all checks passed" in out, "error_paths printed 'all checks passed'")


class Workflows:
    """tests/c/workflows.c, as tests/c_programs.rs::c_workflows."""

    def setup(self, emu):
        emu.admin("PUT", f"things/{q(THING)}")
        emu.admin("PUT", f"things/{q(THING)}/shadow/desired", {"targetTemperature": 24, "mode": "eco"})
        self.jobs = [emu.admin("POST", "jobs", {"document": {"action": action},
                                                "targets": {"thingNames": [THING]}})["jobId"]
                     for action in ("probe", "probe", "unknown")]
        self.state_dir = tempfile.mkdtemp(prefix="fleets-memcheck-state-")
        return [], {"FLEETS_TEST_THING": THING, "FLEETS_TEST_STATE_DIR": self.state_dir}

    def check(self, emu, out):
        shutil.rmtree(self.state_dir, ignore_errors=True)
        expect("all checks passed" in out, "workflows printed 'all checks passed'")
        statuses = [emu.admin("GET", f"jobs/{q(j)}/things/{q(THING)}")["status"] for j in self.jobs]
        expect(statuses == ["SUCCEEDED", "FAILED", "REJECTED"], f"job statuses {statuses}")


class Example:
    """An example scenario of run_example.py: arguments only, no extra environment."""

    def __init__(self, scenario):
        self.scenario = scenario

    def setup(self, emu):
        return self.scenario.setup(emu), {}

    def check(self, emu, out):
        self.scenario.check(emu, out)


# name -> (source relative to the repository root, scenario factory)
PROGRAMS = {
    "device_flow": ("tests/c/device_flow.c", DeviceFlow),
    "error_paths": ("tests/c/error_paths.c", ErrorPaths),
    "workflows": ("tests/c/workflows.c", Workflows),
    "thermostat": ("examples-c/thermostat.c", lambda: Example(run_example.Thermostat())),
    "job_agent": ("examples-c/job_agent.c", lambda: Example(run_example.JobAgent())),
}


def log(msg):
    print(f"[memcheck] {msg}", flush=True)


# run_example's expect() and scenarios log through run_example.log; runs go in parallel, so
# each thread collects its own lines (printed together when the run ends).
_sink = threading.local()
run_example.log = lambda msg: getattr(_sink, "say", log)(msg)


def sh(cmd, **kw):
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def build(args):
    """cargo builds, then the library staged with its SONAME, then 2 builds of each program."""
    if not args.no_cargo:
        cargo = os.environ.get("CARGO", "cargo")
        env = dict(os.environ, CARGO_TARGET_DIR=args.cargo_target)
        sh([cargo, "build", "--locked", "--release", "--lib", "-p", "fleets"], cwd=ROOT, env=env)
        sh([cargo, "build", "--locked", "-p", "fleets-emulator", "--bin", "fleets-emulator"], cwd=ROOT, env=env)
    lib_dir = os.path.join(args.build_dir, "lib")
    os.makedirs(lib_dir, exist_ok=True)
    # A copy, not a link: another cargo build may rewrite target/ while we run.
    shutil.copyfile(os.path.join(args.cargo_target, "release", "libfleets.so"),
                    os.path.join(lib_dir, "libfleets.so.0"))
    link = os.path.join(lib_dir, "libfleets.so")
    if not os.path.islink(link):
        os.symlink("libfleets.so.0", link)
    cc = os.environ.get("CC", "cc")
    common = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g",
              "-I", os.path.join(ROOT, "include"), "-I", os.path.join(ROOT, "tests", "c")]
    link_args = ["-L", lib_dir, f"-Wl,-rpath,{lib_dir}", "-lfleets"]
    exes = {}
    for mode in args.modes:
        flags = ["-O1"] + (SANITIZE if mode == "asan" else [])
        for name in args.programs:
            exe = os.path.join(args.build_dir, mode, name)
            os.makedirs(os.path.dirname(exe), exist_ok=True)
            sh([cc] + common + flags + [os.path.join(ROOT, PROGRAMS[name][0]), "-o", exe] + link_args)
            exes[(mode, name)] = exe
    return exes


def run_one(args, mode, name, exe):
    """Runs one program against its own emulator; returns (ok, transcript)."""
    lines = []

    def say(msg):
        lines.append(f"[{mode} {name}] {msg}")

    _sink.say = say
    scenario = PROGRAMS[name][1]()
    emulator = os.path.join(args.cargo_target, "debug", "fleets-emulator")
    ok = False
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"fleets-memcheck-{mode}-{name}-") as tmp:
        emu = None
        try:
            emu = run_example.Emulator(emulator, tmp, ready_timeout=30)
            argv, extra_env = scenario.setup(emu)
            env = emu.device_env()
            env.update(extra_env)
            if mode == "asan":
                cmd = [exe] + argv
                env.update(ASAN_OPTIONS=ASAN_OPTIONS, UBSAN_OPTIONS=UBSAN_OPTIONS)
            else:
                cmd = VALGRIND + [exe] + argv
            # An example may ask to be started again (the OTA agent's "reboot": exit 3).
            inner = getattr(scenario, "scenario", scenario)
            out = ""
            for _ in range(getattr(inner, "max_runs", 1)):
                say("running " + " ".join(cmd))
                p = subprocess.run(cmd, env=env, timeout=args.timeout, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, errors="replace")
                lines.extend("  | " + ln for ln in p.stdout.splitlines())
                lines.extend("  ! " + ln for ln in p.stderr.splitlines())
                out += p.stdout
                if mode == "asan":
                    expect(not SANITIZER_REPORT.search(p.stderr), "no sanitizer report on stderr")
                else:
                    expect(not VALGRIND_REPORT.search(p.stderr), "no valgrind report on stderr")
                if p.returncode != getattr(inner, "restart_exit_code", None):
                    break
            expect(p.returncode == 0, f"exit status 0 (got {p.returncode})")
            scenario.check(emu, out)
            ok = True
        except CheckFailed as e:
            say(f"FAILED: {e}")
        except subprocess.TimeoutExpired:
            say(f"FAILED: still running after {args.timeout} s")
        finally:
            if emu is not None:
                rc = emu.stop()
                if rc not in (0, -signal.SIGTERM):
                    say(f"FAILED: fleets-emulator exited {rc}")
                    ok = False
    say(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s")
    return ok, "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build", "memcheck"))
    ap.add_argument("--cargo-target", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--no-cargo", action="store_true",
                    help="use the libfleets.so and fleets-emulator already in the cargo target dir")
    ap.add_argument("--only", choices=["asan", "valgrind"])
    ap.add_argument("--program", action="append", choices=sorted(PROGRAMS))
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    args.cargo_target = os.path.abspath(args.cargo_target)
    args.modes = [args.only] if args.only else ["asan", "valgrind"]
    args.programs = args.program or list(PROGRAMS)
    if "valgrind" in args.modes and shutil.which("valgrind") is None:
        log("valgrind not found (apt-get install valgrind)")
        return 1

    t0 = time.monotonic()
    exes = build(args)
    log(f"built {len(exes)} programs in {time.monotonic() - t0:.1f} s; running, {args.jobs} at a time")
    # valgrind runs are the slow ones: start them first.
    order = sorted(exes, key=lambda k: k[0] != "valgrind")
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_one, args, mode, name, exes[(mode, name)]): (mode, name)
                   for mode, name in order}
        for fut in concurrent.futures.as_completed(futures):
            ok, transcript = fut.result()
            print(transcript, flush=True)
            if not ok:
                failed.append("%s %s" % futures[fut])
    took = time.monotonic() - t0
    if failed:
        log(f"FAILED ({took:.1f} s): " + ", ".join(sorted(failed)))
        return 1
    log(f"PASSED ({took:.1f} s): {len(exes)} runs, no sanitizer report, no valgrind error or leak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
