"""GET /ovirt-engine/api: product info, special objects, summary, time, who
is logged in, and a link to every collection (the API describes itself)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from ...aaa.authz import SqlParams, visible_condition
from ..context import ctx, ident
from ..policy import LOGIN, Routes
from ..render import API, link, ref, respond, ts

__all__ = ["add_routes", "COLLECTIONS", "PRODUCT_VERSION"]

PRODUCT_VERSION = (4, 5, 0, 0)
BLANK = "00000000-0000-0000-0000-000000000000"
# rel -> searchable
COLLECTIONS: dict[str, bool] = {
    "clusters": True, "datacenters": True, "disks": True, "events": True, "groups": True,
    "hosts": True, "jobs": True, "networks": True, "permissions": False, "roles": False,
    "storagedomains": True, "templates": True, "users": True, "vms": True,
    "imagetransfers": False, "vnicprofiles": False,
}


async def _summary(request: web.Request) -> dict[str, Any]:
    who = ident(request)
    pool = ctx(request).s.pool
    p = SqlParams()
    if who.filtered:
        v = who.visibility()
        vm_cond = visible_condition("vm", v, p, {"id": "s.id", "cluster": "s.cluster_id",
                                                 "dc": "c.data_center_id"})
        host_cond = visible_condition("host", v, p, {"id": "h.id", "cluster": "h.cluster_id",
                                                     "dc": "hc.data_center_id"})
        user_cond = visible_condition("user", v, p, {"id": "u.id"})
        sd_cond = visible_condition("storage_domain", v, p, {"id": "sd.id",
                                                             "dc": "sd.data_center_id"})
    else:
        vm_cond = host_cond = user_cond = sd_cond = "TRUE"
    r = await pool.fetchrow(f"""
        SELECT
          (SELECT count(*) FROM vm_static s JOIN vm_dynamic d ON d.vm_id = s.id
             LEFT JOIN clusters c ON c.id = s.cluster_id
             WHERE s.entity_type = 'vm' AND {vm_cond}) AS vms_total,
          (SELECT count(*) FROM vm_static s JOIN vm_dynamic d ON d.vm_id = s.id
             LEFT JOIN clusters c ON c.id = s.cluster_id
             WHERE s.entity_type = 'vm' AND d.status <> 'down' AND {vm_cond}) AS vms_active,
          (SELECT count(*) FROM hosts h JOIN host_dynamic d ON d.host_id = h.id
             LEFT JOIN clusters hc ON hc.id = h.cluster_id WHERE {host_cond}) AS hosts_total,
          (SELECT count(*) FROM hosts h JOIN host_dynamic d ON d.host_id = h.id
             LEFT JOIN clusters hc ON hc.id = h.cluster_id
             WHERE d.status = 'up' AND {host_cond}) AS hosts_active,
          (SELECT count(*) FROM users u WHERE {user_cond}) AS users_total,
          (SELECT count(*) FROM users u WHERE u.active AND {user_cond}) AS users_active,
          (SELECT count(*) FROM storage_domains sd WHERE {sd_cond}) AS sd_total,
          (SELECT count(*) FROM storage_domains sd JOIN storage_pool_iso_map m
             ON m.storage_domain_id = sd.id WHERE m.status = 'active'
             AND {sd_cond}) AS sd_active""", *p.values)
    assert r is not None

    def pair(prefix: str) -> dict[str, str]:
        return {"active": str(r[f"{prefix}_active"]), "total": str(r[f"{prefix}_total"])}
    return {"hosts": pair("hosts"), "storage_domains": pair("sd"), "users": pair("users"),
            "vms": pair("vms")}


async def api_root(request: web.Request) -> web.Response:
    who = ident(request)
    major, minor, build, revision = PRODUCT_VERSION
    links: list[dict[str, str]] = []
    for rel, searchable in COLLECTIONS.items():
        links.append(link(f"{API}/{rel}", rel))
        if searchable:
            links.append(link(f"{API}/{rel}?search={{query}}", f"{rel}/search"))
    links.append(link(f"{API}/events/stream", "events/stream"))
    links.append(link(f"{API}/openapi.json", "openapi"))
    body = {
        "link": links,
        "product_info": {
            "name": "oVirt Engine", "vendor": "ovirt.org",
            "version": {"build": str(build),
                        "full_version": f"{major}.{minor}.{revision}",
                        "major": str(major), "minor": str(minor), "revision": str(revision)}},
        "special_objects": {"blank_template": ref("templates", BLANK),
                            "root_tag": ref("tags", BLANK)},
        "summary": await _summary(request),
        "time": ts(dt.datetime.now().astimezone()),
        "authenticated_user": ref("users", who.user_id),
        "effective_user": ref("users", who.user_id),
    }
    return respond(request, "api", body)


def add_routes(r: Routes) -> None:
    r.get("/ovirt-engine/api", api_root, LOGIN)
