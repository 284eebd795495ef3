"""Interop with stomp.py, an independent STOMP 1.2 implementation, over mutual TLS.

stomp.py is threaded and blocking: its calls run in worker threads
(asyncio.to_thread) while our server runs on the test's event loop, and its
listener hands frames over through a queue read with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import queue
import uuid
from typing import Any, AsyncIterator

import pytest
import stomp  # type: ignore[import-untyped]

from protocol.transport import EVENTS_DESTINATION, REQUEST_DESTINATION
from tests.fixtures.protocol import ServerHandle, wait_for_condition

DEADLINE_S = 10.0


class Listener(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: queue.Queue[Any] = queue.Queue()
        self.errors: list[Any] = []
        self.heartbeats = 0
        self.receipts: list[str] = []

    def on_message(self, frame: Any) -> None:
        self.messages.put(frame)

    def on_error(self, frame: Any) -> None:
        self.errors.append(frame)

    def on_receipt(self, frame: Any) -> None:
        self.receipts.append(frame.headers["receipt-id"])

    def on_heartbeat(self) -> None:
        self.heartbeats += 1

    async def next_message(self) -> Any:
        return await asyncio.to_thread(self.messages.get, True, DEADLINE_S)


async def open_stomp_py(handle: ServerHandle, heartbeats: tuple[int, int] = (0, 0)
                        ) -> tuple[stomp.Connection12, Listener]:
    pki = handle.pki
    host = ("127.0.0.1", handle.port)
    conn = stomp.Connection12([host], heartbeats=heartbeats, timeout=DEADLINE_S)
    conn.set_ssl(for_hosts=[host], key_file=str(pki.key("client")),
                 cert_file=str(pki.cert("client")), ca_certs=str(pki.ca_file))
    listener = Listener()
    conn.set_listener("test", listener)
    # stomp.py sends STOMP (not CONNECT) as its first frame.
    await asyncio.wait_for(asyncio.to_thread(conn.connect, wait=True), DEADLINE_S)
    assert conn.is_connected()
    return conn, listener


@pytest.fixture
async def stomp_py(rpc_server: ServerHandle) -> AsyncIterator[tuple[stomp.Connection12,
                                                                    Listener]]:
    conn, listener = await open_stomp_py(rpc_server)
    try:
        yield conn, listener
    finally:
        await disconnect(rpc_server, conn)


async def disconnect(handle: ServerHandle, conn: stomp.Connection12) -> None:
    """DISCONNECT and wait until the server has closed the link.

    stomp.py ignores a TLS close_notify on its non-blocking socket, so a server
    that starts the close itself waits for RpcServer.close()'s grace period.
    """
    if conn.is_connected():
        await asyncio.to_thread(conn.disconnect)
    await wait_for_condition(lambda: not handle.server.connections, timeout_s=DEADLINE_S,
                             what="the server to close the stomp.py connection")


async def request(conn: stomp.Connection12, listener: Listener, reply_to: str,
                  body: dict[str, Any] | list[Any]) -> tuple[Any, Any]:
    await asyncio.to_thread(conn.send, REQUEST_DESTINATION, json.dumps(body),
                            content_type="application/json", headers={"reply-to": reply_to})
    frame = await listener.next_message()
    return frame, json.loads(frame.body)


async def test_stomp_py_calls_a_verb_on_a_private_reply_destination(
        rpc_server: ServerHandle, stomp_py: tuple[stomp.Connection12, Listener]) -> None:
    conn, listener = stomp_py
    reply_to = str(uuid.uuid4())
    await asyncio.to_thread(conn.subscribe, reply_to, "reply", ack="auto")
    frame, answer = await request(conn, listener, reply_to, {
        "jsonrpc": "2.0", "method": "Test.add", "params": {"a": 40, "b": 2}, "id": "c-1"})
    assert answer == {"jsonrpc": "2.0", "id": "c-1", "result": 42}
    assert frame.headers["destination"] == reply_to
    assert frame.headers["subscription"] == "reply"
    assert frame.headers["content-type"] == "application/json"
    assert int(frame.headers["content-length"]) == len(frame.body.encode())
    # vdsm's python client style: a batch of one gets a single object back.
    _, answer = await request(conn, listener, reply_to, [
        {"jsonrpc": "2.0", "method": "Test.echo", "params": {"value": "ü:\n"}, "id": 2}])
    assert answer == {"jsonrpc": "2.0", "id": 2, "result": "ü:\n"}
    _, answer = await request(conn, listener, reply_to, {
        "jsonrpc": "2.0", "method": "Test.fail", "params": {"code": 13}, "id": 3})
    assert answer["error"]["code"] == 13
    assert listener.errors == []


async def test_stomp_py_receives_events(rpc_server: ServerHandle,
                                        stomp_py: tuple[stomp.Connection12, Listener]) -> None:
    conn, listener = stomp_py
    reply_to = str(uuid.uuid4())
    await asyncio.to_thread(conn.subscribe, reply_to, "reply", ack="auto")
    await asyncio.to_thread(conn.subscribe, EVENTS_DESTINATION, "events", ack="auto")
    # Once a request sent after the SUBSCRIBEs is answered, they are in place.
    await request(conn, listener, reply_to, {"jsonrpc": "2.0", "method": "Host.ping2",
                                             "params": {}, "id": 1})
    sent = rpc_server.server.publish_event("|virt|VM_status|vm-1",
                                           {"vm-1": {"status": "Up"}, "notify_time": 42})
    assert sent == 1
    frame = await listener.next_message()
    assert frame.headers["destination"] == EVENTS_DESTINATION
    assert frame.headers["subscription"] == "events"
    assert json.loads(frame.body) == {"jsonrpc": "2.0", "method": "|virt|VM_status|vm-1",
                                      "params": {"vm-1": {"status": "Up"}, "notify_time": 42}}


async def test_stomp_py_heartbeats_and_disconnect_receipt(rpc_server: ServerHandle) -> None:
    # stomp.py wants a beat every second; our server must keep it fed.
    conn, listener = await open_stomp_py(rpc_server, heartbeats=(0, 1000))
    try:
        await wait_for_condition(lambda: listener.heartbeats >= 1, timeout_s=DEADLINE_S,
                                 what="a heart-beat from our server")
        assert conn.is_connected()
        # stomp.py's disconnect() sends DISCONNECT with a receipt; it is disconnected
        # once the RECEIPT arrives.
        await asyncio.to_thread(conn.disconnect, receipt="bye-1")
        await wait_for_condition(lambda: listener.receipts == ["bye-1"], timeout_s=DEADLINE_S,
                                 what="the RECEIPT")
        await wait_for_condition(lambda: not conn.is_connected(), timeout_s=DEADLINE_S)
        await wait_for_condition(lambda: not rpc_server.server.connections,
                                 what="the server to close the connection")
    finally:
        await disconnect(rpc_server, conn)
