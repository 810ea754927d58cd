"""Fixtures: a fleets-emulator process (HTTPS, CA from its ready line) and its admin API."""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from hostile_server import HAVE_OPENSSL, make_certificates

REPO = Path(__file__).resolve().parents[3]
HEADER = REPO / "include" / "fleets.h"


def _target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def emulator_binary() -> Path:
    """$FLEETS_EMULATOR, else target/debug/fleets-emulator (built with cargo if missing)."""
    given = os.environ.get("FLEETS_EMULATOR")
    if given:
        return Path(given)
    exe = _target_dir() / "debug" / "fleets-emulator"
    if not exe.exists():
        cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
        subprocess.run([cargo, "build", "-p", "fleets-emulator"], cwd=REPO, check=True)
    return exe


class Emulator:
    """A running fleets-emulator with a small admin client (stdlib only)."""

    def __init__(self, proc: "subprocess.Popen[bytes]", ready: Dict[str, str], ca_file: Optional[str] = None) -> None:
        self.proc = proc
        self.endpoint: str = ready["endpoint"]
        self.ca_file: str = ca_file or ready["ca_file"]
        self.api_key: str = ready["api_key"]
        self.api_secret: str = ready["api_secret"]
        self.admin_token: str = ready["admin_token"]
        url = urllib.parse.urlsplit(self.endpoint)
        assert url.hostname is not None and url.port is not None, self.endpoint
        self.host: str = url.hostname
        self.port: int = url.port
        self.ssl = ssl.create_default_context(cafile=self.ca_file)

    def admin(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {self.admin_token}"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, "/admin/v1/" + path.lstrip("/"), body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            if resp.status != 200:
                raise AssertionError(f"admin {method} {path}: HTTP {resp.status} {text!r}")
            return json.loads(text)
        finally:
            conn.close()

    # helpers
    def register(self, *things: str) -> None:
        for t in things:
            self.admin("PUT", f"things/{t}")

    def fault(self, **rule: Any) -> None:
        self.admin("POST", "faults", rule)

    def stats(self) -> Dict[str, Any]:
        return self.admin("GET", "stats")  # type: ignore[no-any-return]

    def total(self) -> int:
        return int(self.stats()["total"])


def _start(extra: List[str], ca_file: Optional[str] = None) -> Emulator:
    exe = emulator_binary()
    proc = subprocess.Popen(
        [str(exe), "--listen", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"fleets-emulator did not print its ready line: {line!r} {err}")
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            line += chunk
    ready = json.loads(line.decode())
    assert ready["event"] == "ready", ready
    return Emulator(proc, ready, ca_file)


def _stop(emu: Emulator) -> None:
    emu.proc.send_signal(signal.SIGTERM)
    try:
        emu.proc.wait(10)
    except subprocess.TimeoutExpired:
        emu.proc.kill()
        emu.proc.wait()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = _start(["--max-body-bytes", str(2 * 1024 * 1024)])
    try:
        yield emu
    finally:
        _stop(emu)


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The session emulator, reset (no things, jobs, faults; zero stats) for this test."""
    emulator.admin("POST", "reset")
    return emulator


#: The proxied emulator's name: only the test proxy resolves it (to 127.0.0.1).
PROXIED_HOST = "fleets.proxy.test"


@pytest.fixture(scope="session")
def proxied_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator reached as ``https://fleets.proxy.test:PORT``, for calls through a proxy.

    A loopback endpoint never goes through a proxy (as curl's default ``NO_PROXY``), so the
    proxied tests name the emulator ``fleets.proxy.test``, a name that only the test proxy
    resolves; the emulator presents a certificate for it (and for 127.0.0.1, which the admin
    calls use) signed by a CA made with the openssl command.
    """
    if not HAVE_OPENSSL:
        pytest.skip("the openssl command is needed for the proxied emulator's certificate")
    ca, cert, key = make_certificates(tmp_path_factory.mktemp("proxied-emulator"), dns_names=[PROXIED_HOST])
    emu = _start(["--tls-cert", str(cert), "--tls-key", str(key)], ca_file=str(ca))
    emu.endpoint = f"https://{PROXIED_HOST}:{emu.port}"
    try:
        yield emu
    finally:
        _stop(emu)


@pytest.fixture
def proxied(proxied_emulator: Emulator) -> Emulator:
    """The proxied emulator, reset for this test."""
    proxied_emulator.admin("POST", "reset")
    return proxied_emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Any]:
    import fleets

    with fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_file=emu.ca_file, timeout=10) as c:
        yield c
