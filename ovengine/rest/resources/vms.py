"""/vms: list (search), get, add, update, remove; actions start, stop,
shutdown, reboot, suspend; sub-collections snapshots, nics, diskattachments,
statistics (nics: resources/nics.py; permissions: resources/permissions.py)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from ...aaa.permits import ActionGroup as AG
from ...domain.commands import CommandResult
from ...domain.snapshot_commands import CreateSnapshot, RemoveSnapshot
from ...domain.disk_commands import AddDisk, AttachDisk, DetachDisk, DiskAttach, RemoveDisk
from ...domain.vm_commands import AddVm, DiskOverride, RemoveVm, UpdateVm, VmConfig
from ...domain.vm_lifecycle import PauseVm, RebootVm, ResumeVm, RunVm, ShutdownVm, StopVm
from ...aaa.authz import parse_uuid
from ...errors import NotFound, ValidationFailed
from ..context import ctx, ident, require, run
from ..listing import Collection, get_row, list_rows, query_bool
from ..parse import as_bool, as_int, get, items, read_body, ref_of, text
from ..policy import act, deferred, read, LOGIN, Routes
from ..render import (API, b, esc, ref, respond, respond_collection, ts, ts_sql)
from . import ova
from .snapshots import add_snapshot_routes
from ..search import Field
from .common import action_response, empty_ok, resolve_ref
from .storage import disk_input, resolve_domain

__all__ = ["add_routes", "vm_dict", "vm_xml", "vm_json", "VMS"]

VM_ACTIONS = ("commitsnapshot", "export", "previewsnapshot", "reboot", "shutdown", "start",
              "stop", "suspend", "undosnapshot")
VM_LINKS = ("diskattachments", "nics", "permissions", "snapshots", "statistics")
# The fast renderers' action links, with {h} for the VM's href.
_ACTIONS_XML = "".join(f'<link href="{{h}}/{a}" rel="{a}"/>' for a in VM_ACTIONS)
_ACTIONS_JSON = ",".join(f'{{{{"href":"{{h}}/{a}","rel":"{a}"}}}}' for a in VM_ACTIONS)
MIB = 1024 * 1024

VMS = Collection(
    kind="vm",
    # Ids as text and dates formatted by PostgreSQL: 10,000 rows render much
    # faster than with uuid and datetime objects.
    select=f"""SELECT s.id::text AS id, s.name, s.description, s.comment,
                     s.cluster_id::text AS cluster_id, s.template_id::text AS template_id,
                     s.original_template_id::text AS original_template_id, s.memory_mib,
                     s.memory_guaranteed_mib, s.memory_max_mib, s.ballooning, s.cpu_sockets,
                     s.cpu_cores, s.cpu_threads, s.os_type, s.vm_type, s.display_type,
                     s.boot_devices, s.stateless, s.delete_protected, s.ha_enabled,
                     s.ha_priority, {ts_sql("s.creation_time")} AS creation_time, s.origin,
                     c.architecture, d.status, d.status_detail,
                     d.run_on_host_id::text AS run_on_host_id,
                     {ts_sql("d.start_time")} AS start_time, {ts_sql("d.stop_time")} AS stop_time,
                     d.stop_reason, d.guest_fqdn, d.run_once
              FROM vm_static s JOIN vm_dynamic d ON d.vm_id = s.id
              LEFT JOIN clusters c ON c.id = s.cluster_id
              LEFT JOIN hosts h ON h.id = d.run_on_host_id""",
    where="s.entity_type = 'vm'",
    id_col="s.id",
    cols={"id": "s.id", "cluster": "s.cluster_id", "dc": "c.data_center_id"},
    fields={"name": Field("s.name"), "status": Field("d.status", "enum"),
            "cluster": Field("c.name"), "host": Field("h.name"),
            "description": Field("s.description"), "comment": Field("s.comment"),
            "id": Field("s.id::text"), "type": Field("s.vm_type", "enum"),
            "os": Field("s.os_type"), "memory": Field("s.memory_mib::bigint * 1048576", "int"),
            "stateless": Field("s.stateless", "bool"), "fqdn": Field("d.guest_fqdn"),
            "template": Field("(SELECT t.name FROM vm_static t WHERE t.id = s.template_id)"),
            "origin": Field("s.origin")},
    order="s.name", prefix="Vms", what="VM")


# ------------------------------------------------------------- rendering
def vm_dict(r: Any) -> dict[str, Any]:
    """The VM as a dict without None values (so JSON needs no pruning pass)."""
    i = str(r["id"])
    h = f"{API}/vms/{i}"
    running = r["run_on_host_id"]
    out: dict[str, Any] = {
        "href": h, "id": i,
        "actions": {"link": [{"href": f"{h}/{a}", "rel": a} for a in VM_ACTIONS]},
        "name": r["name"], "description": r["description"], "comment": r["comment"],
        "link": [{"href": f"{h}/{a}", "rel": a} for a in VM_LINKS],
        "cpu": {"architecture": r["architecture"] or "x86_64",
                "topology": {"cores": str(r["cpu_cores"]), "sockets": str(r["cpu_sockets"]),
                             "threads": str(r["cpu_threads"])}},
        "creation_time": ts(r["creation_time"]),
        "delete_protected": "true" if r["delete_protected"] else "false",
        "display": {"type": r["display_type"]},
        "high_availability": {"enabled": "true" if r["ha_enabled"] else "false",
                              "priority": str(r["ha_priority"])},
        "memory": str(r["memory_mib"] * MIB),
        "memory_policy": {"ballooning": "true" if r["ballooning"] else "false",
                          "guaranteed": str(r["memory_guaranteed_mib"] * MIB),
                          "max": str(r["memory_max_mib"] * MIB)},
        "origin": r["origin"],
        "os": {"boot": {"devices": {"device": list(r["boot_devices"] or ["hd"])}},
               "type": r["os_type"]},
    }
    if r["guest_fqdn"]:
        out["fqdn"] = r["guest_fqdn"]
    out["run_once"] = "true" if r["run_once"] else "false"
    if running and r["start_time"]:
        out["start_time"] = ts(r["start_time"])
    out["stateless"] = "true" if r["stateless"] else "false"
    out["status"] = r["status"]
    if r["status_detail"]:
        out["status_detail"] = r["status_detail"]
    if not running:
        if r["stop_reason"]:
            out["stop_reason"] = r["stop_reason"]
        if r["stop_time"]:
            out["stop_time"] = ts(r["stop_time"])
    out["type"] = r["vm_type"]
    for key, kind, value in (("cluster", "clusters", r["cluster_id"]),
                             ("host", "hosts", running),
                             ("original_template", "templates", r["original_template_id"]),
                             ("template", "templates", r["template_id"])):
        if value is not None:
            v = str(value)
            out[key] = {"href": f"{API}/{kind}/{v}", "id": v}
    return out


def _opt(tag: str, value: str | None) -> str:
    return f"<{tag}>{esc(value)}</{tag}>" if value else ""


def _refx(tag: str, kind: str, obj_id: Any) -> str:
    if obj_id is None:
        return ""
    return f'<{tag} href="{API}/{kind}/{obj_id}" id="{obj_id}"/>'




def vm_xml(r: Any) -> str:
    """The same document as xml_of("vm", vm_dict(r)), built directly (10,000
    VMs in a fraction of the time the generic path takes). Values the engine
    validated against a fixed set (type, display, architecture, origin,
    status) are not escaped; free text is."""
    i = str(r["id"])
    h = f"{API}/vms/{i}"
    running = r["run_on_host_id"]
    devices = r["boot_devices"]
    devices_xml = "".join([f"<device>{esc(d)}</device>" for d in devices]) if devices \
        else "<device>hd</device>"
    mem = r["memory_mib"] * MIB
    tail = []
    if r["guest_fqdn"]:
        tail.append(f"<fqdn>{esc(r['guest_fqdn'])}</fqdn>")
    tail.append("<run_once>true</run_once>" if r["run_once"] else "<run_once>false</run_once>")
    if running and r["start_time"]:
        tail.append(f"<start_time>{ts(r['start_time'])}</start_time>")
    tail.append("<stateless>true</stateless>" if r["stateless"] else
                "<stateless>false</stateless>")
    tail.append(f"<status>{r['status']}</status>")
    if r["status_detail"]:
        tail.append(f"<status_detail>{esc(r['status_detail'])}</status_detail>")
    if not running:
        if r["stop_reason"]:
            tail.append(f"<stop_reason>{esc(r['stop_reason'])}</stop_reason>")
        if r["stop_time"]:
            tail.append(f"<stop_time>{ts(r['stop_time'])}</stop_time>")
    tail.append(f"<type>{r['vm_type']}</type>")
    c = r["cluster_id"]
    if c is not None:
        tail.append(f'<cluster href="{API}/clusters/{c}" id="{c}"/>')
    if running:
        tail.append(f'<host href="{API}/hosts/{running}" id="{running}"/>')
    t = r["original_template_id"]
    if t is not None:
        tail.append(f'<original_template href="{API}/templates/{t}" id="{t}"/>')
    t = r["template_id"]
    if t is not None:
        tail.append(f'<template href="{API}/templates/{t}" id="{t}"/>')
    return (
        f'<vm href="{h}" id="{i}"><actions>{_ACTIONS_XML.format(h=h)}</actions>'
        f'<name>{esc(r["name"])}</name><description>{esc(r["description"])}</description>'
        f'<comment>{esc(r["comment"])}</comment>'
        f'<link href="{h}/diskattachments" rel="diskattachments"/>'
        f'<link href="{h}/nics" rel="nics"/><link href="{h}/permissions" rel="permissions"/>'
        f'<link href="{h}/snapshots" rel="snapshots"/>'
        f'<link href="{h}/statistics" rel="statistics"/>'
        f'<cpu><architecture>{r["architecture"] or "x86_64"}</architecture><topology>'
        f'<cores>{r["cpu_cores"]}</cores><sockets>{r["cpu_sockets"]}</sockets>'
        f'<threads>{r["cpu_threads"]}</threads></topology></cpu>'
        f'<creation_time>{ts(r["creation_time"])}</creation_time>'
        f'<delete_protected>{"true" if r["delete_protected"] else "false"}</delete_protected>'
        f'<display><type>{r["display_type"]}</type></display>'
        f'<high_availability><enabled>{"true" if r["ha_enabled"] else "false"}</enabled>'
        f'<priority>{r["ha_priority"]}</priority></high_availability>'
        f'<memory>{mem}</memory>'
        f'<memory_policy><ballooning>{"true" if r["ballooning"] else "false"}</ballooning>'
        f'<guaranteed>{r["memory_guaranteed_mib"] * MIB}</guaranteed>'
        f'<max>{r["memory_max_mib"] * MIB}</max></memory_policy>'
        f'<origin>{r["origin"]}</origin>'
        f'<os><boot><devices>{devices_xml}</devices></boot><type>{esc(r["os_type"])}</type></os>'
        f'{"".join(tail)}</vm>')


def _js(value: str) -> str:
    return orjson.dumps(value).decode()


def vm_json(r: Any) -> str:
    """The same text as orjson.dumps(vm_dict(r)), built directly."""
    i = str(r["id"])
    h = f"{API}/vms/{i}"
    running = r["run_on_host_id"]
    devices = r["boot_devices"] or ["hd"]
    parts = [
        f'{{"href":"{h}","id":"{i}","actions":{{"link":[{_ACTIONS_JSON.format(h=h)}]}},'
        f'"name":{_js(r["name"])},"description":{_js(r["description"])},'
        f'"comment":{_js(r["comment"])},"link":['
        f'{{"href":"{h}/diskattachments","rel":"diskattachments"}},'
        f'{{"href":"{h}/nics","rel":"nics"}},{{"href":"{h}/permissions","rel":"permissions"}},'
        f'{{"href":"{h}/snapshots","rel":"snapshots"}},'
        f'{{"href":"{h}/statistics","rel":"statistics"}}],'
        f'"cpu":{{"architecture":"{r["architecture"] or "x86_64"}","topology":{{'
        f'"cores":"{r["cpu_cores"]}","sockets":"{r["cpu_sockets"]}",'
        f'"threads":"{r["cpu_threads"]}"}}}},'
        f'"creation_time":"{ts(r["creation_time"])}",'
        f'"delete_protected":"{"true" if r["delete_protected"] else "false"}",'
        f'"display":{{"type":"{r["display_type"]}"}},'
        f'"high_availability":{{"enabled":"{"true" if r["ha_enabled"] else "false"}",'
        f'"priority":"{r["ha_priority"]}"}},'
        f'"memory":"{r["memory_mib"] * MIB}",'
        f'"memory_policy":{{"ballooning":"{"true" if r["ballooning"] else "false"}",'
        f'"guaranteed":"{r["memory_guaranteed_mib"] * MIB}",'
        f'"max":"{r["memory_max_mib"] * MIB}"}},'
        f'"origin":"{r["origin"]}",'
        f'"os":{{"boot":{{"devices":{{"device":{orjson.dumps(list(devices)).decode()}}}}},'
        f'"type":{_js(r["os_type"])}}}']
    if r["guest_fqdn"]:
        parts.append(f',"fqdn":{_js(r["guest_fqdn"])}')
    parts.append(f',"run_once":"{"true" if r["run_once"] else "false"}"')
    if running and r["start_time"]:
        parts.append(f',"start_time":"{ts(r["start_time"])}"')
    parts.append(f',"stateless":"{"true" if r["stateless"] else "false"}"'
                 f',"status":"{r["status"]}"')
    if r["status_detail"]:
        parts.append(f',"status_detail":{_js(r["status_detail"])}')
    if not running:
        if r["stop_reason"]:
            parts.append(f',"stop_reason":{_js(r["stop_reason"])}')
        if r["stop_time"]:
            parts.append(f',"stop_time":"{ts(r["stop_time"])}"')
    parts.append(f',"type":"{r["vm_type"]}"')
    for key, kind, value in (("cluster", "clusters", r["cluster_id"]),
                             ("host", "hosts", running),
                             ("original_template", "templates", r["original_template_id"]),
                             ("template", "templates", r["template_id"])):
        if value is not None:
            parts.append(f',"{key}":{{"href":"{API}/{kind}/{value}","id":"{value}"}}')
    parts.append("}")
    return "".join(parts)


# ----------------------------------------------------------------- input
def _mib(body: Any, *path: str) -> int | None:
    n = as_int(body, *path, minimum=1, maximum=2**50)
    if n is None:
        return None
    return max(1, -(-n // MIB))  # bytes -> MiB, rounded up


def vm_config(body: Any) -> VmConfig:
    devices = items(body, "os", "boot", "devices", "device")
    for d in devices:
        if not isinstance(d, str) or d not in ("hd", "cdrom", "network"):
            raise ValidationFailed(f"unknown boot device {str(d)[:20]!r} (hd, cdrom, network)",
                                   "os.boot.devices")
    vm_type = text(body, "type")
    if vm_type is not None and vm_type not in ("desktop", "server", "high_performance"):
        raise ValidationFailed(f"unknown VM type {vm_type!r}", "type")
    display = text(body, "display", "type")
    if display is not None and display not in ("vnc", "spice"):
        raise ValidationFailed(f"unknown display type {display!r}", "display.type")
    os_type = text(body, "os", "type", max_len=64)
    return VmConfig(
        name=text(body, "name", max_len=255), description=text(body, "description"),
        comment=text(body, "comment"),
        memory_mib=_mib(body, "memory"),
        memory_guaranteed_mib=_mib(body, "memory_policy", "guaranteed"),
        memory_max_mib=_mib(body, "memory_policy", "max"),
        cpu_sockets=as_int(body, "cpu", "topology", "sockets", minimum=1, maximum=64),
        cpu_cores=as_int(body, "cpu", "topology", "cores", minimum=1, maximum=256),
        cpu_threads=as_int(body, "cpu", "topology", "threads", minimum=1, maximum=8),
        os_type=os_type, vm_type=vm_type, display_type=display,
        boot_devices=[str(d) for d in devices] or None,
        stateless=as_bool(body, "stateless"),
        ballooning=as_bool(body, "memory_policy", "ballooning"),
        ha_enabled=as_bool(body, "high_availability", "enabled"),
        ha_priority=as_int(body, "high_availability", "priority", minimum=0, maximum=100),
        delete_protected=as_bool(body, "delete_protected"))


# -------------------------------------------------------------- handlers
async def list_vms(request: web.Request) -> web.Response:
    rows = await list_rows(request, VMS)
    return respond_collection(request, "vms", "vm", rows, vm_dict, vm_xml, pruned=True,
                              fast_json=vm_json)


async def _vm(request: web.Request, vm_id: str) -> asyncpg.Record:
    return await get_row(request, VMS, vm_id)


async def get_vm(request: web.Request) -> web.Response:
    return respond(request, "vm", vm_dict(await _vm(request, request.match_info["id"])))


async def add_vm(request: web.Request) -> web.Response:
    body = await read_body(request, "vm")
    config = vm_config(body)
    if not config.name:
        raise ValidationFailed("name is required", "name")
    cluster_id = await resolve_ref(request, body, "cluster", "clusters", required=True)
    template_id = await resolve_ref(request, body, "template", "vm_static",
                                    extra="entity_type = 'template'") \
        or "00000000-0000-0000-0000-000000000000"
    assert cluster_id is not None
    await require(request, AG.CREATE_VM, "cluster", cluster_id)
    await require(request, None, "template", template_id)
    disks = await disk_overrides(request, body)
    for o in disks.values():
        if o.sd_id is not None:
            await require(request, AG.CREATE_DISK, "storage_domain", o.sd_id)
    result = await run(request, AddVm(ctx(request).s, ident(request).principal,
                                      cluster_id, template_id, config,
                                      clone=query_bool(request, "clone", False), disks=disks))
    return respond(request, "vm", vm_dict(await _vm(request, result.value)), status=201)


async def disk_overrides(request: web.Request, body: Any) -> dict[str, DiskOverride]:
    """`<disk_attachments><disk_attachment><disk id=".."><format/><sparse/>
    <storage_domains/></disk>...`: how the new VM's copy of each template disk
    differs (by the template disk's id)."""
    out: dict[str, DiskOverride] = {}
    for att in items(body, "disk_attachments", "disk_attachment"):
        disk = get(att, "disk")
        if not isinstance(disk, dict) or not isinstance(disk.get("id"), str):
            raise ValidationFailed("disk_attachments.disk_attachment.disk needs the id of a "
                                   "template disk", "disk_attachments")
        sds = items(disk, "storage_domains", "storage_domain")
        fmt = text(disk, "format", field="disk.format")
        if fmt is not None and fmt not in ("cow", "raw"):
            raise ValidationFailed(f"unknown disk format {fmt!r}", "disk.format")
        out[disk["id"]] = DiskOverride(
            fmt=fmt, sparse=as_bool(disk, "sparse", field="disk.sparse"),
            sd_id=await resolve_domain(request, sds[0], "disk.storage_domains")
            if sds else None,
            alias=text(disk, "alias", max_len=255) or text(disk, "name", max_len=255))
    return out


async def update_vm(request: web.Request) -> web.Response:
    vm_id = request.match_info["id"]
    body = await read_body(request, "vm")
    await run(request, UpdateVm(ctx(request).s, ident(request).principal, vm_id,
                                vm_config(body)))
    return respond(request, "vm", vm_dict(await _vm(request, vm_id)))


async def remove_vm(request: web.Request) -> web.Response:
    vm_id = request.match_info["id"]
    force = query_bool(request, "force", False)
    await run(request, RemoveVm(ctx(request).s, ident(request).principal, vm_id,
                                force=force,
                                remove_disks=not query_bool(request, "detach_only", False)))
    return empty_ok()


def _vm_action(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        vm_id = request.match_info["id"]
        body = await read_body(request, "action")
        s = ctx(request).s
        who = ident(request).principal
        reason = text(body, "reason") or ""
        result: CommandResult
        if name == "start":
            row = await _vm(request, vm_id)
            if row["status"] == "paused":
                result = await run(request, ResumeVm(s, who, vm_id))
            else:
                host_id, _ = ref_of(get(body, "vm", "placement_policy", "hosts") or {}, "host")
                result = await run(request, RunVm(s, who, vm_id, host_id=host_id))
        elif name == "stop":
            result = await run(request, StopVm(s, who, vm_id, reason=reason))
        elif name == "shutdown":
            result = await run(request, ShutdownVm(s, who, vm_id, reason=reason))
        elif name == "reboot":
            result = await run(request, RebootVm(s, who, vm_id))
        elif name == "suspend":
            result = await run(request, PauseVm(s, who, vm_id))
        else:  # pragma: no cover - routes are registered from the table below
            raise ValidationFailed(f"unknown action {name}", "action")
        return action_response(request, body, result)
    handler.__name__ = f"vm_{name}"
    return handler


_ACTION_PERMITS = {"start": AG.RUN_VM, "stop": AG.STOP_VM, "shutdown": AG.SHUT_DOWN_VM,
                   "reboot": AG.REBOOT_VM, "suspend": AG.HIBERNATE_VM}


# ------------------------------------------------------------- snapshots
def snapshot_dict(r: Any) -> dict[str, Any]:
    vm = str(r["vm_id"])
    i = str(r["id"])
    h = f"{API}/vms/{vm}/snapshots/{i}"
    cfg = r["vm_configuration"] or {}
    out: dict[str, Any] = {
        "href": h, "id": i, "description": r["description"],
        "date": ts(r["creation_date"]),
        "persist_memorystate": b(r["persist_memorystate"]),
        "snapshot_status": r["status"], "snapshot_type": r["snapshot_type"],
    }
    if cfg.get("memory_mib"):
        out["memory"] = str(int(cfg["memory_mib"]) * MIB)
    if cfg.get("name"):
        out["name"] = cfg["name"]
    out["vm"] = ref("vms", vm)
    return out


_SNAPSHOT_SQL = ("SELECT id, vm_id, snapshot_type, status, description, creation_date, "
                 "persist_memorystate, vm_configuration FROM snapshots")


async def list_snapshots(request: web.Request) -> web.Response:
    vm_id = request.match_info["id"]
    rows = await ctx(request).s.pool.fetch(
        f"{_SNAPSHOT_SQL} WHERE vm_id = $1 ORDER BY creation_date, id", uuid.UUID(vm_id))
    return respond_collection(request, "snapshots", "snapshot", rows, snapshot_dict)


async def _snapshot(request: web.Request, vm_id: str, sid: str) -> asyncpg.Record:
    row = await ctx(request).s.pool.fetchrow(
        f"{_SNAPSHOT_SQL} WHERE id = $1 AND vm_id = $2", parse_uuid(sid, "snapshot"),
        uuid.UUID(vm_id))
    if row is None:
        raise NotFound(f"snapshot {sid} does not exist")
    return row


async def get_snapshot(request: web.Request) -> web.Response:
    row = await _snapshot(request, request.match_info["id"], request.match_info["sid"])
    return respond(request, "snapshot", snapshot_dict(row))


async def add_snapshot(request: web.Request) -> web.Response:
    vm_id = request.match_info["id"]
    body = await read_body(request, "snapshot")
    description = text(body, "description", required=True, max_len=4000)
    assert description is not None
    result = await run(request, CreateSnapshot(
        ctx(request).s, ident(request).principal, vm_id, description,
        persist_memorystate=bool(as_bool(body, "persist_memorystate")),
        disk_ids=snapshot_disk_ids(body)))
    row = await _snapshot(request, vm_id, result.value)
    return respond(request, "snapshot", snapshot_dict(row), status=201)


def snapshot_disk_ids(body: Any) -> list[str] | None:
    """`<disk_attachments><disk_attachment [id]><disk id/>`: the disks to
    snapshot (None: all of them)."""
    if get(body, "disk_attachments") is None:
        return None
    out = []
    for att in items(body, "disk_attachments", "disk_attachment"):
        disk = get(att, "disk") if isinstance(att, dict) else None
        disk_id = disk.get("id") if isinstance(disk, dict) else \
            att.get("id") if isinstance(att, dict) else None
        if not isinstance(disk_id, str):
            raise ValidationFailed("disk_attachments.disk_attachment needs a disk id",
                                   "disk_attachments")
        out.append(disk_id)
    return out


async def remove_snapshot(request: web.Request) -> web.Response:
    await run(request, RemoveSnapshot(ctx(request).s, ident(request).principal,
                                      request.match_info["id"], request.match_info["sid"]))
    return empty_ok()


# ----------------------------------------------------------- disks, stats
def attachment_dict(r: Any, owner: str = "vms") -> dict[str, Any]:
    vm, disk = str(r["vm_id"]), str(r["disk_id"])
    return {"href": f"{API}/{owner}/{vm}/diskattachments/{disk}", "id": disk,
            "active": b(r["active"]), "bootable": b(r["bootable"]), "interface": r["interface"],
            "logical_name": r["logical_name"], "pass_discard": b(r["pass_discard"]),
            "read_only": b(r["read_only"]), "disk": ref("disks", disk),
            owner[:-1]: ref(owner, vm)}


async def add_attachment(request: web.Request) -> web.Response:
    """An existing disk (`<disk id=".."/>`), or a new one described inline."""
    vm_id = request.match_info["id"]
    body = await read_body(request, "disk_attachment")
    interface = text(body, "interface") or "virtio"
    attach = DiskAttach(vm_id, interface, bool(as_bool(body, "bootable")),
                        as_bool(body, "active") is not False,
                        bool(as_bool(body, "read_only")), bool(as_bool(body, "pass_discard")))
    disk = get(body, "disk")
    if not isinstance(disk, dict):
        raise ValidationFailed("disk is required (an existing disk's id, or a new disk)",
                               "disk")
    s, who = ctx(request).s, ident(request).principal
    if isinstance(disk.get("id"), str) and get(disk, "provisioned_size") is None:
        disk_id = disk["id"]
        await require(request, AG.ATTACH_DISK, "disk", disk_id)
        await run(request, AttachDisk(s, who, disk_id, attach))
    else:
        d = await disk_input(request, disk)
        await require(request, AG.CREATE_DISK, "storage_domain", d["sd_id"])
        disk_id = (await run(request, AddDisk(s, who, attach=attach, **d))).value
    return await _attachment(request, vm_id, disk_id, status=201)


async def _attachment(request: web.Request, vm_id: str, disk_id: str,
                      status: int = 200) -> web.Response:
    row = await ctx(request).s.pool.fetchrow(
        "SELECT * FROM disk_attachments WHERE vm_id = $1 AND disk_id = $2",
        uuid.UUID(vm_id), parse_uuid(disk_id, "disk"))
    if row is None:
        raise NotFound(f"disk attachment {disk_id} does not exist")
    return respond(request, "disk_attachment", attachment_dict(row), status=status)


async def remove_attachment(request: web.Request) -> web.Response:
    """Detach (the default, detach_only=true) or remove the disk (detach_only=false)."""
    vm_id, disk_id = request.match_info["id"], request.match_info["did"]
    s, who = ctx(request).s, ident(request).principal
    if query_bool(request, "detach_only", True):
        await run(request, DetachDisk(s, who, vm_id, disk_id))
    else:
        await _attachment(request, vm_id, disk_id)  # 404 if it is not attached here
        await require(request, AG.DELETE_DISK, "disk", disk_id)
        await run(request, RemoveDisk(s, who, disk_id))
    return empty_ok()


async def list_attachments(request: web.Request) -> web.Response:
    rows = await ctx(request).s.pool.fetch(
        "SELECT * FROM disk_attachments WHERE vm_id = $1 ORDER BY disk_id",
        uuid.UUID(request.match_info["id"]))
    return respond_collection(request, "disk_attachments", "disk_attachment", rows,
                              attachment_dict)


async def get_attachment(request: web.Request) -> web.Response:
    return await _attachment(request, request.match_info["id"], request.match_info["did"])


def statistic(owner: str, owner_id: str, name: str, description: str, value: Any, unit: str,
              kind: str = "gauge", vtype: str = "integer") -> dict[str, Any]:
    sid = str(uuid.uuid5(uuid.UUID(owner_id), name))
    owner_kind = "vms" if owner == "vm" else "hosts"
    return {"href": f"{API}/{owner_kind}/{owner_id}/statistics/{sid}", "id": sid, "name": name,
            "description": description, "kind": kind, "type": vtype, "unit": unit,
            "values": {"value": [{"datum": str(value)}]}, owner: ref(owner_kind, owner_id)}


async def list_vm_statistics(request: web.Request) -> web.Response:
    vm_id = request.match_info["id"]
    r = await ctx(request).s.pool.fetchrow(
        "SELECT s.memory_mib, st.cpu_user, st.cpu_sys, st.mem_usage, st.elapsed_s "
        "FROM vm_static s JOIN vm_statistics st ON st.vm_id = s.id WHERE s.id = $1",
        uuid.UUID(vm_id))
    stats = [] if r is None else [
        statistic("vm", vm_id, "memory.installed", "Total memory configured",
                  r["memory_mib"] * MIB, "bytes"),
        statistic("vm", vm_id, "memory.used", "Memory used (agent)",
                  r["memory_mib"] * MIB * r["mem_usage"] // 100, "bytes"),
        statistic("vm", vm_id, "cpu.current.guest", "CPU used by guest",
                  round(r["cpu_user"], 2), "percent", vtype="decimal"),
        statistic("vm", vm_id, "cpu.current.hypervisor", "CPU overhead",
                  round(r["cpu_sys"], 2), "percent", vtype="decimal"),
        statistic("vm", vm_id, "cpu.current.total", "Total CPU used",
                  round(r["cpu_user"] + r["cpu_sys"], 2), "percent", vtype="decimal"),
        statistic("vm", vm_id, "elapsed.time", "Elapsed VM runtime", r["elapsed_s"],
                  "seconds", kind="counter"),
    ]
    return respond_collection(request, "statistics", "statistic", stats, lambda d: d)


def add_routes(r: Routes) -> None:
    base = "/ovirt-engine/api/vms"
    r.get(base, list_vms, LOGIN)
    r.post(base, add_vm, deferred(AG.CREATE_VM, "cluster"))
    r.get(f"{base}/{{id}}", get_vm, read("vm"))
    r.put(f"{base}/{{id}}", update_vm, act(AG.EDIT_VM_PROPERTIES, "vm"))
    r.delete(f"{base}/{{id}}", remove_vm, act(AG.DELETE_VM, "vm"))
    for name, permit in _ACTION_PERMITS.items():
        r.post(f"{base}/{{id}}/{name}", _vm_action(name), act(permit, "vm"))
    r.get(f"{base}/{{id}}/snapshots", list_snapshots, read("vm"))
    r.post(f"{base}/{{id}}/snapshots", add_snapshot, act(AG.MANIPULATE_VM_SNAPSHOTS, "vm"))
    r.get(f"{base}/{{id}}/snapshots/{{sid}}", get_snapshot, read("vm"))
    r.delete(f"{base}/{{id}}/snapshots/{{sid}}", remove_snapshot,
             act(AG.MANIPULATE_VM_SNAPSHOTS, "vm"))
    add_snapshot_routes(r, base)
    r.get(f"{base}/{{id}}/diskattachments", list_attachments, read("vm"))
    r.get(f"{base}/{{id}}/diskattachments/{{did}}", get_attachment, read("vm"))
    r.post(f"{base}/{{id}}/diskattachments", add_attachment, act(AG.CONFIGURE_VM_STORAGE, "vm"))
    r.delete(f"{base}/{{id}}/diskattachments/{{did}}", remove_attachment,
             act(AG.CONFIGURE_VM_STORAGE, "vm"))
    r.get(f"{base}/{{id}}/statistics", list_vm_statistics, read("vm"))
    ova.add_routes(r)  # vms and templates /{id}/export, external*imports
