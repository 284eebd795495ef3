"""RpcClient's reconnect delay: exponential, capped, and jittered (no I/O involved)."""

from __future__ import annotations

import ssl
import statistics

from protocol.rpc import RpcClient


def make_client(initial: float = 0.5, maximum: float = 30.0) -> RpcClient:
    return RpcClient("192.0.2.1", 54321, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
                     backoff_initial_s=initial, backoff_max_s=maximum)


def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    client = make_client(0.5, 30.0)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = client._backoff(attempt)
            assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
    medians = [statistics.median(client._backoff(a) for _ in range(300)) for a in range(1, 8)]
    assert all(b > a * 1.5 for a, b in zip(medians, medians[1:])), medians


def test_backoff_is_capped() -> None:
    client = make_client(0.5, 30.0)
    delays = [client._backoff(50) for _ in range(500)]
    assert max(delays) <= 30.0
    assert min(delays) >= 15.0


def test_backoff_is_jittered_so_clients_do_not_reconnect_in_lockstep() -> None:
    clients = [make_client() for _ in range(100)]
    delays = [c._backoff(4) for c in clients]  # a thousand hosts lost together...
    assert len({round(d, 3) for d in delays}) > 80  # ...do not come back together
    assert statistics.pstdev(delays) > 0.3  # spread over [2, 4] s, not clustered
