"""VM network interfaces (vm_interfaces): add, update, remove.

A NIC reaches a logical network through a vNIC profile of a network of the
VM's data center; without a profile (oVirt's "empty profile") its link is
down. MACs come from the engine's pool (macpool.py) unless the user gives
one. Changes are allowed only while the VM is down: there is no hot plug.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg

from ..audit import AuditType
from ..errors import Conflict, NotFound, ValidationFailed
from .commands import Principal
from .domxml import NicSpec
from .macpool import MacPool, allocate_mac, check_mac, lock_pool, mac_in_use
from .vm_base import VmCommand

__all__ = ["AddVmNic", "UpdateVmNic", "RemoveVmNic", "NicConfig", "NIC_MODELS",
           "check_profile", "insert_nic", "vm_nic_specs", "mac_pool", "copy_nics_to_template",
           "template_nics", "create_nics_from_template"]

# oVirt's NicInterface values ov supports -> the libvirt <model type>.
NIC_MODELS = {"virtio": "virtio", "e1000": "e1000", "rtl8139": "rtl8139"}
_NAME = re.compile(r"^[\w.\-]{1,50}$")


@dataclass
class NicConfig:
    """What a user sets on a NIC (None: the default on add, unchanged on update)."""

    name: str | None = None
    interface: str | None = None
    mac: str | None = None
    vnic_profile_id: str | None = None
    # True when vnic_profile_id was given, so that None means the empty profile.
    profile_given: bool = False
    plugged: bool | None = None
    linked: bool | None = None


def mac_pool(services: Any) -> MacPool:
    return MacPool.parse(services.config.network.mac_pool_ranges)


def check_nic_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValidationFailed(f"Invalid network interface name {name!r}: use 1-50 letters, "
                               f"digits, '_', '-' or '.'", "name")


def check_interface(interface: str) -> None:
    if interface not in NIC_MODELS:
        raise ValidationFailed(f"Unsupported network interface type {interface!r} "
                               f"({', '.join(NIC_MODELS)})", "interface")


async def check_profile(pool: Any, profile_id: str, cluster_id: Any) -> str:
    """The profile's network name; 400 unless it is a profile of a VM network
    of the data center of `cluster_id`."""
    try:
        key = uuid.UUID(profile_id)
    except ValueError:
        raise ValidationFailed(f"vnic_profile id {profile_id!r} is not a valid id",
                               "vnic_profile.id") from None
    row = await pool.fetchrow(
        "SELECT n.name AS network, n.vm_network, n.data_center_id, "
        "(SELECT data_center_id FROM clusters WHERE id = $2) AS vm_dc "
        "FROM vnic_profiles p JOIN networks n ON n.id = p.network_id WHERE p.id = $1",
        key, cluster_id)
    if row is None:
        raise ValidationFailed(f"vNIC profile {profile_id} does not exist", "vnic_profile")
    if row["data_center_id"] != row["vm_dc"]:
        raise ValidationFailed(f"vNIC profile {profile_id} belongs to network "
                               f"{row['network']} of another data center than the VM's",
                               "vnic_profile")
    if not row["vm_network"]:
        raise ValidationFailed(f"Network {row['network']} is not a VM network",
                               "vnic_profile")
    return str(row["network"])


async def insert_nic(conn: Any, vm_id: str, nic_id: str, name: str, interface: str,
                     mac: str | None, profile_id: str | None, plugged: bool = True,
                     linked: bool = True) -> None:
    try:
        await conn.execute(
            "INSERT INTO vm_interfaces (id, vm_id, name, mac_address, interface, "
            "vnic_profile_id, plugged, linked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            uuid.UUID(nic_id), uuid.UUID(vm_id), name, mac, interface,
            uuid.UUID(profile_id) if profile_id else None, plugged, linked)
    except asyncpg.UniqueViolationError as exc:
        raise _clash(exc, name, mac) from None


async def copy_nics_to_template(conn: Any, vm_id: str, template_id: str) -> int:
    """In conn's transaction: the VM's NICs become the template's (same name,
    interface, profile, plugged, linked), without MAC addresses. Returns how many."""
    res = await conn.execute(
        "INSERT INTO vm_interfaces (id, vm_id, name, mac_address, interface, "
        "vnic_profile_id, plugged, linked) "
        "SELECT gen_random_uuid(), $2, name, NULL, interface, vnic_profile_id, plugged, linked "
        "FROM vm_interfaces WHERE vm_id = $1", uuid.UUID(vm_id), uuid.UUID(template_id))
    return int(res.split()[-1])


async def template_nics(pool: Any, template_id: str) -> list[asyncpg.Record]:
    return list(await pool.fetch(
        "SELECT * FROM vm_interfaces WHERE vm_id = $1 ORDER BY name, id",
        uuid.UUID(template_id)))


async def create_nics_from_template(conn: Any, mac_pool_: MacPool, vm_id: str,
                                    nics: list[asyncpg.Record], dc_id: Any) -> None:
    """In conn's transaction: a NIC of the new VM for each NIC of its template,
    each with a new MAC from the pool (409 when the pool is exhausted, which
    rolls the whole transaction back). A profile that is not one of a VM
    network of the VM's data center becomes the empty profile."""
    if not nics:
        return
    await lock_pool(conn)
    for n in nics:
        profile = n["vnic_profile_id"]
        if profile is not None and not await conn.fetchval(
                "SELECT 1 FROM vnic_profiles p JOIN networks w ON w.id = p.network_id "
                "WHERE p.id = $1 AND w.data_center_id = $2 AND w.vm_network", profile, dc_id):
            profile = None
        await insert_nic(conn, vm_id, str(uuid.uuid4()), n["name"], n["interface"],
                         await allocate_mac(conn, mac_pool_),
                         str(profile) if profile else None, n["plugged"], n["linked"])


def _clash(exc: asyncpg.UniqueViolationError, name: str, mac: str | None) -> Conflict:
    if "mac" in (exc.constraint_name or ""):
        return Conflict(f"The MAC address {mac} is already in use.")
    return Conflict(f"The VM already has a network interface named {name}.")


async def vm_nic_specs(pool: Any, vm_id: str) -> tuple[NicSpec, ...]:
    """The plugged NICs of a VM as domain XML devices: a NIC with a profile
    is on the bridge named after the profile's network."""
    rows = await pool.fetch(
        "SELECT i.mac_address, i.interface, i.linked, n.name AS network "
        "FROM vm_interfaces i LEFT JOIN vnic_profiles p ON p.id = i.vnic_profile_id "
        "LEFT JOIN networks n ON n.id = p.network_id "
        "WHERE i.vm_id = $1 AND i.plugged ORDER BY i.name, i.id", uuid.UUID(vm_id))
    return tuple(NicSpec(mac=r["mac_address"], model=NIC_MODELS.get(r["interface"], "virtio"),
                         network=r["network"] or "", linked=r["linked"]) for r in rows)


class _NicCommand(VmCommand):
    lock_reason = "a change of the VM's network interfaces"
    verb: ClassVar[str] = "change"
    failed_audit: ClassVar[AuditType]

    def __init__(self, services: Any, principal: Principal, vm_id: str, nic_id: str) -> None:
        super().__init__(services, principal, vm_id)
        self.nic_id = nic_id
        self.nic_name = ""

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        if self.row["status"] != "down":
            raise Conflict(f"Cannot {self.verb} a network interface of VM {self.name} while it "
                           f"is {self.row['status']}: NIC hot plug is not supported; stop the "
                           f"VM first.")

    async def load_nic(self) -> asyncpg.Record:
        try:
            key = uuid.UUID(self.nic_id)
        except ValueError:
            raise NotFound(f"nic {self.nic_id} does not exist") from None
        row = await self.s.pool.fetchrow(
            "SELECT * FROM vm_interfaces WHERE id = $1 AND vm_id = $2", key,
            uuid.UUID(self.vm_id))
        if row is None:
            raise NotFound(f"nic {self.nic_id} does not exist")
        self.nic_name = row["name"]
        return row

    async def check_name_free(self, name: str) -> None:
        check_nic_name(name)
        if await self.s.pool.fetchval(
                "SELECT 1 FROM vm_interfaces WHERE vm_id = $1 AND name = $2 AND id <> $3",
                uuid.UUID(self.vm_id), name, uuid.UUID(self.nic_id)):
            raise Conflict(f"Cannot {self.verb} the network interface: VM {self.name} already "
                           f"has one named {name}.")

    async def compensate(self) -> None:
        await self.s.audit.log(self.failed_audit,
                               f"Failed to {self.verb} Interface {self.nic_name or self.nic_id} "
                               f"of VM {self.name}. (User: {self.principal.name})",
                               self.refs())


class AddVmNic(_NicCommand):
    action_type = "AddVmInterface"
    verb = "add"
    failed_audit = AuditType.NETWORK_ADD_VM_INTERFACE_FAILED

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 config: NicConfig) -> None:
        super().__init__(services, principal, vm_id, str(uuid.uuid4()))
        self.config = config
        self.nic_name = config.name or ""
        self.mac: str | None = None

    def description(self) -> str:
        return f"Adding network interface {self.nic_name} to VM {self.name}"

    async def validate(self) -> None:
        c = self.config
        if not c.name:
            raise ValidationFailed("name is required", "name")
        check_interface(c.interface or "virtio")
        self.mac = check_mac(c.mac) if c.mac else None
        await super().validate()
        assert self.row is not None
        await self.check_name_free(c.name)
        if c.vnic_profile_id:
            await check_profile(self.s.pool, c.vnic_profile_id, self.row["cluster_id"])

    async def execute(self) -> str:
        c = self.config
        async with self.s.pool.acquire() as conn, conn.transaction():
            await lock_pool(conn)
            if self.mac is None:
                self.mac = await allocate_mac(conn, mac_pool(self.s))
            elif await mac_in_use(conn, self.mac):
                raise Conflict(f"Cannot add the network interface: the MAC address {self.mac} "
                               f"is already in use.")
            await insert_nic(conn, self.vm_id, self.nic_id, self.nic_name,
                             c.interface or "virtio", self.mac, c.vnic_profile_id,
                             c.plugged is not False, c.linked is not False)
        await self.s.audit.log(AuditType.NETWORK_ADD_VM_INTERFACE,
                               f"Interface {self.nic_name} ({c.interface or 'virtio'}) was "
                               f"added to VM {self.name}. (User: {self.principal.name})",
                               self.refs())
        return self.nic_id


class UpdateVmNic(_NicCommand):
    action_type = "UpdateVmInterface"
    verb = "update"
    failed_audit = AuditType.NETWORK_UPDATE_VM_INTERFACE_FAILED

    def __init__(self, services: Any, principal: Principal, vm_id: str, nic_id: str,
                 config: NicConfig) -> None:
        super().__init__(services, principal, vm_id, nic_id)
        self.config = config
        self.values: dict[str, Any] = {}

    def description(self) -> str:
        return f"Updating network interface {self.nic_name or self.nic_id} of VM {self.name}"

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        nic = await self.load_nic()
        c, v = self.config, self.values
        if c.name is not None and c.name != nic["name"]:
            await self.check_name_free(c.name)
            v["name"] = c.name
        if c.interface is not None:
            check_interface(c.interface)
            v["interface"] = c.interface
        if c.mac is not None:
            mac = check_mac(c.mac)
            if mac != nic["mac_address"]:
                v["mac_address"] = mac
        if c.profile_given:
            if c.vnic_profile_id:
                await check_profile(self.s.pool, c.vnic_profile_id, self.row["cluster_id"])
            v["vnic_profile_id"] = uuid.UUID(c.vnic_profile_id) if c.vnic_profile_id else None
        for key in ("plugged", "linked"):
            if getattr(c, key) is not None:
                v[key] = getattr(c, key)

    async def execute(self) -> str:
        v = self.values
        if v:
            cols = ", ".join(f"{k} = ${i}" for i, k in enumerate(v, start=2))
            async with self.s.pool.acquire() as conn, conn.transaction():
                if "mac_address" in v:
                    await lock_pool(conn)
                    if await mac_in_use(conn, v["mac_address"], uuid.UUID(self.nic_id)):
                        raise Conflict(f"Cannot update the network interface: the MAC address "
                                       f"{v['mac_address']} is already in use.")
                try:
                    await conn.execute(f"UPDATE vm_interfaces SET {cols} WHERE id = $1",
                                       uuid.UUID(self.nic_id), *v.values())
                except asyncpg.UniqueViolationError as exc:
                    raise _clash(exc, v.get("name", self.nic_name),
                                 v.get("mac_address", "")) from None
        await self.s.audit.log(AuditType.NETWORK_UPDATE_VM_INTERFACE,
                               f"Interface {v.get('name', self.nic_name)} was updated for VM "
                               f"{self.name}. (User: {self.principal.name})", self.refs())
        return self.nic_id


class RemoveVmNic(_NicCommand):
    action_type = "RemoveVmInterface"
    verb = "remove"
    failed_audit = AuditType.NETWORK_REMOVE_VM_INTERFACE_FAILED

    def description(self) -> str:
        return f"Removing network interface {self.nic_name or self.nic_id} from VM {self.name}"

    async def validate(self) -> None:
        await super().validate()
        await self.load_nic()

    async def execute(self) -> str:
        await self.s.pool.execute("DELETE FROM vm_interfaces WHERE id = $1",
                                  uuid.UUID(self.nic_id))
        await self.s.audit.log(AuditType.NETWORK_REMOVE_VM_INTERFACE,
                               f"Interface {self.nic_name} was removed from VM {self.name}. "
                               f"(User: {self.principal.name})", self.refs())
        return self.nic_id
