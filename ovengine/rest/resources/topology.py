"""/datacenters, /clusters, /networks (and datacenters/{id}/clusters|networks):
list, get, add, update, remove."""

from __future__ import annotations

import uuid
from typing import Any, Callable

from aiohttp import web

from ...aaa.permits import ActionGroup as AG
from ...domain import topology_commands as tc
from ...errors import ValidationFailed
from ..context import ctx, ident, require, run
from ..listing import Collection, get_row, list_rows
from ..parse import Body, as_bool, as_int, items, read_body, text
from ..policy import LOGIN, Routes, act, deferred, on_system, read
from ..render import API, b, links, ref, respond, respond_collection
from ..search import Field
from .common import empty_ok, resolve_ref

__all__ = ["add_routes", "DATA_CENTERS", "CLUSTERS", "NETWORKS"]

SUPPORTED_VERSIONS = ((4, 7), (4, 8))

DATA_CENTERS = Collection(
    kind="data_center", select="SELECT dc.* FROM data_centers dc", where="TRUE",
    id_col="dc.id", cols={"id": "dc.id"},
    fields={"name": Field("dc.name"), "status": Field("dc.status", "enum"),
            "description": Field("dc.description"), "local": Field("dc.local", "bool"),
            "id": Field("dc.id::text")},
    order="dc.name", prefix="Datacenter", what="data center")

CLUSTERS = Collection(
    kind="cluster",
    select="SELECT c.*, dc.name AS dc_name FROM clusters c "
           "LEFT JOIN data_centers dc ON dc.id = c.data_center_id",
    where="TRUE", id_col="c.id", cols={"id": "c.id", "dc": "c.data_center_id"},
    fields={"name": Field("c.name"), "description": Field("c.description"),
            "datacenter": Field("dc.name"), "data_center": Field("dc.name"),
            "id": Field("c.id::text")},
    order="c.name", prefix="Cluster", what="cluster")

NETWORKS = Collection(
    kind="network",
    select="SELECT n.*, dc.name AS dc_name FROM networks n "
           "LEFT JOIN data_centers dc ON dc.id = n.data_center_id",
    where="TRUE", id_col="n.id", cols={"id": "n.id", "dc": "n.data_center_id"},
    fields={"name": Field("n.name"), "description": Field("n.description"),
            "datacenter": Field("dc.name"), "data_center": Field("dc.name"),
            "vlan": Field("n.vlan_id", "int"), "id": Field("n.id::text")},
    order="n.name", prefix="Network", what="network")


def _version(major: int, minor: int) -> dict[str, str]:
    return {"major": str(major), "minor": str(minor)}


def dc_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/datacenters/{i}"
    return {"href": h, "id": i, "name": r["name"], "description": r["description"],
            "comment": r["comment"],
            "link": links(h, ("clusters", "networks", "permissions", "storagedomains")),
            "local": b(r["local"]), "quota_mode": r["quota_mode"], "status": r["status"],
            "storage_format": r["storage_format"],
            "supported_versions": {"version": [_version(*v) for v in SUPPORTED_VERSIONS]},
            "version": _version(r["compat_major"], r["compat_minor"])}


def cluster_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/clusters/{i}"
    return {"href": h, "id": i, "name": r["name"], "description": r["description"],
            "comment": r["comment"], "link": links(h, ("networks", "permissions")),
            "ballooning_enabled": b(r["ballooning_enabled"]),
            "cpu": {"architecture": r["architecture"], "type": r["cpu_type"] or None},
            "memory_policy": {"over_commit": {"percent": str(r["memory_overcommit_pct"])}},
            "scheduling_policy": {"name": r["scheduling_policy"]},
            "supported_versions": {"version": [_version(*v) for v in SUPPORTED_VERSIONS]},
            "threads_as_cores": b(r["threads_as_cores"]),
            "version": _version(r["compat_major"], r["compat_minor"]),
            "data_center": ref("datacenters", r["data_center_id"])}


def network_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/networks/{i}"
    return {"href": h, "id": i, "name": r["name"], "description": r["description"],
            "comment": r["comment"], "link": links(h, ("permissions", "vnicprofiles")),
            "mtu": str(r["mtu"]), "required": b(r["required"]), "stp": b(r["stp"]),
            "usages": {"usage": list(r["usages"] or [])},
            "vlan": {"id": str(r["vlan_id"])} if r["vlan_id"] is not None else None,
            "data_center": ref("datacenters", r["data_center_id"])}


# ----------------------------------------------------------------- input
def _version_in(body: Body, values: dict[str, Any]) -> None:
    major = as_int(body, "version", "major", minimum=0, maximum=99)
    minor = as_int(body, "version", "minor", minimum=0, maximum=99)
    if major is not None:
        values["compat_major"] = major
    if minor is not None:
        values["compat_minor"] = minor
    if (major, minor) != (None, None):
        v = (values.get("compat_major", 4), values.get("compat_minor", 7))
        if v not in SUPPORTED_VERSIONS:
            raise ValidationFailed(f"unsupported compatibility version {v[0]}.{v[1]} "
                                   f"(supported: 4.7, 4.8)", "version")


def _common(body: Body) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for k in ("name", "description", "comment"):
        v = text(body, k, max_len=255 if k == "name" else 4000)
        if v is not None:
            values[k] = v
    return values


def dc_values(body: Body) -> dict[str, Any]:
    values = _common(body)
    local = as_bool(body, "local")
    if local is not None:
        values["local"] = local
    quota = text(body, "quota_mode")
    if quota is not None:
        if quota not in ("disabled", "audit", "enabled"):
            raise ValidationFailed(f"unknown quota_mode {quota!r}", "quota_mode")
        values["quota_mode"] = quota
    fmt = text(body, "storage_format")
    if fmt is not None:
        if fmt not in ("v1", "v2", "v3", "v4", "v5"):
            raise ValidationFailed(f"unknown storage_format {fmt!r}", "storage_format")
        values["storage_format"] = fmt
    _version_in(body, values)
    return values


async def cluster_values(request: web.Request, body: Body) -> dict[str, Any]:
    values = _common(body)
    dc = await resolve_ref(request, body, "data_center", "data_centers")
    if dc is not None:
        values["data_center_id"] = uuid.UUID(dc)
    arch = text(body, "cpu", "architecture")
    if arch is not None:
        if arch not in ("x86_64", "ppc64", "s390x", "aarch64"):
            raise ValidationFailed(f"unknown architecture {arch!r}", "cpu.architecture")
        values["architecture"] = arch
    cpu_type = text(body, "cpu", "type", max_len=255)
    if cpu_type is not None:
        values["cpu_type"] = cpu_type
    pct = as_int(body, "memory_policy", "over_commit", "percent", minimum=1, maximum=1000)
    if pct is not None:
        values["memory_overcommit_pct"] = pct
    for k in ("ballooning_enabled", "threads_as_cores"):
        v = as_bool(body, k)
        if v is not None:
            values[k] = v
    _version_in(body, values)
    return values


async def network_values(request: web.Request, body: Body) -> dict[str, Any]:
    values = _common(body)
    dc = await resolve_ref(request, body, "data_center", "data_centers")
    if dc is not None:
        values["data_center_id"] = uuid.UUID(dc)
    vlan = as_int(body, "vlan", "id", minimum=0, maximum=4094)
    if vlan is not None:
        values["vlan_id"] = vlan
    mtu = as_int(body, "mtu", minimum=0, maximum=65536)
    if mtu is not None:
        values["mtu"] = mtu
    for k in ("stp", "required"):
        v = as_bool(body, k)
        if v is not None:
            values[k] = v
    usages = items(body, "usages", "usage")
    if usages:
        bad = [u for u in usages if u not in ("vm", "display", "migration", "management",
                                              "gluster", "default_route")]
        if bad:
            raise ValidationFailed(f"unknown network usage {str(bad[0])[:20]!r}", "usages")
        values["usages"] = [str(u) for u in usages]
        values["vm_network"] = "vm" in usages
    return values


# -------------------------------------------------------------- handlers
def _crud(base: str, plural: str, singular: str, coll: Collection,
          to_dict: Callable[[Any], dict[str, Any]], kind: str) -> dict[str, Any]:
    async def list_(request: web.Request) -> web.Response:
        rows = await list_rows(request, coll)
        return respond_collection(request, plural, singular, rows, to_dict)

    async def get_(request: web.Request) -> web.Response:
        return respond(request, singular, to_dict(await get_row(request, coll,
                                                                request.match_info["id"])))
    return {"list": list_, "get": get_}


async def add_dc(request: web.Request) -> web.Response:
    values = dc_values(await read_body(request, "data_center"))
    result = await run(request, tc.AddDataCenter(ctx(request).s, ident(request).principal,
                                                 values))
    row = await get_row(request, DATA_CENTERS, result.value)
    return respond(request, "data_center", dc_dict(row), status=201)


async def update_dc(request: web.Request) -> web.Response:
    values = dc_values(await read_body(request, "data_center"))
    await run(request, tc.UpdateDataCenter(ctx(request).s, ident(request).principal,
                                           request.match_info["id"], values))
    return respond(request, "data_center",
                   dc_dict(await get_row(request, DATA_CENTERS, request.match_info["id"])))


async def remove_dc(request: web.Request) -> web.Response:
    await run(request, tc.RemoveDataCenter(ctx(request).s, ident(request).principal,
                                           request.match_info["id"]))
    return empty_ok()


async def add_cluster(request: web.Request) -> web.Response:
    body = await read_body(request, "cluster")
    values = await cluster_values(request, body)
    if "data_center_id" not in values:
        raise ValidationFailed("data_center is required (by id or name)", "data_center")
    await require(request, AG.CREATE_CLUSTER, "data_center", str(values["data_center_id"]))
    result = await run(request, tc.AddCluster(ctx(request).s, ident(request).principal, values))
    return respond(request, "cluster",
                   cluster_dict(await get_row(request, CLUSTERS, result.value)), status=201)


async def update_cluster(request: web.Request) -> web.Response:
    values = await cluster_values(request, await read_body(request, "cluster"))
    await run(request, tc.UpdateCluster(ctx(request).s, ident(request).principal,
                                        request.match_info["id"], values))
    return respond(request, "cluster",
                   cluster_dict(await get_row(request, CLUSTERS, request.match_info["id"])))


async def remove_cluster(request: web.Request) -> web.Response:
    await run(request, tc.RemoveCluster(ctx(request).s, ident(request).principal,
                                        request.match_info["id"]))
    return empty_ok()


async def add_network(request: web.Request) -> web.Response:
    body = await read_body(request, "network")
    values = await network_values(request, body)
    if "data_center_id" not in values:
        raise ValidationFailed("data_center is required (by id or name)", "data_center")
    await require(request, AG.CREATE_STORAGE_POOL_NETWORK, "data_center",
                  str(values["data_center_id"]))
    result = await run(request, tc.AddNetwork(ctx(request).s, ident(request).principal, values))
    return respond(request, "network",
                   network_dict(await get_row(request, NETWORKS, result.value)), status=201)


async def update_network(request: web.Request) -> web.Response:
    values = await network_values(request, await read_body(request, "network"))
    await run(request, tc.UpdateNetwork(ctx(request).s, ident(request).principal,
                                        request.match_info["id"], values))
    return respond(request, "network",
                   network_dict(await get_row(request, NETWORKS, request.match_info["id"])))


async def remove_network(request: web.Request) -> web.Response:
    await run(request, tc.RemoveNetwork(ctx(request).s, ident(request).principal,
                                        request.match_info["id"]))
    return empty_ok()


async def dc_clusters(request: web.Request) -> web.Response:
    rows = await list_rows(request, CLUSTERS, "c.data_center_id = $1",
                           (uuid.UUID(request.match_info["id"]),))
    return respond_collection(request, "clusters", "cluster", rows, cluster_dict)


async def dc_networks(request: web.Request) -> web.Response:
    rows = await list_rows(request, NETWORKS, "n.data_center_id = $1",
                           (uuid.UUID(request.match_info["id"]),))
    return respond_collection(request, "networks", "network", rows, network_dict)


async def cluster_networks(request: web.Request) -> web.Response:
    rows = await list_rows(request, NETWORKS, "n.data_center_id = (SELECT data_center_id "
                           "FROM clusters WHERE id = $1)", (uuid.UUID(request.match_info["id"]),))
    return respond_collection(request, "networks", "network", rows, network_dict)


def add_routes(r: Routes) -> None:
    api = "/ovirt-engine/api"
    dc = _crud(f"{api}/datacenters", "data_centers", "data_center", DATA_CENTERS, dc_dict,
               "data_center")
    r.get(f"{api}/datacenters", dc["list"], LOGIN)
    r.post(f"{api}/datacenters", add_dc, on_system(AG.CREATE_STORAGE_POOL))
    r.get(f"{api}/datacenters/{{id}}", dc["get"], read("data_center"))
    r.put(f"{api}/datacenters/{{id}}", update_dc,
          act(AG.EDIT_STORAGE_POOL_CONFIGURATION, "data_center"))
    r.delete(f"{api}/datacenters/{{id}}", remove_dc, act(AG.DELETE_STORAGE_POOL, "data_center"))
    r.get(f"{api}/datacenters/{{id}}/clusters", dc_clusters, read("data_center"))
    r.get(f"{api}/datacenters/{{id}}/networks", dc_networks, read("data_center"))

    cl = _crud(f"{api}/clusters", "clusters", "cluster", CLUSTERS, cluster_dict, "cluster")
    r.get(f"{api}/clusters", cl["list"], LOGIN)
    r.post(f"{api}/clusters", add_cluster, deferred(AG.CREATE_CLUSTER, "data_center"))
    r.get(f"{api}/clusters/{{id}}", cl["get"], read("cluster"))
    r.put(f"{api}/clusters/{{id}}", update_cluster, act(AG.EDIT_CLUSTER_CONFIGURATION, "cluster"))
    r.delete(f"{api}/clusters/{{id}}", remove_cluster, act(AG.DELETE_CLUSTER, "cluster"))
    r.get(f"{api}/clusters/{{id}}/networks", cluster_networks, read("cluster"))

    nw = _crud(f"{api}/networks", "networks", "network", NETWORKS, network_dict, "network")
    r.get(f"{api}/networks", nw["list"], LOGIN)
    r.post(f"{api}/networks", add_network,
           deferred(AG.CREATE_STORAGE_POOL_NETWORK, "data_center"))
    r.get(f"{api}/networks/{{id}}", nw["get"], read("network"))
    r.put(f"{api}/networks/{{id}}", update_network,
          act(AG.CONFIGURE_STORAGE_POOL_NETWORK, "network"))
    r.delete(f"{api}/networks/{{id}}", remove_network,
             act(AG.DELETE_STORAGE_POOL_NETWORK, "network"))
