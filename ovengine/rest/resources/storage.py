"""/storagedomains, /disks and /datacenters/{id}/storagedomains.

Storage domains: list, get, add (created on storage through a host), remove
(`host=`, `format=`, `destroy=`); attached to a data center: list, get,
attach (POST the domain id), activate, deactivate, detach (DELETE). Disks:
list, get, add (a floating disk), remove; status locked -> ok.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ...aaa.permits import ActionGroup as AG
from ...domain import storage_activation as sa, storage_commands as sc
from ...domain.disk_commands import AddDisk, RemoveDisk
from ...errors import ValidationFailed
from ..context import ctx, ident, require, run
from ..listing import Collection, get_row, list_rows, query_bool
from ..parse import Body, as_bool, as_int, items, read_body, text
from ..policy import LOGIN, Routes, act, deferred, on_system, read
from ..render import API, b, links, ref, respond, respond_collection
from ..search import Field
from .common import action_response, empty_ok, resolve_ref

__all__ = ["add_routes", "STORAGE_DOMAINS", "DISKS", "disk_dict", "disk_input",
           "resolve_domain"]

_SD_STATUS = "COALESCE(m.status, sd.status)"

STORAGE_DOMAINS = Collection(
    kind="storage_domain",
    select=f"SELECT sd.*, {_SD_STATUS} AS shown_status, m.data_center_id AS attached_dc "
           "FROM storage_domains sd "
           "LEFT JOIN storage_pool_iso_map m ON m.storage_domain_id = sd.id",
    where="TRUE",
    id_col="sd.id", cols={"id": "sd.id", "dc": "sd.data_center_id"},
    fields={"name": Field("sd.name"), "status": Field(_SD_STATUS, "enum"),
            "type": Field("sd.domain_type", "enum"), "id": Field("sd.id::text"),
            "datacenter": Field("(SELECT name FROM data_centers WHERE id = sd.data_center_id)")},
    order="sd.name", prefix="Storage", what="storage domain")

DISKS = Collection(
    kind="disk",
    select="SELECT dk.*, i.volume_role FROM disks dk LEFT JOIN images i ON i.id = dk.image_id",
    where="TRUE", id_col="dk.id",
    cols={"id": "dk.id", "sd": "dk.storage_domain_id"},
    fields={"name": Field("dk.alias"), "alias": Field("dk.alias"),
            "status": Field("dk.status", "enum"), "id": Field("dk.id::text"),
            "provisioned_size": Field("dk.provisioned_size", "int"),
            "format": Field("dk.format", "enum")},
    order="dk.alias", prefix="Disks", what="disk")

SD_ACTIONS = ("activate", "deactivate")


def sd_dict(r: Any, dc_id: str | None = None) -> dict[str, Any]:
    i = str(r["id"])
    attached = r["attached_dc"]
    h = f"{API}/datacenters/{dc_id}/storagedomains/{i}" if dc_id else f"{API}/storagedomains/{i}"
    out: dict[str, Any] = {"href": h, "id": i}
    if dc_id:
        out["actions"] = {"link": [{"href": f"{h}/{a}", "rel": a} for a in SD_ACTIONS]}
    out.update({
        "name": r["name"], "description": r["description"], "comment": r["comment"],
        "link": links(f"{API}/storagedomains/{i}", ("disks", "permissions")),
        "available": str(r["available_bytes"]), "committed": str(r["committed_bytes"]),
        "master": b(r["master"]), "status": r["shown_status"],
        "storage": {"address": r["address"] or None, "path": r["path"] or None,
                    "type": r["storage_type"]},
        "storage_format": r["storage_format"], "type": r["domain_type"],
        "used": str(r["used_bytes"]), "wipe_after_delete": b(r["wipe_after_delete"]),
        "data_center": ref("datacenters", attached),
        "data_centers": {"data_center": [ref("datacenters", attached)]} if attached else None})
    return out


def disk_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/disks/{i}"
    return {"href": h, "id": i, "name": r["alias"], "description": r["description"],
            "link": links(h, ("permissions",)),
            "actual_size": str(r["actual_size"]), "alias": r["alias"],
            "content_type": r["content_type"], "format": r["format"],
            "image_id": str(r["image_id"]) if r["image_id"] else None,
            "provisioned_size": str(r["provisioned_size"]), "shareable": b(r["shareable"]),
            "sparse": b(r["sparse"]), "status": r["status"], "storage_type": "image",
            "total_size": str(r["actual_size"]), "wipe_after_delete": b(r["wipe_after_delete"]),
            "storage_domain": ref("storagedomains", r["storage_domain_id"]),
            "storage_domains": {"storage_domain": [ref("storagedomains",
                                                       r["storage_domain_id"])]}
            if r["storage_domain_id"] else None}


# ------------------------------------------------------------------ input
_NFS_VERSIONS = {"auto": "auto", "v3": "3", "v4": "4", "v4_0": "4.0", "v4_1": "4.1",
                 "v4_2": "4.2"}


def storage_spec(body: Body) -> sc.StorageSpec:
    st_type = text(body, "storage", "type", required=True)
    assert st_type is not None
    version = text(body, "storage", "nfs_version")
    if version is not None and version not in _NFS_VERSIONS:
        raise ValidationFailed(f"unknown nfs_version {version!r}", "storage.nfs_version")
    return sc.StorageSpec(
        storage_type=st_type, path=text(body, "storage", "path", required=True) or "",
        address=text(body, "storage", "address") or "",
        vfs_type=text(body, "storage", "vfs_type") or "",
        mount_options=text(body, "storage", "mount_options") or "",
        nfs_version=_NFS_VERSIONS.get(version or "", ""),
        nfs_retrans=as_int(body, "storage", "nfs_retrans", minimum=0, maximum=1000),
        nfs_timeo=as_int(body, "storage", "nfs_timeo", minimum=0, maximum=60000))


async def resolve_domain(request: web.Request, refd: Any, field: str) -> str:
    if not isinstance(refd, dict):
        raise ValidationFailed(f"{field} needs a storage domain id or name", field)
    return str(await resolve_ref(request, {"storage_domain": refd}, "storage_domain",
                                 "storage_domains", required=True))


async def disk_input(request: web.Request, body: Body, field: str = "disk"
                     ) -> dict[str, Any]:
    """A new disk described in a request: AddDisk's arguments."""
    domains = items(body, "storage_domains", "storage_domain")
    if not domains:
        raise ValidationFailed(f"{field}.storage_domains is required (one storage domain)",
                               f"{field}.storage_domains")
    sd_id = await resolve_domain(request, domains[0], f"{field}.storage_domains")
    size = as_int(body, "provisioned_size", field=f"{field}.provisioned_size", minimum=1,
                  maximum=2**50)
    if size is None:
        raise ValidationFailed(f"{field}.provisioned_size is required",
                               f"{field}.provisioned_size")
    fmt = text(body, "format", field=f"{field}.format") or "cow"
    sparse = as_bool(body, "sparse", field=f"{field}.sparse")
    return {"sd_id": sd_id, "size": size, "fmt": fmt,
            "sparse": (fmt == "cow") if sparse is None else sparse,
            "alias": text(body, "alias", max_len=255) or text(body, "name", max_len=255),
            "description": text(body, "description") or "",
            "shareable": bool(as_bool(body, "shareable")),
            "wipe_after_delete": bool(as_bool(body, "wipe_after_delete"))}


# --------------------------------------------------------------- handlers
async def list_sds(request: web.Request) -> web.Response:
    rows = await list_rows(request, STORAGE_DOMAINS)
    return respond_collection(request, "storage_domains", "storage_domain", rows, sd_dict)


async def get_sd(request: web.Request) -> web.Response:
    return respond(request, "storage_domain",
                   sd_dict(await get_row(request, STORAGE_DOMAINS, request.match_info["id"])))


async def add_sd(request: web.Request) -> web.Response:
    body = await read_body(request, "storage_domain")
    name = text(body, "name", required=True, max_len=255)
    host = await resolve_ref(request, body, "host", "hosts", required=True)
    assert name is not None and host is not None
    result = await run(request, sc.AddStorageDomain(
        ctx(request).s, ident(request).principal, name, host, storage_spec(body),
        domain_type=text(body, "type") or "data", description=text(body, "description") or "",
        comment=text(body, "comment") or "",
        wipe_after_delete=bool(as_bool(body, "wipe_after_delete"))))
    row = await get_row(request, STORAGE_DOMAINS, result.value)
    return respond(request, "storage_domain", sd_dict(row), status=201)


async def remove_sd(request: web.Request) -> web.Response:
    host = request.query.get("host")
    host_id = None
    if host:
        host_id = await resolve_ref(request, {"host": {"id": host} if _is_uuid(host)
                                              else {"name": host}}, "host", "hosts")
    await run(request, sc.RemoveStorageDomain(
        ctx(request).s, ident(request).principal, request.match_info["id"], host_id,
        format=query_bool(request, "format", False),
        destroy=query_bool(request, "destroy", False)))
    return empty_ok()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def sd_disks(request: web.Request) -> web.Response:
    rows = await list_rows(request, DISKS, "dk.storage_domain_id = $1",
                           (uuid.UUID(request.match_info["id"]),))
    return respond_collection(request, "disks", "disk", rows, disk_dict)


# ------------------------------------------------- attached to a data center
async def dc_sds(request: web.Request) -> web.Response:
    dc = request.match_info["id"]
    rows = await list_rows(request, STORAGE_DOMAINS, "m.data_center_id = $1",
                           (uuid.UUID(dc),))
    return respond_collection(request, "storage_domains", "storage_domain", rows,
                              lambda r: sd_dict(r, dc))


async def _attached(request: web.Request, dc: str, sd: str) -> web.Response:
    row = await get_row(request, STORAGE_DOMAINS, sd, "m.data_center_id = $1",
                        (uuid.UUID(dc),))
    return respond(request, "storage_domain", sd_dict(row, dc))


async def dc_sd(request: web.Request) -> web.Response:
    return await _attached(request, request.match_info["id"], request.match_info["sid"])


async def attach_sd(request: web.Request) -> web.Response:
    dc = request.match_info["id"]
    body = await read_body(request, "storage_domain")
    sd = await resolve_ref(request, {"storage_domain": body}, "storage_domain",
                           "storage_domains", required=True)
    assert sd is not None
    await require(request, AG.MANIPULATE_STORAGE_DOMAIN, "storage_domain", sd)
    await run(request, sc.AttachStorageDomain(ctx(request).s, ident(request).principal, sd, dc))
    row = await get_row(request, STORAGE_DOMAINS, sd, "m.data_center_id = $1",
                        (uuid.UUID(dc),))
    return respond(request, "storage_domain", sd_dict(row, dc), status=201)


def _sd_action(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        dc, sd = request.match_info["id"], request.match_info["sid"]
        body = await read_body(request, "action")
        cls = sa.ActivateStorageDomain if name == "activate" else sa.DeactivateStorageDomain
        result = await run(request, cls(ctx(request).s, ident(request).principal, sd, dc))
        return action_response(request, body, result)
    handler.__name__ = f"sd_{name}"
    return handler


async def detach_sd(request: web.Request) -> web.Response:
    await run(request, sc.DetachStorageDomain(ctx(request).s, ident(request).principal,
                                              request.match_info["sid"],
                                              request.match_info["id"]))
    return empty_ok()


# ------------------------------------------------------------------ disks
async def list_disks(request: web.Request) -> web.Response:
    rows = await list_rows(request, DISKS)
    return respond_collection(request, "disks", "disk", rows, disk_dict)


async def get_disk(request: web.Request) -> web.Response:
    return respond(request, "disk", disk_dict(await get_row(request, DISKS,
                                                            request.match_info["id"])))


async def add_disk(request: web.Request) -> web.Response:
    body = await read_body(request, "disk")
    d = await disk_input(request, body)
    await require(request, AG.CREATE_DISK, "storage_domain", d["sd_id"])
    result = await run(request, AddDisk(ctx(request).s, ident(request).principal, **d))
    row = await get_row(request, DISKS, result.value)
    return respond(request, "disk", disk_dict(row), status=201)


async def remove_disk(request: web.Request) -> web.Response:
    await run(request, RemoveDisk(ctx(request).s, ident(request).principal,
                                  request.match_info["id"]))
    return empty_ok()


def add_routes(r: Routes) -> None:
    api = "/ovirt-engine/api"
    r.get(f"{api}/storagedomains", list_sds, LOGIN)
    r.post(f"{api}/storagedomains", add_sd, on_system(AG.CREATE_STORAGE_DOMAIN))
    r.get(f"{api}/storagedomains/{{id}}", get_sd, read("storage_domain"))
    r.delete(f"{api}/storagedomains/{{id}}", remove_sd,
             act(AG.DELETE_STORAGE_DOMAIN, "storage_domain"))
    r.get(f"{api}/storagedomains/{{id}}/disks", sd_disks, read("storage_domain"))
    r.get(f"{api}/datacenters/{{id}}/storagedomains", dc_sds, read("data_center"))
    r.post(f"{api}/datacenters/{{id}}/storagedomains", attach_sd,
           deferred(AG.MANIPULATE_STORAGE_DOMAIN, "storage_domain"))
    r.get(f"{api}/datacenters/{{id}}/storagedomains/{{sid}}", dc_sd,
          read("storage_domain", "sid"))
    r.delete(f"{api}/datacenters/{{id}}/storagedomains/{{sid}}", detach_sd,
             act(AG.MANIPULATE_STORAGE_DOMAIN, "storage_domain", "sid"))
    for name in SD_ACTIONS:
        r.post(f"{api}/datacenters/{{id}}/storagedomains/{{sid}}/{name}", _sd_action(name),
               act(AG.MANIPULATE_STORAGE_DOMAIN, "storage_domain", "sid"))
    r.get(f"{api}/disks", list_disks, LOGIN)
    r.post(f"{api}/disks", add_disk, deferred(AG.CREATE_DISK, "storage_domain"))
    r.get(f"{api}/disks/{{id}}", get_disk, read("disk"))
    r.delete(f"{api}/disks/{{id}}", remove_disk, act(AG.DELETE_DISK, "disk"))

