"""The live event stream (server-sent events): audit entries and status
changes as they happen, RBAC-filtered, Last-Event-ID resume, and the end of
the stream when the token is revoked."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, AsyncIterator

import aiohttp

from ovengine.aaa.permits import VM_CREATOR_ROLE_ID
from tests.fixtures.rest import ApiClient, add_user, grant

STREAM = "/ovirt-engine/api/events/stream"


async def sse(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    block: dict[str, Any] = {}
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), timeout=15)
        if not raw:
            return
        line = raw.decode().rstrip("\n")
        if not line:
            if "event" in block:
                yield block
            block = {}
        elif line.startswith(":"):
            block.setdefault("comments", []).append(line[1:].strip())
            yield {"event": "comment", "data": line[1:].strip()}
        else:
            key, _, value = line.partition(": ")
            block[key] = json.loads(value) if key == "data" else value


async def open_stream(c: ApiClient, query: str = "", headers: dict[str, str] | None = None
                      ) -> aiohttp.ClientResponse:
    h = {"Authorization": f"Bearer {c.token}", **(headers or {})}
    resp = await c.session.get(c.base + STREAM + query, headers=h,
                               timeout=aiohttp.ClientTimeout(total=60, sock_read=30))
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    return resp


async def next_event(events: AsyncIterator[dict[str, Any]], kind: str,
                     match: Any = lambda d: True) -> dict[str, Any]:
    async for e in events:
        if e["event"] == kind and match(e["data"]):
            return e
    raise AssertionError(f"stream ended before a {kind} event")


async def test_stream_live_filtered_and_resumed(admin: ApiClient) -> None:
    engine = admin.engine
    default = str(await engine.s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    uid = await add_user(engine, "eve")
    await grant(engine, uid, VM_CREATOR_ROLE_ID, "cluster", default)
    eve = admin.as_user(None)
    await eve.login("eve@internal", "secret-pw")

    admin_resp = await open_stream(admin, "?heartbeat=1")
    eve_resp = await open_stream(eve, "?heartbeat=1&types=audit")
    admin_events, eve_events = sse(admin_resp), sse(eve_resp)
    try:
        r = await admin.post("/vms", "<vm><name>adminvm</name><cluster><name>Default</name>"
                             "</cluster></vm>")
        assert r.status == 201
        r = await eve.post("/vms", "<vm><name>evevm</name><cluster><name>Default</name>"
                           "</cluster></vm>")
        assert r.status == 201
        first = await next_event(admin_events, "audit", lambda d: "adminvm" in d["description"])
        assert first["data"]["code"] == "34" and int(first["id"]) > 0
        await next_event(admin_events, "audit", lambda d: "evevm" in d["description"])
        # Eve sees her own VM's events, never the admin's.
        got = await next_event(eve_events, "audit", lambda d: "VM" in d["description"])
        assert "evevm" in got["data"]["description"]

        # Resume: everything after the first event, from the database, then live.
        resumed = await open_stream(admin, "?heartbeat=1", {"Last-Event-ID": first["id"]})
        ids = []
        async for e in sse(resumed):
            if e["event"] == "audit":
                ids.append(int(e["id"]))
                if "evevm" in e["data"]["description"]:
                    break
        assert ids and ids[0] == int(first["id"]) + 1 and ids == sorted(set(ids))
        resumed.close()

        # Revoking the token ends the stream at the next heartbeat.
        await admin.as_user(None).raw("POST", "/ovirt-engine/services/sso-logout", auth=False,
                                      data={"token": eve.token})
        end = await next_event(eve_events, "end")
        assert "revoked" in end["data"]["reason"]
    finally:
        admin_resp.close()
        eve_resp.close()


async def test_stream_status_changes(admin: ApiClient) -> None:
    from tests.fixtures.engine import EngineFactory  # noqa: F401 (documentation)
    resp = await open_stream(admin, "?types=vm,host&heartbeat=1")
    events = sse(resp)
    try:
        bus = admin.engine.s.bus
        bus.publish("host", {"id": "00000000-0000-0000-0000-00000000000a", "name": "h",
                             "status": "maintenance", "detail": ""})
        e = await next_event(events, "host")
        assert e["data"]["status"] == "maintenance" and "id" not in e
        r = await admin.get("")
        assert re.search(r"events/stream", r.text)
    finally:
        resp.close()
