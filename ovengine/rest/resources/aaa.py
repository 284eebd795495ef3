"""/users, /groups, /roles (+ permits), and permissions: /permissions (on the
system), <object>/{id}/permissions for every object type, and
users|groups/{id}/permissions (what a user or group holds).

Internal users are created with a password, an ov extension of the model:
`<user><user_name>jdoe@internal</user_name><password>..</password></user>`.
Directory users and groups are looked up in their LDAP domain.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from aiohttp import web

from ...aaa.authz import parse_uuid
from ...aaa.login import INTERNAL_DOMAIN, split_user_name
from ...aaa.permits import ActionGroup as AG, SYSTEM_OBJECT_ID
from ...domain import aaa_commands as ac
from ...errors import NotFound, ValidationFailed
from ..context import ctx, ident, require, run
from ..listing import Collection, get_row, list_rows
from ..parse import Body, as_bool, get, items, read_body, ref_of, text
from ..policy import LOGIN, Routes, act, deferred, on_system, read
from ..render import API, b, links, ref, respond, respond_collection
from ..search import Field
from .common import empty_ok, resolve_ref

__all__ = ["add_routes", "USERS", "GROUPS", "ROLES", "OBJECT_COLLECTIONS"]

# object type -> collection path segment
OBJECT_COLLECTIONS = {"vm": "vms", "host": "hosts", "cluster": "clusters",
                      "data_center": "datacenters", "template": "templates",
                      "network": "networks", "storage_domain": "storagedomains", "disk": "disks"}

USERS = Collection(
    kind="user", select="SELECT u.* FROM users u", where="TRUE", id_col="u.id",
    cols={"id": "u.id"},
    fields={"name": Field("u.principal"), "usrname": Field("u.principal || '@' || u.domain"),
            "user_name": Field("u.principal || '@' || u.domain"),
            "firstname": Field("u.first_name"), "lastname": Field("u.last_name"),
            "email": Field("u.email"), "domain": Field("u.domain"), "id": Field("u.id::text")},
    order="u.domain, u.principal", prefix="Users", what="user")

GROUPS = Collection(
    kind="group", select="SELECT g.* FROM groups g", where="TRUE", id_col="g.id",
    cols={"id": "g.id"},
    fields={"name": Field("g.name"), "domain": Field("g.domain"), "id": Field("g.id::text")},
    order="g.domain, g.name", prefix="Groups", what="group")

ROLES = Collection(
    kind="role",
    select="SELECT r.*, ARRAY(SELECT permit FROM role_permits WHERE role_id = r.id "
           "ORDER BY permit) AS permits FROM roles r",
    where="TRUE", id_col="r.id", cols={"id": "r.id"},
    fields={"name": Field("r.name"), "id": Field("r.id::text")},
    order="r.name", prefix="Roles", what="role")


def _domain(name: str) -> dict[str, str]:
    # oVirt's domain id is the hex of its name.
    return {"href": f"{API}/domains/{name.encode().hex()}", "id": name.encode().hex(),
            "name": name}


def user_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/users/{i}"
    return {"href": h, "id": i, "name": r["first_name"] or r["principal"],
            "link": links(h, ("groups", "permissions", "roles")),
            "department": r["department"] or None, "domain_entry_id": r["external_id"] or None,
            "email": r["email"] or None, "last_name": r["last_name"] or None,
            "namespace": r["namespace"] or "*", "principal": r["principal"],
            "user_name": f"{r['principal']}@{r['domain']}", "domain": _domain(r["domain"])}


def group_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/groups/{i}"
    return {"href": h, "id": i, "name": r["name"], "link": links(h, ("permissions", "roles")),
            "domain_entry_id": r["external_id"] or None, "namespace": "*",
            "domain": _domain(r["domain"])}


def permit_dict(role_id: str, name: str) -> dict[str, Any]:
    try:
        pid = str(int(AG.from_rest(name)))
    except (KeyError, ValueError):
        pid = name
    return {"href": f"{API}/roles/{role_id}/permits/{pid}", "id": pid, "name": name,
            "administrative": b(False), "role": ref("roles", role_id)}


def role_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/roles/{i}"
    return {"href": h, "id": i, "name": r["name"], "description": r["description"],
            "link": links(h, ("permits",)), "administrative": b(r["administrative"]),
            "mutable": b(r["mutable"])}


def permission_dict(r: Any, base: str | None = None) -> dict[str, Any]:
    i = str(r["id"])
    kind = r["object_type"]
    if base is None:
        base = f"{API}/permissions" if kind == "system" else \
            f"{API}/{OBJECT_COLLECTIONS.get(kind, kind + 's')}/{r['object_id']}/permissions"
    out: dict[str, Any] = {"href": f"{base}/{i}", "id": i,
                           "role": ref("roles", r["role_id"]),
                           "user": ref("users", r["user_id"]),
                           "group": ref("groups", r["group_id"])}
    if kind != "system":
        out[kind] = ref(OBJECT_COLLECTIONS.get(kind, kind + "s"), r["object_id"])
    return out


# ----------------------------------------------------------------- users
async def list_users(request: web.Request) -> web.Response:
    return respond_collection(request, "users", "user", await list_rows(request, USERS),
                              user_dict)


async def get_user(request: web.Request) -> web.Response:
    return respond(request, "user", user_dict(await get_row(request, USERS,
                                                            request.match_info["id"])))


async def add_user(request: web.Request) -> web.Response:
    body = await read_body(request, "user")
    user_name = text(body, "user_name", max_len=300) or text(body, "principal", max_len=300)
    if not user_name:
        raise ValidationFailed("user_name is required (user@domain)", "user_name")
    principal, domain = split_user_name(user_name)
    dom_name = text(body, "domain", "name")
    if dom_name:
        domain = {"internal-authz": INTERNAL_DOMAIN}.get(dom_name, dom_name)
    c = ctx(request)
    directory_user = None
    if domain != INTERNAL_DOMAIN:
        directory_user = await c.auth.directory(domain).find_user(principal)
        if directory_user is None:
            raise ValidationFailed(f"user {principal} does not exist in domain {domain}",
                                   "user_name")
    result = await run(request, ac.AddUser(
        c.s, ident(request).principal, domain, principal, password=text(body, "password"),
        directory_user=directory_user, first_name=text(body, "name") or "",
        last_name=text(body, "last_name") or "", email=text(body, "email") or ""))
    row = await get_row(request, USERS, result.value)
    return respond(request, "user", user_dict(row), status=201)


async def remove_user(request: web.Request) -> web.Response:
    await run(request, ac.RemoveUser(ctx(request).s, ident(request).principal,
                                     request.match_info["id"]))
    return empty_ok()


async def user_groups(request: web.Request) -> web.Response:
    rows = await list_rows(request, GROUPS, "g.id IN (SELECT group_id FROM user_groups WHERE "
                           "user_id = $1)", (uuid.UUID(request.match_info["id"]),))
    return respond_collection(request, "groups", "group", rows, group_dict)


# ---------------------------------------------------------------- groups
async def list_groups(request: web.Request) -> web.Response:
    return respond_collection(request, "groups", "group", await list_rows(request, GROUPS),
                              group_dict)


async def get_group(request: web.Request) -> web.Response:
    return respond(request, "group", group_dict(await get_row(request, GROUPS,
                                                              request.match_info["id"])))


async def add_group(request: web.Request) -> web.Response:
    body = await read_body(request, "group")
    name = text(body, "name", required=True, max_len=255)
    assert name is not None
    name, domain = split_user_name(name)
    dom_name = text(body, "domain", "name")
    if dom_name:
        domain = dom_name
    if domain == INTERNAL_DOMAIN:
        raise ValidationFailed("groups come from a directory domain, not internal", "domain")
    c = ctx(request)
    found = await c.auth.directory(domain).find_group(name)
    if found is None:
        raise ValidationFailed(f"group {name} does not exist in domain {domain}", "name")
    result = await run(request, ac.AddGroup(c.s, ident(request).principal, domain, found))
    return respond(request, "group", group_dict(await get_row(request, GROUPS, result.value)),
                   status=201)


async def remove_group(request: web.Request) -> web.Response:
    await run(request, ac.RemoveGroup(ctx(request).s, ident(request).principal,
                                      request.match_info["id"]))
    return empty_ok()


# ----------------------------------------------------------------- roles
async def list_roles(request: web.Request) -> web.Response:
    return respond_collection(request, "roles", "role", await list_rows(request, ROLES),
                              role_dict)


async def get_role(request: web.Request) -> web.Response:
    return respond(request, "role", role_dict(await get_row(request, ROLES,
                                                            request.match_info["id"])))


def _permits(body: Body) -> list[str]:
    out = []
    for p in items(body, "permits", "permit"):
        if isinstance(p, dict):
            v = p.get("name") or p.get("id")
        else:
            v = p
        if not isinstance(v, str):
            raise ValidationFailed("a permit is given by id or name", "permits")
        out.append(v)
    return out


async def add_role(request: web.Request) -> web.Response:
    body = await read_body(request, "role")
    name = text(body, "name", required=True, max_len=126)
    assert name is not None
    result = await run(request, ac.AddRole(
        ctx(request).s, ident(request).principal, name, text(body, "description") or "",
        bool(as_bool(body, "administrative")), _permits(body)))
    return respond(request, "role", role_dict(await get_row(request, ROLES, result.value)),
                   status=201)


async def update_role(request: web.Request) -> web.Response:
    body = await read_body(request, "role")
    permits = _permits(body) if get(body, "permits") is not None else None
    await run(request, ac.UpdateRole(ctx(request).s, ident(request).principal,
                                     request.match_info["id"], text(body, "name", max_len=126),
                                     text(body, "description"), permits))
    return respond(request, "role", role_dict(await get_row(request, ROLES,
                                                            request.match_info["id"])))


async def remove_role(request: web.Request) -> web.Response:
    await run(request, ac.RemoveRole(ctx(request).s, ident(request).principal,
                                     request.match_info["id"]))
    return empty_ok()


async def list_permits(request: web.Request) -> web.Response:
    row = await get_row(request, ROLES, request.match_info["id"])
    rid = str(row["id"])
    return respond_collection(request, "permits", "permit",
                              [permit_dict(rid, p) for p in row["permits"]], lambda d: d)


# ----------------------------------------------------------- permissions
_PERM_SQL = "SELECT * FROM permissions"


async def _role_id(request: web.Request, body: Body) -> str:
    rid = await resolve_ref(request, body, "role", "roles", required=True)
    assert rid is not None
    return rid


async def _holder(request: web.Request, body: Body) -> tuple[str | None, str | None]:
    uid, _ = ref_of(body, "user")
    gid, _ = ref_of(body, "group")
    if uid is None and gid is None:
        raise ValidationFailed("a permission needs a user or a group (by id)", "user")
    return uid, gid


async def _grant(request: web.Request, kind: str, obj_id: str, role_id: str,
                 user_id: str | None, group_id: str | None) -> web.Response:
    c = ctx(request)
    who = ident(request)
    held = await c.authz.held_permits(who, kind, obj_id)
    result = await run(request, ac.AddPermission(c.s, who.principal, role_id, kind, obj_id,
                                                 user_id=user_id, group_id=group_id,
                                                 granter_permits=held))
    row = await c.s.pool.fetchrow(f"{_PERM_SQL} WHERE id = $1", uuid.UUID(result.value))
    return respond(request, "permission", permission_dict(row), status=201)


def object_permission_handlers(kind: str) -> dict[str, Callable[..., Any]]:
    def obj_id(request: web.Request) -> str:
        return SYSTEM_OBJECT_ID if kind == "system" else request.match_info["id"]

    async def list_(request: web.Request) -> web.Response:
        rows = await ctx(request).s.pool.fetch(
            f"{_PERM_SQL} WHERE object_type = $1 AND object_id = $2 ORDER BY created_at",
            kind, parse_uuid(obj_id(request), kind))
        return respond_collection(request, "permissions", "permission", rows, permission_dict)

    async def get_(request: web.Request) -> web.Response:
        row = await ctx(request).s.pool.fetchrow(
            f"{_PERM_SQL} WHERE id = $1 AND object_type = $2 AND object_id = $3",
            parse_uuid(request.match_info["pid"], "permission"), kind,
            parse_uuid(obj_id(request), kind))
        if row is None:
            raise NotFound(f"permission {request.match_info['pid']} does not exist")
        return respond(request, "permission", permission_dict(row))

    async def add_(request: web.Request) -> web.Response:
        body = await read_body(request, "permission")
        role_id = await _role_id(request, body)
        user_id, group_id = await _holder(request, body)
        return await _grant(request, kind, obj_id(request), role_id, user_id, group_id)

    async def remove_(request: web.Request) -> web.Response:
        pid = request.match_info["pid"]
        exists = await ctx(request).s.pool.fetchval(
            "SELECT 1 FROM permissions WHERE id = $1 AND object_type = $2 AND object_id = $3",
            parse_uuid(pid, "permission"), kind, parse_uuid(obj_id(request), kind))
        if not exists:
            raise NotFound(f"permission {pid} does not exist")
        await run(request, ac.RemovePermission(ctx(request).s, ident(request).principal, pid))
        return empty_ok()

    return {"list": list_, "get": get_, "add": add_, "remove": remove_}


_OBJECT_TABLES = {"vm": ("vm_static", "entity_type = 'vm'"),
                  "template": ("vm_static", "entity_type = 'template'"),
                  "host": ("hosts", None), "cluster": ("clusters", None),
                  "data_center": ("data_centers", None), "network": ("networks", None),
                  "storage_domain": ("storage_domains", None)}


async def _object_in_body(request: web.Request, body: Body) -> tuple[str, str]:
    """The object a permission is on (by id or name); none named: the system."""
    for kind, (table, extra) in _OBJECT_TABLES.items():
        rid, name = ref_of(body, kind)
        if rid is not None or name is not None:
            found = await resolve_ref(request, body, kind, table, extra=extra)
            assert found is not None
            return kind, found
    rid, _ = ref_of(body, "disk")
    if rid is not None:
        return "disk", rid
    return "system", SYSTEM_OBJECT_ID


def holder_permission_handlers(holder: str) -> dict[str, Callable[..., Any]]:
    """users/{id}/permissions, groups/{id}/permissions: what the holder has."""
    col = "user_id" if holder == "user" else "group_id"

    async def list_(request: web.Request) -> web.Response:
        rows = await ctx(request).s.pool.fetch(
            f"{_PERM_SQL} WHERE {col} = $1 ORDER BY created_at",
            parse_uuid(request.match_info["id"], holder))
        base = f"{API}/{holder}s/{request.match_info['id']}/permissions"
        return respond_collection(request, "permissions", "permission", rows,
                                  lambda r: permission_dict(r, base))

    async def get_(request: web.Request) -> web.Response:
        row = await ctx(request).s.pool.fetchrow(
            f"{_PERM_SQL} WHERE id = $1 AND {col} = $2",
            parse_uuid(request.match_info["pid"], "permission"),
            parse_uuid(request.match_info["id"], holder))
        if row is None:
            raise NotFound(f"permission {request.match_info['pid']} does not exist")
        base = f"{API}/{holder}s/{request.match_info['id']}/permissions"
        return respond(request, "permission", permission_dict(row, base))

    async def add_(request: web.Request) -> web.Response:
        body = await read_body(request, "permission")
        kind, obj_id = await _object_in_body(request, body)
        await require(request, AG.MANIPULATE_PERMISSIONS, kind, obj_id)
        role_id = await _role_id(request, body)
        hid = request.match_info["id"]
        return await _grant(request, kind, obj_id, role_id, hid if holder == "user" else None,
                            hid if holder == "group" else None)

    async def remove_(request: web.Request) -> web.Response:
        pid = request.match_info["pid"]
        row = await ctx(request).s.pool.fetchrow(
            f"{_PERM_SQL} WHERE id = $1 AND {col} = $2", parse_uuid(pid, "permission"),
            parse_uuid(request.match_info["id"], holder))
        if row is None:
            raise NotFound(f"permission {pid} does not exist")
        await require(request, AG.MANIPULATE_PERMISSIONS, row["object_type"],
                      str(row["object_id"]))
        await run(request, ac.RemovePermission(ctx(request).s, ident(request).principal, pid))
        return empty_ok()

    return {"list": list_, "get": get_, "add": add_, "remove": remove_}


def add_routes(r: Routes) -> None:
    api = "/ovirt-engine/api"
    r.get(f"{api}/users", list_users, LOGIN)
    r.post(f"{api}/users", add_user, on_system(AG.MANIPULATE_USERS))
    r.get(f"{api}/users/{{id}}", get_user, read("user"))
    r.delete(f"{api}/users/{{id}}", remove_user, on_system(AG.MANIPULATE_USERS))
    r.get(f"{api}/users/{{id}}/groups", user_groups, read("user"))
    r.get(f"{api}/groups", list_groups, LOGIN)
    r.post(f"{api}/groups", add_group, on_system(AG.MANIPULATE_USERS))
    r.get(f"{api}/groups/{{id}}", get_group, read("group"))
    r.delete(f"{api}/groups/{{id}}", remove_group, on_system(AG.MANIPULATE_USERS))
    for holder in ("user", "group"):
        h = holder_permission_handlers(holder)
        base = f"{api}/{holder}s/{{id}}/permissions"
        r.get(base, h["list"], read(holder))
        r.post(base, h["add"], deferred(AG.MANIPULATE_PERMISSIONS, "object in the body"))
        r.get(f"{base}/{{pid}}", h["get"], read(holder))
        r.delete(f"{base}/{{pid}}", h["remove"],
                 deferred(AG.MANIPULATE_PERMISSIONS, "object of the permission"))
    r.get(f"{api}/roles", list_roles, LOGIN)
    r.post(f"{api}/roles", add_role, on_system(AG.MANIPULATE_ROLES))
    r.get(f"{api}/roles/{{id}}", get_role, read("role"))
    r.put(f"{api}/roles/{{id}}", update_role, on_system(AG.MANIPULATE_ROLES))
    r.delete(f"{api}/roles/{{id}}", remove_role, on_system(AG.MANIPULATE_ROLES))
    r.get(f"{api}/roles/{{id}}/permits", list_permits, read("role"))
    sys_h = object_permission_handlers("system")
    r.get(f"{api}/permissions", sys_h["list"], read("system"))
    r.post(f"{api}/permissions", sys_h["add"], on_system(AG.MANIPULATE_PERMISSIONS))
    r.get(f"{api}/permissions/{{pid}}", sys_h["get"], read("system"))
    r.delete(f"{api}/permissions/{{pid}}", sys_h["remove"], on_system(AG.MANIPULATE_PERMISSIONS))
    for kind, seg in OBJECT_COLLECTIONS.items():
        h = object_permission_handlers(kind)
        base = f"{api}/{seg}/{{id}}/permissions"
        r.get(base, h["list"], read(kind))
        r.post(base, h["add"], act(AG.MANIPULATE_PERMISSIONS, kind))
        r.get(f"{base}/{{pid}}", h["get"], read(kind))
        r.delete(f"{base}/{{pid}}", h["remove"], act(AG.MANIPULATE_PERMISSIONS, kind))
