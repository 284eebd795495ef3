"""stomp.py (an independent STOMP 1.2 client) drives the agent like vdsm-client would.

stomp.py is threaded and blocking: its calls run in worker threads while the
agent runs on the test's loop; its listener hands frames over through a queue
read with a deadline. It sends STOMP (not CONNECT) and a client certificate.
"""

from __future__ import annotations

import asyncio
import json
import queue
import uuid
from typing import Any

import stomp

from protocol.transport import REQUEST_DESTINATION
from tests.fixtures.agent import (
    AgentHarness,
    AgentPki,
    StartAgent,
    check_result,
    wait_until,
)

DEADLINE_S = 10.0


class Replies(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: queue.Queue[Any] = queue.Queue()
        self.errors: list[Any] = []

    def on_message(self, frame: Any) -> None:
        self.messages.put(frame)

    def on_error(self, frame: Any) -> None:
        self.errors.append(frame)

    async def next(self) -> Any:
        return await asyncio.to_thread(self.messages.get, True, DEADLINE_S)


async def open_stomp(agent: AgentHarness, pki: AgentPki) -> tuple[stomp.Connection12, Replies]:
    host = ("127.0.0.1", agent.agent.port)
    conn = stomp.Connection12([host], heartbeats=(0, 0), timeout=DEADLINE_S)
    conn.set_ssl(for_hosts=[host], key_file=str(pki.key("engine")),
                 cert_file=str(pki.cert("engine")), ca_certs=str(pki.ca))
    replies = Replies()
    conn.set_listener("replies", replies)
    await asyncio.wait_for(asyncio.to_thread(conn.connect, wait=True), DEADLINE_S)
    return conn, replies


async def rpc(conn: stomp.Connection12, replies: Replies, reply_to: str, method: str,
              params: dict[str, Any]) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params,
                       "id": request_id})
    await asyncio.to_thread(conn.send, REQUEST_DESTINATION, body,
                            content_type="application/json",
                            headers={"reply-to": reply_to})
    frame = await replies.next()
    assert frame.headers["destination"] == reply_to
    assert frame.headers["content-type"] == "application/json"
    assert int(frame.headers["content-length"]) == len(frame.body.encode())
    answer: dict[str, Any] = json.loads(frame.body)
    assert answer["jsonrpc"] == "2.0" and answer["id"] == request_id
    return answer


async def test_stomp_py_calls_verbs(start_agent: StartAgent, agent_pki: AgentPki) -> None:
    agent = await start_agent("test")
    vm_id = await agent.create_vm("stomp")
    await agent.wait_status(vm_id, "Up")
    conn, replies = await open_stomp(agent, agent_pki)
    try:
        reply_to = str(uuid.uuid4())  # a private reply destination, like vdsm-client
        await asyncio.to_thread(conn.subscribe, destination=reply_to, id="r1", ack="auto")

        caps = await rpc(conn, replies, reply_to, "Host.getCapabilities", {})
        check_result("Host.getCapabilities", caps["result"])
        stats = await rpc(conn, replies, reply_to, "VM.getStats", {"vmID": vm_id})
        check_result("VM.getStats", stats["result"])
        assert stats["result"][0]["vmId"] == vm_id
        assert stats["result"][0]["status"] == "Up"
        missing = await rpc(conn, replies, reply_to, "VM.getStats",
                            {"vmID": str(uuid.uuid4())})
        assert missing["error"]["code"] == 1
        assert replies.errors == []
    finally:
        await asyncio.to_thread(conn.disconnect)
    # Only the harness's own RpcClient stays connected.
    await wait_until(lambda: len(agent.agent.server.connections) == 1, DEADLINE_S,
                     "the agent to close the stomp.py connection")
