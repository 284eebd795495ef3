"""STOMP 1.2 heart-beat negotiation, pure functions.

Header `heart-beat: x,y`: the sender of the header can send a beat every x ms
(0: never) and wants to receive one every y ms (0: does not care). For each
direction the interval is the larger of what one side offers and the other
side wants, or 0 (off) when either is 0.
"""

from __future__ import annotations

__all__ = ["HeartBeatError", "parse_heartbeat", "format_heartbeat", "vdsm_server_reply",
           "interval_ms"]


_MAX_DIGITS = 12


class HeartBeatError(ValueError):
    pass


def parse_heartbeat(value: str | None) -> tuple[int, int]:
    """Parse `x,y`. A missing header means `0,0` (no heart-beats)."""
    if value is None or value == "":
        return (0, 0)
    parts = value.split(",")
    if len(parts) != 2:
        raise HeartBeatError(f"heart-beat header must be 'x,y', got {value[:40]!r}")
    x, y = parts[0].strip(), parts[1].strip()
    # ASCII digits only: int() would also take "-1", "+1", "1_0" and "\u0661"; and
    # at most 12 of them (30 years in ms), so int() never meets a huge number.
    for v in (x, y):
        if not (v.isascii() and v.isdigit() and len(v) <= _MAX_DIGITS):
            raise HeartBeatError(
                f"heart-beat values must be non-negative integers, got {value[:40]!r}")
    return (int(x), int(y))


def format_heartbeat(pair: tuple[int, int]) -> str:
    return f"{pair[0]},{pair[1]}"


def vdsm_server_reply(client: tuple[int, int], minimum_ms: int = 1000) -> tuple[int, int]:
    """What a vdsm-compatible server answers in CONNECTED.

    The server offers to send as often as the client wants to receive, and
    wants to receive as often as the client offers, raising non-zero values
    to at least `minimum_ms` so that a client asking for 1 ms cannot make the
    server spin.
    """
    cx, cy = client

    def raise_(v: int) -> int:
        return max(v, minimum_ms) if v else 0

    return (raise_(cy), raise_(cx))


def interval_ms(offered_by_sender: int, wanted_by_receiver: int) -> int:
    """Negotiated interval of one direction (0: no heart-beats that way)."""
    if offered_by_sender == 0 or wanted_by_receiver == 0:
        return 0
    return max(offered_by_sender, wanted_by_receiver)
