"""Heart-beat negotiation and timeouts, driven by explicit `now` values (no clock)."""

from __future__ import annotations

import pytest

from protocol.stomp import Frame, Role, StompConnection, format_heartbeat, parse_heartbeat
from protocol.stomp import vdsm_server_reply
from protocol.stomp.heartbeat import HeartBeatError, interval_ms


def drain(conn: StompConnection) -> list:
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def handshake(client_hb: str, t0: float = 100.0) -> tuple[StompConnection, StompConnection]:
    """CONNECT/CONNECTED through both codecs as our server and client do it."""
    client = StompConnection(Role.CLIENT)
    server = StompConnection(Role.SERVER)
    data = client.send(Frame.build("CONNECT", {"accept-version": "1.2",
                                               "heart-beat": client_hb}), t0)
    server.receive_data(data, t0)
    assert [e.command for e in drain(server)] == ["CONNECT"]
    reply = vdsm_server_reply(server.peer_heartbeat)
    data = server.send(Frame.build("CONNECTED", {"version": "1.2",
                                                 "heart-beat": format_heartbeat(reply)}), t0)
    client.receive_data(data, t0)
    assert [e.command for e in drain(client)] == ["CONNECTED"]
    assert client.connected and server.connected
    return client, server


@pytest.mark.parametrize("client_hb, reply, server_send, server_recv", [
    ("0,15000", (15000, 0), 15.0, 0.0),     # the engine (vdsm-jsonrpc-java)
    ("0,24000", (24000, 0), 24.0, 0.0),     # vdsm's python client
    ("10000,10000", (10000, 10000), 10.0, 10.0),  # our RpcClient's default
    ("1,1", (1000, 1000), 1.0, 1.0),        # silly values are raised to 1 s
    ("0,0", (0, 0), 0.0, 0.0),              # no heart-beats at all
    ("5000,0", (0, 5000), 0.0, 5.0),
])
def test_negotiation(client_hb: str, reply: tuple[int, int], server_send: float,
                     server_recv: float) -> None:
    assert vdsm_server_reply(parse_heartbeat(client_hb)) == reply
    client, server = handshake(client_hb)
    assert (server.send_interval_s, server.receive_interval_s) == (server_send, server_recv)
    # The directions agree from both ends.
    assert client.receive_interval_s == server.send_interval_s
    assert client.send_interval_s == server.receive_interval_s


def test_engine_client_times_out_silent_server_at_interval_times_one_and_a_half() -> None:
    client, server = handshake("0,15000", t0=100.0)
    assert client.receive_interval_s == 15.0
    assert not client.peer_timed_out(100.0 + 22.5)
    assert client.peer_timed_out(100.0 + 22.5 + 0.001)
    # A heart-beat (any byte) from the server resets the clock.
    client.receive_data(b"\n", 120.0)
    assert [type(e).__name__ for e in drain(client)] == ["HeartBeat"]
    assert not client.peer_timed_out(120.0 + 22.5)
    assert client.peer_timed_out(120.0 + 22.6)
    # The engine never sends beats, so the server never times it out.
    assert not server.peer_timed_out(1e9)


def test_server_sends_beats_at_half_the_interval() -> None:
    client, server = handshake("0,15000", t0=100.0)
    assert server.heartbeat_to_send(100.0 + 7.4) == b""
    assert server.heartbeat_to_send(100.0 + 7.5) == b"\n"
    assert server.heartbeat_to_send(100.0 + 7.6) == b""  # just sent
    assert server.heartbeat_to_send(100.0 + 15.0) == b"\n"
    # Real traffic counts as activity: no beat needed right after it.
    server.send_raw(b"MESSAGE\n\n\0", 200.0)
    assert server.heartbeat_to_send(203.0) == b""
    assert client.heartbeat_to_send(1e9) == b""  # client offered 0: never beats
    assert server.timer_interval_s() == 7.5
    assert client.timer_interval_s() == 7.5


def test_symmetric_heartbeats_time_out_both_ways() -> None:
    client, server = handshake("10000,10000", t0=0.0)
    assert server.peer_timed_out(15.001) and client.peer_timed_out(15.001)
    assert not server.peer_timed_out(15.0) and not client.peer_timed_out(15.0)
    server.receive_data(b"\r\n", 14.0)
    assert not server.peer_timed_out(28.9)
    assert server.peer_timed_out(29.1)


def test_raised_minimum_protects_the_server_from_1ms_beats() -> None:
    client, server = handshake("1,1", t0=0.0)
    assert server.send_interval_s == 1.0 and server.receive_interval_s == 1.0
    assert client.send_interval_s == 1.0 and client.receive_interval_s == 1.0
    assert server.heartbeat_to_send(0.49) == b""
    assert server.heartbeat_to_send(0.5) == b"\n"
    assert server.peer_timed_out(1.501) and not server.peer_timed_out(1.5)


@pytest.mark.parametrize("value, expected", [
    (None, (0, 0)), ("", (0, 0)), ("0,0", (0, 0)), ("0,15000", (0, 15000)),
    ("10, 20", (10, 20)),
])
def test_parse_heartbeat(value: str | None, expected: tuple[int, int]) -> None:
    assert parse_heartbeat(value) == expected


@pytest.mark.parametrize("value", ["1", "1,2,3", "a,b", "-1,0", "0,-5", "1_0,0", "\u0661,0", ",",
                                   "0," + "9" * 13, "9" * 5000 + ",0"])
def test_parse_heartbeat_rejects(value: str) -> None:
    with pytest.raises(HeartBeatError):
        parse_heartbeat(value)


def test_interval_rules() -> None:
    assert interval_ms(0, 5000) == 0
    assert interval_ms(5000, 0) == 0
    assert interval_ms(1000, 5000) == 5000
    assert interval_ms(5000, 1000) == 5000
    assert vdsm_server_reply((0, 500), minimum_ms=1000) == (1000, 0)
    assert vdsm_server_reply((3000, 2000), minimum_ms=1000) == (2000, 3000)
    assert format_heartbeat((0, 15000)) == "0,15000"


def test_bad_heartbeat_in_our_own_connect_is_a_value_error() -> None:
    client = StompConnection(Role.CLIENT)
    with pytest.raises(ValueError):
        client.send(Frame.build("CONNECT", {"heart-beat": "x"}), 0.0)
