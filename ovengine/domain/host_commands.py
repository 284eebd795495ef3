"""Host commands: add (enroll), remove (revoke), maintenance, activate.

Enrollment: the host makes its own key and a certificate request (CSR); the
engine signs it for exactly the address it will use to reach the host and
records the certificate's fingerprint, which is the only identity it will
accept from that address. Removing a host revokes its certificate.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Any

from protocol import pki

from ..audit import AuditType
from ..errors import Conflict, NotFound, ValidationFailed
from .commands import Command, Principal
from .locks import LockSpec

__all__ = ["AddHost", "RemoveHost", "DeactivateHost", "ActivateHost", "EnrolledHost"]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_NAME = re.compile(r"^[\w.\-]{1,255}$")


def _check_address(address: str) -> None:
    try:
        ipaddress.ip_address(address)
        return
    except ValueError:
        pass
    if not _HOSTNAME.match(address):
        raise ValidationFailed(f"Invalid host address {address!r}", "address")


@dataclass(frozen=True)
class EnrolledHost:
    host_id: str
    certificate_pem: bytes
    ca_pem: bytes


async def _host_row(pool: Any, host_id: str) -> Any:
    try:
        key = uuid.UUID(host_id)
    except ValueError:
        raise NotFound(f"host {host_id} does not exist") from None
    row = await pool.fetchrow("""
        SELECT h.*, d.status, d.admin_status FROM hosts h
        JOIN host_dynamic d ON d.host_id = h.id WHERE h.id = $1""", key)
    if row is None:
        raise NotFound(f"host {host_id} does not exist")
    return row


class AddHost(Command):
    action_type = "AddHost"

    def __init__(self, services: Any, principal: Principal, name: str, address: str,
                 cluster_id: str, csr_pem: bytes, port: int = 54321,
                 description: str = "") -> None:
        super().__init__(services, principal)
        self.name = name
        self.address = address
        self.port = port
        self.cluster_id = cluster_id
        self.csr_pem = csr_pem
        self.host_description = description
        self.host_id = str(uuid.uuid4())

    def description(self) -> str:
        return f"Adding host {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("host_name", str(uuid.uuid5(uuid.NAMESPACE_OID, f"host:{self.name}")),
                         reason=f"the addition of host {self.name}")]

    async def validate(self) -> None:
        if not _NAME.match(self.name or ""):
            raise ValidationFailed(f"Invalid host name {self.name!r}", "name")
        _check_address(self.address)
        if not 0 < self.port < 65536:
            raise ValidationFailed(f"Invalid port {self.port}", "port")
        pool = self.s.pool
        if await pool.fetchval("SELECT 1 FROM hosts WHERE name=$1", self.name):
            raise Conflict(f"Cannot add Host. The Host name {self.name} is already in use.")
        if await pool.fetchval("SELECT 1 FROM hosts WHERE address=$1 AND port=$2",
                               self.address, self.port):
            raise Conflict(f"Cannot add Host. Address {self.address}:{self.port} is already "
                           f"used by another host.")
        try:
            cluster = await pool.fetchval("SELECT 1 FROM clusters WHERE id=$1",
                                          uuid.UUID(self.cluster_id))
        except ValueError:
            cluster = None
        if not cluster:
            raise ValidationFailed(f"Cluster {self.cluster_id} does not exist", "cluster")
        try:
            pki.load_csr(self.csr_pem)
        except ValueError as exc:
            raise ValidationFailed(f"Invalid certificate request: {exc}",
                                   "certificate_request") from None

    async def execute(self) -> EnrolledHost:
        issued = await asyncio.to_thread(self.s.ca.sign_host_csr, self.csr_pem, self.name,
                                         [self.address])
        cert_pem = pki.cert_to_pem(issued.cert)
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO hosts (id, name, description, address, port, cluster_id, "
                "cert_fingerprint, cert_serial) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                uuid.UUID(self.host_id), self.name, self.host_description, self.address,
                self.port, uuid.UUID(self.cluster_id), pki.fingerprint(issued.cert),
                issued.serial)
            await conn.execute("INSERT INTO host_dynamic (host_id) VALUES ($1)",
                               uuid.UUID(self.host_id))
            await conn.execute("INSERT INTO host_statistics (host_id) VALUES ($1)",
                               uuid.UUID(self.host_id))
        await self.s.hosts.add(self.host_id)
        await self.s.audit.log(AuditType.USER_ADD_VDS,
                               f"Host {self.name} was added by {self.principal.name}.",
                               self.audit_refs(host_id=uuid.UUID(self.host_id),
                                               host_name=self.name,
                                               cluster_id=uuid.UUID(self.cluster_id)))
        return EnrolledHost(self.host_id, cert_pem, self.s.ca.ca_pem())


class _HostCommand(Command):
    def __init__(self, services: Any, principal: Principal, host_id: str) -> None:
        super().__init__(services, principal)
        self.host_id = host_id
        self.row: Any = None

    def locks(self) -> list[LockSpec]:
        return [LockSpec("host", self.host_id, reason=self.description())]

    async def validate(self) -> None:
        self.row = await _host_row(self.s.pool, self.host_id)

    @property
    def name(self) -> str:
        return self.row["name"] if self.row is not None else self.host_id

    def refs(self) -> Any:
        return self.audit_refs(host_id=uuid.UUID(self.host_id), host_name=self.name)

    def running_vms(self) -> list[str]:
        return [vm_id for vm_id in self.s.store.on_host(self.host_id)
                if (v := self.s.store.get(vm_id)) is not None and v.status != "down"]


class RemoveHost(_HostCommand):
    action_type = "RemoveHost"

    def description(self) -> str:
        return f"Removing host {self.name}"

    async def validate(self) -> None:
        await super().validate()
        if self.row["status"] not in ("maintenance", "non_responsive", "installing",
                                      "install_failed"):
            raise Conflict(f"Cannot remove Host {self.name}: it is {self.row['status']}. "
                           f"Move it to maintenance first.")
        if self.running_vms():
            raise Conflict(f"Cannot remove Host {self.name}: it still runs VMs.")

    async def execute(self) -> None:
        await self.s.hosts.remove(self.host_id)
        serial = self.row["cert_serial"]
        async with self.s.pool.acquire() as conn, conn.transaction():
            if serial is not None:
                revoked = await conn.fetchval(
                    "SELECT value FROM engine_settings WHERE key='revoked_serials'") or []
                revoked = [*revoked, str(serial)]
                await conn.execute(
                    "INSERT INTO engine_settings (key, value) VALUES ('revoked_serials', $1) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", revoked)
                await asyncio.to_thread(self.s.ca.write_crl_blocking,
                                        [int(s) for s in revoked])
            await conn.execute("DELETE FROM permissions WHERE object_type='host' "
                               "AND object_id=$1", uuid.UUID(self.host_id))
            await conn.execute("DELETE FROM hosts WHERE id=$1", uuid.UUID(self.host_id))
        await self.s.audit.log(AuditType.USER_REMOVE_VDS,
                               f"Host {self.name} was removed by {self.principal.name}.",
                               self.refs())


class DeactivateHost(_HostCommand):
    """Maintenance. Until live migration lands, the host must have no running VMs."""

    action_type = "MaintenanceHost"

    def description(self) -> str:
        return f"Moving host {self.name} to maintenance"

    async def validate(self) -> None:
        await super().validate()
        if self.row["status"] == "maintenance":
            raise Conflict(f"Host {self.name} is already in maintenance")
        vms = self.running_vms()
        if vms:
            raise Conflict(f"Cannot switch Host {self.name} to Maintenance mode: it runs "
                           f"{len(vms)} VM(s); stop or migrate them first.")

    async def execute(self) -> None:
        # Stop it being SPM (refused while storage tasks run on it) and leave
        # the storage pool before it is in maintenance.
        await self.s.storage.host_maintenance(self.host_id)
        await self.s.hosts.set_admin_status(self.host_id, "maintenance")
        await self.s.audit.log(AuditType.USER_VDS_MAINTENANCE,
                               f"Host {self.name} was switched to Maintenance mode by "
                               f"{self.principal.name}.", self.refs())


class ActivateHost(_HostCommand):
    action_type = "ActivateHost"

    def description(self) -> str:
        return f"Activating host {self.name}"

    async def validate(self) -> None:
        await super().validate()
        if self.row["admin_status"] != "maintenance" and self.row["status"] != "maintenance":
            raise Conflict(f"Host {self.name} is not in maintenance")

    async def execute(self) -> None:
        await self.s.hosts.set_admin_status(self.host_id, "up")
        await self.s.audit.log(AuditType.VDS_ACTIVATE,
                               f"Activation of host {self.name} initiated by "
                               f"{self.principal.name}.", self.refs())
