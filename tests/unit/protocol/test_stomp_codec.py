"""The sans-IO STOMP 1.2 codec, byte by byte, with no event loop and no clock."""

from __future__ import annotations

import pytest

from protocol.stomp import (
    EndOfStream,
    Frame,
    HeartBeat,
    Limits,
    Role,
    StompConnection,
    Violation,
    encode_frame,
)
from protocol.stomp.connection import error_frame

# ----------------------------------------------------------------- helpers


def feed(conn: StompConnection, *chunks: bytes, eof: bool = True, now: float = 0.0) -> list:
    """Feed chunks (empty ones skipped: b"" means EOF), draining events after each;
    finish with EOF unless told not to."""
    events: list = []
    for chunk in chunks:
        if not chunk:
            continue
        conn.receive_data(chunk, now)
        while (event := conn.next_event()) is not None:
            events.append(event)
    if eof:
        conn.receive_data(b"", now)
        while (event := conn.next_event()) is not None:
            events.append(event)
    return events


def server(limits: Limits | None = None) -> StompConnection:
    return StompConnection(Role.SERVER, limits)


def parse_error_frame(data: bytes) -> Frame:
    """Parse bytes a server sent as a client would; they must be one ERROR frame."""
    client = StompConnection(Role.CLIENT)
    events = feed(client, data)
    assert len(events) == 2 and isinstance(events[1], EndOfStream), events
    frame = events[0]
    assert isinstance(frame, Frame) and frame.command == "ERROR"
    assert frame["content-length"] == str(len(frame.body))
    return frame


CONNECT = b"CONNECT\naccept-version:1.2\nheart-beat:0,15000\nhost:127.0.0.1\n\n\0"

# A realistic client stream: what vdsm-jsonrpc-java, vdsm's client and stomp.py send.
# Each entry: wire bytes, expected events.
BODY_WITH_NUL = b'{"jsonrpc":"2.0","method":"Host.ping2","params":{},"id":"\x00"}\x00tail'
REALISTIC = [
    # STOMP (not CONNECT) first, with CRLF line ends; CONNECT-class headers are raw:
    # "\c" and "\t" stay as they are (unescaping "\t" would even be an error).
    (b"STOMP\r\naccept-version:1.1,1.2\r\nheart-beat:0,24000\r\nhost:engine\r\n"
     b"login:eng\\cine\r\npasscode:a\\tb\r\n\r\n\0",
     [Frame("STOMP", (("accept-version", "1.1,1.2"), ("heart-beat", "0,24000"),
                      ("host", "engine"), ("login", "eng\\cine"), ("passcode", "a\\tb")))]),
    (b"\n", [HeartBeat()]),
    (b"\r\n", [HeartBeat()]),
    (b"SUBSCRIBE\ndestination:jms.topic.vdsm_responses\nid:sub\\c1\nack:auto\n\n\0",
     [Frame("SUBSCRIBE", (("destination", "jms.topic.vdsm_responses"), ("id", "sub:1"),
                          ("ack", "auto")))]),
    (b"SUBSCRIBE\r\ndestination:jms.queue.events\r\nid:events\r\nack:auto\r\n\r\n\0\n\n",
     [Frame("SUBSCRIBE", (("destination", "jms.queue.events"), ("id", "events"),
                          ("ack", "auto"))), HeartBeat(), HeartBeat()]),
    # content-length body containing NULs and a newline
    (b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-type:application/json\n"
     b"reply-to:jms.topic.vdsm_responses\ncontent-length:%d\n\n%b\0" % (
         len(BODY_WITH_NUL), BODY_WITH_NUL),
     [Frame("SEND", (("destination", "jms.topic.vdsm_requests"),
                     ("content-type", "application/json"),
                     ("reply-to", "jms.topic.vdsm_responses"),
                     ("content-length", str(len(BODY_WITH_NUL)))), BODY_WITH_NUL)]),
    # no content-length: body up to the first NUL
    (b"SEND\ndestination:jms.topic.vdsm_requests\n\n{\"a\":\n1}\0",
     [Frame("SEND", (("destination", "jms.topic.vdsm_requests"),), b'{"a":\n1}')]),
    # escapes in a SEND header, an empty value, a colon inside a value
    (b"SEND\ndestination:q\nreply-to:a\\\\b\\nc\\rd\\ce\nx-empty:\nx-url:http://h:1/\n\n\0",
     [Frame("SEND", (("destination", "q"), ("reply-to", "a\\b\nc\rd:e"), ("x-empty", ""),
                     ("x-url", "http://h:1/")))]),
    # repeated headers: both kept in order, the first one wins on lookup
    (b"SEND\ndestination:first\ndestination:second\ncontent-length:2\ncontent-length:5\n\nok\0",
     [Frame("SEND", (("destination", "first"), ("destination", "second"),
                     ("content-length", "2"), ("content-length", "5")), b"ok")]),
    (b"\r\n\n", [HeartBeat(), HeartBeat()]),
    (b"UNSUBSCRIBE\nid:events\n\n\0", [Frame("UNSUBSCRIBE", (("id", "events"),))]),
    (b"DISCONNECT\nreceipt:77\n\n\0", [Frame("DISCONNECT", (("receipt", "77"),))]),
]
STREAM = b"".join(wire for wire, _ in REALISTIC)
EXPECTED = [e for _, events in REALISTIC for e in events] + [EndOfStream()]


def test_realistic_stream_in_one_chunk() -> None:
    conn = server()
    assert feed(conn, STREAM) == EXPECTED
    events = feed(server(), STREAM)
    repeated = next(e for e in events if isinstance(e, Frame) and len(e.headers) == 4
                    and e.headers[0] == ("destination", "first"))
    assert repeated["destination"] == "first"
    assert repeated.get("content-length") == "2"
    assert conn.closed


def test_realistic_stream_split_at_every_point() -> None:
    for i in range(len(STREAM) + 1):
        events = feed(server(), STREAM[:i], STREAM[i:])
        assert events == EXPECTED, f"split at {i}"


def test_realistic_stream_one_byte_at_a_time() -> None:
    chunks = [STREAM[i:i + 1] for i in range(len(STREAM))]
    assert feed(server(), *chunks) == EXPECTED


def test_realistic_stream_split_at_every_pair_of_points_near_frame_ends() -> None:
    # Three-way splits around the places where frames end, where bugs hide.
    ends = []
    pos = 0
    for wire, _ in REALISTIC:
        pos += len(wire)
        ends.append(pos)
    points = sorted({p + d for p in ends for d in (-3, -2, -1, 0, 1) if 0 < p + d < len(STREAM)})
    for a in points:
        for b in points:
            if a < b:
                assert feed(server(), STREAM[:a], STREAM[a:b], STREAM[b:]) == EXPECTED, (a, b)


def test_connect_first_frame_accepted_and_marks_connection_open() -> None:
    conn = server()
    assert not conn.connected
    events = feed(conn, CONNECT, eof=False)
    assert events == [Frame("CONNECT", (("accept-version", "1.2"), ("heart-beat", "0,15000"),
                                        ("host", "127.0.0.1")))]
    assert conn.connected
    assert conn.peer_heartbeat == (0, 15000)


@pytest.mark.parametrize("versions", ["1.2", "1.1,1.2", "1.2,1.1", "1.0, 1.1, 1.2"])
def test_accept_version_lists_containing_1_2_are_accepted(versions: str) -> None:
    conn = server()
    frame = f"CONNECT\naccept-version:{versions}\n\n\0".encode()
    events = feed(conn, frame, eof=False)
    assert [e.command for e in events] == ["CONNECT"]
    assert conn.connected


def test_client_role_parses_server_frames() -> None:
    client = StompConnection(Role.CLIENT)
    client.send(Frame.build("CONNECT", {"accept-version": "1.2", "heart-beat": "0,15000"}), 0.0)
    body = b'{"jsonrpc":"2.0","id":1,"result":true}'
    data = (b"CONNECTED\nversion:1.2\nheart-beat:15000,0\n\n\0\n"
            b"MESSAGE\ndestination:jms.topic.vdsm_responses\ncontent-type:application/json\n"
            b"subscription:reply\ncontent-length:%d\n\n%b\0"
            b"RECEIPT\nreceipt-id:a\\cb\n\n\0" % (len(body), body))
    events = feed(client, data, eof=False)
    assert client.connected
    events += feed(client)
    assert [type(e).__name__ for e in events] == ["Frame", "HeartBeat", "Frame", "Frame",
                                                  "EndOfStream"]
    assert events[2].body == body and events[2]["subscription"] == "reply"
    assert events[3]["receipt-id"] == "a:b"
    assert client.closed


def test_client_role_refuses_client_commands() -> None:
    client = StompConnection(Role.CLIENT)
    events = feed(client, b"CONNECTED\nversion:1.2\n\n\0SEND\ndestination:x\n\n\0")
    assert events[0].command == "CONNECTED"
    assert isinstance(events[1], Violation)
    assert "SEND" in events[1].message


def test_client_role_expects_connected_first() -> None:
    client = StompConnection(Role.CLIENT)
    events = feed(client, b"MESSAGE\ndestination:x\nsubscription:1\n\n\0")
    assert isinstance(events[0], Violation) and "CONNECTED" in events[0].message


def test_client_role_accepts_error_before_connected() -> None:
    client = StompConnection(Role.CLIENT)
    events = feed(client, error_frame("go away", "details"))
    assert events[0].command == "ERROR" and events[0].body == b"details"
    assert events[0]["message"] == "go away"


# ---------------------------------------------------------------- violations
SMALL = Limits(max_header_bytes=256, max_headers=8, max_body_bytes=1024)

VIOLATIONS = {
    "header block too big": (
        CONNECT + b"SEND\ndestination:q\nx:" + b"a" * 300 + b"\n\n\0", "header block"),
    "header block too big, never terminated": (
        CONNECT + b"SEND\ndestination:q\nx:" + b"a" * 300, "header block"),
    "too many headers": (
        CONNECT + b"SEND\ndestination:q\n" + b"".join(b"h%d:v\n" % i for i in range(8)) + b"\n\0",
        "more than 8 headers"),
    "body too big with content-length": (
        CONNECT + b"SEND\ndestination:q\ncontent-length:1025\n\n", "exceeds 1024"),
    "body too big without content-length": (
        CONNECT + b"SEND\ndestination:q\n\n" + b"x" * 1025, "exceeds 1024"),
    "bad content-length": (
        CONNECT + b"SEND\ndestination:q\ncontent-length:ten\n\n0123456789\0", "content-length"),
    "negative content-length": (
        CONNECT + b"SEND\ndestination:q\ncontent-length:-1\n\n\0", "content-length"),
    "content-length with underscore": (
        CONNECT + b"SEND\ndestination:q\ncontent-length:1_0\n\n0123456789\0", "content-length"),
    "content-length with sign": (
        CONNECT + b"SEND\ndestination:q\ncontent-length:+2\n\nab\0", "content-length"),
    "content-length in non-ASCII digits": (
        CONNECT + "SEND\ndestination:q\ncontent-length:\u0662\n\nab\0".encode(),
        "content-length"),
    "missing NUL after body": (
        CONNECT + b"SEND\ndestination:q\ncontent-length:2\n\nabc\0", "NUL"),
    "bad escape": (
        CONNECT + b"SEND\ndestination:q\nx:a\\tb\n\n\0", "escape"),
    "lone backslash": (
        CONNECT + b"SEND\ndestination:q\nx:ab\\\n\n\0", "backslash"),
    "unknown command": (
        CONNECT + b"FROBNICATE\n\n\0", "FROBNICATE"),
    "server command from a client": (
        CONNECT + b"MESSAGE\ndestination:q\n\n\0", "MESSAGE"),
    "non-UTF-8 header": (
        CONNECT + b"SEND\ndestination:\xff\xfe\n\n\0", "UTF-8"),
    "header line without colon": (
        CONNECT + b"SEND\ndestination:q\nnocolon\n\n\0", "malformed header"),
    "first frame not CONNECT": (
        b"SEND\ndestination:q\n\nhi\0", "CONNECT"),
    "second CONNECT": (
        CONNECT + CONNECT, "CONNECT"),
    "accept-version without 1.2": (
        b"CONNECT\naccept-version:1.0,1.1\n\n\0", "1.0,1.1"),
    "no accept-version (means 1.0)": (
        b"CONNECT\nhost:x\n\n\0", "1.0"),
    "bad heart-beat": (
        b"CONNECT\naccept-version:1.2\nheart-beat:soon\n\n\0", "heart-beat"),
    "SEND without destination": (
        CONNECT + b"SEND\ncontent-length:0\n\n\0", "destination"),
    "SUBSCRIBE without id": (
        CONNECT + b"SUBSCRIBE\ndestination:q\n\n\0", "SUBSCRIBE"),
    "bare CR between frames": (
        CONNECT + b"\rSEND\ndestination:q\n\n\0", "CR"),
}


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_violation_gives_error_frame_and_closes(name: str) -> None:
    data, fragment = VIOLATIONS[name]
    # Whole and one byte at a time: same outcome, nothing raised.
    for chunks in ([data], [data[i:i + 1] for i in range(len(data))]):
        conn = server(SMALL)
        events = feed(conn, *chunks, eof=False)
        assert isinstance(events[-1], Violation), (name, events)
        assert all(not isinstance(e, Violation) for e in events[:-1])
        violation = events[-1]
        assert fragment in violation.message, violation.message
        error = parse_error_frame(violation.error_frame)
        assert error["message"] == violation.message
        assert error.body.decode() == violation.message
        assert conn.closed and not conn.connected
        # After a violation the codec ignores input, even a valid frame.
        conn.receive_data(CONNECT + b"SEND\ndestination:q\n\n\0", 1.0)
        assert conn.next_event() is None
        assert len(conn._buf) == 0
        conn.receive_data(b"", 2.0)
        assert conn.next_event() is None


@pytest.mark.parametrize("data", [
    b"CONNECT\naccept-version:" + b"9" * 5000 + b"\n\n\0",
    b"CONNECT\naccept-version:1.2\nheart-beat:" + b"1" * 5000 + b"\n\n\0",
    b"CONNECT\naccept-version:1.2\nheart-beat:1," + b"x" * 5000 + b"\n\n\0",
    b"CONNECT\naccept-version:1.2\nheart-beat:1," + b"9" * 5000 + b"\n\n\0",
    CONNECT + b"SEND\ndestination:q\n" + b"n" * 5000 + b"\n\n\0",
    CONNECT + b"SEND\ndestination:q\ncontent-length:" + b"7" * 5000 + b"\n\n\0",
    CONNECT + b"X" * 5000 + b"\n\n\0",
])
def test_error_frames_stay_small_whatever_the_input(data: bytes) -> None:
    """Peer-controlled text is cut short: the Java client reads headers from 1 KiB only."""
    (*_, violation) = feed(server(), data, eof=False)
    assert isinstance(violation, Violation)
    assert len(violation.error_frame) < 400, violation.message


def test_content_length_with_thousands_of_leading_zeros_is_just_a_number() -> None:
    data = CONNECT + b"SEND\ndestination:q\ncontent-length:" + b"0" * 5000 + b"1\n\nx\0"
    events = feed(server(), data, eof=False)
    assert [type(e) for e in events] == [Frame, Frame]
    assert events[1].body == b"x"


def test_limits_are_inclusive_at_every_split() -> None:
    """A frame exactly at each limit passes; one byte more fails; splits do not matter."""
    limits = Limits(max_header_bytes=64, max_headers=3, max_body_bytes=16)
    prefix = b"SEND\ndestination:q\nx:"
    # The header block counts everything before the body (blank line included).
    fill = 64 - len(prefix) - 2
    at_limit = [
        prefix + b"a" * fill + b"\n\n" + b"b" * 16 + b"\0",  # max header, body up to NUL
        b"SEND\ndestination:q\ncontent-length:16\n\n" + b"c" * 16 + b"\0",
        b"SEND\ndestination:q\ny:1\nz:2\n\n\0",  # three headers
        b"SEND\r\ndestination:q\r\nx:" + b"a" * (64 - 23 - 4) + b"\r\n\r\n\0",
    ]
    over = [
        prefix + b"a" * (fill + 1) + b"\n\n\0",
        b"SEND\ndestination:q\n\n" + b"b" * 17 + b"\0",
        b"SEND\ndestination:q\ncontent-length:17\n\n" + b"c" * 17 + b"\0",
        b"SEND\ndestination:q\ny:1\nz:2\nw:3\n\n\0",
        b"SEND\r\ndestination:q\r\nx:" + b"a" * (64 - 23 - 3) + b"\r\n\r\n\0",
    ]
    for frame in at_limit:
        stream = CONNECT + frame
        for i in range(len(CONNECT), len(stream) + 1):
            events = feed(server(limits), stream[:i], stream[i:], eof=False)
            assert [type(e) for e in events] == [Frame, Frame], (frame, i, events)
    for frame in over:
        stream = CONNECT + frame
        for i in range(len(CONNECT), len(stream) + 1):
            events = feed(server(limits), stream[:i], stream[i:], eof=False)
            assert [type(e) for e in events] == [Frame, Violation], (frame, i, events)


def test_max_header_block_edge_with_crlf_terminator_split() -> None:
    limits = Limits(max_header_bytes=32, max_headers=8, max_body_bytes=16)
    head = b"SEND\r\ndestination:q\r\nx:"
    frame = head + b"a" * (32 - len(head) - 4) + b"\r\n\r\n\0"
    assert len(frame) == 33
    for i in range(len(frame) + 1):
        events = feed(server(limits), b"STOMP\naccept-version:1.2\n\n\0", frame[:i], frame[i:],
                      eof=False)
        assert [type(e) for e in events] == [Frame, Frame], i
    over = frame[:-6] + b"a" + frame[-6:]
    for i in range(len(over) + 1):
        events = feed(server(limits), b"STOMP\naccept-version:1.2\n\n\0", over[:i], over[i:],
                      eof=False)
        assert [type(e) for e in events] == [Frame, Violation], i


def test_eof_in_the_middle_of_a_frame_is_end_of_stream() -> None:
    conn = server()
    events = feed(conn, CONNECT + b"SEND\ndestination:q\ncontent-length:10\n\nabc")
    assert [type(e) for e in events] == [Frame, EndOfStream]
    assert conn.closed
    assert conn.next_event() is None


def test_send_after_close_is_refused_except_error() -> None:
    conn = server()
    feed(conn, b"")
    with pytest.raises(RuntimeError):
        conn.send(Frame("MESSAGE"), 0.0)
    assert conn.send(Frame("ERROR", (("message", "x"),)), 0.0).startswith(b"ERROR\n")


# ------------------------------------------------------------------ encoding
def test_encode_frame_escapes_and_adds_content_length() -> None:
    data = encode_frame("MESSAGE", [("destination", "a:b\nc\\d\re")], b"x\0y")
    assert data == b"MESSAGE\ndestination:a\\cb\\nc\\\\d\\re\ncontent-length:3\n\nx\0y\0"
    client = StompConnection(Role.CLIENT)
    client.send(Frame("CONNECT", (("accept-version", "1.2"),)), 0.0)
    events = feed(client, b"CONNECTED\nversion:1.2\n\n\0" + data)
    assert events[1] == Frame("MESSAGE", (("destination", "a:b\nc\\d\re"),
                                          ("content-length", "3")), b"x\0y")


def test_encode_frame_connect_headers_are_raw_and_bodyless_has_no_length() -> None:
    data = encode_frame("CONNECT", [("login", "a:b")])
    assert data == b"CONNECT\nlogin:a:b\n\n\0"
    assert encode_frame("SEND", [("content-length", "2")], b"ab") == (
        b"SEND\ncontent-length:2\n\nab\0")


def test_round_trip_of_encoded_frames_through_server_codec() -> None:
    frames = [Frame("SEND", (("destination", "jms.topic.vdsm_requests"),
                             ("reply-to", "x:y\\z"), ("content-length", "4")), b"a\0\nb"),
              Frame("SUBSCRIBE", (("destination", "d"), ("id", "1"))),
              Frame("SEND", (("destination", "e"), ("content-length", "0")))]
    data = CONNECT + b"".join(encode_frame(f.command, f.headers, f.body) for f in frames)
    events = feed(server(), data, eof=False)
    assert events[1:] == frames


# ---------------------------------------------------------------- buffering
def test_many_frames_in_one_chunk_and_in_one_byte_chunks() -> None:
    """Linear-time parsing: 20,000 frames at once or byte by byte all come out."""
    frame = b"SEND\ndestination:jms.topic.vdsm_requests\n\n{}\0"
    n = 20_000
    data = CONNECT + frame * n
    conn = server()
    events = feed(conn, data, eof=False)
    assert len(events) == n + 1 and events[-1] == events[1]
    conn = server()
    count = 0
    for i in range(len(data)):
        conn.receive_data(data[i:i + 1], 0.0)
        while (event := conn.next_event()) is not None:
            assert isinstance(event, Frame)
            count += 1
        assert len(conn._buf) <= len(CONNECT)
    assert count == n + 1


def test_buffer_is_bounded_when_frames_straddle_small_chunks() -> None:
    limits = Limits(max_header_bytes=128, max_headers=8, max_body_bytes=256)
    frame = b"SEND\ndestination:q\ncontent-length:5\n\nhello\0"
    data = CONNECT + frame * 3000
    for chunk_size in (1, 7, 50, 333, 4096):
        conn = server(limits)
        frames = 0
        for i in range(0, len(data), chunk_size):
            conn.receive_data(data[i:i + chunk_size], 0.0)
            assert len(conn._buf) <= 128 + 256 + chunk_size
            while (event := conn.next_event()) is not None:
                assert isinstance(event, Frame), event
                frames += 1
                assert len(conn._buf) <= 128 + 256 + chunk_size
        assert frames == 3001, chunk_size


def test_large_body_arriving_in_pieces() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB with NULs everywhere
    data = CONNECT + b"SEND\ndestination:q\ncontent-length:%d\n\n%b\0" % (len(body), body)
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    events = feed(server(), *chunks, eof=False)
    assert events[1].body == body
