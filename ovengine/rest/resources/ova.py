"""OVA export and import, in oVirt's REST shapes:

POST /vms/{id}/export  <action><host id/><directory/><filename/></action>
     (the SDK's export_to_path_on_host posts here; exporttopathonhost is an
     alias; the export-domain form with <storage_domain> is refused)
POST /templates/{id}/export  the same for a template (template.ovf)
POST /externalvmimports  <external_vm_import><provider>kvm</provider>
     <url>ova:///dir/file.ova</url><host/><cluster/><storage_domain/><name/>
     <sparse/></external_vm_import>

POST /externaltemplateimports  <external_template_import><template><name/>
     </template><url>ova:///dir/file.ova</url><host/><cluster/>
     <storage_domain/><clone/></external_template_import>

ExternalVmProviderType has only kvm, xen and vmware; the SDK's own OVA
example imports with provider kvm and an ova:// url, so that is what we
accept (and "ova", which some clients send).
"""

from __future__ import annotations

from aiohttp import web

from ...aaa.permits import ActionGroup as AG
from ...domain.ova_commands import (ExportTemplateToOva, ExportVmToOva, ImportTemplateFromOva,
                                    ImportVmFromOva, ova_path_of_url)
from ...errors import ValidationFailed
from ..context import ctx, ident, require, run
from ..parse import as_bool, read_body, text
from ..policy import act, deferred, Routes
from ..render import API, respond
from .common import action_response, resolve_ref
from .storage import resolve_domain

__all__ = ["add_routes"]


async def export_to_path_on_host(request: web.Request) -> web.Response:
    return await _export(request, ExportVmToOva)


async def export_template(request: web.Request) -> web.Response:
    return await _export(request, ExportTemplateToOva)


async def _export(request: web.Request,
                  command: type[ExportVmToOva] | type[ExportTemplateToOva]) -> web.Response:
    entity_id = request.match_info["id"]
    body = await read_body(request, "action")
    if isinstance(body, dict) and body.get("storage_domain") and not body.get("directory"):
        raise ValidationFailed("export domains are not supported: export to an OVA with "
                               "<host> and <directory> (export_to_path_on_host)",
                               "storage_domain")
    host_id = await resolve_ref(request, body, "host", "hosts", required=True)
    directory = text(body, "directory", required=True, max_len=4096)
    assert host_id is not None and directory is not None
    result = await run(request, command(ctx(request).s, ident(request).principal,
                                        entity_id, host_id, directory,
                                        text(body, "filename", max_len=255)))
    return action_response(request, body, result)


async def add_external_vm_import(request: web.Request) -> web.Response:
    body = await read_body(request, "external_vm_import")
    provider = (text(body, "provider") or "").lower()
    url = text(body, "url", required=True, max_len=4096) or ""
    if provider not in ("kvm", "ova") or not url.startswith("ova://"):
        raise ValidationFailed("only OVA imports are supported: provider kvm with an "
                               "ova:///path/file.ova url", "provider")
    host_id = await resolve_ref(request, body, "host", "hosts", required=True)
    cluster_id = await resolve_ref(request, body, "cluster", "clusters", required=True)
    sd_ref = body.get("storage_domain") if isinstance(body, dict) else None
    if not sd_ref:
        raise ValidationFailed("storage_domain is required (by id or name)", "storage_domain")
    sd_id = await resolve_domain(request, sd_ref, "storage_domain")
    assert host_id is not None and cluster_id is not None
    await require(request, AG.CREATE_VM, "cluster", cluster_id)
    await require(request, AG.CREATE_DISK, "storage_domain", sd_id)
    name = text(body, "name", max_len=255) or text(body, "vm", "name", max_len=255)
    result = await run(request, ImportVmFromOva(
        ctx(request).s, ident(request).principal, ova_path_of_url(url), host_id, cluster_id,
        sd_id, name=name, sparse=as_bool(body, "sparse", field="sparse")))
    vm_id = result.value
    out = {"provider": provider, "url": url, "name": name or "",
           "vm": {"href": f"{API}/vms/{vm_id}", "id": vm_id},
           "cluster": {"href": f"{API}/clusters/{cluster_id}", "id": cluster_id},
           "host": {"href": f"{API}/hosts/{host_id}", "id": host_id},
           "storage_domain": {"href": f"{API}/storagedomains/{sd_id}", "id": sd_id}}
    return respond(request, "external_vm_import", out, status=201)


async def add_external_template_import(request: web.Request) -> web.Response:
    body = await read_body(request, "external_template_import")
    url = text(body, "url", required=True, max_len=4096) or ""
    if not url.startswith("ova://"):
        raise ValidationFailed("only OVA imports are supported: an ova:///path/file.ova url",
                               "url")
    # clone (keep or renew the ids) is only checked: ov always gives new ids.
    as_bool(body, "clone", field="clone")
    host_id = await resolve_ref(request, body, "host", "hosts", required=True)
    cluster_id = await resolve_ref(request, body, "cluster", "clusters", required=True)
    sd_ref = body.get("storage_domain") if isinstance(body, dict) else None
    if not sd_ref:
        raise ValidationFailed("storage_domain is required (by id or name)", "storage_domain")
    sd_id = await resolve_domain(request, sd_ref, "storage_domain")
    assert host_id is not None and cluster_id is not None
    await require(request, AG.CREATE_TEMPLATE, "cluster", cluster_id)
    await require(request, AG.CREATE_DISK, "storage_domain", sd_id)
    name = text(body, "template", "name", max_len=255)
    result = await run(request, ImportTemplateFromOva(
        ctx(request).s, ident(request).principal, ova_path_of_url(url), host_id, cluster_id,
        sd_id, name=name))
    template_id = result.value
    out = {"url": url,
           "template": {"href": f"{API}/templates/{template_id}", "id": template_id},
           "cluster": {"href": f"{API}/clusters/{cluster_id}", "id": cluster_id},
           "host": {"href": f"{API}/hosts/{host_id}", "id": host_id},
           "storage_domain": {"href": f"{API}/storagedomains/{sd_id}", "id": sd_id}}
    return respond(request, "external_template_import", out, status=201)


def add_routes(r: Routes) -> None:
    for action in ("export", "exporttopathonhost"):
        r.post(f"/ovirt-engine/api/vms/{{id}}/{action}", export_to_path_on_host,
               act(AG.IMPORT_EXPORT_VM, "vm"))
    r.post("/ovirt-engine/api/externalvmimports", add_external_vm_import,
           deferred(AG.CREATE_VM, "cluster"))
    r.post("/ovirt-engine/api/templates/{id}/export", export_template,
           act(AG.IMPORT_EXPORT_VM, "template"))
    r.post("/ovirt-engine/api/externaltemplateimports", add_external_template_import,
           deferred(AG.CREATE_TEMPLATE, "cluster"))
