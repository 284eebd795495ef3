"""/templates: list and get (Blank is always there; adding templates from VMs
comes with the template feature)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..listing import Collection, get_row, list_rows
from ..policy import LOGIN, Routes, read
from ..render import API, b, links, ref, respond, respond_collection, ts
from ..search import Field

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
        "comment": r["comment"], "link": links(h, ("permissions",)),
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


def add_routes(r: Routes) -> None:
    r.get("/ovirt-engine/api/templates", list_templates, LOGIN)
    r.get("/ovirt-engine/api/templates/{id}", get_template, read("template"))
