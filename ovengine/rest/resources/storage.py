"""/storagedomains and /disks: list and get (populated by the storage feature)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ..listing import Collection, get_row, list_rows
from ..policy import LOGIN, Routes, read
from ..render import API, b, links, ref, respond, respond_collection
from ..search import Field

__all__ = ["add_routes", "STORAGE_DOMAINS", "DISKS"]

STORAGE_DOMAINS = Collection(
    kind="storage_domain", select="SELECT sd.* FROM storage_domains sd", where="TRUE",
    id_col="sd.id", cols={"id": "sd.id", "dc": "sd.data_center_id"},
    fields={"name": Field("sd.name"), "status": Field("sd.status", "enum"),
            "type": Field("sd.domain_type", "enum"), "id": Field("sd.id::text")},
    order="sd.name", prefix="Storage", what="storage domain")

DISKS = Collection(
    kind="disk", select="SELECT dk.* FROM disks dk", where="TRUE", id_col="dk.id",
    cols={"id": "dk.id", "sd": "dk.storage_domain_id"},
    fields={"name": Field("dk.alias"), "alias": Field("dk.alias"),
            "status": Field("dk.status", "enum"), "id": Field("dk.id::text"),
            "provisioned_size": Field("dk.provisioned_size", "int")},
    order="dk.alias", prefix="Disks", what="disk")


def sd_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/storagedomains/{i}"
    return {"href": h, "id": i, "name": r["name"], "description": r["description"],
            "comment": r["comment"], "link": links(h, ("disks", "permissions")),
            "available": str(r["available_bytes"]), "committed": str(r["committed_bytes"]),
            "master": b(r["master"]), "status": r["status"],
            "storage": {"address": r["address"] or None, "path": r["path"] or None,
                        "type": r["storage_type"]},
            "storage_format": r["storage_format"], "type": r["domain_type"],
            "used": str(r["used_bytes"]),
            "data_center": ref("datacenters", r["data_center_id"]),
            "data_centers": {"data_center": [ref("datacenters", r["data_center_id"])]}
            if r["data_center_id"] else None}


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
            "storage_domains": {"storage_domain": [ref("storagedomains",
                                                       r["storage_domain_id"])]}
            if r["storage_domain_id"] else None}


async def list_sds(request: web.Request) -> web.Response:
    rows = await list_rows(request, STORAGE_DOMAINS)
    return respond_collection(request, "storage_domains", "storage_domain", rows, sd_dict)


async def get_sd(request: web.Request) -> web.Response:
    return respond(request, "storage_domain",
                   sd_dict(await get_row(request, STORAGE_DOMAINS, request.match_info["id"])))


async def sd_disks(request: web.Request) -> web.Response:
    rows = await list_rows(request, DISKS, "dk.storage_domain_id = $1",
                           (uuid.UUID(request.match_info["id"]),))
    return respond_collection(request, "disks", "disk", rows, disk_dict)


async def list_disks(request: web.Request) -> web.Response:
    rows = await list_rows(request, DISKS)
    return respond_collection(request, "disks", "disk", rows, disk_dict)


async def get_disk(request: web.Request) -> web.Response:
    return respond(request, "disk", disk_dict(await get_row(request, DISKS,
                                                            request.match_info["id"])))


def add_routes(r: Routes) -> None:
    api = "/ovirt-engine/api"
    r.get(f"{api}/storagedomains", list_sds, LOGIN)
    r.get(f"{api}/storagedomains/{{id}}", get_sd, read("storage_domain"))
    r.get(f"{api}/storagedomains/{{id}}/disks", sd_disks, read("storage_domain"))
    r.get(f"{api}/disks", list_disks, LOGIN)
    r.get(f"{api}/disks/{{id}}", get_disk, read("disk"))
