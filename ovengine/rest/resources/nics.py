"""VM network interfaces (/vms/{id}/nics: list, get, add, update, remove),
template network interfaces (/templates/{id}/nics: read only; no MAC) and vNIC profiles (/vnicprofiles, /networks/{id}/vnicprofiles: read only)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp import web

from ...aaa.authz import parse_uuid
from ...aaa.permits import ActionGroup as AG
from ...domain.nic_commands import AddVmNic, NicConfig, RemoveVmNic, UpdateVmNic
from ...errors import NotFound, ValidationFailed
from ..context import ctx, ident, run
from ..listing import Collection, get_row, list_rows
from ..parse import Body, as_bool, get, read_body, text
from ..policy import LOGIN, Routes, act, read
from ..render import API, b, ref, respond, respond_collection
from ..search import Field
from .common import empty_ok

__all__ = ["add_routes", "nic_dict", "profile_dict", "VNIC_PROFILES"]

VNIC_PROFILES = Collection(
    kind="network",  # a profile is visible with its network
    select="SELECT p.*, n.data_center_id FROM vnic_profiles p "
           "JOIN networks n ON n.id = p.network_id",
    where="TRUE", id_col="p.id", cols={"id": "p.network_id", "dc": "n.data_center_id"},
    fields={"name": Field("p.name"), "id": Field("p.id::text"),
            "network": Field("n.name")},
    order="p.name, p.id", prefix="VnicProfile", what="vnic profile")


# ------------------------------------------------------------- rendering
def nic_dict(r: Any, owner: str = "vms") -> dict[str, Any]:
    """A NIC of a VM (owner "vms") or of a template ("templates"); a template
    NIC has no MAC address and renders without <mac>."""
    vm = str(r["vm_id"])
    i = str(r["id"])
    out: dict[str, Any] = {"href": f"{API}/{owner}/{vm}/nics/{i}", "id": i, "name": r["name"],
                           "interface": r["interface"]}
    if r["mac_address"] is not None:
        out["mac"] = {"address": r["mac_address"]}
    out.update({"plugged": b(r["plugged"]), "linked": b(r["linked"]),
                "vnic_profile": ref("vnicprofiles", r["vnic_profile_id"])})
    out["template" if owner == "templates" else "vm"] = ref(owner, vm)
    return out


def profile_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    return {"href": f"{API}/vnicprofiles/{i}", "id": i, "name": r["name"],
            "description": r["description"], "pass_through": {"mode": "disabled"},
            "port_mirroring": "false", "network": ref("networks", r["network_id"])}


# ----------------------------------------------------------------- input
def nic_config(body: Body) -> NicConfig:
    raw = get(body, "vnic_profile")
    given = raw is not None
    profile_id: str | None = None
    if isinstance(raw, dict) and raw:
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValidationFailed("vnic_profile must be given by id (or empty for no "
                                   "network)", "vnic_profile.id")
        profile_id = rid
    elif given and raw != "" and raw != {}:
        raise ValidationFailed("vnic_profile must be a reference with an id", "vnic_profile")
    return NicConfig(
        name=text(body, "name", max_len=255), interface=text(body, "interface", max_len=64),
        mac=text(body, "mac", "address", max_len=64), vnic_profile_id=profile_id,
        profile_given=given, plugged=as_bool(body, "plugged"),
        linked=as_bool(body, "linked"))


# -------------------------------------------------------------- handlers
async def _nic(request: web.Request, vm_id: str, nic_id: str,
               status: int = 200, owner: str = "vms") -> web.Response:
    row = await ctx(request).s.pool.fetchrow(
        "SELECT * FROM vm_interfaces WHERE vm_id = $1 AND id = $2",
        uuid.UUID(vm_id), parse_uuid(nic_id, "nic"))
    if row is None:
        raise NotFound(f"nic {nic_id} does not exist")
    return respond(request, "nic", nic_dict(row, owner), status=status)


async def _nics(request: web.Request, owner: str) -> web.Response:
    rows = await ctx(request).s.pool.fetch(
        "SELECT * FROM vm_interfaces WHERE vm_id = $1 ORDER BY name",
        uuid.UUID(request.match_info["id"]))
    return respond_collection(request, "nics", "nic", rows, lambda r: nic_dict(r, owner))


async def list_nics(request: web.Request) -> web.Response:
    return await _nics(request, "vms")


async def get_nic(request: web.Request) -> web.Response:
    return await _nic(request, request.match_info["id"], request.match_info["nid"])


async def list_template_nics(request: web.Request) -> web.Response:
    return await _nics(request, "templates")


async def get_template_nic(request: web.Request) -> web.Response:
    return await _nic(request, request.match_info["id"], request.match_info["nid"],
                      owner="templates")


async def add_nic(request: web.Request) -> web.Response:
    vm_id = request.match_info["id"]
    config = nic_config(await read_body(request, "nic"))
    result = await run(request, AddVmNic(ctx(request).s, ident(request).principal, vm_id,
                                         config))
    return await _nic(request, vm_id, result.value, status=201)


async def update_nic(request: web.Request) -> web.Response:
    vm_id, nic_id = request.match_info["id"], request.match_info["nid"]
    config = nic_config(await read_body(request, "nic"))
    await run(request, UpdateVmNic(ctx(request).s, ident(request).principal, vm_id, nic_id,
                                   config))
    return await _nic(request, vm_id, nic_id)


async def remove_nic(request: web.Request) -> web.Response:
    await run(request, RemoveVmNic(ctx(request).s, ident(request).principal,
                                   request.match_info["id"], request.match_info["nid"]))
    return empty_ok()


async def list_profiles(request: web.Request) -> web.Response:
    rows = await list_rows(request, VNIC_PROFILES)
    return respond_collection(request, "vnic_profiles", "vnic_profile", rows, profile_dict)


async def get_profile(request: web.Request) -> web.Response:
    row: asyncpg.Record = await get_row(request, VNIC_PROFILES, request.match_info["id"])
    who = ident(request)
    if who.filtered:  # visible with its network (404 otherwise, as for hidden objects)
        rows = await list_rows(request, VNIC_PROFILES, "p.id = $1", (row["id"],), search=False)
        if not rows:
            raise NotFound(f"vnic profile {request.match_info['id']} does not exist")
    return respond(request, "vnic_profile", profile_dict(row))


async def network_profiles(request: web.Request) -> web.Response:
    rows = await list_rows(request, VNIC_PROFILES, "p.network_id = $1",
                           (uuid.UUID(request.match_info["id"]),))
    return respond_collection(request, "vnic_profiles", "vnic_profile", rows, profile_dict)


def add_routes(r: Routes) -> None:
    api = "/ovirt-engine/api"
    vms = f"{api}/vms"
    r.get(f"{vms}/{{id}}/nics", list_nics, read("vm"))
    r.post(f"{vms}/{{id}}/nics", add_nic, act(AG.CONFIGURE_VM_NETWORK, "vm"))
    r.get(f"{vms}/{{id}}/nics/{{nid}}", get_nic, read("vm"))
    r.put(f"{vms}/{{id}}/nics/{{nid}}", update_nic, act(AG.CONFIGURE_VM_NETWORK, "vm"))
    r.delete(f"{vms}/{{id}}/nics/{{nid}}", remove_nic, act(AG.CONFIGURE_VM_NETWORK, "vm"))
    r.get(f"{api}/templates/{{id}}/nics", list_template_nics, read("template"))
    r.get(f"{api}/templates/{{id}}/nics/{{nid}}", get_template_nic, read("template"))
    r.get(f"{api}/vnicprofiles", list_profiles, LOGIN)
    r.get(f"{api}/vnicprofiles/{{id}}", get_profile, LOGIN)
    r.get(f"{api}/networks/{{id}}/vnicprofiles", network_profiles, read("network"))
