#!/usr/bin/env python3
"""Python row of bench/: ``fleets.Client.shadow_report`` vs ``requests.Session.post`` and
``httpx.Client.post`` against one running fleets-emulator (keep-alive, same CA verification,
same body), one thread each. Rounds alternate between the clients so drift hits all alike.

    py_bench.py ENDPOINT CA_FILE API_KEY API_SECRET --seconds 2 --rounds 3

Prints one JSON object: {"fleets": [req/s per round], "requests": [...], "httpx": [...]}.
fleets comes from PYTHONPATH (bindings/python/src) with $FLEETS_LIBRARY, run by bench/run.sh.
"""

import argparse
import base64
import json
import ssl
import time

import fleets
import httpx
import requests

THING = "bench-001"
TOKEN = "tok-001"
STATE = {"temperature": 21.5, "humidity": 58, "firmware": "2.0.0", "uptime": 123456}


def timed(fn, seconds):
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        fn()
        n += 1
        if n % 16 == 0 and time.perf_counter() >= end:
            return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("ca")
    ap.add_argument("key")
    ap.add_argument("secret")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    url = f"{a.endpoint}/api/v1/thing-datas/shadow/reported"
    auth = "Basic " + base64.b64encode(f"{a.key}:{a.secret}".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}

    client = fleets.Client(a.endpoint, a.key, a.secret, ca_file=a.ca)

    def via_fleets():
        client.shadow_report(THING, STATE, client_token=TOKEN)

    session = requests.Session()
    session.headers.update(headers)

    def body():
        # what the binding sends: {"thingName","state":{"reported"},"clientToken"}
        return json.dumps({"thingName": THING, "state": {"reported": STATE}, "clientToken": TOKEN},
                          separators=(",", ":")).encode()

    def via_requests():
        r = session.post(url, data=body(), verify=a.ca)  # CA per request: see bench_report.py
        r.raise_for_status()
        r.json()

    hx = httpx.Client(verify=ssl.create_default_context(cafile=a.ca), headers=headers)

    def via_httpx():
        r = hx.post(url, content=body())
        r.raise_for_status()
        r.json()

    impls = {"fleets": via_fleets, "requests": via_requests, "httpx": via_httpx}
    for fn in impls.values():  # warm up: connect, caches
        timed(fn, 0.2)
    out = {k: [] for k in impls}
    for _ in range(a.rounds):
        for name, fn in impls.items():
            out[name].append(timed(fn, a.seconds))
    client.close()
    session.close()
    hx.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
