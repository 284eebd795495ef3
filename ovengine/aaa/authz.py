"""Authorization as in oVirt: permissions (role on an object, for a user or a
group) inherited down the object tree, and the filtered ("VM portal") view.

The tree: system > data center > cluster > host | VM; template, network and
storage domain hang under their data center; a disk under its storage domain
and the VMs it is attached to. A permit held on an object holds on everything
below it.

`Authorizer.authorize()` is the one check every REST route goes through
(see ovengine/rest/policy.py). `Visibility` turns a user's permissions into
SQL conditions for filtered listings, so a collection is still one query.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

import asyncpg

from ..domain.commands import Principal
from ..errors import Forbidden, NotFound
from .permits import ActionGroup, SYSTEM_OBJECT_ID

__all__ = ["Identity", "Grant", "Authorizer", "Visibility", "OBJECT_TYPES", "parse_uuid"]

OBJECT_TYPES = ("system", "data_center", "cluster", "host", "vm", "template", "storage_domain",
                "disk", "network", "user", "group", "role")
BLANK_TEMPLATE_ID = "00000000-0000-0000-0000-000000000000"


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """An id from a URL: a malformed one names nothing that exists (404)."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"{what} {value} does not exist") from None


@dataclass(frozen=True, slots=True)
class Grant:
    object_type: str
    object_id: str
    role_id: str
    permits: frozenset[int]
    administrative: bool
    # The role's allows_viewing_children: it also shows what is below the object.
    view_children: bool = True


@dataclass(frozen=True)
class Identity:
    """An authenticated user with everything a request needs to authorize."""

    user_id: str
    principal_name: str        # user name within its domain
    domain: str
    group_ids: tuple[str, ...]
    grants: tuple[Grant, ...]
    # Filter: true, or a user without any administrative role (always filtered).
    filtered: bool
    token_hash: str | None = None

    @property
    def name(self) -> str:
        return f"{self.principal_name}@{self.domain}"

    @property
    def is_admin(self) -> bool:
        return any(g.administrative for g in self.grants)

    @property
    def principal(self) -> Principal:
        return Principal(self.user_id, self.name, is_admin=self.is_admin)

    def permits_on(self, objects: Iterable[tuple[str, str]]) -> set[int]:
        keys = set(objects)
        out: set[int] = set()
        for g in self.grants:
            if (g.object_type, g.object_id) in keys:
                out |= g.permits
        return out

    def visibility(self) -> "Visibility":
        return Visibility.of(self)


@dataclass(frozen=True)
class Visibility:
    """Object ids a filtered user holds permissions on, by type: `own` (any
    role: the object itself is visible) and `below` (roles that allow viewing
    children: everything under the object is visible too)."""

    system: bool
    own: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    below: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    user_id: uuid.UUID | None = None
    group_ids: list[uuid.UUID] = field(default_factory=list)

    @classmethod
    def of(cls, ident: Identity) -> "Visibility":
        own: dict[str, list[uuid.UUID]] = {t: [] for t in OBJECT_TYPES}
        below: dict[str, list[uuid.UUID]] = {t: [] for t in OBJECT_TYPES}
        system = False
        for g in ident.grants:
            key = uuid.UUID(g.object_id)
            own.setdefault(g.object_type, []).append(key)
            if g.view_children:
                below.setdefault(g.object_type, []).append(key)
                if g.object_type == "system":
                    system = True
        return cls(system, own, below, uuid.UUID(ident.user_id),
                   [uuid.UUID(x) for x in ident.group_ids])

    def __getitem__(self, kind: str) -> list[uuid.UUID]:
        return self.own.get(kind, [])


class SqlParams:
    """Numbered asyncpg parameters for a query assembled in pieces."""

    def __init__(self, start: int = 0) -> None:
        self.values: list[Any] = []
        self.start = start

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${self.start + len(self.values)}"


class _Lazy:
    """A parameter bound only if the condition uses it (asyncpg rejects
    parameters it cannot type because no expression refers to them)."""

    def __init__(self, p: SqlParams, value: Any) -> None:
        self.p, self.value, self.name = p, value, ""

    def __format__(self, spec: str) -> str:
        if not self.name:
            self.name = self.p(self.value)
        return self.name


# Conditions for filtered views, per collection. `{x}` placeholders are the
# collection's own column aliases (see ovengine/rest/collections.py).
def visible_condition(kind: str, v: Visibility, p: SqlParams, cols: dict[str, str]) -> str:
    """A SQL condition selecting the rows of `kind` the user may see."""
    if v.system:
        return "TRUE"
    # own_*: permissions on the object itself; dcs/clusters: on a parent, by
    # roles that show what is below.
    dcs, clusters = _Lazy(p, v.below["data_center"]), _Lazy(p, v.below["cluster"])
    own_dcs, own_clusters = _Lazy(p, v["data_center"]), _Lazy(p, v["cluster"])
    hosts, vms = _Lazy(p, v["host"]), _Lazy(p, v["vm"])
    if kind == "vm":
        return (f"({cols['id']} = ANY({vms}::uuid[]) OR {cols['cluster']} = ANY({clusters}::uuid[])"
                f" OR {cols['dc']} = ANY({dcs}::uuid[]))")
    if kind == "host":
        return (f"({cols['id']} = ANY({hosts}::uuid[]) OR {cols['cluster']} = ANY({clusters}::uuid[])"
                f" OR {cols['dc']} = ANY({dcs}::uuid[]))")
    if kind == "cluster":
        return (f"({cols['id']} = ANY({own_clusters}::uuid[]) OR {cols['dc']} = ANY({dcs}::uuid[]) "
                f"OR {cols['id']} IN (SELECT cluster_id FROM vm_static WHERE id = ANY({vms}::uuid[])) "
                f"OR {cols['id']} IN (SELECT cluster_id FROM hosts WHERE id = ANY({hosts}::uuid[])))")
    if kind == "data_center":
        return (f"({cols['id']} = ANY({own_dcs}::uuid[]) OR {cols['id']} IN (SELECT data_center_id "
                f"FROM clusters WHERE id = ANY({own_clusters}::uuid[]) OR id IN (SELECT cluster_id FROM "
                f"vm_static WHERE id = ANY({vms}::uuid[])) OR id IN (SELECT cluster_id FROM hosts "
                f"WHERE id = ANY({hosts}::uuid[]))))")
    if kind == "template":
        tpl = p(v["template"])
        return (f"({cols['id']} = '{BLANK_TEMPLATE_ID}'::uuid OR {cols['id']} = ANY({tpl}::uuid[]) "
                f"OR {cols['cluster']} = ANY({clusters}::uuid[]) OR {cols['dc']} = ANY({dcs}::uuid[]))")
    if kind == "network":
        nets = p(v["network"])
        return f"({cols['id']} = ANY({nets}::uuid[]) OR {cols['dc']} = ANY({dcs}::uuid[]))"
    if kind == "storage_domain":
        sds = p(v["storage_domain"])
        return f"({cols['id']} = ANY({sds}::uuid[]) OR {cols['dc']} = ANY({dcs}::uuid[]))"
    if kind == "disk":
        disks, sds = p(v["disk"]), p(v.below["storage_domain"])
        return (f"({cols['id']} = ANY({disks}::uuid[]) OR {cols['sd']} = ANY({sds}::uuid[]) OR "
                f"{cols['id']} IN (SELECT disk_id FROM disk_attachments da JOIN vm_static vs ON "
                f"vs.id = da.vm_id LEFT JOIN clusters vc ON vc.id = vs.cluster_id WHERE "
                f"vs.id = ANY({vms}::uuid[]) OR vs.cluster_id = ANY({clusters}::uuid[]) OR "
                f"vc.data_center_id = ANY({dcs}::uuid[])))")
    if kind == "event":
        me = p(v.user_id)
        return (f"({cols['user']} = {me} OR {cols['vm']} = ANY({vms}::uuid[]) OR "
                f"{cols['host']} = ANY({hosts}::uuid[]) OR {cols['cluster']} = ANY({clusters}::uuid[]) "
                f"OR {cols['dc']} = ANY({dcs}::uuid[]) OR {cols['vm']} IN (SELECT vs.id FROM vm_static "
                f"vs LEFT JOIN clusters vc ON vc.id = vs.cluster_id WHERE vs.cluster_id = "
                f"ANY({clusters}::uuid[]) OR vc.data_center_id = ANY({dcs}::uuid[])))")
    if kind == "user":
        return f"{cols['id']} = {p(v.user_id)}"
    if kind == "group":
        return f"{cols['id']} = ANY({p(v.group_ids)}::uuid[])"
    if kind == "job":
        return f"{cols['owner']} = {p(v.user_id)}"
    if kind == "role":
        return "TRUE"
    raise ValueError(f"no visibility rule for {kind}")


class Authorizer:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # ------------------------------------------------------------ identity
    async def identity(self, user_id: str, *, filter_header: bool,
                       token_hash: str | None = None) -> Identity:
        uid = uuid.UUID(user_id)
        rows = await self.pool.fetch("""
            SELECT u.principal, u.domain,
                   ARRAY(SELECT group_id FROM user_groups WHERE user_id = u.id) AS groups
            FROM users u WHERE u.id = $1 AND u.active""", uid)
        if not rows:
            raise NotFound(f"user {user_id} does not exist")
        user = rows[0]
        groups = list(user["groups"])
        grants = await self.pool.fetch("""
            SELECT p.object_type, p.object_id, p.role_id, r.administrative,
                   r.allows_viewing_children,
                   ARRAY(SELECT permit FROM role_permits WHERE role_id = p.role_id) AS permits
            FROM permissions p JOIN roles r ON r.id = p.role_id
            WHERE p.user_id = $1 OR p.group_id = ANY($2::uuid[])""", uid, groups)
        gs = tuple(Grant(r["object_type"], str(r["object_id"]), str(r["role_id"]),
                         frozenset(_permit_ids(r["permits"])), r["administrative"],
                         r["allows_viewing_children"])
                   for r in grants)
        admin = any(g.administrative for g in gs)
        return Identity(user_id, user["principal"], user["domain"],
                        tuple(str(g) for g in groups), gs, filter_header or not admin,
                        token_hash)

    # ------------------------------------------------------------ the tree
    async def ancestors(self, kind: str, obj_id: str) -> list[tuple[str, str]]:
        """The object and everything above it, nearest first; NotFound if it
        does not exist."""
        system = ("system", SYSTEM_OBJECT_ID)
        if kind == "system":
            return [system]
        key = parse_uuid(obj_id, kind.replace("_", " "))
        if kind in ("vm", "template"):
            r = await self.pool.fetchrow(
                "SELECT s.cluster_id, c.data_center_id FROM vm_static s LEFT JOIN clusters c "
                "ON c.id = s.cluster_id WHERE s.id = $1 AND s.entity_type = $2", key, kind)
            if r is None:
                raise NotFound(f"{kind} {obj_id} does not exist")
            return [(kind, obj_id), *_opt("cluster", r["cluster_id"]),
                    *_opt("data_center", r["data_center_id"]), system]
        if kind == "host":
            r = await self.pool.fetchrow(
                "SELECT h.cluster_id, c.data_center_id FROM hosts h JOIN clusters c "
                "ON c.id = h.cluster_id WHERE h.id = $1", key)
            if r is None:
                raise NotFound(f"host {obj_id} does not exist")
            return [("host", obj_id), *_opt("cluster", r["cluster_id"]),
                    *_opt("data_center", r["data_center_id"]), system]
        if kind == "cluster":
            r = await self.pool.fetchrow("SELECT data_center_id FROM clusters WHERE id = $1", key)
            if r is None:
                raise NotFound(f"cluster {obj_id} does not exist")
            return [("cluster", obj_id), *_opt("data_center", r["data_center_id"]), system]
        if kind == "data_center":
            if not await self.pool.fetchval("SELECT 1 FROM data_centers WHERE id = $1", key):
                raise NotFound(f"data center {obj_id} does not exist")
            return [("data_center", obj_id), system]
        if kind in ("network", "storage_domain"):
            table = "networks" if kind == "network" else "storage_domains"
            r = await self.pool.fetchrow(f"SELECT data_center_id FROM {table} WHERE id = $1", key)
            if r is None:
                raise NotFound(f"{kind.replace('_', ' ')} {obj_id} does not exist")
            return [(kind, obj_id), *_opt("data_center", r["data_center_id"]), system]
        if kind == "disk":
            r = await self.pool.fetchrow("""
                SELECT d.storage_domain_id, sd.data_center_id,
                       ARRAY(SELECT a.vm_id FROM disk_attachments a JOIN vm_static s
                             ON s.id = a.vm_id WHERE a.disk_id = d.id
                             AND s.entity_type = 'vm') AS vms,
                       ARRAY(SELECT a.vm_id FROM disk_attachments a JOIN vm_static s
                             ON s.id = a.vm_id WHERE a.disk_id = d.id
                             AND s.entity_type = 'template') AS templates
                FROM disks d LEFT JOIN storage_domains sd ON sd.id = d.storage_domain_id
                WHERE d.id = $1""", key)
            if r is None:
                raise NotFound(f"disk {obj_id} does not exist")
            out = [("disk", obj_id)]
            for vm in r["vms"]:
                out += (await self.ancestors("vm", str(vm)))[:-1]
            for template in r["templates"]:
                out += (await self.ancestors("template", str(template)))[:-1]
            return [*out, *_opt("storage_domain", r["storage_domain_id"]),
                    *_opt("data_center", r["data_center_id"]), system]
        if kind in ("user", "group", "role"):
            table = {"user": "users", "group": "groups", "role": "roles"}[kind]
            if not await self.pool.fetchval(f"SELECT 1 FROM {table} WHERE id = $1", key):
                raise NotFound(f"{kind} {obj_id} does not exist")
            return [(kind, obj_id), system]
        raise ValueError(f"unknown object type {kind}")

    async def _descendant_visible(self, ident: Identity, kind: str, obj_id: str) -> bool:
        """Containers a filtered user sees because they hold a permission below."""
        v = ident.visibility()
        if kind == "cluster":
            sql = ("SELECT EXISTS (SELECT 1 FROM vm_static WHERE cluster_id = $1 AND id = ANY($2)) "
                   "OR EXISTS (SELECT 1 FROM hosts WHERE cluster_id = $1 AND id = ANY($3))")
            return bool(await self.pool.fetchval(sql, uuid.UUID(obj_id), v["vm"], v["host"]))
        if kind == "data_center":
            sql = ("SELECT EXISTS (SELECT 1 FROM clusters c WHERE c.data_center_id = $1 AND "
                   "(c.id = ANY($2) OR EXISTS (SELECT 1 FROM vm_static s WHERE s.cluster_id = c.id "
                   "AND s.id = ANY($3)) OR EXISTS (SELECT 1 FROM hosts h WHERE h.cluster_id = c.id "
                   "AND h.id = ANY($4))))")
            return bool(await self.pool.fetchval(sql, uuid.UUID(obj_id), v["cluster"], v["vm"],
                                                 v["host"]))
        if kind == "user":
            return obj_id == ident.user_id
        if kind == "group":
            return obj_id in ident.group_ids
        return False

    # ------------------------------------------------------- the one check
    async def authorize(self, ident: Identity, permit: ActionGroup | None, kind: str,
                        obj_id: str | None = None) -> None:
        """Allow or raise.

        permit None: read access. Unfiltered administrators read everything;
        a filtered user reads an object if they hold any permission on it or
        above it (or, for containers, below it). Otherwise the object is
        hidden: NotFound, exactly as if it did not exist.

        With a permit: the user must hold it on the object or above. A user
        who cannot even see the object gets NotFound, otherwise Forbidden.
        """
        chain = await self.ancestors(kind, obj_id or SYSTEM_OBJECT_ID)
        held = ident.permits_on(chain)
        if permit is None:
            if not ident.filtered:
                return
            if kind == "template" and obj_id == BLANK_TEMPLATE_ID:
                return
            if kind == "role":
                return
            above = set(chain[1:])
            if any((g.object_type, g.object_id) == chain[0] or
                   (g.view_children and (g.object_type, g.object_id) in above)
                   for g in ident.grants):
                return
            if await self._descendant_visible(ident, kind, chain[0][1]):
                return
            if kind == "system":  # always exists: not hidden, just not permitted
                raise Forbidden("User is not authorized to view system-level objects.")
            raise NotFound(f"{kind.replace('_', ' ')} {obj_id} does not exist")
        if int(permit) in held:
            return
        if ident.filtered and kind != "system":
            await self.authorize(ident, None, kind, obj_id)  # hidden -> NotFound
        raise Forbidden(f"User is not authorized to perform this action "
                        f"({permit.rest_name} on {kind.replace('_', ' ')}"
                        f"{'' if kind == 'system' else ' ' + str(obj_id)}).")

    async def held_permits(self, ident: Identity, kind: str, obj_id: str) -> set[int]:
        return ident.permits_on(await self.ancestors(kind, obj_id))


def _opt(kind: str, value: Any) -> list[tuple[str, str]]:
    return [(kind, str(value))] if value is not None else []


def _permit_ids(names: Iterable[str]) -> Iterable[int]:
    for n in names:
        try:
            yield int(ActionGroup.from_rest(n))
        except (KeyError, ValueError):
            continue
