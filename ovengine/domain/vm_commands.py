"""VM configuration commands: add (from a template), update, remove."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ..audit import AuditType
from ..errors import Conflict, ValidationFailed
from .commands import Command, Principal
from .locks import LockSpec
from .vm_base import (BLANK_TEMPLATE_ID, STATIC_FIELDS, USER_VM_MANAGER_ROLE_ID, VmCommand,
                      VmConfig, check_memory, check_name, load_vm)

__all__ = ["AddVm", "UpdateVm", "RemoveVm", "VmConfig", "BLANK_TEMPLATE_ID",
           "USER_VM_MANAGER_ROLE_ID"]


class AddVm(Command):
    action_type = "AddVm"

    def __init__(self, services: Any, principal: Principal, cluster_id: str,
                 template_id: str = BLANK_TEMPLATE_ID, config: VmConfig | None = None,
                 vm_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.cluster_id = cluster_id
        self.template_id = template_id
        self.config = config or VmConfig()
        self.vm_id = vm_id or str(uuid.uuid4())
        self.values: dict[str, Any] = {}

    def description(self) -> str:
        return f"Adding VM {self.config.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("template", self.template_id, exclusive=False, reason="a VM creation"),
                LockSpec("vm_name", str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                   f"vm:{self.config.name}")),
                         reason=f"the creation of VM {self.config.name}")]

    async def validate(self) -> None:
        name = self.config.name or ""
        check_name(name)
        pool = self.s.pool
        if await pool.fetchval("SELECT 1 FROM vm_static WHERE entity_type='vm' AND name=$1",
                               name):
            raise Conflict(f"Cannot add VM. The name {name} is already in use.")
        try:
            cluster = await pool.fetchrow("SELECT id, compat_major, compat_minor FROM clusters "
                                          "WHERE id=$1", uuid.UUID(self.cluster_id))
        except ValueError:
            cluster = None
        if cluster is None:
            raise ValidationFailed(f"Cluster {self.cluster_id} does not exist", "cluster")
        try:
            template = await pool.fetchrow(
                "SELECT * FROM vm_static WHERE id=$1 AND entity_type='template'",
                uuid.UUID(self.template_id))
        except ValueError:
            template = None
        if template is None:
            raise ValidationFailed(f"Template {self.template_id} does not exist", "template")
        if template["template_status"] != "ok":
            raise Conflict(f"Cannot add VM: template {template['name']} is "
                           f"{template['template_status']}")
        values = {f: template[f] for f in STATIC_FIELDS}
        for f in STATIC_FIELDS:
            v = getattr(self.config, f)
            if v is not None:
                values[f] = v
        if self.config.memory_mib is not None and self.config.memory_guaranteed_mib is None:
            values["memory_guaranteed_mib"] = min(values["memory_guaranteed_mib"],
                                                  values["memory_mib"])
        if self.config.memory_mib is not None and self.config.memory_max_mib is None:
            values["memory_max_mib"] = max(values["memory_max_mib"], values["memory_mib"])
        check_memory(values["memory_mib"], values["memory_guaranteed_mib"],
                      values["memory_max_mib"])
        for f in ("cpu_sockets", "cpu_cores", "cpu_threads"):
            if values[f] < 1:
                raise ValidationFailed("cpu topology values must be at least 1", "cpu.topology")
        self.values = values

    async def execute(self) -> str:
        v = self.values
        c = self.config
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"""
                INSERT INTO vm_static (id, entity_type, name, description, comment, cluster_id,
                    template_id, original_template_id, created_by_user_id,
                    {", ".join(STATIC_FIELDS)})
                VALUES ($1, 'vm', $2, $3, $4, $5, $6, $6, $7,
                    {", ".join(f"${i}" for i in range(8, 8 + len(STATIC_FIELDS)))})""",
                uuid.UUID(self.vm_id), c.name, c.description or "", c.comment or "",
                uuid.UUID(self.cluster_id), uuid.UUID(self.template_id),
                uuid.UUID(self.principal.user_id) if self.principal.user_id else None,
                *[v[f] for f in STATIC_FIELDS])
            await conn.execute("INSERT INTO vm_dynamic (vm_id) VALUES ($1)",
                               uuid.UUID(self.vm_id))
            await conn.execute("INSERT INTO vm_statistics (vm_id) VALUES ($1)",
                               uuid.UUID(self.vm_id))
            await conn.execute(
                "INSERT INTO snapshots (id, vm_id, snapshot_type, description) "
                "VALUES ($1, $2, 'active', 'Active VM')", uuid.uuid4(), uuid.UUID(self.vm_id))
            if self.principal.user_id and not self.principal.is_admin:
                await conn.execute(
                    "INSERT INTO permissions (id, role_id, user_id, object_type, object_id) "
                    "SELECT $1, $2, $3, 'vm', $4 WHERE EXISTS "
                    "(SELECT 1 FROM roles WHERE id = $2)",
                    uuid.uuid4(), uuid.UUID(USER_VM_MANAGER_ROLE_ID),
                    uuid.UUID(self.principal.user_id), uuid.UUID(self.vm_id))
        self.s.store.add(self.vm_id, c.name or "")
        await self.s.audit.log(AuditType.USER_ADD_VM,
                               f"VM {c.name} was created by {self.principal.name}.",
                               self.audit_refs(vm_id=uuid.UUID(self.vm_id), vm_name=c.name,
                                               cluster_id=uuid.UUID(self.cluster_id)))
        return self.vm_id


class UpdateVm(Command):
    action_type = "UpdateVm"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 config: VmConfig) -> None:
        super().__init__(services, principal)
        self.vm_id = vm_id
        self.config = config
        self.row: asyncpg.Record | None = None

    def description(self) -> str:
        return f"Updating VM {self.vm_id}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, reason="a VM update")]

    async def validate(self) -> None:
        self.row = row = await load_vm(self.s.pool, self.vm_id)
        c = self.config
        if c.name is not None and c.name != row["name"]:
            check_name(c.name)
            if await self.s.pool.fetchval(
                    "SELECT 1 FROM vm_static WHERE entity_type='vm' AND name=$1", c.name):
                raise Conflict(f"Cannot edit VM. The name {c.name} is already in use.")
        mem = c.memory_mib if c.memory_mib is not None else row["memory_mib"]
        gua = c.memory_guaranteed_mib if c.memory_guaranteed_mib is not None else \
            min(row["memory_guaranteed_mib"], mem)
        mx = c.memory_max_mib if c.memory_max_mib is not None else max(row["memory_max_mib"],
                                                                      mem)
        check_memory(mem, gua, mx)
        self.config.memory_guaranteed_mib = gua
        self.config.memory_max_mib = mx

    async def execute(self) -> str:
        fields = {f: getattr(self.config, f) for f in ("name", "description", "comment",
                                                        *STATIC_FIELDS)}
        fields = {k: v for k, v in fields.items() if v is not None}
        if fields:
            sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
            await self.s.pool.execute(f"UPDATE vm_static SET {sets} WHERE id = $1",
                                      uuid.UUID(self.vm_id), *fields.values())
        if "name" in fields:
            self.s.store.rename(self.vm_id, fields["name"])
        assert self.row is not None
        name = fields.get("name", self.row["name"])
        await self.s.audit.log(AuditType.USER_UPDATE_VM,
                               f"VM {name} configuration was updated by {self.principal.name}.",
                               self.audit_refs(vm_id=uuid.UUID(self.vm_id), vm_name=name))
        return self.vm_id


class RemoveVm(VmCommand):
    action_type = "RemoveVm"
    lock_reason = "a VM removal"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 force: bool = False) -> None:
        super().__init__(services, principal, vm_id)
        self.force = force

    def description(self) -> str:
        return f"Removing VM {self.name}"

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        if self.row["status"] != "down":
            raise Conflict(f"Cannot remove VM. VM {self.name} is {self.row['status']}: "
                           f"stop it first.")
        if self.row["delete_protected"]:
            raise Conflict(f"Cannot remove VM {self.name}: it is delete protected.")

    async def execute(self) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM permissions WHERE object_type='vm' AND object_id=$1",
                               uuid.UUID(self.vm_id))
            await conn.execute("DELETE FROM vm_static WHERE id=$1", uuid.UUID(self.vm_id))
        self.s.store.remove(self.vm_id)
        await self.s.audit.log(AuditType.USER_REMOVE_VM,
                               f"VM {self.name} was removed by {self.principal.name}.",
                               self.refs())
