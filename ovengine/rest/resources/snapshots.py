"""Snapshot disks and the snapshot actions: /vms/{id}/snapshots/{sid}/disks,
/vms/{id}/snapshots/{sid}/restore, and the VM actions previewsnapshot,
commitsnapshot, undosnapshot (as oVirt's API v4)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web

from ...aaa.authz import parse_uuid
from ...aaa.permits import ActionGroup as AG
from ...domain.snapshot_preview import CommitSnapshot, PreviewSnapshot, UndoSnapshot
from ...errors import NotFound, ValidationFailed
from ..context import ctx, ident, run
from ..parse import get, read_body
from ..policy import Routes, act, read
from ..render import API, b, ref, respond, respond_collection
from .common import action_response

__all__ = ["add_snapshot_routes"]

_DISK_SQL = """
    SELECT d.id, d.alias, d.description, d.provisioned_size, d.content_type, d.shareable,
           d.sparse, d.wipe_after_delete, d.storage_domain_id,
           i.id AS volume_id, i.volume_format, i.status, i.actual_size
    FROM images i JOIN disks d ON d.id = i.disk_id"""


def snapshot_disk_dict(r: Any, vm_id: str, sid: str) -> dict[str, Any]:
    i = str(r["id"])
    return {"href": f"{API}/vms/{vm_id}/snapshots/{sid}/disks/{i}", "id": i,
            "name": r["alias"], "description": r["description"], "alias": r["alias"],
            "actual_size": str(r["actual_size"]), "content_type": r["content_type"],
            "format": r["volume_format"], "image_id": str(r["volume_id"]),
            "provisioned_size": str(r["provisioned_size"]), "shareable": b(r["shareable"]),
            "sparse": b(r["sparse"]), "status": r["status"], "storage_type": "image",
            "total_size": str(r["actual_size"]),
            "wipe_after_delete": b(r["wipe_after_delete"]),
            "snapshot": ref(f"vms/{vm_id}/snapshots", sid),
            "storage_domains": {"storage_domain": [ref("storagedomains",
                                                       r["storage_domain_id"])]}}


async def _snapshot_disks(request: web.Request, disk_id: str | None = None) -> list[Any]:
    vm_id, sid = request.match_info["id"], request.match_info["sid"]
    pool = ctx(request).s.pool
    snap = await pool.fetchrow("SELECT snapshot_type FROM snapshots WHERE id=$1 AND vm_id=$2",
                               parse_uuid(sid, "snapshot"), parse_uuid(vm_id, "vm"))
    if snap is None:
        raise NotFound(f"snapshot {sid} does not exist")
    extra = "" if disk_id is None else " AND d.id = $2"
    args: list[Any] = [] if disk_id is None else [parse_uuid(disk_id, "disk")]
    if snap["snapshot_type"] == "active":  # the VM's disks as they are now
        rows = await pool.fetch(
            f"{_DISK_SQL} JOIN disk_attachments a ON a.disk_id = d.id AND i.id = d.image_id "
            f"WHERE a.vm_id = $1{extra} ORDER BY d.created_at, d.id", uuid.UUID(vm_id), *args)
    else:
        rows = await pool.fetch(f"{_DISK_SQL} WHERE i.vm_snapshot_id = $1{extra} "
                                f"ORDER BY d.created_at, d.id", uuid.UUID(sid), *args)
    return list(rows)


async def list_snapshot_disks(request: web.Request) -> web.Response:
    vm_id, sid = request.match_info["id"], request.match_info["sid"]
    rows = await _snapshot_disks(request)
    return respond_collection(request, "disks", "disk", rows,
                              lambda r: snapshot_disk_dict(r, vm_id, sid))


async def get_snapshot_disk(request: web.Request) -> web.Response:
    rows = await _snapshot_disks(request, request.match_info["did"])
    if not rows:
        raise NotFound(f"disk {request.match_info['did']} does not exist")
    return respond(request, "disk", snapshot_disk_dict(rows[0], request.match_info["id"],
                                                       request.match_info["sid"]))


async def preview_snapshot(request: web.Request) -> web.Response:
    body = await read_body(request, "action")
    snap = get(body, "snapshot")
    if not isinstance(snap, dict) or not isinstance(snap.get("id"), str):
        raise ValidationFailed("snapshot id is required", "snapshot.id")
    result = await run(request, PreviewSnapshot(ctx(request).s, ident(request).principal,
                                                request.match_info["id"], snap["id"]))
    return action_response(request, body, result)


async def commit_snapshot(request: web.Request) -> web.Response:
    body = await read_body(request, "action")
    result = await run(request, CommitSnapshot(ctx(request).s, ident(request).principal,
                                               request.match_info["id"]))
    return action_response(request, body, result)


async def undo_snapshot(request: web.Request) -> web.Response:
    body = await read_body(request, "action")
    result = await run(request, UndoSnapshot(ctx(request).s, ident(request).principal,
                                             request.match_info["id"]))
    return action_response(request, body, result)


async def restore_snapshot(request: web.Request) -> web.Response:
    """Preview then commit (oVirt's snapshot restore)."""
    body = await read_body(request, "action")
    s, who, vm_id = ctx(request).s, ident(request).principal, request.match_info["id"]
    preview = await run(request, PreviewSnapshot(s, who, vm_id, request.match_info["sid"]))
    if preview.pending is not None:
        await asyncio.shield(preview.pending)
    result = await run(request, CommitSnapshot(s, who, vm_id))
    return action_response(request, body, result)


def add_snapshot_routes(r: Routes, base: str) -> None:
    snaps = f"{base}/{{id}}/snapshots/{{sid}}"
    r.get(f"{snaps}/disks", list_snapshot_disks, read("vm"))
    r.get(f"{snaps}/disks/{{did}}", get_snapshot_disk, read("vm"))
    r.post(f"{snaps}/restore", restore_snapshot, act(AG.MANIPULATE_VM_SNAPSHOTS, "vm"))
    r.post(f"{base}/{{id}}/previewsnapshot", preview_snapshot,
           act(AG.MANIPULATE_VM_SNAPSHOTS, "vm"))
    r.post(f"{base}/{{id}}/commitsnapshot", commit_snapshot,
           act(AG.MANIPULATE_VM_SNAPSHOTS, "vm"))
    r.post(f"{base}/{{id}}/undosnapshot", undo_snapshot, act(AG.MANIPULATE_VM_SNAPSHOTS, "vm"))
