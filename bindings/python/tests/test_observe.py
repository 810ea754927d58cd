"""Observing the library: the log callback routed to ``logging``, per-client counters
(``Client.stats``) and whether a failed call may have reached the server (``request_sent``)."""

from __future__ import annotations

import dataclasses
import logging
import socket
import sys
import threading
from typing import Any, Iterator, List

import pytest

import fleets
from conftest import Emulator

THING = "thermostat-001"
SHADOW_PATH = f"/api/v1/thing-datas/{THING}/shadow"


def make_client(emu: Emulator, **kw: Any) -> fleets.Client:
    kw.setdefault("ca_file", emu.ca_file)
    kw.setdefault("timeout", 10)
    return fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, **kw)


class Records(logging.Handler):
    """Every record of the "fleets" logger, whatever the root logger's configuration."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self._lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_:
            self.records.append(record)

    def at(self, level: int) -> List[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def records() -> Iterator[Records]:
    logger = logging.getLogger("fleets")
    handler = Records()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        fleets.disable_logging()
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# ------------------------------------------------------------------ logging


def test_nothing_is_logged_by_default(emu: Emulator, records: Records) -> None:
    emu.register(THING)
    with make_client(emu) as c:
        c.shadow_get(THING)
        with pytest.raises(fleets.NotFoundError):
            c.shadow_get("nobody")
    assert records.records == []


def test_messages_arrive_at_their_levels(emu: Emulator, records: Records) -> None:
    emu.register(THING)
    fleets.enable_logging(logging.DEBUG)
    with make_client(emu, initial_backoff=0.01, max_backoff=0.02) as c:
        c.shadow_get(THING)
        emu.fault(kind="status", status=503, times=1)
        c.shadow_get(THING)  # one retry
        with pytest.raises(fleets.NotFoundError):
            c.shadow_get("nobody")
    debug, info, warn = records.at(logging.DEBUG), records.at(logging.INFO), records.at(logging.WARNING)
    assert f"GET {SHADOW_PATH} -> 200" in debug[0], debug
    assert len([m for m in debug if m.startswith(f"GET {SHADOW_PATH} -> 200")]) == 2, debug
    assert any(m.startswith("connected to 127.0.0.1:") for m in info), info
    assert any(m.startswith(f"GET {SHADOW_PATH}: ") and "503" in m and "attempt 2 in" in m for m in info), info
    assert len(warn) == 1 and "/api/v1/thing-datas/nobody/shadow failed after" in warn[0] and "404" in warn[0], warn
    assert records.at(logging.ERROR) == []  # 9xx only
    assert all(r.name == "fleets" for r in records.records)


def test_level_filters_at_the_source(emu: Emulator, records: Records) -> None:
    emu.register(THING)
    fleets.enable_logging(logging.WARNING)
    with make_client(emu, initial_backoff=0.01, max_backoff=0.02) as c:
        emu.fault(kind="status", status=503, times=1)
        c.shadow_get(THING)
        with pytest.raises(fleets.NotFoundError):
            c.shadow_get("nobody")
    assert {r.levelno for r in records.records} == {logging.WARNING}
    fleets.enable_logging(logging.CRITICAL)  # libfleets logs nothing that important: off
    with make_client(emu) as c:
        with pytest.raises(fleets.NotFoundError):
            c.shadow_get("nobody")
    assert len(records.records) == 1


def test_turning_logging_off(emu: Emulator, records: Records) -> None:
    emu.register(THING)
    fleets.enable_logging(logging.DEBUG)
    with make_client(emu) as c:
        c.shadow_get(THING)
        n = len(records.records)
        assert n >= 2  # a connection and a request
        fleets.disable_logging()
        c.shadow_get(THING)
        with pytest.raises(fleets.NotFoundError):
            c.shadow_get("nobody")
        fleets.disable_logging()  # idempotent
    assert len(records.records) == n


def test_secret_never_logged(emu: Emulator, records: Records) -> None:
    emu.register(THING)
    fleets.enable_logging(logging.DEBUG)
    wrong = "wr0ng-and-secret-Value-42"
    with fleets.Client(emu.endpoint, emu.api_key, wrong, ca_file=emu.ca_file) as c:
        with pytest.raises(fleets.AuthError):
            c.shadow_report(THING, {"t": 1})
    with make_client(emu) as c:
        c.shadow_report(THING, {"t": 1})
    text = "\n".join(r.getMessage() for r in records.records)
    assert "401" in text
    for secret in (wrong, emu.api_secret):
        assert secret not in text


def test_another_logger_and_replacement(emu: Emulator, records: Records) -> None:
    emu.register(THING)
    mine = logging.getLogger("fleets-test-device")
    handler = Records()
    mine.addHandler(handler)
    mine.setLevel(logging.DEBUG)
    mine.propagate = False
    try:
        fleets.enable_logging(logging.DEBUG, logger=mine)
        with make_client(emu) as c:
            c.shadow_get(THING)
            fleets.enable_logging(logging.DEBUG)  # replaces: back to the "fleets" logger
            c.shadow_get(THING)
        assert len(handler.at(logging.DEBUG)) == 1
        assert len(records.at(logging.DEBUG)) == 1
    finally:
        mine.removeHandler(handler)
    with pytest.raises(TypeError):
        fleets.enable_logging("DEBUG")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fleets.enable_logging(logging.DEBUG, logger="fleets")  # type: ignore[arg-type]


def test_logging_from_many_threads(emu: Emulator, records: Records) -> None:
    """The callback runs on each calling thread, several at once; every record is there, on
    the thread that made the call."""
    emu.register(THING)
    fleets.enable_logging(logging.DEBUG)
    threads, per_thread = 8, 20
    with make_client(emu) as c:
        barrier = threading.Barrier(threads)

        def work() -> None:
            barrier.wait()
            for _ in range(per_thread):
                c.shadow_get(THING)

        workers = [threading.Thread(target=work, name=f"caller-{i}") for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    requests = [r for r in records.records if r.levelno == logging.DEBUG]
    assert len(requests) == threads * per_thread
    assert {r.threadName for r in requests} == {f"caller-{i}" for i in range(threads)}


def test_a_failing_handler_does_not_break_calls(emu: Emulator, records: Records, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler bug")

        def handleError(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handleError bug")

    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    emu.register(THING)
    broken = Broken()
    logging.getLogger("fleets").addHandler(broken)
    try:
        fleets.enable_logging(logging.DEBUG)
        with make_client(emu) as c:
            assert c.shadow_get(THING)["version"] == 0
    finally:
        logging.getLogger("fleets").removeHandler(broken)
    # the exception stopped in the callback: ctypes did not have to report it
    assert unraisable == []
    assert len(records.records) >= 2  # the other handler still got the messages


# ------------------------------------------------------------------ stats


def test_stats_count_calls_requests_connections_and_bytes(emu: Emulator) -> None:
    emu.register(THING)
    with make_client(emu, initial_backoff=0.01, max_backoff=0.02) as c:
        assert c.stats() == fleets.ClientStats()
        c.shadow_report(THING, {"t": 1})
        c.shadow_get(THING)
        s = c.stats()
        assert (s.calls, s.failures, s.requests, s.retries, s.stale_resends, s.connections) == (2, 0, 2, 0, 0, 1)
        assert s.bytes_sent > 200 and s.bytes_received > 200
        assert 0.0 < s.last_latency < 10.0 and isinstance(s.last_latency, float)
        # a retried call: one call, three requests
        emu.fault(kind="status", status=503, times=2)
        c.shadow_get(THING)
        s2 = c.stats()
        assert (s2.calls, s2.requests, s2.retries, s2.failures) == (3, 5, 2, 0)
        assert s2.bytes_sent > s.bytes_sent and s2.bytes_received > s.bytes_received
        # a failure counts; a rejected argument is no call
        with pytest.raises(fleets.NotFoundError):
            c.shadow_get("nobody")
        with pytest.raises(fleets.InvalidArgument):
            c.shadow_get("bad/name")
        s3 = c.stats()
        assert (s3.calls, s3.failures, s3.requests) == (4, 1, 6)


def test_stats_count_stale_connection_resends(emu: Emulator) -> None:
    emu.register(THING)
    with make_client(emu, max_attempts=1) as c:
        c.shadow_get(THING)
        emu.fault(kind="reset", times=1)  # the reused connection breaks before any response byte
        c.shadow_get(THING)
        s = c.stats()
    assert (s.calls, s.requests, s.stale_resends, s.connections, s.failures) == (2, 3, 1, 2, 0)


def test_stats_value_and_after_close(emu: Emulator) -> None:
    emu.register(THING)
    c = make_client(emu)
    c.shadow_get(THING)
    s = c.stats()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.calls = 7  # type: ignore[misc]
    assert s == dataclasses.replace(s) and hash(s) == hash(dataclasses.replace(s))
    c.close()
    assert c.stats() == s  # the counters as they were at close()
    with pytest.raises(fleets.ClientClosedError):
        c.shadow_get(THING)
    assert c.stats() == s


def test_stats_under_concurrency(emu: Emulator) -> None:
    emu.register(THING)
    with make_client(emu) as c:
        workers = [threading.Thread(target=lambda: [c.shadow_get(THING) for _ in range(25)]) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        s = c.stats()
    assert (s.calls, s.requests, s.failures) == (100, 100, 0)
    assert 1 <= s.connections <= 4


# ------------------------------------------------------------------ request_sent


def test_request_sent(emu: Emulator) -> None:
    emu.register(THING)
    with make_client(emu) as c:
        with pytest.raises(fleets.InvalidArgument) as e1:
            c.shadow_get("bad/name")
        assert e1.value.request_sent is False
        with pytest.raises(fleets.NotFoundError) as e2:
            c.shadow_get("nobody")
        assert e2.value.request_sent is True
    with make_client(emu, max_attempts=1) as c:
        emu.fault(kind="truncate", times=1)
        with pytest.raises(fleets.FleetsConnectionError) as e3:
            c.event_publish(THING, "boot")
        assert e3.value.code == fleets.ResultCode.ERR_IO and e3.value.request_sent is True
    with make_client(emu, timeout=0.5) as c:
        emu.fault(kind="stall", delay_ms=3000)
        with pytest.raises(fleets.FleetsTimeout) as e4:
            c.shadow_get(THING)
        assert e4.value.request_sent is True
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with fleets.Client(f"https://127.0.0.1:{port}", "k", "s", max_attempts=1) as c:
        with pytest.raises(fleets.FleetsConnectionError) as e5:
            c.shadow_get(THING)
        assert e5.value.code == fleets.ResultCode.ERR_CONNECT and e5.value.request_sent is False
    with fleets.Client(emu.endpoint, "k", "s", max_attempts=1) as c:  # not trusting the emulator's CA
        with pytest.raises(fleets.TLSError) as e6:
            c.shadow_get(THING)
        assert e6.value.request_sent is False
    c.close()
    with pytest.raises(fleets.ClientClosedError) as e7:
        c.shadow_get(THING)
    assert e7.value.request_sent is False
