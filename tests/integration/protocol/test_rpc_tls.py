"""RpcServer and RpcClient over real mutual TLS on 127.0.0.1 (throwaway CA).

Every test runs on the asyncio loop and on uvloop (see conftest.py). Nothing sleeps
to wait: tests wait on futures, events or conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from protocol import tls
from protocol.flow import using_flow_id
from protocol.jsonrpc import JsonRpcError
from protocol.rpc import (
    CallTimeoutError,
    ClientState,
    ConnectionLostError,
    HandshakeError,
    NotConnectedError,
    RpcClient,
    RpcConnectionError,
)
from protocol.stomp import Frame
from protocol.transport import RESPONSE_DESTINATION
from tests.fixtures.protocol import (
    Pki,
    RawStompClient,
    ServerHandle,
    start_server,
    wait_for_condition,
)

OpenRaw = Callable[[int, ssl.SSLContext], Awaitable[RawStompClient]]


def now() -> float:
    return asyncio.get_running_loop().time()


# ------------------------------------------------------------------- calls
async def test_calls_results_and_errors(rpc_server: ServerHandle) -> None:
    client = await rpc_server.connected_client()
    assert client.state is ClientState.CONNECTED and client.connects == 1
    assert await client.call("Host.ping2") is True
    assert await client.call("Test.add", {"a": 2, "b": 40}) == 42
    assert await client.call("Test.add", [1, 2]) == 3
    assert await client.call("Test.echo", {"value": {"nested": ["x", 1.5, None]}}) == {
        "nested": ["x", 1.5, None]}
    big = "x" * 2_000_000  # a 2 MB result crosses many TLS records
    assert await client.call("Test.echo", {"value": big}) == big
    for method, params, code in [("Test.fail", {"code": 1}, 1),
                                 ("Test.fail", {"code": 99}, 99),
                                 ("No.such", {}, -32601),
                                 ("Test.add", {"a": "1"}, -32602),
                                 ("Test.crash", {}, -32603)]:
        with pytest.raises(JsonRpcError) as info:
            await client.call(method, params)
        assert info.value.code == code, method
    assert client.connected  # errors are answers, not link failures


async def test_pipelined_calls_are_in_flight_together(rpc_server: ServerHandle) -> None:
    client = await rpc_server.connected_client()
    rpc_server.api.party = 50  # each handler returns only when all 50 are inside
    values = await asyncio.wait_for(asyncio.gather(
        *(client.call("Test.rendezvous", {"value": i}) for i in range(50))), 10)
    assert values == list(range(50))
    results = await asyncio.gather(*(client.call("Test.add", {"a": i, "b": 1})
                                     for i in range(1000)))
    assert results == [i + 1 for i in range(1000)]
    assert not client._pending


async def test_call_timeout_leaves_the_connection_usable(rpc_server: ServerHandle) -> None:
    client = await rpc_server.connected_client()
    t0 = now()
    with pytest.raises(CallTimeoutError) as info:
        await client.call("Test.block", timeout_s=0.3)
    assert 0.29 <= now() - t0 < 3
    assert "Test.block" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    assert rpc_server.api.blocked == 1
    assert client.connected
    assert await client.call("Test.add", {"a": 7}) == 7
    assert not client._pending


async def test_call_before_connect_is_not_connected(rpc_server: ServerHandle) -> None:
    client = rpc_server.client()
    with pytest.raises(NotConnectedError):
        await client.call("Host.ping2")


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_link_loss_fails_in_flight_calls_at_once(test_pki: Pki, tmp_path: Path,
                                                       how: str) -> None:
    handle = await start_server(test_pki, tmp_path)
    try:
        client = await handle.connected_client(call_timeout_s=60)
        calls = [asyncio.ensure_future(client.call("Test.block")) for _ in range(3)]
        await wait_for_condition(lambda: handle.api.blocked == 3, what="calls in the handler")
        t0 = now()
        if how == "close":
            await handle.server.close()
        else:
            for conn in list(handle.server.connections):
                conn.abort("test abort")
        for call in calls:
            with pytest.raises(ConnectionLostError):
                await asyncio.wait_for(call, 5)
        assert now() - t0 < 5  # not the 60 s call timeout
        await wait_for_condition(lambda: client.state is ClientState.DISCONNECTED)
        with pytest.raises(NotConnectedError):
            await client.call("Host.ping2")
    finally:
        await handle.close()


async def test_client_close_fails_its_calls(rpc_server: ServerHandle) -> None:
    client = await rpc_server.connected_client()
    call = asyncio.ensure_future(client.call("Test.block"))
    await wait_for_condition(lambda: rpc_server.api.blocked == 1)
    await client.close()
    with pytest.raises(ConnectionLostError):
        await call
    assert client.state is ClientState.CLOSED
    await wait_for_condition(lambda: not rpc_server.server.connections,
                             what="the server to see the client go")


async def test_reconnect_after_server_restart_restores_subscriptions(
        test_pki: Pki, tmp_path: Path) -> None:
    first = await start_server(test_pki, tmp_path)
    port = first.port
    events: list[tuple[str, dict[str, Any]]] = []
    frames: list[Frame] = []
    states: list[ClientState] = []
    client = first.client(backoff_initial_s=0.02, backoff_max_s=0.2,
                          on_event=lambda m, p: events.append((m, p)),
                          on_state=lambda s, _: states.append(s))
    second: ServerHandle | None = None
    try:
        client.start()
        await client.wait_connected(5)
        client.subscribe("ov.test.custom", frames.append)
        await client.call("Host.ping2")  # the server has our SUBSCRIBEs once this returns
        assert first.server.publish_event("|virt|VM_status|a", {"notify_time": 1}) == 1
        assert first.server.publish("ov.test.custom", b"one") == 1
        await wait_for_condition(lambda: len(events) == 1 and len(frames) == 1)

        await first.server.close()
        await wait_for_condition(lambda: not client.connected, what="the client to notice")
        second = await start_server(test_pki, tmp_path, port=port)
        await client.wait_connected(5)
        assert client.connects == 2
        assert await client.call("Test.add", {"a": 1, "b": 1}) == 2
        assert second.server.publish_event("|virt|VM_status|b", {"notify_time": 2}) == 1
        assert second.server.publish("ov.test.custom", b"two") == 1
        await wait_for_condition(lambda: len(events) == 2 and len(frames) == 2)
        assert [m for m, _ in events] == ["|virt|VM_status|a", "|virt|VM_status|b"]
        assert [f.body for f in frames] == [b"one", b"two"]
        assert states[:4] == [ClientState.CONNECTING, ClientState.CONNECTED,
                              ClientState.DISCONNECTED, ClientState.CONNECTING]
        assert states[-1] is ClientState.CONNECTED
    finally:
        await client.close()
        await first.close()
        if second is not None:
            await second.close()


async def test_supervised_client_retries_until_the_server_appears(test_pki: Pki,
                                                                  tmp_path: Path) -> None:
    # Find a free port, then start the client before anything listens there.
    probe = await start_server(test_pki, tmp_path)
    port = probe.port
    await probe.close()
    client = RpcClient("127.0.0.1", port, test_pki.client_context(), backoff_initial_s=0.02,
                       backoff_max_s=0.1, connect_timeout_s=2)
    handle: ServerHandle | None = None
    try:
        client.start()
        await wait_for_condition(lambda: client.last_error is not None,
                                 what="a refused attempt")
        assert not client.connected
        handle = await start_server(test_pki, tmp_path, port=port)
        await client.wait_connected(5)
        assert await client.call("Host.ping2") is True
    finally:
        await client.close()
        if handle is not None:
            await handle.close()


# -------------------------------------------------------------- heart-beats
async def test_client_drops_a_silent_server_after_interval_times_1_5(test_pki: Pki) -> None:
    """A server that completes TLS, answers CONNECTED with heart-beats, then says nothing."""
    writers: list[asyncio.StreamWriter] = []
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        data = b""
        while b"\0" not in data:
            chunk = await reader.read(4096)
            if not chunk:
                return
            data += chunk
        assert data.startswith(b"CONNECT\n")
        writer.write(b"CONNECTED\nversion:1.2\nheart-beat:400,0\n\n\0")
        await writer.drain()
        await release.wait()

    server = await asyncio.start_server(silent, "127.0.0.1", 0,
                                        ssl=test_pki.server_context())
    port = server.sockets[0].getsockname()[1]
    client = RpcClient("127.0.0.1", port, test_pki.client_context(), heartbeat_ms=(0, 400),
                       connect_timeout_s=5)
    try:
        await client.connect()
        t0 = now()
        assert client._conn is not None
        assert client._conn.codec.receive_interval_s == 0.4
        await wait_for_condition(lambda: not client.connected, timeout_s=5,
                                 what="the heart-beat timeout")
        elapsed = now() - t0
        assert 0.55 <= elapsed <= 0.6 + 0.4, elapsed  # 0.4 s x 1.5, plus a margin
        assert client.last_error == "heart-beat timeout"
    finally:
        release.set()
        await client.close()
        for writer in writers:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


async def test_server_drops_a_silent_client(test_pki: Pki, tmp_path: Path,
                                            raw_clients: OpenRaw) -> None:
    handle = await start_server(test_pki, tmp_path, heartbeat_min_ms=100)
    try:
        raw = await raw_clients(handle.port, test_pki.client_context())
        connected = await raw.connect(heartbeat="200,0")  # promises beats, never sends any
        assert connected["heart-beat"] == "0,200"
        t0 = now()
        assert await raw.wait_closed() == []
        assert 0.25 <= now() - t0 < 2
        await wait_for_condition(lambda: not handle.server.connections)
    finally:
        await handle.close()


async def test_server_sends_heartbeats(test_pki: Pki, tmp_path: Path,
                                       raw_clients: OpenRaw) -> None:
    handle = await start_server(test_pki, tmp_path, heartbeat_min_ms=100)
    try:
        raw = await raw_clients(handle.port, test_pki.client_context())
        connected = await raw.connect(heartbeat="0,200")
        assert connected["heart-beat"] == "200,0"
        await raw.heartbeats(3, timeout_s=3)
    finally:
        await handle.close()


async def test_connected_reply_raises_tiny_intervals(rpc_server: ServerHandle,
                                                     raw_clients: OpenRaw) -> None:
    raw = await raw_clients(rpc_server.port, rpc_server.pki.client_context())
    connected = await raw.connect(heartbeat="1,1")
    assert connected["version"] == "1.2"
    assert connected["heart-beat"] == "1000,1000"


# --------------------------------------------------------------------- TLS
@pytest.mark.parametrize("who", ["no certificate", "certificate of another CA"])
async def test_server_refuses_untrusted_clients(rpc_server: ServerHandle, test_pki: Pki,
                                                who: str) -> None:
    if who == "no certificate":
        ctx = test_pki.anonymous_client_context()
    else:
        ctx = test_pki.client_context("stranger", ca=test_pki.ca_file)
    client = rpc_server.client(ssl_context=ctx)
    with pytest.raises((RpcConnectionError, OSError)):
        await client.connect()
    assert client.state is ClientState.DISCONNECTED
    assert not rpc_server.server.connections
    good = await rpc_server.connected_client()
    assert await good.call("Host.ping2") is True


async def test_client_refuses_a_server_of_another_ca(test_pki: Pki, tmp_path: Path) -> None:
    ctx = tls.server_context(test_pki.cert("stranger"), test_pki.key("stranger"),
                             test_pki.ca_file)
    handle = await start_server(test_pki, tmp_path, ssl_context=ctx)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await handle.client().connect()
        assert not handle.server.connections
    finally:
        await handle.close()


async def test_client_checks_the_server_name(rpc_server: ServerHandle) -> None:
    client = rpc_server.client(server_hostname="not-this-host.example")
    with pytest.raises(ssl.SSLCertVerificationError):
        await client.connect()
    ok = await rpc_server.connected_client(server_hostname="localhost")
    assert await ok.call("Host.ping2") is True


async def test_fingerprint_pinning(rpc_server: ServerHandle, test_pki: Pki) -> None:
    pinned = await rpc_server.connected_client(
        expected_fingerprint=test_pki.fingerprint("server"))
    assert await pinned.call("Host.ping2") is True
    wrong = rpc_server.client(expected_fingerprint=test_pki.fingerprint("server2"))
    with pytest.raises(HandshakeError) as info:
        await wrong.connect()
    assert test_pki.fingerprint("server2") in str(info.value)
    assert wrong.state is ClientState.DISCONNECTED
    await wait_for_condition(lambda: len(rpc_server.server.connections) == 1,
                             what="the refused connection to be gone")


async def test_crl_refuses_a_revoked_client(test_pki: Pki, tmp_path: Path) -> None:
    handle = await start_server(test_pki, tmp_path, ssl_context=test_pki.server_context(crl=True))
    try:
        with pytest.raises((RpcConnectionError, OSError)):
            await handle.client("revoked").connect()
        good = await handle.connected_client("client")
        assert await good.call("Host.ping2") is True
        assert len(handle.server.connections) == 1
    finally:
        await handle.close()
    # Control: the same certificate is fine for a server without the CRL.
    handle = await start_server(test_pki, tmp_path)
    try:
        revoked = await handle.connected_client("revoked")
        assert await revoked.call("Host.ping2") is True
    finally:
        await handle.close()


def test_no_plaintext_mode(rpc_server: ServerHandle) -> None:
    with pytest.raises(TypeError):
        RpcClient("127.0.0.1", 1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        type(rpc_server.server)(rpc_server.server.dispatcher, None)  # type: ignore[arg-type]


async def test_server_sees_the_client_fingerprint(rpc_server: ServerHandle,
                                                  test_pki: Pki) -> None:
    client = await rpc_server.connected_client()
    await client.call("Host.ping2")
    (conn,) = rpc_server.server.connections
    assert conn.client_fingerprint == test_pki.fingerprint("client")


# ------------------------------------------------------------------ routing
async def test_events_go_to_subscribers_only(rpc_server: ServerHandle) -> None:
    got_a: list[Any] = []
    got_b: list[Any] = []
    a = await rpc_server.connected_client(on_event=lambda m, p: got_a.append((m, p)))
    b = await rpc_server.connected_client("client2", subscribe_events=False,
                                          on_event=lambda m, p: got_b.append((m, p)))
    await a.call("Host.ping2")
    await b.call("Host.ping2")
    params = {"vm1": {"status": "Up"}, "notify_time": 4295}
    assert rpc_server.server.publish_event("|virt|VM_status|vm1", params) == 1
    await wait_for_condition(lambda: bool(got_a), what="the event")
    assert got_a == [("|virt|VM_status|vm1", params)]
    # The event was queued for every subscriber before b's next request was even
    # read, so had b been sent one it would have arrived before this reply.
    await b.call("Host.ping2")
    assert got_b == []


class CountingClient(RpcClient):
    """Records every body arriving on the reply subscription."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replies: list[Any] = []

    def _on_reply(self, body: bytes) -> None:
        self.replies.append(json.loads(body))
        super()._on_reply(body)


async def test_responses_go_to_the_requesting_connection_only(rpc_server: ServerHandle) -> None:
    # Both use the engine's shared reply destination and both number calls from 1,
    # so a broadcast response (vdsm's behaviour) would complete the other's call.
    a = await rpc_server.connected_client(cls=CountingClient,
                                          reply_destination=RESPONSE_DESTINATION)
    b = await rpc_server.connected_client("client2", cls=CountingClient,
                                          reply_destination=RESPONSE_DESTINATION)
    rpc_server.api.party = 2
    ra, rb = await asyncio.gather(a.call("Test.rendezvous", {"value": "from a"}),
                                  b.call("Test.rendezvous", {"value": "from b"}))
    assert (ra, rb) == ("from a", "from b")
    assert isinstance(a, CountingClient) and isinstance(b, CountingClient)
    assert a.replies == [{"jsonrpc": "2.0", "id": 1, "result": "from a"}]
    assert b.replies == [{"jsonrpc": "2.0", "id": 1, "result": "from b"}]


async def test_correlation_id_reaches_the_handler_flow_id(rpc_server: ServerHandle) -> None:
    client = await rpc_server.connected_client()
    assert await client.call("Test.flow", flow_id="f-123") == "f-123"
    assert await client.call("Test.flow", flow_id="a:b\\c") == "a:b\\c"  # escaped on the wire
    with using_flow_id("from-context"):
        assert await client.call("Test.flow") == "from-context"
    assert await client.call("Test.flow") is True  # no flow: the handler returned None


# ------------------------------------------------------------- raw frames
async def test_malformed_frame_gets_error_and_close_while_others_continue(
        rpc_server: ServerHandle, raw_clients: OpenRaw) -> None:
    good = await rpc_server.connected_client()
    raw = await raw_clients(rpc_server.port, rpc_server.pki.client_context())
    await raw.connect()
    await wait_for_condition(lambda: len(rpc_server.server.connections) == 2)
    raw.send(b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:zz\n\n{}\0")
    frames = await raw.wait_closed()
    assert [f.command for f in frames] == ["ERROR"]
    assert "content-length" in frames[0]["message"]
    assert await good.call("Test.add", {"a": 5}) == 5
    await wait_for_condition(lambda: len(rpc_server.server.connections) == 1)


async def test_frame_before_connect_is_refused(rpc_server: ServerHandle,
                                               raw_clients: OpenRaw) -> None:
    raw = await raw_clients(rpc_server.port, rpc_server.pki.client_context())
    raw.send(b"SUBSCRIBE\ndestination:x\nid:1\n\n\0")
    frames = await raw.wait_closed()
    assert [f.command for f in frames] == ["ERROR"]
    assert "CONNECT" in frames[0].body.decode()


async def test_raw_request_with_private_reply_destination(rpc_server: ServerHandle,
                                                          raw_clients: OpenRaw) -> None:
    raw = await raw_clients(rpc_server.port, rpc_server.pki.client_context())
    # Pipelined like the engine: CONNECT and SUBSCRIBE before CONNECTED arrives.
    raw.send(b"CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0"
             b"SUBSCRIBE\ndestination:6f1c\\c1\nid:r\nack:auto\n\n\0")
    assert (await raw.next_frame()).command == "CONNECTED"
    # A SEND to an unknown destination is answered with ERROR but is not fatal.
    raw.send(b"SEND\ndestination:nowhere\nreceipt:r1\ncontent-length:2\n\n{}\0")
    error = await raw.next_frame()
    assert error.command == "ERROR" and error["receipt-id"] == "r1"
    assert "nowhere" in error["message"]
    body = b'[{"jsonrpc":"2.0","method":"Test.add","params":{"a":20,"b":22},"id":"u-1"}]'
    raw.send(b"SEND\ndestination:jms.topic.vdsm_requests.host1\ncontent-type:application/json\n"
             b"reply-to:6f1c\\c1\ncontent-length:%d\n\n%b\0" % (len(body), body))
    message = await raw.next_frame()
    assert message.command == "MESSAGE"
    assert message["destination"] == "6f1c:1"
    assert message["subscription"] == "r"
    assert message["content-type"] == "application/json"
    assert message["content-length"] == str(len(message.body))
    assert json.loads(message.body) == {"jsonrpc": "2.0", "id": "u-1", "result": 42}


async def test_disconnect_with_receipt_gets_receipt(rpc_server: ServerHandle,
                                                    raw_clients: OpenRaw) -> None:
    raw = await raw_clients(rpc_server.port, rpc_server.pki.client_context())
    await raw.connect()
    raw.send(b"DISCONNECT\nreceipt:77\n\n\0")
    frames = await raw.wait_closed()
    assert frames == [Frame("RECEIPT", (("receipt-id", "77"),))]
    await wait_for_condition(lambda: not rpc_server.server.connections)


async def test_back_pressure_pauses_reading_and_resumes(test_pki: Pki, tmp_path: Path) -> None:
    handle = await start_server(test_pki, tmp_path, max_inflight=4)
    try:
        client = await handle.connected_client()
        calls = [asyncio.ensure_future(client.call("Test.block")) for _ in range(12)]
        await wait_for_condition(lambda: handle.api.blocked >= 4)
        (conn,) = handle.server.connections
        assert conn._reading_paused
        handle.api.never.set()  # let every parked handler finish
        assert await asyncio.wait_for(asyncio.gather(*calls), 5) == [True] * 12
        assert handle.api.blocked == 12
        assert not conn._reading_paused
        assert await client.call("Host.ping2") is True
    finally:
        await handle.close()
