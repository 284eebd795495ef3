"""GET /ovirt-engine/api/events/stream: a live stream (server-sent events) of
audit log entries and VM / host status changes, filtered by what the user may
see, for clients that want push instead of polling /events.

    id: 1234                     <- audit entries only (the event id)
    event: audit
    data: {"id":"1234","code":"153","severity":"normal","description":"...",...}

    event: vm
    data: {"id":"<vm id>","name":"vm1","status":"up","host":{"id":..,"href":..}}

    event: host
    data: {"id":"<host id>","name":"host0","status":"maintenance",...}

    : keepalive                  <- a comment every `heartbeat` seconds

A client that reconnects with `Last-Event-ID: N` (or `?last_event_id=N`)
first gets every audit entry after N from the database, then the live ones,
without gaps or repeats. `?types=audit,vm` picks the kinds. The stream ends
when the token expires or is revoked (log in again and resume with
Last-Event-ID), and when the engine stops. A client too slow to read loses
the oldest live items; it is told with `event: dropped` (`{"count": n}`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from ...aaa.authz import Identity, SqlParams, visible_condition
from ...bus import Notification, Subscription
from ...errors import EngineError, ValidationFailed
from ..context import ApiContext, ctx, ident
from ..listing import query_int
from ..policy import LOGIN, Routes
from ..render import ref
from .events import EVENTS, event_dict

__all__ = ["add_routes", "close_streams", "STREAM_PATH"]

STREAM_PATH = "/ovirt-engine/api/events/stream"
TOPICS = ("audit", "vm", "host")
REPLAY_LIMIT = 10000
_STOP = "_stop"


WRITE_TIMEOUT_S = 30.0


async def _send(resp: web.StreamResponse, data: bytes) -> None:
    """A client that stops reading must not hold the stream (and its
    subscription) for ever."""
    await asyncio.wait_for(resp.write(data), timeout=WRITE_TIMEOUT_S)


def _sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


class _Visibility:
    """What a filtered user may see, re-checked as permissions change."""

    def __init__(self, c: ApiContext, who: Identity, filter_header: bool) -> None:
        self.c = c
        self.who = who
        self.filter_header = filter_header
        self.cache: dict[tuple[str, str], tuple[bool, float]] = {}

    async def refresh(self) -> bool:
        """Reload the identity; False if the user or token is gone."""
        if self.who.token_hash is not None and \
                not await self.c.tokens.is_valid_hash(self.who.token_hash):
            return False
        try:
            self.who = await self.c.authz.identity(self.who.user_id,
                                                   filter_header=self.filter_header,
                                                   token_hash=self.who.token_hash)
        except EngineError:
            return False
        self.cache.clear()
        return True

    async def audit(self, event_id: int) -> bool:
        if not self.who.filtered:
            return True
        p = SqlParams()
        cond = visible_condition("event", self.who.visibility(), p, EVENTS.cols)
        key = p(event_id)
        return bool(await self.c.s.pool.fetchval(
            f"SELECT 1 FROM audit_log a WHERE a.id = {key} AND {cond}", *p.values))

    async def entity(self, kind: str, obj_id: str) -> bool:
        if not self.who.filtered:
            return True
        now = time.monotonic()
        hit = self.cache.get((kind, obj_id))
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            await self.c.authz.authorize(self.who, None, kind, obj_id)
            ok = True
        except EngineError:
            ok = False
        self.cache[(kind, obj_id)] = (ok, now + 5.0)
        return ok


def _audit_data(p: dict[str, Any]) -> dict[str, Any]:
    i = str(p["id"])
    return {"href": f"/ovirt-engine/api/events/{i}", "id": i, "code": str(p["code"]),
            "correlation_id": p.get("correlation_id"), "description": p["description"],
            "index": i, "severity": p["severity"], "time": p["time"],
            "host": ref("hosts", p.get("host_id")), "vm": ref("vms", p.get("vm_id"))}


def _entity_data(kind: str, p: dict[str, Any]) -> dict[str, Any]:
    out = {"href": f"/ovirt-engine/api/{kind}s/{p['id']}", "id": str(p["id"]),
           "name": p.get("name"), "status": p.get("status")}
    if kind == "vm":
        out["host"] = ref("hosts", p.get("host_id"))
    else:
        out["status_detail"] = p.get("detail") or None
    return out


async def event_stream(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    wanted = set(TOPICS)
    if request.query.get("types"):
        wanted = {t.strip() for t in request.query["types"].split(",") if t.strip()}
        unknown = wanted - set(TOPICS)
        if unknown:
            raise ValidationFailed(f"unknown event types {sorted(unknown)} (audit, vm, host)",
                                   "types")
    heartbeat = query_int(request, "heartbeat") or 15
    heartbeat = min(max(heartbeat, 1), 300)
    raw_last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    last: int | None = None
    if raw_last:
        if not raw_last.strip().isdigit():
            raise ValidationFailed("Last-Event-ID must be an event id", "Last-Event-ID")
        last = int(raw_last.strip())
    vis = _Visibility(c, ident(request),
                      request.headers.get("Filter", "").strip().lower() == "true")
    # Subscribe before reading the backlog, so nothing falls between the two.
    sub = c.s.bus.subscribe(wanted | {_STOP}, maxsize=1000)
    c.streams.add(sub)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        await _send(resp, f"retry: 3000\n: ov event stream ({', '.join(sorted(wanted))})\n\n"
                         .encode())
        sent = await _replay(resp, c, vis, last) if last is not None and "audit" in wanted \
            else (last or 0)
        await _live(resp, sub, vis, sent, heartbeat)
    except (ConnectionResetError, asyncio.TimeoutError):
        pass
    finally:
        sub.close()
        c.streams.discard(sub)
    return resp


async def _replay(resp: web.StreamResponse, c: ApiContext, vis: _Visibility, last: int) -> int:
    p = SqlParams()
    conds = [f"a.id > {p(last)}"]
    if vis.who.filtered:
        conds.append(visible_condition("event", vis.who.visibility(), p, EVENTS.cols))
    rows = await c.s.pool.fetch(f"SELECT a.* FROM audit_log a WHERE {' AND '.join(conds)} "
                                f"ORDER BY a.id LIMIT {REPLAY_LIMIT}", *p.values)
    sent = last
    for r in rows:
        await _send(resp, _sse("audit", event_dict(r), str(r["id"])))
        sent = r["id"]
    return int(sent)


async def _live(resp: web.StreamResponse, sub: Subscription, vis: _Visibility, sent: int,
                heartbeat: int) -> None:
    dropped = 0
    while True:
        try:
            note: Notification = await asyncio.wait_for(sub.get(), timeout=heartbeat)
        except asyncio.TimeoutError:
            if not await vis.refresh():
                await _send(resp, b"event: end\ndata: {\"reason\":\"token expired or revoked\"}"
                                 b"\n\n")
                return
            await _send(resp, b": keepalive\n\n")
            continue
        if note.topic == _STOP:
            await _send(resp, b"event: end\ndata: {\"reason\":\"engine stopping\"}\n\n")
            return
        if sub.dropped > dropped:
            await _send(resp, _sse("dropped", {"count": sub.dropped - dropped}))
            dropped = sub.dropped
        p = note.payload
        if note.topic == "audit":
            if p["id"] <= sent or not await vis.audit(p["id"]):
                continue
            sent = p["id"]
            await _send(resp, _sse("audit", _audit_data(p), str(p["id"])))
        elif note.topic in ("vm", "host"):
            if not await vis.entity(note.topic, str(p["id"])):
                continue
            await _send(resp, _sse(note.topic, _entity_data(note.topic, p)))


def close_streams(c: ApiContext) -> None:
    """Called when the server stops: every open stream ends."""
    for sub in list(c.streams):
        if sub.queue.full():
            sub.queue.get_nowait()
        sub.queue.put_nowait(Notification(_STOP, {}))


def add_routes(r: Routes) -> None:
    r.get(STREAM_PATH, event_stream, LOGIN)

