"""Large responses, sharing a client between threads, and close() semantics."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

import pytest

import fleets
from fleets import _client
from conftest import Emulator

THING = "thermostat-001"
REPORT_KEY = "POST /api/v1/thing-datas/shadow/reported"
GET_KEY = "GET /api/v1/thing-datas/{thingName}/shadow"


def big_state(n_bytes: int, tag: str = "x") -> Dict[str, Any]:
    chunk = tag * 1000
    return {f"k{i:05d}": chunk for i in range(n_bytes // 1010)}


# ------------------------------------------------------------------ large responses


def test_large_response_is_fetched_without_a_second_request(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    state = big_state(600_000)
    r = client.shadow_report(THING, state)  # the echo is itself ~600 KB
    assert r["state"]["reported"] == state
    s = client.shadow_get(THING)
    assert s["reported"] == state and s["version"] == 1
    by = emu.stats()["by_endpoint"]
    assert by[REPORT_KEY] == 1 and by[GET_KEY] == 1  # never re-sent
    # the thread's buffer grew: the next large call fits directly and small calls still work
    assert _client._tls.cap > 600_000
    assert client.shadow_get(THING)["reported"] == state
    assert client.shadow_report(THING, {"small": 1})["state"]["reported"] == {"small": 1}


def test_response_just_around_the_initial_buffer(emu: Emulator) -> None:
    emu.register(THING)

    def run() -> List[int]:
        sizes = []
        with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file) as c:
            # a fresh thread starts with the initial buffer; walk the body size across it
            for extra in range(-40, 40, 7):
                value = "v" * (_client._INITIAL_BUFFER - 60 + extra)
                r = c.shadow_report(THING, {"s": value})
                assert r["state"]["reported"]["s"] == value
                sizes.append(len(value))
        return sizes

    with ThreadPoolExecutor(1) as ex:
        assert ex.submit(run).result()
    assert emu.stats()["by_endpoint"][REPORT_KEY] == len(range(-40, 40, 7))


def test_large_error_body(client: fleets.Client, emu: Emulator) -> None:
    body = {"code": "Injected", "message": "m" * 300_000}
    emu.fault(kind="status", status=500, body=body)
    with pytest.raises(fleets.ServerError) as ei:
        client.shadow_get(THING)
    assert ei.value.body_json == body
    assert emu.total() == 1


def test_response_over_the_library_limit(client: fleets.Client, emu: Emulator) -> None:
    emu.fault(kind="status", status=200, body={"big": "b" * (1024 * 1024 + 10)})
    with pytest.raises(fleets.BadResponseError):
        client.shadow_get(THING)


# ------------------------------------------------------------------ threads


def test_eight_threads_share_one_client(client: fleets.Client, emu: Emulator) -> None:
    things = [f"dev-{i}" for i in range(8)]
    emu.register(*things)
    n = 25

    def worker(thing: str) -> List[int]:
        versions = []
        for i in range(n):
            versions.append(client.shadow_report(thing, {"i": i, "blob": "z" * (i * 1500)})["version"])
            assert client.shadow_get(thing)["reported"]["i"] == i
        return versions

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(worker, things))
    assert results == [list(range(1, n + 1))] * 8
    by = emu.stats()["by_endpoint"]
    assert by[REPORT_KEY] == 8 * n and by[GET_KEY] == 8 * n


def test_calls_run_in_parallel(client: fleets.Client, emu: Emulator) -> None:
    """Eight calls that each take 400 ms on the server finish together: the GIL is released."""
    emu.register(THING)
    client.shadow_get(THING)  # warm one connection
    delay = 0.4
    emu.fault(kind="delay", delay_ms=int(delay * 1000), times=8, path_prefix="/api/v1/thing-datas/shadow/reported")
    barrier = threading.Barrier(8)

    def worker(i: int) -> int:
        barrier.wait()
        return int(client.shadow_report(THING, {f"t{i}": i})["version"])

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as ex:
        versions = sorted(ex.map(worker, range(8)))
    elapsed = time.monotonic() - t0
    assert versions == list(range(1, 9))
    assert elapsed < 8 * delay / 2, f"8 calls of {delay}s took {elapsed:.2f}s: they did not overlap"


def test_python_threads_run_during_a_call(client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    emu.fault(kind="delay", delay_ms=500)
    ticks = 0
    done = threading.Event()

    def call() -> None:
        client.shadow_get(THING)
        done.set()

    t = threading.Thread(target=call)
    t.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    assert ticks > 50  # the main thread kept running while the call waited


def test_errors_stay_on_their_thread(client: fleets.Client, emu: Emulator) -> None:
    """Per-thread error messages and bodies: each thread sees its own outcome."""
    emu.register(*[f"ok-{i}" for i in range(4)])

    def worker(i: int) -> Any:
        out = []
        for _ in range(20):
            if i % 2:
                try:
                    client.shadow_get(f"missing-{i}")
                except fleets.NotFoundError as e:
                    out.append(f"missing-{i}" in (e.body or "") and f"missing-{i}" in e.message)
            else:
                out.append(client.shadow_get(f"ok-{i // 2}")["version"] == 0)
        return all(out)

    with ThreadPoolExecutor(8) as ex:
        assert all(ex.map(worker, range(8)))


# ------------------------------------------------------------------ close()


def test_close_is_idempotent_and_final(emu: Emulator) -> None:
    emu.register(THING)
    c = fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file)
    c.shadow_get(THING)
    assert not c.closed
    c.close()
    c.close()
    assert c.closed and "closed" in repr(c)
    with pytest.raises(fleets.ClientClosedError) as ei:
        c.shadow_get(THING)
    assert isinstance(ei.value, RuntimeError)
    assert emu.total() == 1


def test_context_manager_closes(emu: Emulator) -> None:
    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file) as c:
        assert not c.closed
    assert c.closed
    with pytest.raises(fleets.ClientClosedError):
        c.shadow_report(THING, {})


def test_close_waits_for_running_calls(emu: Emulator) -> None:
    emu.register(THING)
    emu.fault(kind="delay", delay_ms=400)
    c = fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file)
    started = threading.Event()
    result: List[Any] = []

    def call() -> None:
        started.set()
        result.append(c.shadow_get(THING))

    t = threading.Thread(target=call)
    t.start()
    started.wait()
    time.sleep(0.1)  # the call is now inside the library
    t0 = time.monotonic()
    c.close()
    waited = time.monotonic() - t0
    t.join()
    assert result and result[0]["version"] == 0  # the running call completed normally
    assert waited > 0.1
    with pytest.raises(fleets.ClientClosedError):
        c.shadow_get(THING)


def test_garbage_collected_client_frees_its_handle(emu: Emulator) -> None:
    import gc

    for _ in range(50):
        c = fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file)
        del c
    gc.collect()
