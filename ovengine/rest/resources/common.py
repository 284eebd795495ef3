"""Helpers shared by resources: references in bodies, action replies."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ...domain.commands import CommandResult
from ...errors import ValidationFailed
from ..context import ctx
from ..parse import Body, ref_of, text
from ..render import API, respond

__all__ = ["resolve_ref", "action_response", "empty_ok"]

_NAME_COL = {"clusters": "name", "vm_static": "name", "data_centers": "name", "hosts": "name",
             "roles": "name", "networks": "name", "storage_domains": "name"}


async def resolve_ref(request: web.Request, body: Body, key: str, table: str, *,
                      required: bool = False, extra: str | None = None) -> str | None:
    """`<cluster id=".."/>` or `<cluster><name>..</name></cluster>` -> the id (400 if it
    names nothing)."""
    rid, name = ref_of(body, key)
    if rid is None and name is None:
        if required:
            raise ValidationFailed(f"{key} is required (by id or name)", key)
        return None
    cond = f" AND {extra}" if extra else ""
    pool = ctx(request).s.pool
    if rid is not None:
        try:
            key_id = uuid.UUID(rid)
        except ValueError:
            raise ValidationFailed(f"{key} id {rid!r} is not a valid id", f"{key}.id") from None
        found = await pool.fetchval(f"SELECT id FROM {table} WHERE id = $1{cond}", key_id)
    else:
        found = await pool.fetchval(f"SELECT id FROM {table} WHERE {_NAME_COL[table]} = $1{cond}",
                                    name)
    if found is None:
        raise ValidationFailed(f"{key} {rid or name!r} does not exist", key)
    return str(found)


_ECHO = ("async", "force", "reason", "grace_period")


def action_response(request: web.Request, body: Body, result: CommandResult | None,
                    status: str = "complete") -> web.Response:
    """`<action><status>complete</status><job href id/></action>` (200), echoing
    the parameters the engine understood, as oVirt does."""
    out: dict[str, Any] = {}
    for k in _ECHO:
        v = text(body, k)
        if v is not None:
            out[k] = v
    if result is not None and result.pending is not None and not result.pending.done():
        status = "pending" if status == "complete" else status
    out["status"] = status
    if result is not None:
        out["job"] = {"href": f"{API}/jobs/{result.job_id}", "id": result.job_id}
    return respond(request, "action", out)


def empty_ok() -> web.Response:
    """DELETE answers 200 (the SDK rejects 204) with an empty body."""
    return web.Response(status=200, body=b"", content_type="application/xml")
