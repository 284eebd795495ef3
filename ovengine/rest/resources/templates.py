"""/templates: list, get, add from a VM (its disks are copied into template
volumes; status locked -> ok), remove; the template's diskattachments (its
nics are in nics.py)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ...aaa.authz import parse_uuid
from ...aaa.permits import ActionGroup as AG
from ...domain.template_commands import AddTemplate, RemoveTemplate, TemplateDisk
from ...errors import NotFound, ValidationFailed
from ..context import ctx, ident, require, run
from ..listing import Collection, get_row, list_rows
from ..parse import get, items, read_body, text
from ..policy import LOGIN, Routes, act, deferred, read
from ..render import API, b, links, ref, respond, respond_collection, ts
from ..search import Field
from .common import empty_ok
from .storage import resolve_domain
from .vms import attachment_dict

__all__ = ["add_routes", "TEMPLATES"]

MIB = 1024 * 1024

TEMPLATES = Collection(
    kind="template",
    select="SELECT t.*, c.architecture, c.data_center_id FROM vm_static t "
           "LEFT JOIN clusters c ON c.id = t.cluster_id",
    where="t.entity_type = 'template'", id_col="t.id",
    cols={"id": "t.id", "cluster": "t.cluster_id", "dc": "c.data_center_id"},
    fields={"name": Field("t.name"), "status": Field("t.template_status", "enum"),
            "cluster": Field("c.name"), "description": Field("t.description"),
            "id": Field("t.id::text")},
    order="t.name", prefix="Template", what="template")


def template_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/templates/{i}"
    return {
        "href": h, "id": i, "name": r["name"], "description": r["description"],
        "comment": r["comment"], "link": links(h, ("diskattachments", "nics", "permissions")),
        "cpu": {"architecture": r["architecture"] or "x86_64",
                "topology": {"cores": str(r["cpu_cores"]), "sockets": str(r["cpu_sockets"]),
                             "threads": str(r["cpu_threads"])}},
        "creation_time": ts(r["creation_time"]),
        "delete_protected": b(r["delete_protected"]),
        "display": {"type": r["display_type"]},
        "high_availability": {"enabled": b(r["ha_enabled"]), "priority": str(r["ha_priority"])},
        "memory": str(r["memory_mib"] * MIB),
        "memory_policy": {"ballooning": b(r["ballooning"]),
                          "guaranteed": str(r["memory_guaranteed_mib"] * MIB),
                          "max": str(r["memory_max_mib"] * MIB)},
        "os": {"boot": {"devices": {"device": list(r["boot_devices"] or ["hd"])}},
               "type": r["os_type"]},
        "stateless": b(r["stateless"]),
        "status": r["template_status"] or "ok",
        "type": r["vm_type"],
        "version": {"version_name": r["template_version_name"],
                    "version_number": str(r["template_version_number"] or 1),
                    "base_template": ref("templates", r["base_template_id"] or r["id"])},
        "cluster": ref("clusters", r["cluster_id"]),
    }


async def list_templates(request: web.Request) -> web.Response:
    rows = await list_rows(request, TEMPLATES)
    return respond_collection(request, "templates", "template", rows, template_dict)


async def get_template(request: web.Request) -> web.Response:
    row = await get_row(request, TEMPLATES, request.match_info["id"])
    return respond(request, "template", template_dict(row))


async def add_template(request: web.Request) -> web.Response:
    body = await read_body(request, "template")
    name = text(body, "name", required=True, max_len=255)
    vm = get(body, "vm")
    if not isinstance(vm, dict) or not isinstance(vm.get("id"), str):
        raise ValidationFailed("vm is required: the id of the VM to make the template from",
                               "vm")
    vm_id = vm["id"]
    await require(request, AG.CREATE_TEMPLATE, "vm", vm_id)
    disks: dict[str, TemplateDisk] = {}
    for att in items(vm, "disk_attachments", "disk_attachment"):
        disk = get(att, "disk")
        if not isinstance(disk, dict) or not isinstance(disk.get("id"), str):
            raise ValidationFailed("vm.disk_attachments: each disk needs the id of a disk of "
                                   "the VM", "vm.disk_attachments")
        sds = items(disk, "storage_domains", "storage_domain")
        sd_id = await resolve_domain(request, sds[0], "disk.storage_domains") if sds else None
        if sd_id is not None:
            await require(request, AG.CREATE_DISK, "storage_domain", sd_id)
        disks[disk["id"]] = TemplateDisk(fmt=text(disk, "format"), sd_id=sd_id,
                                         alias=text(disk, "alias") or text(disk, "name"))
    assert name is not None
    result = await run(request, AddTemplate(
        ctx(request).s, ident(request).principal, vm_id, name,
        description=text(body, "description") or "", comment=text(body, "comment") or "",
        disks=disks))
    row = await get_row(request, TEMPLATES, result.value)
    return respond(request, "template", template_dict(row), status=201)


async def remove_template(request: web.Request) -> web.Response:
    await run(request, RemoveTemplate(ctx(request).s, ident(request).principal,
                                      request.match_info["id"]))
    return empty_ok()


async def list_attachments(request: web.Request) -> web.Response:
    rows = await ctx(request).s.pool.fetch(
        "SELECT * FROM disk_attachments WHERE vm_id = $1 ORDER BY disk_id",
        uuid.UUID(request.match_info["id"]))
    return respond_collection(request, "disk_attachments", "disk_attachment", rows,
                              lambda r: attachment_dict(r, "templates"))


async def get_attachment(request: web.Request) -> web.Response:
    row = await ctx(request).s.pool.fetchrow(
        "SELECT * FROM disk_attachments WHERE vm_id = $1 AND disk_id = $2",
        uuid.UUID(request.match_info["id"]), parse_uuid(request.match_info["did"], "disk"))
    if row is None:
        raise NotFound(f"disk attachment {request.match_info['did']} does not exist")
    return respond(request, "disk_attachment", attachment_dict(row, "templates"))


def add_routes(r: Routes) -> None:
    base = "/ovirt-engine/api/templates"
    r.get(base, list_templates, LOGIN)
    r.post(base, add_template, deferred(AG.CREATE_TEMPLATE, "vm"))
    r.get(f"{base}/{{id}}", get_template, read("template"))
    r.delete(f"{base}/{{id}}", remove_template, act(AG.DELETE_TEMPLATE, "template"))
    r.get(f"{base}/{{id}}/diskattachments", list_attachments, read("template"))
    r.get(f"{base}/{{id}}/diskattachments/{{did}}", get_attachment, read("template"))
