"""The reliability settings: trust anchors, client certificates, the CONNECT proxy, retries,
Retry-After and the response size limit."""

from __future__ import annotations

import base64
import datetime
import math
import pickle
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import fleets
from conftest import PROXIED_HOST, Emulator

THING = "thermostat-001"
R = fleets.ResultCode
GENERATED_TOKEN = re.compile(r"fleets-[0-9a-f]{16}")
GET_KEY = "GET /api/v1/thing-datas/{thingName}/shadow"
REPORT_KEY = "POST /api/v1/thing-datas/shadow/reported"


def make_client(emu: Emulator, **kw: Any) -> fleets.Client:
    kw.setdefault("ca_file", emu.ca_file)
    kw.setdefault("timeout", 10)
    return fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, **kw)


def fast(emu: Emulator, **kw: Any) -> fleets.Client:
    """A client with retries on and tiny backoffs."""
    kw.setdefault("initial_backoff", 0.01)
    kw.setdefault("max_backoff", 0.05)
    return make_client(emu, **kw)


# ------------------------------------------------------------------ a CONNECT proxy


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that records what it was asked. It resolves
    the target itself, as real proxies do, and knows one name nothing else does:
    ``fleets.proxy.test`` is 127.0.0.1 (see the ``proxied`` fixture)."""

    def __init__(self, credentials: Optional[Tuple[str, str]] = None) -> None:
        self.credentials = credentials
        self.requests: List[Tuple[str, Dict[str, str]]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            line, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
            self.requests.append((line, headers))
            method, target, _ = line.split(" ", 2)
            if self.credentials is not None:
                want = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
                if headers.get("proxy-authorization") != want:
                    conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
                    return
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            if host == PROXIED_HOST:
                host = "127.0.0.1"
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                t = threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True)
                t.start()
                self._pipe(conn, upstream)
                t.join(10)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy()
    yield p
    p.close()


@pytest.fixture
def auth_proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy(credentials=("dev", "pr0xy-Passw0rd!"))
    yield p
    p.close()


# ------------------------------------------------------------------ trust anchors


def test_ca_pem_as_text_and_bytes(emu: Emulator) -> None:
    emu.register(THING)
    pem = Path(emu.ca_file).read_text()
    for value in (pem, pem.encode()):
        with make_client(emu, ca_file=None, ca_pem=value) as c:
            assert c.shadow_get(THING)["version"] == 0


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_bad_ca_pem_is_config_error(emu: Emulator, pem: str) -> None:
    with pytest.raises(fleets.ConfigError) as ei:
        fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, ca_pem=pem)
    assert ei.value.code == R.ERR_INVALID_CONFIG and isinstance(ei.value, ValueError)


def test_ca_pem_wrong_types(emu: Emulator) -> None:
    with pytest.raises(TypeError):
        fleets.Client(emu.endpoint, "k", "s", ca_pem=Path(emu.ca_file))  # type: ignore[arg-type]
    with pytest.raises(fleets.InvalidArgument):
        fleets.Client(emu.endpoint, "k", "s", ca_pem=b"\xff\xfe")


def test_system_roots(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The system store is what SSL_CERT_FILE names: pointing it at the emulator's CA makes
    the emulator trusted; the bundled Mozilla roots alone do not."""
    emu.register(THING)
    monkeypatch.setenv("SSL_CERT_FILE", emu.ca_file)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with make_client(emu, ca_file=None, use_system_roots=True) as c:
        assert c.shadow_get(THING)["version"] == 0


def test_system_roots_unusable_is_config_error(emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(fleets.ConfigError, match="system"):
        fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, use_system_roots=True)


@pytest.mark.parametrize("kw", [{"ca_pem": "x", "ca_file": "y"}, {"ca_file": "y", "use_system_roots": True}, {"ca_pem": "x", "use_system_roots": True}])
def test_one_trust_source_at_most(emu: Emulator, kw: Any) -> None:
    with pytest.raises(fleets.ConfigError, match="at most one"):
        fleets.Client(emu.endpoint, emu.api_key, emu.api_secret, **kw)


def test_use_system_roots_must_be_bool(emu: Emulator) -> None:
    with pytest.raises(TypeError):
        fleets.Client(emu.endpoint, "k", "s", use_system_roots="yes")  # type: ignore[arg-type]


def test_from_env_trust_arguments_override_ca_file(emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEETS_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("FLEETS_API_KEY", emu.api_key)
    monkeypatch.setenv("FLEETS_API_SECRET", emu.api_secret)
    monkeypatch.setenv("FLEETS_CA_FILE", emu.ca_file)
    emu.register(THING)
    with fleets.Client.from_env(ca_pem=Path(emu.ca_file).read_text(), max_attempts=1) as c:
        assert c.shadow_get(THING)["version"] == 0
    # another CA than the emulator's: the argument replaced FLEETS_CA_FILE
    other = _self_signed(tmp_path, "other-ca")[0] if _HAVE_CRYPTOGRAPHY else None
    if other is not None:
        with fleets.Client.from_env(ca_file=other) as c:
            with pytest.raises(fleets.TLSError):
                c.shadow_get(THING)


# ------------------------------------------------------------------ client certificates

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    _HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the environment
    _HAVE_CRYPTOGRAPHY = False

needs_cryptography = pytest.mark.skipif(not _HAVE_CRYPTOGRAPHY, reason="the cryptography package is not installed")


def _self_signed(tmp_path: Path, name: str) -> Tuple[Path, Path]:
    """A self-signed certificate and its PKCS#8 key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@needs_cryptography
def test_client_cert_accepted(emu: Emulator, tmp_path: Path) -> None:
    emu.register(THING)
    cert, key = _self_signed(tmp_path, "device")
    with make_client(emu, client_cert=(cert, str(key))) as c:
        assert c.shadow_get(THING)["version"] == 0


@needs_cryptography
def test_client_cert_key_mismatch_is_config_error(emu: Emulator, tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path, "device")
    _, other_key = _self_signed(tmp_path, "someone-else")
    with pytest.raises(fleets.ConfigError) as ei:
        make_client(emu, client_cert=(cert, other_key))
    assert ei.value.code == R.ERR_INVALID_CONFIG


def test_client_cert_without_a_key_is_config_error(emu: Emulator, tmp_path: Path) -> None:
    # the emulator's CA certificate is a certificate but no key
    with pytest.raises(fleets.ConfigError, match="key"):
        make_client(emu, client_cert=(emu.ca_file, emu.ca_file))
    with pytest.raises(fleets.ConfigError, match="missing.pem"):
        make_client(emu, client_cert=(emu.ca_file, tmp_path / "missing.pem"))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(fleets.ConfigError):
        make_client(emu, client_cert=(not_pem, emu.ca_file))


@pytest.mark.parametrize("value", ["cert.pem", ("only-one",), ("a", "b", "c"), (b"a", b"b"), 42])
def test_client_cert_wrong_shape_is_type_error(emu: Emulator, value: Any) -> None:
    with pytest.raises(TypeError):
        make_client(emu, client_cert=value)


# ------------------------------------------------------------------ proxy


def test_proxy_is_used(proxied: Emulator, proxy: ConnectProxy) -> None:
    proxied.register(THING)
    with make_client(proxied, proxy=proxy.url) as c:
        for i in range(3):
            assert c.shadow_report(THING, {"t": i})["version"] == i + 1
        assert repr(c) == f"<fleets.Client endpoint={proxied.endpoint!r} proxy={proxy.url!r} open>"
    # one tunnel, kept alive for the three calls
    assert [r[0] for r in proxy.requests] == [f"CONNECT {PROXIED_HOST}:{proxied.port} HTTP/1.1"]
    assert proxied.total() == 3


def test_loopback_endpoint_never_uses_the_proxy(emu: Emulator, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """As curl's default NO_PROXY: a proxy would resolve 127.0.0.1 on its own host."""
    emu.register(THING)
    with make_client(emu, proxy=proxy.url) as c:
        assert c.shadow_get(THING)["version"] == 0
        assert c.shadow_report(THING, {"t": 1})["version"] == 1
    # a proxy that is not even there changes nothing either
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    with make_client(emu, proxy=dead, max_attempts=1) as c:
        assert c.shadow_get(THING)["version"] == 1
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("FLEETS_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("FLEETS_API_KEY", emu.api_key)
    monkeypatch.setenv("FLEETS_API_SECRET", emu.api_secret)
    monkeypatch.setenv("FLEETS_CA_FILE", emu.ca_file)
    with fleets.Client.from_env() as c:
        assert c.shadow_get(THING)["version"] == 1
    assert proxy.requests == []
    assert emu.total() == 4


def test_proxy_credentials_are_sent_and_never_shown(proxied: Emulator, auth_proxy: ConnectProxy) -> None:
    proxied.register(THING)
    password = "pr0xy-Passw0rd!"
    url = f"http://dev:{password}@127.0.0.1:{auth_proxy.port}"
    with make_client(proxied, proxy=url) as c:
        assert c.shadow_get(THING)["version"] == 0
        assert password not in repr(c) and password not in str(vars(c))
        assert repr(c) == f"<fleets.Client endpoint={proxied.endpoint!r} proxy='http://dev:***@127.0.0.1:{auth_proxy.port}' open>"
    assert auth_proxy.requests[-1][1]["proxy-authorization"].startswith("Basic ")
    # a wrong password: the proxy refuses, and the error does not show either password
    wrong = "wr0ng-Passw0rd"
    asked = len(auth_proxy.requests)
    with make_client(proxied, proxy=f"http://dev:{wrong}@127.0.0.1:{auth_proxy.port}", max_attempts=1) as c:
        with pytest.raises(fleets.FleetsError) as ei:
            c.shadow_get(THING)
        for text in (str(ei.value), repr(ei.value), ei.value.body or "", repr(c)):
            assert wrong not in text and password not in text
    assert len(auth_proxy.requests) == asked + 1
    assert not ei.value.request_sent  # refused by the proxy: the server never saw it
    assert proxied.total() == 1


def test_unreachable_proxy_is_connection_error_without_password(proxied: Emulator) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with make_client(proxied, proxy=f"http://u:hunter2-secret@127.0.0.1:{port}", max_attempts=1, connect_timeout=2) as c:
        with pytest.raises(fleets.FleetsConnectionError) as ei:
            c.shadow_get(THING)
    assert ei.value.code == R.ERR_CONNECT and not ei.value.request_sent
    assert "hunter2-secret" not in str(ei.value) + repr(ei.value)
    assert proxied.total() == 0


@pytest.mark.parametrize(
    "url",
    [
        "socks5://127.0.0.1:1080",
        "https://127.0.0.1:3128",
        "127.0.0.1:3128",
        "not a url",
        "",
        "http://",
        "http://u:s3cret-pw@",
    ],
)
def test_bad_proxy_is_config_error_without_password(emu: Emulator, url: str) -> None:
    with pytest.raises(fleets.ConfigError) as ei:
        make_client(emu, proxy=url)
    assert ei.value.code == R.ERR_INVALID_CONFIG
    assert "s3cret-pw" not in str(ei.value) + repr(ei.value) + repr(ei.value.__dict__)


def test_proxy_wrong_type(emu: Emulator) -> None:
    with pytest.raises(TypeError):
        make_client(emu, proxy=b"http://127.0.0.1:3128")


def test_from_env_reads_https_proxy(proxied: Emulator, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEETS_ENDPOINT", proxied.endpoint)
    monkeypatch.setenv("FLEETS_API_KEY", proxied.api_key)
    monkeypatch.setenv("FLEETS_API_SECRET", proxied.api_secret)
    monkeypatch.setenv("FLEETS_CA_FILE", proxied.ca_file)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    proxied.register(THING)
    with fleets.Client.from_env() as c:
        c.shadow_get(THING)
    assert len(proxy.requests) == 1
    # NO_PROXY names the host: the client goes direct, and cannot resolve the name itself
    monkeypatch.setenv("NO_PROXY", f"localhost,{PROXIED_HOST}")
    with fleets.Client.from_env(max_attempts=1) as c:
        with pytest.raises(fleets.FleetsConnectionError):
            c.shadow_get(THING)
    assert len(proxy.requests) == 1  # not through the proxy
    monkeypatch.delenv("NO_PROXY")
    # the argument overrides the environment (here a proxy that refuses connections)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{s.getsockname()[1]}")  # scheme optional
    s.close()
    with fleets.Client.from_env(proxy=proxy.url) as c:
        c.shadow_get(THING)
    assert len(proxy.requests) == 2
    with fleets.Client.from_env(max_attempts=1, connect_timeout=2) as c:
        with pytest.raises(fleets.FleetsConnectionError):
            c.shadow_get(THING)
    # a malformed HTTPS_PROXY is a configuration error of from_env() itself
    monkeypatch.setenv("HTTPS_PROXY", "socks5://nowhere:1")
    with pytest.raises(fleets.ConfigError, match="proxy"):
        fleets.Client.from_env(proxy=proxy.url)
    assert proxied.total() == 2


# ------------------------------------------------------------------ retry settings


@pytest.mark.parametrize(
    "kw",
    [
        {"max_attempts": 1},
        {"max_attempts": 10},
        {"initial_backoff": 0.001},
        {"max_backoff": 60},
        {"initial_backoff": 1, "max_backoff": 1.0},
        {"max_attempts": 5, "initial_backoff": 0.05, "max_backoff": 2},
        {"max_response_bytes": 1},
        {"max_response_bytes": fleets.MAX_RESPONSE_BYTES_LIMIT},
    ],
)
def test_settings_accepted(emu: Emulator, kw: Any) -> None:
    make_client(emu, **kw).close()


@pytest.mark.parametrize(
    "kw,exc",
    [
        ({"max_attempts": 0}, fleets.InvalidArgument),
        ({"max_attempts": -1}, fleets.InvalidArgument),
        ({"max_attempts": 11}, fleets.ConfigError),
        ({"max_attempts": 2**40}, fleets.InvalidArgument),
        ({"max_attempts": 2.0}, TypeError),
        ({"max_attempts": True}, TypeError),
        ({"initial_backoff": 0}, fleets.InvalidArgument),
        ({"initial_backoff": -0.1}, fleets.InvalidArgument),
        ({"initial_backoff": math.nan}, fleets.InvalidArgument),
        ({"max_backoff": math.inf}, fleets.InvalidArgument),
        ({"max_backoff": "1"}, TypeError),
        ({"initial_backoff": 10}, fleets.ConfigError),  # over the default 5 s maximum
        ({"initial_backoff": 2, "max_backoff": 1}, fleets.ConfigError),
        ({"max_response_bytes": 0}, fleets.InvalidArgument),
        ({"max_response_bytes": -5}, fleets.InvalidArgument),
        ({"max_response_bytes": 1.5}, TypeError),
        ({"max_response_bytes": fleets.MAX_RESPONSE_BYTES_LIMIT + 1}, fleets.ConfigError),
        ({"max_response_bytes": 2**70}, fleets.ConfigError),
    ],
)
def test_bad_settings(emu: Emulator, kw: Any, exc: type) -> None:
    with pytest.raises(exc) as ei:
        make_client(emu, **kw)
    if isinstance(ei.value, fleets.FleetsError):
        assert isinstance(ei.value, ValueError) and ei.value.http_status is None


# ------------------------------------------------------------------ retries


def test_generated_client_token_is_echoed(emu: Emulator) -> None:
    emu.register(THING)
    with make_client(emu) as c:
        r = c.shadow_report(THING, {"t": 1})
        assert GENERATED_TOKEN.fullmatch(r["clientToken"]), r
        assert c.shadow_report(THING, {"t": 2}, client_token="mine")["clientToken"] == "mine"
    with make_client(emu, max_attempts=1) as c:
        assert "clientToken" not in c.shadow_report(THING, {"t": 3})


def test_503_burst_is_recovered_by_retries(emu: Emulator) -> None:
    emu.register(THING)
    with fast(emu, max_attempts=4) as c:
        emu.fault(kind="status", status=503, times=3)
        assert c.shadow_get(THING)["version"] == 0
        assert emu.stats()["by_endpoint"][GET_KEY] == 4  # three 503s, then the answer
        emu.fault(kind="status", status=503, times=2, path_prefix="/api/v1/thing-datas/shadow/reported")
        r = c.shadow_report(THING, {"t": 1})
        assert r["version"] == 1 and GENERATED_TOKEN.fullmatch(r["clientToken"])
        assert emu.stats()["by_endpoint"][REPORT_KEY] == 3
    assert emu.admin("GET", f"things/{THING}/shadow")["version"] == 1  # applied once


@pytest.mark.parametrize("status", [429, 502, 504])
def test_other_transient_statuses_are_retried(emu: Emulator, status: int) -> None:
    emu.register(THING)
    with fast(emu) as c:
        emu.fault(kind="status", status=status, times=2)
        assert c.shadow_get(THING)["version"] == 0
    assert emu.total() == 3


def test_connection_refused_is_retried_then_reported() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with fleets.Client(f"http://127.0.0.1:{port}", "ak_test", "secret-7f3a9c", initial_backoff=0.01, max_backoff=0.02) as c:
        with pytest.raises(fleets.FleetsConnectionError) as ei:
            c.shadow_get(THING)
    assert ei.value.code == R.ERR_CONNECT and "(after 3 attempts)" in ei.value.message


@pytest.mark.parametrize("kind", ["reset", "garbage", "truncate"])
def test_broken_exchanges_are_not_retried(emu: Emulator, kind: str) -> None:
    """The request may have been processed once a connection breaks after sending it."""
    emu.register(THING)
    with fast(emu) as c:
        emu.fault(kind=kind, times=1)
        with pytest.raises(fleets.FleetsConnectionError):
            c.shadow_get(THING)
    assert emu.total() == 1


def test_gives_up_after_max_attempts_and_says_so(emu: Emulator) -> None:
    with fast(emu, max_attempts=3) as c:
        emu.fault(kind="status", status=502, times=0)
        with pytest.raises(fleets.ServerError) as ei:
            c.shadow_get(THING)
    assert "(after 3 attempts)" in ei.value.message and ei.value.http_status == 502
    assert emu.total() == 3


def test_max_attempts_1_disables_retries(emu: Emulator) -> None:
    with make_client(emu, max_attempts=1) as c:
        emu.fault(kind="status", status=503, times=1)
        with pytest.raises(fleets.ServerError) as ei:
            c.shadow_get(THING)
    assert "attempts" not in ei.value.message
    assert emu.total() == 1


def test_event_publish_and_command_respond_are_never_retried(emu: Emulator) -> None:
    emu.register(THING)
    exe = emu.admin("POST", f"things/{THING}/commands", {"action": "reboot"})["executionId"]
    with fast(emu, max_attempts=5) as c:
        emu.fault(kind="status", status=503, times=0)
        with pytest.raises(fleets.ServerError) as ei:
            c.event_publish(THING, "boot")
        assert "attempts" not in ei.value.message
        assert emu.total() == 1
        with pytest.raises(fleets.ServerError):
            c.command_respond(THING, exe, "SUCCEEDED")
        assert emu.total() == 2
        emu.admin("DELETE", "faults")
        emu.fault(kind="reset", times=1)
        with pytest.raises(fleets.FleetsConnectionError):
            c.event_publish(THING, "boot")
    assert emu.total() == 3
    assert emu.admin("GET", f"things/{THING}/events")["events"] == []


def test_other_4xx_are_never_retried(emu: Emulator) -> None:
    with fast(emu, max_attempts=5) as c:
        for status in (400, 401, 404, 409, 500):
            emu.admin("POST", "reset")
            emu.fault(kind="status", status=status, times=1)
            with pytest.raises(fleets.ApiError):
                c.shadow_get(THING)
            assert emu.total() == 1, status


# ------------------------------------------------------------------ Retry-After


def test_retry_after_on_429_without_retries(emu: Emulator) -> None:
    with make_client(emu, max_attempts=1) as c:
        emu.fault(kind="status", status=429, retry_after_s=7, times=1)
        with pytest.raises(fleets.RateLimitedError) as ei:
            c.shadow_get(THING)
        e = ei.value
        assert e.retry_after == 7.0 and isinstance(e.retry_after, float)
        assert e.http_status == 429 and emu.total() == 1
        assert pickle.loads(pickle.dumps(e)).retry_after == 7.0
        # the next failure without the header does not inherit it
        emu.fault(kind="status", status=429, times=1)
        with pytest.raises(fleets.RateLimitedError) as ei:
            c.shadow_get(THING)
        assert ei.value.retry_after is None
        emu.fault(kind="status", status=503, retry_after_s=2, times=1)
        with pytest.raises(fleets.ServerError) as ei2:
            c.shadow_report(THING, {"a": 1})
        assert ei2.value.retry_after == 2.0
        with pytest.raises(fleets.NotFoundError) as ei3:
            c.shadow_get(THING)
        assert ei3.value.retry_after is None


def test_retry_after_after_retries_are_exhausted(emu: Emulator) -> None:
    """The server asks for 30 s; the wait is clamped to max_backoff, and the final error
    still reports what the server asked for."""
    with make_client(emu, max_attempts=2, initial_backoff=0.01, max_backoff=0.1) as c:
        emu.fault(kind="status", status=429, retry_after_s=30, times=0)
        t0 = time.monotonic()
        with pytest.raises(fleets.RateLimitedError) as ei:
            c.shadow_get(THING)
        assert time.monotonic() - t0 < 5
    assert ei.value.retry_after == 30.0 and "(after 2 attempts)" in ei.value.message
    assert emu.total() == 2


def test_retry_after_is_per_thread(emu: Emulator) -> None:
    emu.register(THING)
    with make_client(emu, max_attempts=1) as c:
        emu.fault(kind="status", status=429, retry_after_s=4, times=1)

        def limited() -> Optional[float]:
            try:
                c.shadow_get(THING)
            except fleets.RateLimitedError as e:
                return e.retry_after
            return None

        with ThreadPoolExecutor(1) as ex:
            assert ex.submit(limited).result() == 4.0
        # this thread's last exchange had no Retry-After
        emu.fault(kind="status", status=429, times=1)
        with pytest.raises(fleets.RateLimitedError) as ei:
            c.shadow_get(THING)
        assert ei.value.retry_after is None


def test_retry_after_honoured_between_attempts(emu: Emulator) -> None:
    emu.register(THING)
    with make_client(emu, initial_backoff=0.01, max_backoff=5) as c:
        emu.fault(kind="status", status=429, retry_after_s=1, times=1)
        t0 = time.monotonic()
        assert c.shadow_get(THING)["version"] == 0
        waited = time.monotonic() - t0
    assert 0.9 <= waited < 4, waited


# ------------------------------------------------------------------ response size limit


def test_max_response_bytes(emu: Emulator) -> None:
    big = {"big": "b" * (1536 * 1024)}  # over the default 1 MiB
    with make_client(emu) as c:
        emu.fault(kind="status", status=200, body=big)
        with pytest.raises(fleets.BadResponseError):
            c.shadow_get(THING)
    with make_client(emu, max_response_bytes=2 * 1024 * 1024) as c:
        emu.fault(kind="status", status=200, body=big)
        assert c.shadow_get(THING) == big
    with make_client(emu, max_response_bytes=100) as c:
        emu.register(THING)
        c.shadow_get(THING)  # a small body fits
        emu.fault(kind="status", status=200, body={"x": "y" * 200})
        with pytest.raises(fleets.BadResponseError, match="100"):
            c.shadow_get(THING)
