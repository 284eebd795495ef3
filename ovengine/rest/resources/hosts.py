"""/hosts: list, get, add (enrollment by certificate request), remove;
actions deactivate (maintenance) and activate; statistics."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from protocol import pki

from ...aaa.permits import ActionGroup as AG
from ...domain.host_commands import ActivateHost, AddHost, DeactivateHost, RemoveHost
from ...errors import ValidationFailed
from ..context import ctx, ident, require, run
from ..listing import Collection, get_row, list_rows
from ..parse import as_int, read_body, text
from ..policy import LOGIN, Routes, act, deferred, read
from ..render import API, actions, b, links, ref, respond, respond_collection
from ..search import Field
from .common import action_response, empty_ok, resolve_ref
from .vms import statistic

__all__ = ["add_routes", "host_dict", "HOSTS"]

MIB = 1024 * 1024
HOST_ACTIONS = ("activate", "deactivate")
HOST_LINKS = ("permissions", "statistics")

HOSTS = Collection(
    kind="host",
    select="""SELECT h.id, h.name, h.description, h.comment, h.address, h.port, h.cluster_id,
                     h.cert_fingerprint, h.spm_priority, d.status, d.status_detail,
                     d.cpu_model, d.cpu_cores, d.cpu_threads, d.cpu_sockets, d.cpu_speed_mhz,
                     d.mem_size_mib, d.kvm_enabled, d.software_version, d.os_name, d.os_version,
                     d.kernel_version, d.libvirt_version, d.hw_manufacturer, d.hw_product,
                     d.hw_serial, d.hw_uuid, st.mem_available_mib,
                     (SELECT count(*) FROM vm_dynamic v WHERE v.run_on_host_id = h.id
                        AND v.status <> 'down') AS vms_active,
                     (SELECT count(*) FROM vm_dynamic v WHERE v.run_on_host_id = h.id
                        AND v.status = 'migrating') AS vms_migrating
              FROM hosts h JOIN host_dynamic d ON d.host_id = h.id
              LEFT JOIN host_statistics st ON st.host_id = h.id
              LEFT JOIN clusters c ON c.id = h.cluster_id""",
    where="TRUE", id_col="h.id",
    cols={"id": "h.id", "cluster": "h.cluster_id", "dc": "c.data_center_id"},
    fields={"name": Field("h.name"), "status": Field("d.status", "enum"),
            "cluster": Field("c.name"), "address": Field("h.address"),
            "description": Field("h.description"), "id": Field("h.id::text")},
    order="h.name", prefix="Hosts", what="host")


def host_dict(r: Any, certificate: dict[str, Any] | None = None) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/hosts/{i}"
    threads_per_core = max(1, (r["cpu_threads"] or 1) // max(1, r["cpu_cores"] or 1))
    cores_per_socket = max(1, (r["cpu_cores"] or 1) // max(1, r["cpu_sockets"] or 1))
    out: dict[str, Any] = {
        "href": h, "id": i,
        "actions": actions(h, HOST_ACTIONS),
        "name": r["name"], "description": r["description"], "comment": r["comment"],
        "link": links(h, HOST_LINKS),
        "address": r["address"],
        "certificate": certificate or ({"subject": f"O=ov,CN={r['name']}"}
                                       if r["cert_fingerprint"] else None),
        "cpu": {"name": r["cpu_model"],
                "speed": str(int(r["cpu_speed_mhz"])) if r["cpu_speed_mhz"] else None,
                "topology": {"cores": str(cores_per_socket), "sockets": str(r["cpu_sockets"]),
                             "threads": str(threads_per_core)} if r["cpu_sockets"] else None},
        "hardware_information": {"manufacturer": r["hw_manufacturer"],
                                 "product_name": r["hw_product"],
                                 "serial_number": r["hw_serial"],
                                 "uuid": r["hw_uuid"]} if r["hw_product"] else None,
        "kvm": {"enabled": b(r["kvm_enabled"])} if r["kvm_enabled"] is not None else None,
        "libvirt_version": {"full_version": r["libvirt_version"]} if r["libvirt_version"]
        else None,
        "max_scheduling_memory": str((r["mem_available_mib"] or 0) * MIB),
        "memory": str((r["mem_size_mib"] or 0) * MIB),
        "os": {"type": r["os_name"], "version": {"full_version": r["os_version"]}}
        if r["os_name"] else None,
        "port": str(r["port"]),
        "spm": {"priority": str(r["spm_priority"])},
        "status": r["status"],
        "status_detail": r["status_detail"] or None,
        "summary": {"active": str(r["vms_active"]), "migrating": str(r["vms_migrating"]),
                    "total": str(r["vms_active"])},
        "type": "rhel",
        "version": {"full_version": r["software_version"]} if r["software_version"] else None,
        "cluster": ref("clusters", r["cluster_id"]),
    }
    return out


async def list_hosts(request: web.Request) -> web.Response:
    rows = await list_rows(request, HOSTS)
    return respond_collection(request, "hosts", "host", rows, host_dict)


async def get_host(request: web.Request) -> web.Response:
    row = await get_row(request, HOSTS, request.match_info["id"])
    return respond(request, "host", host_dict(row))


ENROLL_HELP = ("ov adds hosts by enrollment, not by SSH: run `ovagent enroll` (or make a key "
               "and a certificate request) on the host and send the request's PEM as "
               "<certificate_request> in the <host>; the reply's <certificate><content> is the "
               "signed certificate to install on the host. root_password and ssh are not "
               "used.")


async def add_host(request: web.Request) -> web.Response:
    body = await read_body(request, "host")
    name = text(body, "name", required=True, max_len=255)
    address = text(body, "address", required=True, max_len=255)
    csr = text(body, "certificate_request", max_len=20000)
    if csr is None:
        csr = text(body, "certificate_request", "content", max_len=20000)
    if not csr:
        raise ValidationFailed("certificate_request is required. " + ENROLL_HELP,
                               "certificate_request")
    port = as_int(body, "port", minimum=1, maximum=65535) or 54321
    cluster_id = await resolve_ref(request, body, "cluster", "clusters", required=True)
    assert cluster_id is not None and name is not None and address is not None
    await require(request, AG.CREATE_HOST, "cluster", cluster_id)
    result = await run(request, AddHost(ctx(request).s, ident(request).principal, name, address,
                                        cluster_id, csr.encode(), port=port,
                                        description=text(body, "description") or ""))
    enrolled = result.value
    cert = pki.load_cert(enrolled.certificate_pem)
    row = await get_row(request, HOSTS, enrolled.host_id)
    certificate = {"content": enrolled.certificate_pem.decode(),
                   "organization": "ov", "subject": cert.subject.rfc4514_string()}
    out = host_dict(row, certificate)
    # An ov extension next to the certificate: the CA to trust the engine by.
    out["ca_certificate"] = {"content": enrolled.ca_pem.decode()}
    return respond(request, "host", out, status=201)


async def remove_host(request: web.Request) -> web.Response:
    await run(request, RemoveHost(ctx(request).s, ident(request).principal,
                                  request.match_info["id"]))
    return empty_ok()


def _host_action(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        body = await read_body(request, "action")
        cls = DeactivateHost if name == "deactivate" else ActivateHost
        result = await run(request, cls(ctx(request).s, ident(request).principal,
                                        request.match_info["id"]))
        return action_response(request, body, result)
    handler.__name__ = f"host_{name}"
    return handler


async def list_host_statistics(request: web.Request) -> web.Response:
    host_id = request.match_info["id"]
    r = await ctx(request).s.pool.fetchrow(
        "SELECT st.*, d.mem_size_mib FROM host_statistics st JOIN host_dynamic d "
        "ON d.host_id = st.host_id WHERE st.host_id = $1", uuid.UUID(host_id))
    stats = []
    if r is not None:
        total = (r["mem_size_mib"] or 0) * MIB
        free = r["mem_free_mib"] * MIB
        stats = [
            statistic("host", host_id, "memory.total", "Total memory", total, "bytes"),
            statistic("host", host_id, "memory.used", "Used memory", max(0, total - free),
                      "bytes"),
            statistic("host", host_id, "memory.free", "Free memory", free, "bytes"),
            statistic("host", host_id, "memory.shared", "Shared memory",
                      r["mem_shared_mib"] * MIB, "bytes"),
            statistic("host", host_id, "swap.total", "Total swap", r["swap_total_mib"] * MIB,
                      "bytes"),
            statistic("host", host_id, "swap.free", "Free swap", r["swap_free_mib"] * MIB,
                      "bytes"),
            statistic("host", host_id, "swap.used", "Used swap",
                      (r["swap_total_mib"] - r["swap_free_mib"]) * MIB, "bytes"),
            statistic("host", host_id, "ksm.cpu.current", "KSM CPU usage",
                      round(r["ksm_cpu"], 2), "percent", vtype="decimal"),
            statistic("host", host_id, "cpu.current.user", "User CPU usage",
                      round(r["cpu_user"], 2), "percent", vtype="decimal"),
            statistic("host", host_id, "cpu.current.system", "System CPU usage",
                      round(r["cpu_sys"], 2), "percent", vtype="decimal"),
            statistic("host", host_id, "cpu.current.idle", "Idle CPU usage",
                      round(r["cpu_idle"], 2), "percent", vtype="decimal"),
            statistic("host", host_id, "cpu.load.avg.5m", "CPU 5 minute load average",
                      round(r["cpu_load"], 2), "none", vtype="decimal"),
            statistic("host", host_id, "boot.time", "Boot time of the machine",
                      r["boot_time"], "none"),
        ]
    return respond_collection(request, "statistics", "statistic", stats, lambda d: d)


def add_routes(r: Routes) -> None:
    base = "/ovirt-engine/api/hosts"
    r.get(base, list_hosts, LOGIN)
    r.post(base, add_host, deferred(AG.CREATE_HOST, "cluster"))
    r.get(f"{base}/{{id}}", get_host, read("host"))
    r.delete(f"{base}/{{id}}", remove_host, act(AG.DELETE_HOST, "host"))
    for name in HOST_ACTIONS:
        r.post(f"{base}/{{id}}/{name}", _host_action(name), act(AG.MANIPULATE_HOST, "host"))
    r.get(f"{base}/{{id}}/statistics", list_host_statistics, read("host"))


