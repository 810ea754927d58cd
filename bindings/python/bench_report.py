#!/usr/bin/env python3
"""Throughput of ``fleets.Client.shadow_report`` in a loop next to ``requests.Session``
posting the same body to the same fleets-emulator (same CA verification, keep-alive), in one
run. Prints both rates and their ratio.

    python bindings/python/bench_report.py [--seconds 3] [--rounds 3] [--emulator PATH]

Starts its own emulator (``--emulator``, else $FLEETS_EMULATOR, else target/release then
target/debug fleets-emulator). Needs ``fleets`` installed and ``requests`` (pip install requests).
Rounds alternate between the two clients so that drift affects both alike; each side's rate is
its total calls over its total time.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

import fleets

ROOT = Path(__file__).resolve().parents[2]
THING = "bench-001"
STATE = {"temperature": 21.5, "humidity": 58, "firmware": "2.0.0", "uptime": 123456}


def start_emulator(exe: Path) -> Tuple["subprocess.Popen[bytes]", Dict[str, str]]:
    proc = subprocess.Popen([str(exe), "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = b""
    deadline = time.monotonic() + 30
    while not line.endswith(b"\n"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit(f"{exe} did not print its ready line")
        if select.select([proc.stdout], [], [], 1)[0]:
            line += os.read(proc.stdout.fileno(), 4096)
    return proc, json.loads(line)


def find_emulator(given: str) -> Path:
    if given:
        return Path(given)
    if os.environ.get("FLEETS_EMULATOR"):
        return Path(os.environ["FLEETS_EMULATOR"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    for profile in ("release", "debug"):
        if (target / profile / "fleets-emulator").exists():
            return target / profile / "fleets-emulator"
    sys.exit("no fleets-emulator: run `cargo build --release -p fleets-emulator` or pass --emulator")


def timed(fn: Callable[[], None], seconds: float) -> Tuple[int, float]:
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        fn()
        n += 1
        if n % 16 == 0 and time.perf_counter() >= end:
            break
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each round (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per client (default 3)")
    ap.add_argument("--emulator", default="", help="fleets-emulator binary")
    args = ap.parse_args()

    import requests

    exe = find_emulator(args.emulator)
    proc, ready = start_emulator(exe)
    try:
        endpoint, ca = ready["endpoint"], ready["ca_file"]
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {ready['admin_token']}"
        admin.put(f"{endpoint}/admin/v1/things/{THING}", verify=ca).raise_for_status()

        client = fleets.Client(endpoint, ready["api_key"], ready["api_secret"], ca_file=ca)

        def fleets_once() -> None:
            client.shadow_report(THING, STATE)

        # A default Session. The CA goes with each request: a Session-level `verify` loses to
        # $REQUESTS_CA_BUNDLE when that is set (requests' trust_env behaviour).
        session = requests.Session()
        auth = base64.b64encode(f"{ready['api_key']}:{ready['api_secret']}".encode()).decode()
        session.headers.update({"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        url = f"{endpoint}/api/v1/thing-datas/shadow/reported"

        def requests_once() -> None:
            # the same body the binding sends: {"thingName","state":{"reported"}}; parse the reply too
            body = json.dumps({"thingName": THING, "state": {"reported": STATE}}, separators=(",", ":"))
            r = session.post(url, data=body.encode(), verify=ca)  # the same CA verification
            r.raise_for_status()
            r.json()

        for fn in (fleets_once, requests_once):  # warm up: connections, caches
            timed(fn, 0.3)

        totals = {"fleets": [0, 0.0], "requests": [0, 0.0]}
        for _ in range(args.rounds):
            for name, fn in (("fleets", fleets_once), ("requests", requests_once)):
                n, dt = timed(fn, args.seconds)
                totals[name][0] += n
                totals[name][1] += dt
        stats = admin.get(f"{endpoint}/admin/v1/stats", verify=ca).json()
        client.close()

        rate = {k: n / dt for k, (n, dt) in totals.items()}
        print(f"emulator: {exe} ({endpoint}); {args.rounds} rounds x {args.seconds:g}s per client, one thread each")
        print(f"fleets.Client.shadow_report : {rate['fleets']:8.0f} req/s  ({totals['fleets'][0]} calls)")
        print(f"requests.Session.post       : {rate['requests']:8.0f} req/s  ({totals['requests'][0]} calls)")
        print(f"ratio fleets/requests       : {rate['fleets'] / rate['requests']:8.2f}x")
        print(f"emulator counted {stats['by_endpoint'].get('POST /api/v1/thing-datas/shadow/reported', 0)} report requests")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


if __name__ == "__main__":
    main()
