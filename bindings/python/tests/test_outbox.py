"""fleets.Outbox against the emulator: every kind delivered in order, coalesced reports, an
outage that stops a flush, dead letters, the directory lock, reopening, options, and the
ctypes structs against the header."""

from __future__ import annotations

import ctypes
import re
import socket
import threading
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import fleets
from fleets import _ffi
from conftest import HEADER, Emulator

THING = "thermostat-001"


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[fleets.Outbox]:
    with fleets.Outbox(tmp_path / "outbox") as o:
        yield o


def events(emu: Emulator, thing: str = THING) -> List[Any]:
    return [e["data"]["seq"] for e in emu.admin("GET", f"things/{thing}/events")["events"]]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_kind_is_delivered_in_order(outbox: fleets.Outbox, client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    command = emu.admin("POST", f"things/{THING}/commands", {"action": "reboot"})["executionId"]
    job = emu.admin("POST", "jobs", {"document": {"op": "x"}, "targets": {"thingNames": [THING]}})["jobId"]
    for seq in range(3):
        outbox.enqueue_event(THING, "tick", data={"seq": seq}, severity="warn")
    outbox.enqueue_report(THING, {"temperature": 21.5})
    outbox.enqueue_command_response(THING, command, "SUCCEEDED", result={"ok": True})
    outbox.enqueue_job_update(THING, job, fleets.ExecutionStatus.SUCCEEDED, status_details={"p": 100}, client_token="jt-1")
    stats = outbox.stats()
    assert stats.queued_records == 6 and stats.oldest_age is not None and stats.last_error is None
    assert outbox.flush(client, max_time=30) == 6
    assert events(emu) == [0, 1, 2]
    shadow = emu.admin("GET", f"things/{THING}/shadow")
    assert shadow["reported"] == {"temperature": 21.5}
    history = emu.admin("GET", f"things/{THING}/shadow/history")["history"]
    assert re.fullmatch(r"fleets-[0-9a-f]{16}", history[0]["clientToken"])
    assert emu.admin("GET", f"things/{THING}/commands/{command}")["status"] == "SUCCEEDED"
    assert emu.admin("GET", f"jobs/{job}/things/{THING}")["status"] == "SUCCEEDED"
    stats = outbox.stats()
    assert (stats.queued_records, stats.delivered_records, stats.oldest_age) == (0, 6, None)


def test_reports_are_coalesced(outbox: fleets.Outbox, client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    outbox.enqueue_report(THING, {"a": 1, "gone": True}, client_token="first")
    for i in range(100):
        outbox.enqueue_report(THING, {"a": i})
    outbox.enqueue_report(THING, {"gone": None})
    before = emu.total()
    assert outbox.flush(client) == 102
    assert emu.total() - before == 1
    history = emu.admin("GET", f"things/{THING}/shadow/history")["history"]
    assert [h["clientToken"] for h in history] == ["first"]
    assert emu.admin("GET", f"things/{THING}/shadow")["reported"] == {"a": 99}


def test_an_outage_stops_the_flush_and_keeps_the_order(outbox: fleets.Outbox, client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    for seq in range(10):
        outbox.enqueue_event(THING, "tick", data={"seq": seq})
    with fleets.Client(f"https://127.0.0.1:{closed_port()}", "k", "s", ca_file=emu.ca_file, timeout=5) as offline:
        with pytest.raises(fleets.FleetsConnectionError) as caught:
            outbox.flush(offline, max_time=5)
    assert caught.value.delivered == 0  # type: ignore[attr-defined]
    stats = outbox.stats()
    assert stats.queued_records == 10
    assert isinstance(stats.last_error, fleets.FleetsConnectionError)
    assert outbox.flush(client) == 10
    assert events(emu) == list(range(10))


def test_rejected_records_are_dead_lettered(outbox: fleets.Outbox, client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    outbox.enqueue_event("not-registered", "tick", data={"seq": 0})
    outbox.enqueue_event(THING, "tick", data={"seq": 1})
    assert outbox.flush(client) == 1
    stats = outbox.stats()
    assert stats.dead_lettered_records == 1
    assert isinstance(stats.last_error, fleets.NotFoundError)
    assert stats.last_error.http_status == 404
    assert "dead-lettered" in str(stats.last_error)


def test_a_server_error_is_raised_with_its_status(outbox: fleets.Outbox, client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    outbox.enqueue_event(THING, "tick", data={"seq": 0})
    emu.fault(path_prefix="/api/v1/thing-datas/events", kind="status", status=503, retry_after_s=7)
    with pytest.raises(fleets.ServerError) as caught:
        outbox.flush(client)
    assert caught.value.http_status == 503 and caught.value.retry_after == 7.0
    assert outbox.flush(client) == 1


def test_arguments_are_checked_before_anything_is_stored(outbox: fleets.Outbox) -> None:
    with pytest.raises(fleets.InvalidArgument):
        outbox.enqueue_report("bad thing", {"a": 1})
    with pytest.raises(fleets.InvalidArgument):
        outbox.enqueue_event(THING, "")
    with pytest.raises(fleets.InvalidArgument):
        outbox.enqueue_command_response(THING, "a/b", "FAILED")
    with pytest.raises(fleets.InvalidArgument):
        outbox.enqueue_job_update(THING, "job", "PAUSED")
    with pytest.raises(TypeError):
        outbox.enqueue_report(THING, [1, 2])  # type: ignore[arg-type]
    assert outbox.stats().queued_records == 0


def test_the_directory_is_locked_and_records_survive_a_reopen(tmp_path: Path, client: fleets.Client, emu: Emulator) -> None:
    emu.register(THING)
    first = fleets.Outbox(tmp_path / "o")
    with pytest.raises(fleets.OutboxLockedError, match="open in another outbox handle"):
        fleets.Outbox(tmp_path / "o")
    first.enqueue_event(THING, "tick", data={"seq": 7})
    first.close()
    first.close()  # idempotent
    with pytest.raises(fleets.ClientClosedError):
        first.enqueue_event(THING, "tick")
    with fleets.Outbox(str(tmp_path / "o")) as again:
        assert again.stats().queued_records == 1
        assert again.flush(client) == 1
    assert events(emu) == [7]


def test_options(tmp_path: Path) -> None:
    with pytest.raises(fleets.InvalidArgument, match="sync"):
        fleets.Outbox(tmp_path / "a", sync="sometimes")
    with pytest.raises(fleets.InvalidArgument, match="when_full"):
        fleets.Outbox(tmp_path / "a", when_full="explode")
    with pytest.raises(fleets.InvalidArgument, match="max_bytes"):
        fleets.Outbox(tmp_path / "a", max_bytes=1000)
    with pytest.raises(fleets.InvalidArgument):
        fleets.Outbox(tmp_path / "a", ttl=-1)
    with fleets.Outbox(tmp_path / "b", max_bytes=64 * 1024, when_full="refuse") as o:
        with pytest.raises(fleets.OutboxFullError):
            for seq in range(10_000):
                o.enqueue_event(THING, "tick", data={"seq": seq, "pad": "x" * 200})
        assert o.stats().dropped_records == 0
    with fleets.Outbox(tmp_path / "c", sync="batch", batch_max_delay=0.05, batch_max_records=1000) as o:
        for seq in range(100):
            o.enqueue_event(THING, "tick", data={"seq": seq})
        syncs = o.stats().syncs
        assert syncs <= 3, syncs  # the first segment's creation, maybe the timer
    assert "closed" in repr(o)


def test_threads_share_one_outbox(outbox: fleets.Outbox, client: fleets.Client, emu: Emulator) -> None:
    things = [f"py-thread-{i}" for i in range(4)]
    emu.register(*things)

    def produce(thing: str) -> None:
        for seq in range(25):
            outbox.enqueue_event(thing, "tick", data={"seq": seq})

    threads = [threading.Thread(target=produce, args=(t,)) for t in things]
    for t in threads:
        t.start()
    delivered = 0
    while any(t.is_alive() for t in threads):
        delivered += outbox.flush(client)
    for t in threads:
        t.join()
    delivered += outbox.flush(client)
    assert delivered == 100
    for thing in things:
        assert events(emu, thing) == list(range(25))


def _header_struct(name: str) -> List[str]:
    body = re.search(r"typedef struct \{((?:(?!typedef struct).)*?)\} " + name + ";", HEADER.read_text(), re.S)
    assert body, name
    text = re.sub(r"/\*.*?\*/", " ", body.group(1), flags=re.S)
    return [re.sub(r"\[.*\]", "", decl.split()[-1]) for decl in text.split(";") if decl.strip()]


def test_structs_match_the_header() -> None:
    assert [f[0] for f in _ffi.OutboxOptions._fields_] == _header_struct("fleets_outbox_options")
    assert [f[0] for f in _ffi.OutboxStats._fields_] == _header_struct("fleets_outbox_statistics")
    defines = dict(re.findall(r"^#define\s+(FLEETS_\w+)\s+(.+)$", HEADER.read_text(), re.M))
    for name, value in fleets._outbox.C_CONSTANTS.items():
        expression = defines[name]
        assert re.fullmatch(r"[0-9 ()*]+", expression), expression
        assert eval(expression) == value, name  # digits, spaces, parentheses and * only
    assert fleets._outbox.C_CONSTANTS["FLEETS_OUTBOX_MESSAGE_BYTES"] == _ffi.OUTBOX_MESSAGE_BYTES
    assert ctypes.sizeof(_ffi.OutboxOptions) == 32
    assert ctypes.sizeof(_ffi.OutboxStats) == 11 * 8 + 8 + 256
