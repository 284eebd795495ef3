"""Users, groups, roles and permissions: the commands behind /users, /groups,
/roles and every .../permissions sub-collection."""

from __future__ import annotations

import asyncio
import enum
import re
import uuid
from typing import Any

from ..aaa.ldap import DirectoryGroup, DirectoryUser
from ..aaa.passwords import hash_password
from ..aaa.permits import ActionGroup, SUPER_USER_ROLE_ID, SYSTEM_OBJECT_ID
from ..audit import AuditType
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from .commands import Command, Principal
from .locks import LockSpec

__all__ = ["AddUser", "RemoveUser", "AddGroup", "RemoveGroup", "AddRole", "UpdateRole",
           "RemoveRole", "AddPermission", "RemovePermission", "AaaAuditType",
           "PERMISSION_OBJECT_TYPES"]

ADMIN_USER_ID = "fdfc627c-d875-11e0-90f0-83df133b58cc"
_PRINCIPAL = re.compile(r"^[\w.\-]{1,255}$")
_ROLE_NAME = re.compile(r"^[\w.\- ]{1,126}$")
PERMISSION_OBJECT_TYPES = ("system", "data_center", "cluster", "host", "vm", "template",
                           "storage_domain", "disk", "network")


class AaaAuditType(enum.IntEnum):
    """Audit codes: oVirt's AuditLogType numbers where oVirt has one, ov's own
    99xx range (see ovengine.audit) where it does not."""

    USER_ADD = 9910
    USER_REMOVE = 9911
    USER_ADD_PERMISSION = int(AuditType.USER_ADD_PERMISSION)
    USER_REMOVE_PERMISSION = int(AuditType.USER_REMOVE_PERMISSION)
    USER_ADD_ROLE = int(AuditType.USER_ADD_ROLE)
    USER_UPDATE_ROLE = 856
    USER_REMOVE_ROLE = int(AuditType.USER_REMOVE_ROLE)


def _uuid(value: str | None, what: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise ValidationFailed(f"invalid {what} id {value!r}", field) from None


class AddUser(Command):
    """Add a user: internal users need a password (an ov extension of the
    model); directory users are looked up in their directory first."""

    action_type = "AddUser"

    def __init__(self, services: Any, principal: Principal, domain: str, user_name: str,
                 password: str | None = None, directory_user: DirectoryUser | None = None,
                 first_name: str = "", last_name: str = "", email: str = "") -> None:
        super().__init__(services, principal)
        self.domain = domain
        self.user_name = user_name
        self.password = password
        self.directory_user = directory_user
        self.first_name, self.last_name, self.email = first_name, last_name, email
        self.user_id = str(uuid.uuid4())

    def description(self) -> str:
        return f"Adding user {self.user_name}@{self.domain}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("user_name", str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                     f"user:{self.domain}:{self.user_name}")),
                         reason=self.description())]

    async def validate(self) -> None:
        if not _PRINCIPAL.match(self.user_name or ""):
            raise ValidationFailed(f"invalid user name {self.user_name!r}", "user_name")
        if self.domain == "internal":
            if not self.password or len(self.password) < 6:
                raise ValidationFailed("internal users need a password of at least 6 "
                                       "characters", "password")
        elif self.directory_user is None:
            raise NotFound(f"user {self.user_name} does not exist in domain {self.domain}")
        if await self.s.pool.fetchval("SELECT 1 FROM users WHERE domain=$1 AND principal=$2",
                                      self.domain, self.user_name):
            raise Conflict(f"user {self.user_name}@{self.domain} already exists")

    async def execute(self) -> str:
        d = self.directory_user
        hashed = await asyncio.to_thread(hash_password, self.password) if self.password and \
            self.domain == "internal" else None
        await self.s.pool.execute("""
            INSERT INTO users (id, domain, principal, external_id, first_name, last_name, email,
                               department, password_hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            uuid.UUID(self.user_id), self.domain, self.user_name, d.external_id if d else "",
            d.first_name if d else self.first_name, d.last_name if d else self.last_name,
            d.email if d else self.email, d.department if d else "", hashed)
        await self.s.audit.log(AaaAuditType.USER_ADD,  # type: ignore[arg-type]
                               f"User {self.user_name}@{self.domain} was added by "
                               f"{self.principal.name}.", self.audit_refs())
        return self.user_id


class RemoveUser(Command):
    action_type = "RemoveUser"

    def __init__(self, services: Any, principal: Principal, user_id: str) -> None:
        super().__init__(services, principal)
        self.user_id = user_id
        self.name = user_id

    def locks(self) -> list[LockSpec]:
        return [LockSpec("user", self.user_id, reason="a user removal")]

    async def validate(self) -> None:
        row = await self.s.pool.fetchrow("SELECT principal, domain FROM users WHERE id=$1",
                                         _uuid(self.user_id, "user", "id"))
        if row is None:
            raise NotFound(f"user {self.user_id} does not exist")
        self.name = f"{row['principal']}@{row['domain']}"
        if self.user_id == ADMIN_USER_ID:
            raise Conflict("The built-in admin@internal user cannot be removed.")

    async def execute(self) -> None:
        # Tokens and permissions go with the row (ON DELETE CASCADE): every
        # session of the user ends now.
        await self.s.pool.execute("DELETE FROM users WHERE id=$1", uuid.UUID(self.user_id))
        await self.s.audit.log(AaaAuditType.USER_REMOVE,  # type: ignore[arg-type]
                               f"User {self.name} was removed by {self.principal.name}.",
                               self.audit_refs())


class AddGroup(Command):
    action_type = "AddGroup"

    def __init__(self, services: Any, principal: Principal, domain: str,
                 group: DirectoryGroup) -> None:
        super().__init__(services, principal)
        self.domain = domain
        self.group = group
        self.group_id = str(uuid.uuid4())

    async def validate(self) -> None:
        if await self.s.pool.fetchval("SELECT 1 FROM groups WHERE domain=$1 AND name=$2",
                                      self.domain, self.group.name):
            raise Conflict(f"group {self.group.name}@{self.domain} already exists")

    async def execute(self) -> str:
        await self.s.pool.execute(
            "INSERT INTO groups (id, domain, name, external_id) VALUES ($1, $2, $3, $4)",
            uuid.UUID(self.group_id), self.domain, self.group.name, self.group.external_id)
        return self.group_id


class RemoveGroup(Command):
    action_type = "RemoveGroup"

    def __init__(self, services: Any, principal: Principal, group_id: str) -> None:
        super().__init__(services, principal)
        self.group_id = group_id

    async def validate(self) -> None:
        if not await self.s.pool.fetchval("SELECT 1 FROM groups WHERE id=$1",
                                          _uuid(self.group_id, "group", "id")):
            raise NotFound(f"group {self.group_id} does not exist")

    async def execute(self) -> None:
        await self.s.pool.execute("DELETE FROM groups WHERE id=$1", uuid.UUID(self.group_id))


def _check_permits(permits: list[str]) -> list[str]:
    out = []
    for p in permits:
        try:
            out.append(ActionGroup.from_rest(p).rest_name)
        except (KeyError, ValueError):
            raise ValidationFailed(f"unknown permit {p!r}", "permits") from None
    return sorted(set(out))


class AddRole(Command):
    action_type = "AddRole"

    def __init__(self, services: Any, principal: Principal, name: str, description: str,
                 administrative: bool, permits: list[str]) -> None:
        super().__init__(services, principal)
        self.name, self.role_description = name, description
        self.administrative, self.permits = administrative, permits
        self.role_id = str(uuid.uuid4())

    def locks(self) -> list[LockSpec]:
        return [LockSpec("role_name", str(uuid.uuid5(uuid.NAMESPACE_OID, f"role:{self.name}")),
                         reason="a role creation")]

    async def validate(self) -> None:
        if not _ROLE_NAME.match(self.name or ""):
            raise ValidationFailed(f"invalid role name {self.name!r}", "name")
        self.permits = _check_permits(self.permits)
        if not self.permits:
            raise ValidationFailed("a role needs at least one permit", "permits")
        if await self.s.pool.fetchval("SELECT 1 FROM roles WHERE name=$1", self.name):
            raise Conflict(f"role {self.name} already exists")

    async def execute(self) -> str:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO roles (id, name, description, administrative, mutable, role_type) "
                "VALUES ($1, $2, $3, $4, true, $5)", uuid.UUID(self.role_id), self.name,
                self.role_description, self.administrative, 1 if self.administrative else 2)
            await conn.executemany("INSERT INTO role_permits (role_id, permit) VALUES ($1, $2)",
                                   [(uuid.UUID(self.role_id), p) for p in self.permits])
        await self.s.audit.log(AaaAuditType.USER_ADD_ROLE,  # type: ignore[arg-type]
                               f"Role {self.name} was added by {self.principal.name}.",
                               self.audit_refs())
        return self.role_id


class _RoleCommand(Command):
    def __init__(self, services: Any, principal: Principal, role_id: str) -> None:
        super().__init__(services, principal)
        self.role_id = role_id
        self.row: Any = None

    def locks(self) -> list[LockSpec]:
        return [LockSpec("role", self.role_id, reason=self.action_type)]

    async def validate(self) -> None:
        self.row = await self.s.pool.fetchrow("SELECT * FROM roles WHERE id=$1",
                                              _uuid(self.role_id, "role", "id"))
        if self.row is None:
            raise NotFound(f"role {self.role_id} does not exist")
        if not self.row["mutable"]:
            raise Conflict(f"Role {self.row['name']} is predefined and cannot be changed.")


class UpdateRole(_RoleCommand):
    action_type = "UpdateRole"

    def __init__(self, services: Any, principal: Principal, role_id: str,
                 name: str | None = None, description: str | None = None,
                 permits: list[str] | None = None) -> None:
        super().__init__(services, principal, role_id)
        self.name, self.role_description, self.permits = name, description, permits

    async def validate(self) -> None:
        await super().validate()
        if self.name is not None and not _ROLE_NAME.match(self.name):
            raise ValidationFailed(f"invalid role name {self.name!r}", "name")
        if self.permits is not None:
            self.permits = _check_permits(self.permits)

    async def execute(self) -> str:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE roles SET name = COALESCE($2, name), description = COALESCE($3, "
                "description) WHERE id = $1", uuid.UUID(self.role_id), self.name,
                self.role_description)
            if self.permits is not None:
                await conn.execute("DELETE FROM role_permits WHERE role_id=$1",
                                   uuid.UUID(self.role_id))
                await conn.executemany(
                    "INSERT INTO role_permits (role_id, permit) VALUES ($1, $2)",
                    [(uuid.UUID(self.role_id), p) for p in self.permits])
        await self.s.audit.log(AaaAuditType.USER_UPDATE_ROLE,  # type: ignore[arg-type]
                               f"Role {self.name or self.row['name']} was updated by "
                               f"{self.principal.name}.", self.audit_refs())
        return self.role_id


class RemoveRole(_RoleCommand):
    action_type = "RemoveRole"

    async def validate(self) -> None:
        await super().validate()
        if await self.s.pool.fetchval("SELECT 1 FROM permissions WHERE role_id=$1 LIMIT 1",
                                      uuid.UUID(self.role_id)):
            raise Conflict(f"Cannot remove role {self.row['name']}: it is still granted.")

    async def execute(self) -> None:
        await self.s.pool.execute("DELETE FROM roles WHERE id=$1", uuid.UUID(self.role_id))
        await self.s.audit.log(AaaAuditType.USER_REMOVE_ROLE,  # type: ignore[arg-type]
                               f"Role {self.row['name']} was removed by "
                               f"{self.principal.name}.", self.audit_refs())


class AddPermission(Command):
    """Grant a role on an object to a user or a group.

    `granter_permits`: what the granter holds on that object (None: the
    engine itself). Nobody grants a permit they do not hold themselves.
    """

    action_type = "AddPermission"

    def __init__(self, services: Any, principal: Principal, role_id: str, object_type: str,
                 object_id: str, user_id: str | None = None, group_id: str | None = None,
                 granter_permits: set[int] | None = None) -> None:
        super().__init__(services, principal)
        self.role_id, self.object_type, self.object_id = role_id, object_type, object_id
        self.user_id, self.group_id = user_id, group_id
        self.granter_permits = granter_permits
        self.permission_id = str(uuid.uuid4())
        self.role_name = role_id
        self.holder = ""

    def locks(self) -> list[LockSpec]:
        return [LockSpec("permission_object", self.object_id, exclusive=False,
                         reason="a permission change")]

    async def validate(self) -> None:
        pool = self.s.pool
        if self.object_type not in PERMISSION_OBJECT_TYPES:
            raise ValidationFailed(f"permissions cannot be set on {self.object_type}",
                                   "object_type")
        if (self.user_id is None) == (self.group_id is None):
            raise ValidationFailed("a permission needs exactly one of user or group", "user")
        role = await pool.fetchrow("SELECT name, administrative, ARRAY(SELECT permit FROM "
                                   "role_permits WHERE role_id = roles.id) AS permits "
                                   "FROM roles WHERE id=$1", _uuid(self.role_id, "role", "role"))
        if role is None:
            raise ValidationFailed(f"role {self.role_id} does not exist", "role")
        self.role_name = role["name"]
        if self.user_id is not None:
            row = await pool.fetchrow("SELECT principal, domain FROM users WHERE id=$1",
                                      _uuid(self.user_id, "user", "user"))
            if row is None:
                raise ValidationFailed(f"user {self.user_id} does not exist", "user")
            self.holder = f"{row['principal']}@{row['domain']}"
        else:
            row = await pool.fetchrow("SELECT name, domain FROM groups WHERE id=$1",
                                      _uuid(self.group_id, "group", "group"))
            if row is None:
                raise ValidationFailed(f"group {self.group_id} does not exist", "group")
            self.holder = f"{row['name']}@{row['domain']}"
        if self.granter_permits is not None:
            wanted = {int(ActionGroup.from_rest(p)) for p in role["permits"]}
            missing = wanted - self.granter_permits
            if missing:
                raise Forbidden(f"Cannot grant role {role['name']}: you do not hold "
                                f"{', '.join(sorted(ActionGroup(m).rest_name for m in missing))} "
                                f"on this object yourself.")
        if await pool.fetchval(
                "SELECT 1 FROM permissions WHERE role_id=$1 AND object_id=$2 AND "
                "user_id IS NOT DISTINCT FROM $3 AND group_id IS NOT DISTINCT FROM $4",
                uuid.UUID(self.role_id), uuid.UUID(self.object_id),
                uuid.UUID(self.user_id) if self.user_id else None,
                uuid.UUID(self.group_id) if self.group_id else None):
            raise Conflict(f"{self.holder} already has role {role['name']} on this object")

    async def execute(self) -> str:
        await self.s.pool.execute(
            "INSERT INTO permissions (id, role_id, user_id, group_id, object_type, object_id) "
            "VALUES ($1, $2, $3, $4, $5, $6)", uuid.UUID(self.permission_id),
            uuid.UUID(self.role_id), uuid.UUID(self.user_id) if self.user_id else None,
            uuid.UUID(self.group_id) if self.group_id else None, self.object_type,
            uuid.UUID(self.object_id))
        await self.s.audit.log(AuditType.USER_ADD_PERMISSION,
                               f"User/Group {self.holder} was granted permission for Role "
                               f"{self.role_name} on {self.object_type} by "
                               f"{self.principal.name}.", self.audit_refs())
        return self.permission_id


class RemovePermission(Command):
    action_type = "RemovePermission"

    def __init__(self, services: Any, principal: Principal, permission_id: str) -> None:
        super().__init__(services, principal)
        self.permission_id = permission_id
        self.row: Any = None

    def locks(self) -> list[LockSpec]:
        return [LockSpec("permission", self.permission_id, reason="a permission removal")]

    async def validate(self) -> None:
        self.row = await self.s.pool.fetchrow(
            "SELECT p.*, r.name AS role_name FROM permissions p JOIN roles r ON r.id = p.role_id "
            "WHERE p.id=$1", _uuid(self.permission_id, "permission", "id"))
        if self.row is None:
            raise NotFound(f"permission {self.permission_id} does not exist")
        r = self.row
        if str(r["role_id"]) == SUPER_USER_ROLE_ID and r["object_type"] == "system":
            others = await self.s.pool.fetchval(
                "SELECT count(*) FROM permissions WHERE role_id=$1 AND object_type='system' "
                "AND id <> $2", uuid.UUID(SUPER_USER_ROLE_ID), r["id"])
            if not others:
                raise Conflict("Cannot remove the last SuperUser permission on the system.")

    async def execute(self) -> None:
        await self.s.pool.execute("DELETE FROM permissions WHERE id=$1",
                                  uuid.UUID(self.permission_id))
        await self.s.audit.log(AuditType.USER_REMOVE_PERMISSION,
                               f"Permission for Role {self.row['role_name']} on "
                               f"{self.row['object_type']} was removed by "
                               f"{self.principal.name}.", self.audit_refs())


__all__ += ["SYSTEM_OBJECT_ID"]
