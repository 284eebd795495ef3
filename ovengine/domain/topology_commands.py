"""Data centers, clusters and logical networks: add, update, remove."""

from __future__ import annotations

import enum
import re
import uuid
from typing import Any

from ..errors import Conflict, NotFound, ValidationFailed
from .commands import Command, Principal
from .locks import LockSpec

__all__ = ["AddDataCenter", "UpdateDataCenter", "RemoveDataCenter", "AddCluster",
           "UpdateCluster", "RemoveCluster", "AddNetwork", "UpdateNetwork", "RemoveNetwork",
           "TopologyAuditType"]

_NAME = re.compile(r"^[\w.\-]{1,40}$")


class TopologyAuditType(enum.IntEnum):
    """oVirt's AuditLogType codes."""

    USER_ADD_CLUSTER = 809
    USER_UPDATE_CLUSTER = 811
    USER_REMOVE_CLUSTER = 813
    NETWORK_ADD_NETWORK = 942
    NETWORK_REMOVE_NETWORK = 944
    USER_ADD_STORAGE_POOL = 950
    USER_UPDATE_STORAGE_POOL = 952
    USER_REMOVE_STORAGE_POOL = 954
    NETWORK_UPDATE_NETWORK = 1114


# Per entity: table, the columns a user may set, audit codes, words for messages.
class _Kind:
    def __init__(self, table: str, what: str, columns: tuple[str, ...], add: int, update: int,
                 remove: int) -> None:
        self.table, self.what, self.columns = table, what, columns
        self.add, self.update, self.remove = add, update, remove


DATA_CENTER = _Kind("data_centers", "Data Center",
                    ("name", "description", "comment", "local", "compat_major", "compat_minor",
                     "quota_mode", "storage_format"),
                    950, 952, 954)
CLUSTER = _Kind("clusters", "Cluster",
                ("name", "description", "comment", "data_center_id", "cpu_type", "architecture",
                 "compat_major", "compat_minor", "memory_overcommit_pct", "ballooning_enabled",
                 "threads_as_cores", "scheduling_policy"),
                809, 811, 813)
NETWORK = _Kind("networks", "Network",
                ("name", "description", "comment", "data_center_id", "vlan_id", "mtu", "stp",
                 "vm_network", "required", "usages"),
                942, 1114, 944)


def _check_values(kind: _Kind, values: dict[str, Any]) -> None:
    unknown = set(values) - set(kind.columns)
    if unknown:
        raise ValidationFailed(f"unknown fields {sorted(unknown)}", sorted(unknown)[0])
    if "name" in values and not _NAME.match(values["name"] or ""):
        raise ValidationFailed(f"Invalid {kind.what} name {values['name']!r}: use 1-40 letters, "
                               f"digits, '_', '-' or '.'", "name")
    for k in ("compat_major", "compat_minor"):
        if k in values and not 0 <= int(values[k]) < 100:
            raise ValidationFailed("invalid version", "version")
    if "vlan_id" in values and values["vlan_id"] is not None and not 0 <= values["vlan_id"] < 4095:
        raise ValidationFailed("VLAN id must be 0-4094", "vlan.id")
    if "mtu" in values and not 0 <= values["mtu"] <= 65536:
        raise ValidationFailed("invalid MTU", "mtu")


class _Add(Command):
    kind: _Kind

    def __init__(self, services: Any, principal: Principal, values: dict[str, Any]) -> None:
        super().__init__(services, principal)
        self.values = values
        self.entity_id = str(uuid.uuid4())

    def description(self) -> str:
        return f"Adding {self.kind.what} {self.values.get('name')}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec(f"{self.kind.table}_name", str(uuid.uuid5(
            uuid.NAMESPACE_OID, f"{self.kind.table}:{self.values.get('name')}")),
            reason=self.description())]

    async def validate(self) -> None:
        if not self.values.get("name"):
            raise ValidationFailed(f"{self.kind.what} name is required", "name")
        _check_values(self.kind, self.values)
        await _check_unique(self, self.values, None)
        await _check_parent(self, self.values)

    async def execute(self) -> str:
        cols = ["id", *self.values]
        await self.s.pool.execute(
            f"INSERT INTO {self.kind.table} ({', '.join(cols)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(cols) + 1))})",
            uuid.UUID(self.entity_id), *self.values.values())
        await self.after_add()
        await self.s.audit.log(self.kind.add,  # type: ignore[arg-type]
                               f"{self.kind.what} {self.values['name']} was added by "
                               f"{self.principal.name}.", self.audit_refs())
        return self.entity_id

    async def after_add(self) -> None:
        pass


async def add_default_profile(pool: Any, network_id: uuid.UUID, name: str) -> None:
    """As oVirt does, a new network gets a vNIC profile of the same name."""
    await pool.execute("INSERT INTO vnic_profiles (id, name, network_id) VALUES ($1, $2, $3)",
                       uuid.uuid4(), name, network_id)


async def _check_unique(cmd: Command, values: dict[str, Any], entity_id: str | None) -> None:
    kind: _Kind = cmd.kind  # type: ignore[attr-defined]
    if "name" not in values:
        return
    if kind is NETWORK:
        dc = values.get("data_center_id")
        if dc is None and entity_id is not None:
            dc = await cmd.s.pool.fetchval("SELECT data_center_id FROM networks WHERE id=$1",
                                           uuid.UUID(entity_id))
        clash = await cmd.s.pool.fetchval(
            "SELECT 1 FROM networks WHERE name=$1 AND data_center_id=$2 AND id IS DISTINCT "
            "FROM $3", values["name"], dc, uuid.UUID(entity_id) if entity_id else None)
    else:
        clash = await cmd.s.pool.fetchval(
            f"SELECT 1 FROM {kind.table} WHERE name=$1 AND id IS DISTINCT FROM $2",
            values["name"], uuid.UUID(entity_id) if entity_id else None)
    if clash:
        raise Conflict(f"Cannot add {kind.what}. The name {values['name']} is already in use.")


async def _check_parent(cmd: Command, values: dict[str, Any]) -> None:
    dc = values.get("data_center_id")
    if dc is None:
        if cmd.kind is NETWORK:  # type: ignore[attr-defined]
            raise ValidationFailed("a network needs a data center", "data_center")
        return
    if not await cmd.s.pool.fetchval("SELECT 1 FROM data_centers WHERE id=$1", dc):
        raise ValidationFailed(f"data center {dc} does not exist", "data_center")


class _Update(Command):
    kind: _Kind

    def __init__(self, services: Any, principal: Principal, entity_id: str,
                 values: dict[str, Any]) -> None:
        super().__init__(services, principal)
        self.entity_id = entity_id
        self.values = values
        self.name = entity_id

    def locks(self) -> list[LockSpec]:
        return [LockSpec(self.kind.table, self.entity_id, reason=f"a {self.kind.what} update")]

    async def validate(self) -> None:
        self.name = await _existing(self, self.entity_id)
        _check_values(self.kind, self.values)
        await _check_unique(self, self.values, self.entity_id)
        if "data_center_id" in self.values:
            await _check_parent(self, self.values)

    async def execute(self) -> str:
        if self.values:
            sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(self.values, start=2))
            await self.s.pool.execute(f"UPDATE {self.kind.table} SET {sets} WHERE id = $1",
                                      uuid.UUID(self.entity_id), *self.values.values())
        await self.s.audit.log(self.kind.update,  # type: ignore[arg-type]
                               f"{self.kind.what} {self.values.get('name', self.name)} was "
                               f"updated by {self.principal.name}.", self.audit_refs())
        return self.entity_id


async def _existing(cmd: Command, entity_id: str) -> str:
    kind: _Kind = cmd.kind  # type: ignore[attr-defined]
    try:
        key = uuid.UUID(entity_id)
    except ValueError:
        key = None
    name = await cmd.s.pool.fetchval(f"SELECT name FROM {kind.table} WHERE id=$1", key) \
        if key else None
    if name is None:
        raise NotFound(f"{kind.what} {entity_id} does not exist")
    return str(name)


class _Remove(Command):
    kind: _Kind

    def __init__(self, services: Any, principal: Principal, entity_id: str) -> None:
        super().__init__(services, principal)
        self.entity_id = entity_id
        self.name = entity_id

    def locks(self) -> list[LockSpec]:
        return [LockSpec(self.kind.table, self.entity_id, reason=f"a {self.kind.what} removal")]

    async def validate(self) -> None:
        self.name = await _existing(self, self.entity_id)
        await self.check_empty()

    async def check_empty(self) -> None:
        pass

    async def execute(self) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM permissions WHERE object_id=$1",
                               uuid.UUID(self.entity_id))
            await conn.execute(f"DELETE FROM {self.kind.table} WHERE id=$1",
                               uuid.UUID(self.entity_id))
        await self.s.audit.log(self.kind.remove,  # type: ignore[arg-type]
                               f"{self.kind.what} {self.name} was removed by "
                               f"{self.principal.name}.", self.audit_refs())


class AddDataCenter(_Add):
    action_type = "AddStoragePool"
    kind = DATA_CENTER

    async def after_add(self) -> None:
        # Like oVirt, every data center gets its management network.
        network_id = uuid.uuid4()
        await self.s.pool.execute(
            "INSERT INTO networks (id, name, description, data_center_id, usages) "
            "VALUES ($1, 'ovirtmgmt', 'Management Network', $2, '{vm,management,display}')",
            network_id, uuid.UUID(self.entity_id))
        await add_default_profile(self.s.pool, network_id, "ovirtmgmt")


class UpdateDataCenter(_Update):
    action_type = "UpdateStoragePool"
    kind = DATA_CENTER


class RemoveDataCenter(_Remove):
    action_type = "RemoveStoragePool"
    kind = DATA_CENTER

    async def check_empty(self) -> None:
        if await self.s.pool.fetchval("SELECT 1 FROM clusters WHERE data_center_id=$1 LIMIT 1",
                                      uuid.UUID(self.entity_id)):
            raise Conflict(f"Cannot remove Data Center {self.name}: it still has clusters.")
        if await self.s.pool.fetchval("SELECT 1 FROM storage_domains WHERE data_center_id=$1 "
                                      "LIMIT 1", uuid.UUID(self.entity_id)):
            raise Conflict(f"Cannot remove Data Center {self.name}: storage domains are "
                           f"attached to it.")


class AddCluster(_Add):
    action_type = "AddCluster"
    kind = CLUSTER


class UpdateCluster(_Update):
    action_type = "UpdateCluster"
    kind = CLUSTER


class RemoveCluster(_Remove):
    action_type = "RemoveCluster"
    kind = CLUSTER

    async def check_empty(self) -> None:
        key = uuid.UUID(self.entity_id)
        if await self.s.pool.fetchval("SELECT 1 FROM hosts WHERE cluster_id=$1 LIMIT 1", key):
            raise Conflict(f"Cannot remove Cluster {self.name}: it still has hosts.")
        if await self.s.pool.fetchval("SELECT 1 FROM vm_static WHERE cluster_id=$1 LIMIT 1", key):
            raise Conflict(f"Cannot remove Cluster {self.name}: it still has VMs or templates.")


class AddNetwork(_Add):
    action_type = "AddNetwork"
    kind = NETWORK

    async def after_add(self) -> None:
        await add_default_profile(self.s.pool, uuid.UUID(self.entity_id), self.values["name"])


class UpdateNetwork(_Update):
    action_type = "UpdateNetwork"
    kind = NETWORK


class RemoveNetwork(_Remove):
    action_type = "RemoveNetwork"
    kind = NETWORK

    async def check_empty(self) -> None:
        if await self.s.pool.fetchval("SELECT 1 FROM networks WHERE id=$1 AND 'management' = "
                                      "ANY(usages)", uuid.UUID(self.entity_id)):
            raise Conflict(f"Cannot remove the management network {self.name}.")
