"""Per-client counters (``fleets_client_stats``), as a Python value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientStats:
    """The counters of a :class:`fleets.Client` since it was created (:meth:`Client.stats`).

    Attributes:
        calls: ThingDatas calls made (each counts once, however many attempts it took).
        failures: calls that ended with an error after their arguments were accepted
            (transport failures and HTTP error statuses).
        requests: HTTP requests sent: every attempt, retries and resends included.
        retries: attempts after the first, made by the retry policy.
        stale_resends: requests sent again on a new connection because the server had closed
            a kept-alive one.
        connections: TCP connections opened (the first one included).
        bytes_sent: bytes written to TCP connections (TLS records, HTTP framing, bodies).
        bytes_received: bytes read from TCP connections.
        last_latency: wall time of the last completed call in seconds (a float, microsecond
            resolution), all attempts included; 0.0 before the first call.
    """

    calls: int = 0
    failures: int = 0
    requests: int = 0
    retries: int = 0
    stale_resends: int = 0
    connections: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    last_latency: float = 0.0
