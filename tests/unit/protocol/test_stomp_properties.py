"""Property tests: hostile or broken input never escapes the codec or grows its buffer,
and how the input is split into reads never changes what comes out."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.stomp import Limits, Role, StompConnection

from .test_stomp_codec import CONNECT, STREAM

LIMITS = Limits(max_header_bytes=192, max_headers=8, max_body_bytes=128)
BOUND = LIMITS.max_header_bytes + LIMITS.max_body_bytes

SERVER_FRAMES = [
    STREAM,
    CONNECT + b"SEND\ndestination:jms.topic.vdsm_requests\nreply-to:r\ncontent-length:3\n\n{}\n\0"
    + b"SUBSCRIBE\ndestination:jms.queue.events\nid:e\nack:auto\n\n\0\n"
    + b"SEND\ndestination:jms.topic.vdsm_requests\n\n" + b"x" * 100 + b"\0",
]
CLIENT_FRAMES = [
    b"CONNECTED\nversion:1.2\nheart-beat:15000,0\n\n\0\n"
    b"MESSAGE\ndestination:jms.topic.vdsm_responses\ncontent-type:application/json\n"
    b"subscription:reply\ncontent-length:11\n\n{\"id\":1}\0\0\0\0\n"
    b"RECEIPT\nreceipt-id:x\\cy\n\n\0ERROR\nmessage:bye\n\nbye\0",
]


def run(role: Role, data: bytes, cuts: list[int]) -> list:
    """Feed `data` cut at `cuts`, then EOF; check the buffer bound after every call."""
    conn = StompConnection(role, LIMITS)
    events = []
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in zip(bounds, bounds[1:]):
        chunk = data[a:b]
        if not chunk:
            continue
        conn.receive_data(chunk, 0.0)
        assert len(conn._buf) <= BOUND + len(chunk)
        while (event := conn.next_event()) is not None:
            events.append(event)
            assert len(conn._buf) <= BOUND + len(chunk)
    conn.receive_data(b"", 1.0)
    while (event := conn.next_event()) is not None:
        events.append(event)
    assert conn.closed
    assert conn.next_event() is None
    return events


@st.composite
def mutated(draw: st.DrawFn, sources: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(sources)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "delete"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=40)
                             | st.sampled_from([b"\n", b"\r\n", b"\0", b"\\", b":", b"\n\n"]))
        elif op == "duplicate":
            j = draw(st.integers(i, min(len(data), i + 200)))
            data[i:i] = data[i:j]
        else:
            j = draw(st.integers(i, min(len(data), i + 20)))
            del data[i:j]
    return bytes(data)


cuts = st.lists(st.integers(0, 10_000), max_size=12)
fast = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@fast
@given(st.binary(max_size=2000), cuts, st.sampled_from([Role.SERVER, Role.CLIENT]))
def test_random_bytes_never_raise(data: bytes, cut: list[int], role: Role) -> None:
    run(role, data, cut)


@fast
@given(st.binary(max_size=600), cuts)
def test_random_bytes_after_a_valid_connect(data: bytes, cut: list[int]) -> None:
    run(Role.SERVER, CONNECT + data, cut)


@fast
@given(mutated(SERVER_FRAMES), cuts)
def test_mutated_client_streams_never_raise_and_split_does_not_matter(data: bytes,
                                                                      cut: list[int]) -> None:
    assert run(Role.SERVER, data, cut) == run(Role.SERVER, data, [])


@fast
@given(mutated(CLIENT_FRAMES), cuts)
def test_mutated_server_streams_never_raise_and_split_does_not_matter(data: bytes,
                                                                      cut: list[int]) -> None:
    assert run(Role.CLIENT, data, cut) == run(Role.CLIENT, data, [])


@fast
@given(st.sampled_from(SERVER_FRAMES), cuts)
def test_valid_streams_parse_the_same_however_split(data: bytes, cut: list[int]) -> None:
    whole = run(Role.SERVER, data, [])
    assert run(Role.SERVER, data, cut) == whole
    assert not any(type(e).__name__ == "Violation" for e in whole)


@fast
@given(st.integers(1, 64), st.integers(0, 2000))
def test_oversized_input_is_cut_off_at_the_limits(chunk: int, extra: int) -> None:
    """Endless header or body bytes: a Violation, and memory stays bounded meanwhile."""
    for endless in (b"SEND\ndestination:q\nx:" + b"h" * (BOUND + extra),
                    b"SEND\ndestination:q\n\n" + b"b" * (BOUND + extra)):
        data = CONNECT + endless
        events = run(Role.SERVER, data, list(range(0, len(data), chunk)))
        assert type(events[-1]).__name__ == "Violation"
