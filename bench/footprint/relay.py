"""A counting TCP relay: bytes on the wire per connection, for any client (stdlib only).

    with Relay("127.0.0.1", 8443) as relay:      # forwards 127.0.0.1:<relay.port> -> 8443
        ... run a client against https://127.0.0.1:<relay.port> ...
    relay.connections  # [(bytes client->server, bytes server->client), ...] in accept order

TLS passes through untouched (the emulator's certificate names 127.0.0.1, whatever the port),
so the counts are TCP payload: TLS records with HTTP inside, as `fleets_client_stats` counts
them. `keep=True` also keeps the bytes (for plain-HTTP dumps).
"""

import socket
import threading


class Relay:
    def __init__(self, host, port, keep=False):
        self.target = (host, port)
        self.keep = keep
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []  # [up, down, up_bytes, down_bytes, open pumps]
        self.threads = []
        self.closed = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rec = [0, 0, bytearray(), bytearray(), 2]
            with self.lock:
                self.conns.append(rec)
            for src, dst, i in ((client, server, 0), (server, client, 1)):
                t = threading.Thread(target=self._pump, args=(src, dst, rec, i), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, rec, i):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    rec[i] += len(data)
                    if self.keep:
                        rec[2 + i] += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self.lock:
                rec[4] -= 1
                if rec[4] == 0:
                    src.close()
                    dst.close()

    def settle(self, timeout=5.0):
        """Waits until every relayed connection has closed in both directions."""
        for t in list(self.threads):
            t.join(timeout)

    def reset(self):
        with self.lock:
            self.conns = []

    @property
    def connections(self):
        with self.lock:
            return [(c[0], c[1]) for c in self.conns]

    def dumps(self):
        with self.lock:
            return [(bytes(c[2]), bytes(c[3])) for c in self.conns]

    def close(self):
        self.sock.close()
