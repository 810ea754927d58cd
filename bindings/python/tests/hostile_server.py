"""A small local HTTPS server that answers whatever a test tells it to, for the responses
the emulator cannot send (a body nested 5,000 levels, a server that echoes credentials...).

Its certificate comes from the openssl command line: a throwaway CA and a leaf for
127.0.0.1, so libfleets verifies it like any server (``ca_file``)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HAVE_OPENSSL = shutil.which("openssl") is not None


def make_certificates(directory: Path, dns_names: Sequence[str] = ()) -> Tuple[Path, Path, Path]:
    """(ca.pem, leaf.pem, leaf.key) for 127.0.0.1 and ``dns_names``, made with the openssl CLI."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=fleets test CA")
    openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    (directory / "leaf.ext").write_text(
        f"subjectAltName={','.join(['IP:127.0.0.1', *(f'DNS:{n}' for n in dns_names)])}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
    )
    return directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"


class HostileServer:
    """HTTPS on 127.0.0.1 answering every request with ``status``/``body``/``headers`` (set
    them between calls); records each request line and its headers."""

    def __init__(self, directory: Path) -> None:
        self.ca_file, cert, key = make_certificates(directory)
        self.status = 200
        self.body = b"{}"
        self.headers: Dict[str, str] = {}
        self.requests: List[Tuple[str, Dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append((self.requestline, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def respond(self, status: int, body: bytes, headers: Optional[Dict[str, str]] = None) -> None:
        self.status, self.body, self.headers = status, body, dict(headers or {})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
