"""/imagetransfers: uploads and downloads of disks (ovirtsdk4's
ImageTransfersService and ImageTransferService).

POST /imagetransfers `<image_transfer><disk id/>|<image id/><direction>
[<host id|name/>][<format>][<inactivity_timeout>][<timeout_policy>]`
answers 201 with the transfer in phase `initializing`; clients poll it until
`transferring`, move the bytes to `transfer_url` (or `proxy_url`, the same
URL: ov has no engine-side imageio proxy), then POST .../finalize (or
.../cancel) and poll until `finished_success` / `finished_failure`.
.../extend renews the host's ticket now. Permissions: those on the disk
(EDIT_DISK_PROPERTIES to start or act on a transfer, view to read it).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ...aaa.permits import ActionGroup as AG
from ...domain.transfer_commands import (ACTIVE_PHASES, TransferDiskImage, TransferSpec,
                                         request_phase)
from ...errors import Conflict, ValidationFailed
from ..context import ctx, ident, require, run
from ..listing import Collection, get_row, list_rows
from ..parse import as_int, read_body, ref_of, text
from ..policy import LOGIN, Routes, deferred
from ..render import API, actions, ref, respond, respond_collection
from ..search import Field
from .common import action_response, resolve_ref

__all__ = ["add_routes", "TRANSFERS", "transfer_dict"]

TRANSFERS = Collection(
    kind="disk",
    select="SELECT t.* FROM image_transfers t",
    where="TRUE", id_col="t.id",
    cols={"id": "t.disk_id", "sd": "t.storage_domain_id"},
    fields={"phase": Field("t.phase", "enum"), "direction": Field("t.direction", "enum"),
            "id": Field("t.id::text")},
    order="t.created_at, t.id", prefix="ImageTransfers", what="image transfer")

ACTIONS = ("cancel", "extend", "finalize")


def transfer_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/imagetransfers/{i}"
    shown_urls = r["phase"] == "transferring"  # as oVirt: only while transferring
    return {
        "href": h, "id": i, "actions": actions(h, ACTIONS),
        "active": r["active"], "direction": r["direction"], "format": r["format"],
        "inactivity_timeout": str(r["inactivity_timeout"]), "phase": r["phase"],
        "proxy_url": r["proxy_url"] if shown_urls else None, "shallow": False,
        "timeout_policy": r["timeout_policy"],
        "transfer_url": r["transfer_url"] if shown_urls else None,
        "transferred": str(r["transferred"]),
        "disk": ref("disks", r["disk_id"]), "host": ref("hosts", r["host_id"]),
        "image": {"id": str(r["image_id"])},
        # not in the model: why a transfer failed (clients skip unknown elements)
        "message": r["message"] or None,
    }


async def _disk_of(request: web.Request, body: Any) -> str:
    disk_id, _ = ref_of(body, "disk")
    image_id, _ = ref_of(body, "image")
    pool = ctx(request).s.pool
    try:
        if disk_id is not None:
            found = await pool.fetchval("SELECT id FROM disks WHERE id=$1", uuid.UUID(disk_id))
            field, given = "disk", disk_id
        elif image_id is not None:
            found = await pool.fetchval("SELECT disk_id FROM images WHERE id=$1",
                                        uuid.UUID(image_id))
            field, given = "image", image_id
        else:
            raise ValidationFailed("image_transfer needs a disk (or an image) by id", "disk")
    except ValueError:
        raise ValidationFailed("disk/image id is not a valid id", "disk") from None
    if found is None:
        raise ValidationFailed(f"{field} {given} does not exist", field)
    return str(found)


async def add_transfer(request: web.Request) -> web.Response:
    body = await read_body(request, "image_transfer")
    disk_id = await _disk_of(request, body)
    await require(request, AG.EDIT_DISK_PROPERTIES, "disk", disk_id)
    direction = text(body, "direction") or "upload"  # the model's default
    host = await resolve_ref(request, body, "host", "hosts")
    spec = TransferSpec(
        disk_id=disk_id, direction=direction, host_id=host,
        fmt=text(body, "format"),
        inactivity_timeout_s=as_int(body, "inactivity_timeout", minimum=1,
                                    maximum=86400) or 60,
        timeout_policy=text(body, "timeout_policy") or "legacy")
    result = await run(request, TransferDiskImage(ctx(request).s, ident(request).principal,
                                                  spec))
    row = await get_row(request, TRANSFERS, result.value)
    return respond(request, "image_transfer", transfer_dict(row), status=201)


async def list_transfers(request: web.Request) -> web.Response:
    rows = await list_rows(request, TRANSFERS)
    return respond_collection(request, "image_transfers", "image_transfer", rows,
                              transfer_dict)


async def _authorized_row(request: web.Request, permit: AG | None) -> Any:
    row = await get_row(request, TRANSFERS, request.match_info["id"])
    if row["disk_id"] is not None:
        await require(request, permit, "disk", str(row["disk_id"]))
    else:  # the disk is gone: only who may act on the system sees its transfers
        await require(request, permit or AG.EDIT_DISK_PROPERTIES, "system")
    return row


async def get_transfer(request: web.Request) -> web.Response:
    row = await _authorized_row(request, None)
    return respond(request, "image_transfer", transfer_dict(row))


_TO = {"finalize": ("finalizing_success", ("transferring",),
                    ("finalizing_success", "finished_success")),
       "cancel": ("cancelled_user", ACTIVE_PHASES,
                  ("cancelled_user", "cancelled_system", "finalizing_failure",
                   "finished_failure"))}


def _action(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        row = await _authorized_row(request, AG.EDIT_DISK_PROPERTIES)
        body = await read_body(request, "action")
        s = ctx(request).s
        tid = str(row["id"])
        if name == "extend":
            if row["phase"] not in ACTIVE_PHASES:
                raise Conflict(f"Cannot extend image transfer {tid}: it is {row['phase']}.")
            s.bus.publish("image_transfer", {"id": tid, "extend": True})
            return action_response(request, body, None)
        phase, allowed, done = _TO[name]
        now = await request_phase(s, tid, phase, allowed)
        if now != phase and now not in done:
            raise Conflict(f"Cannot {name} image transfer {tid}: it is {now}.")
        return action_response(request, body, None)
    handler.__name__ = f"transfer_{name}"
    return handler


def add_routes(r: Routes) -> None:
    api = "/ovirt-engine/api"
    r.get(f"{api}/imagetransfers", list_transfers, LOGIN)
    r.post(f"{api}/imagetransfers", add_transfer, deferred(AG.EDIT_DISK_PROPERTIES, "disk"))
    r.get(f"{api}/imagetransfers/{{id}}", get_transfer, deferred(None, "disk"))
    for name in ACTIONS:
        r.post(f"{api}/imagetransfers/{{id}}/{name}", _action(name),
               deferred(AG.EDIT_DISK_PROPERTIES, "disk"))
