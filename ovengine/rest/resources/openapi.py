"""GET /ovirt-engine/api/openapi.json: an OpenAPI 3 description of the JSON
API, generated from the router (every route, its path parameters, its
authorization policy) plus body schemas for what can be added or changed.
Used by the fuzzing tests; handy for client generators."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from ..policy import LOGIN, Routes, policy_of
from .root import PRODUCT_VERSION

__all__ = ["add_routes", "openapi_document", "BODY_SCHEMAS"]

_S: dict[str, Any] = {"type": "string"}
_REF = {"type": "object", "properties": {"id": _S, "name": _S}}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


_TOPOLOGY = _obj(cores=_S, sockets=_S, threads=_S)
BODY_SCHEMAS: dict[str, dict[str, Any]] = {
    "vm": _obj(name=_S, description=_S, comment=_S, memory=_S, type=_S, stateless=_S,
               delete_protected=_S,
               memory_policy=_obj(guaranteed=_S, max=_S, ballooning=_S),
               cpu=_obj(topology=_TOPOLOGY), os=_obj(type=_S, boot=_obj(devices=_obj(
                   device={"type": "array", "items": _S}))),
               display=_obj(type=_S), high_availability=_obj(enabled=_S, priority=_S),
               cluster=_REF, template=_REF),
    "host": _obj(name=_S, address=_S, port=_S, description=_S, certificate_request=_S,
                 root_password=_S, cluster=_REF),
    "data_center": _obj(name=_S, description=_S, comment=_S, local=_S, quota_mode=_S,
                        storage_format=_S, version=_obj(major=_S, minor=_S)),
    "cluster": _obj(name=_S, description=_S, comment=_S, data_center=_REF,
                    cpu=_obj(architecture=_S, type=_S), ballooning_enabled=_S,
                    threads_as_cores=_S, version=_obj(major=_S, minor=_S),
                    memory_policy=_obj(over_commit=_obj(percent=_S))),
    "network": _obj(name=_S, description=_S, comment=_S, data_center=_REF, mtu=_S, stp=_S,
                    required=_S, vlan=_obj(id=_S), usages=_obj(usage={"type": "array",
                                                                      "items": _S})),
    "user": _obj(user_name=_S, password=_S, name=_S, last_name=_S, email=_S,
                 domain=_obj(name=_S)),
    "group": _obj(name=_S, domain=_obj(name=_S)),
    "role": _obj(name=_S, description=_S, administrative=_S,
                 permits=_obj(permit={"type": "array", "items": _REF})),
    "permission": _obj(role=_REF, user=_REF, group=_REF, vm=_REF, cluster=_REF,
                       data_center=_REF, host=_REF, template=_REF),
    "snapshot": _obj(description=_S, persist_memorystate=_S),
    "storage_domain": _obj(id=_S, name=_S, description=_S, comment=_S, type=_S, host=_REF,
                           wipe_after_delete=_S,
                           storage=_obj(type=_S, address=_S, path=_S, vfs_type=_S,
                                        mount_options=_S, nfs_version=_S)),
    "disk": _obj(name=_S, alias=_S, description=_S, format=_S, sparse=_S,
                 provisioned_size=_S, shareable=_S, wipe_after_delete=_S,
                 storage_domains=_obj(storage_domain={"type": "array", "items": _REF})),
    "disk_attachment": _obj(interface=_S, bootable=_S, active=_S, read_only=_S,
                            pass_discard=_S, disk=_obj(
                                id=_S, name=_S, format=_S, sparse=_S, provisioned_size=_S,
                                storage_domains=_obj(storage_domain={"type": "array",
                                                                     "items": _REF}))),
    "template": _obj(name=_S, description=_S, comment=_S, vm=_REF),
    "image_transfer": _obj(direction=_S, format=_S, inactivity_timeout=_S, timeout_policy=_S,
                           disk=_REF, image=_REF, host=_REF),
    "action": _obj(force=_S, reason=_S, **{"async": _S}),
}
_BODY_OF = {"vms": "vm", "hosts": "host", "datacenters": "data_center", "clusters": "cluster",
            "networks": "network", "users": "user", "groups": "group", "roles": "role",
            "permissions": "permission", "snapshots": "snapshot",
            "storagedomains": "storage_domain", "disks": "disk",
            "diskattachments": "disk_attachment", "templates": "template",
            "imagetransfers": "image_transfer"}
_VAR = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _body_for(method: str, path: str) -> str | None:
    if method not in ("POST", "PUT"):
        return None
    segs = [s for s in path.split("/") if s and not s.startswith("{")]
    last = segs[-1]
    if last in _BODY_OF:
        return _BODY_OF[last]
    if method == "POST":
        return "action"
    return _BODY_OF.get(segs[-1])


def openapi_document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        policy = policy_of(route.handler)
        path = getattr(route.handler, "ov_path", None)
        if policy is None or path is None or route.method == "HEAD":
            continue
        oa_path = _VAR.sub(r"{\1}", path)
        params = [{"name": m, "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": r"^\d+$"} if "\\d" in path
                   and m == "id" and "/events/" in path else {"type": "string"}}
                  for m in _VAR.findall(path)]
        op: dict[str, Any] = {
            "operationId": route.method.lower() + re.sub(r"\W+", "_", oa_path),
            "summary": f"{route.method} {oa_path}",
            "description": f"Authorization: {policy.describe()}",
            "responses": {"200": {"description": "OK"}, "201": {"description": "Created"},
                          "400": {"description": "Bad input (fault)"},
                          "401": {"description": "Not authenticated (fault)"},
                          "403": {"description": "Not permitted (fault)"},
                          "404": {"description": "Not found or hidden (fault)"},
                          "409": {"description": "Conflict or locked (fault)"}},
            "parameters": params,
        }
        if policy.kind == "public":
            op["security"] = []
        if route.method == "GET" and "{" not in path.rsplit("/", 1)[-1]:
            op["parameters"] = params + [
                {"name": "search", "in": "query", "schema": {"type": "string"}},
                {"name": "max", "in": "query", "schema": {"type": "integer"}},
                {"name": "case_sensitive", "in": "query", "schema": {"type": "boolean"}}]
        body = _body_for(route.method, path)
        if body is not None:
            op["requestBody"] = {"required": body != "action", "content": {
                "application/json": {"schema": BODY_SCHEMAS[body]}}}
        paths.setdefault(oa_path, {})[route.method.lower()] = op
    major, minor, _, revision = PRODUCT_VERSION
    return {
        "openapi": "3.0.3",
        "info": {"title": "ov engine REST API (oVirt API v4)",
                 "version": f"{major}.{minor}.{revision}"},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(openapi_document(request.app)),
                        content_type="application/json")


def add_routes(r: Routes) -> None:
    r.get("/ovirt-engine/api/openapi.json", openapi, LOGIN)
