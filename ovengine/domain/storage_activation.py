"""Storage domains in and out of maintenance: activate, deactivate.

Deactivating the master domain (only as the last active one) stops the SPM
and takes every host out of the pool: the data center goes to maintenance;
activating it again reconnects the hosts and elects an SPM.
"""

from __future__ import annotations

import uuid
from typing import Any

from protocol.jsonrpc import JsonRpcError

from ..errors import Conflict
from ..hosts.manager import HostUnavailable
from ..storage.layout import pool_layout
from ..storage.spm import StorageAudit, _audit
from .commands import Principal
from .storage_base import storage_error
from .storage_domain_base import (DomainCommand, connection_of, host_error, set_map_status,
                                  undo_transient_status)

__all__ = ["ActivateStorageDomain", "DeactivateStorageDomain"]

# -------------------------------------------------------------- activate
class ActivateStorageDomain(DomainCommand):
    action_type = "ActivateStorageDomain"
    verb = "activation"

    def __init__(self, services: Any, principal: Principal, sd_id: str, dc_id: str) -> None:
        super().__init__(services, principal, sd_id, dc_id)
        self.was = ""
        self.pool_restart = False

    def description(self) -> str:
        return f"Activating storage domain {self.name}"

    async def validate(self) -> None:
        row = await self.load()
        self.was = row["dc_status"]
        if self.was not in ("inactive", "maintenance"):
            raise Conflict(f"Cannot activate Storage Domain {self.name}: it is {self.was}.")
        self.pool_restart = bool(row["master"])
        if self.pool_restart:
            if not await self.load_dc_hosts():
                raise Conflict(f"Cannot activate Storage Domain {self.name}: its data center "
                               f"has no host up.")
        else:
            await self.s.storage.spm.require_spm(self.dc_id)

    def has_async_phase(self) -> bool:
        return self.pool_restart

    def recovery_params(self) -> dict[str, Any]:
        return {"sd_id": self.sd_id, "dc_id": self.dc_id, "was": self.was}

    async def execute(self) -> None:
        await set_map_status(self.s, self.sd_id, self.dc_id, "activating")
        connector = self.s.storage.connector
        if self.pool_restart:  # the data center comes back from maintenance
            for host in self.dc_hosts():
                reason = await connector.connect_host(host)
                if reason:
                    rt = self.s.hosts.hosts[host]
                    await self.s.hosts.set_status(rt, "non_operational", reason)
            self.s.storage.wake()
            return
        conn = connection_of(self.row)
        for host in connector.pool_hosts(self.dc_id, ("up", "non_operational")):
            try:
                await connector.connect_servers(host, [conn])
            except (JsonRpcError, HostUnavailable):
                pass
        try:
            await self.s.storage.spm_call(self.dc_id, "StorageDomain.activate", {
                "storagedomainID": self.sd_id, "storagepoolID": self.dc_id})
        except JsonRpcError as exc:
            raise storage_error("The SPM could not activate the domain", exc) from None
        await set_map_status(self.s, self.sd_id, self.dc_id, "active")
        await connector.refresh(self.dc_id)
        await self._done()

    async def finish(self) -> None:
        await self.s.storage.spm.wait_for_spm(self.dc_id,
                                              self.s.config.storage.spm_start_timeout_s)
        await set_map_status(self.s, self.sd_id, self.dc_id, "active")
        await self.s.storage.refresh_status(self.dc_id)
        await self._done()

    async def _done(self) -> None:
        await self.s.audit.log(_audit(StorageAudit.USER_ACTIVATED_STORAGE_DOMAIN),
                               f"Storage Domain {self.name} was activated by "
                               f"{self.principal.name}", self.refs())

    async def compensate(self) -> None:
        await set_map_status(self.s, self.sd_id, self.dc_id, self.was)

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        if not await undo_transient_status(services, params, "activating",
                                            params.get("was") or "inactive"):
            return "nothing to undo"
        return "the domain is back to its previous status: activate it again"


# ------------------------------------------------------------ deactivate
class DeactivateStorageDomain(DomainCommand):
    action_type = "DeactivateStorageDomain"
    verb = "deactivation"

    def __init__(self, services: Any, principal: Principal, sd_id: str, dc_id: str) -> None:
        super().__init__(services, principal, sd_id, dc_id)
        self.was = ""

    def description(self) -> str:
        return f"Deactivating storage domain {self.name}"

    async def validate(self) -> None:
        row = await self.load()
        self.was = row["dc_status"]
        if self.was not in ("active", "inactive"):
            raise Conflict(f"Cannot deactivate Storage Domain {self.name}: it is {self.was}.")
        running = await self.s.pool.fetch("""
            SELECT DISTINCT s.name FROM disks d JOIN disk_attachments a ON a.disk_id = d.id
            JOIN vm_static s ON s.id = a.vm_id JOIN vm_dynamic v ON v.vm_id = s.id
            WHERE d.storage_domain_id = $1 AND v.status <> 'down' ORDER BY s.name""",
            uuid.UUID(self.sd_id))
        if running:
            raise Conflict(f"Cannot deactivate Storage Domain {self.name}: VMs use its disks: "
                           f"{', '.join(r['name'] for r in running)}.")
        if row["master"]:
            others = await self.s.pool.fetchval(
                "SELECT count(*) FROM storage_pool_iso_map WHERE data_center_id=$1 AND "
                "storage_domain_id <> $2 AND status IN ('active', 'locked', 'activating')",
                uuid.UUID(self.dc_id), uuid.UUID(self.sd_id))
            if others:
                raise Conflict(f"Cannot deactivate the master Storage Domain {self.name} while "
                               f"other domains of its data center are active (moving the "
                               f"master role is not supported): deactivate them first.")
            running = await self.s.pool.fetch("""
                SELECT v.vm_id FROM vm_dynamic v JOIN vm_static s ON s.id = v.vm_id
                JOIN clusters c ON c.id = s.cluster_id
                WHERE c.data_center_id = $1 AND v.status <> 'down' LIMIT 1""",
                uuid.UUID(self.dc_id))
            if running:
                raise Conflict(f"Cannot deactivate the master Storage Domain {self.name}: VMs "
                               f"run in its data center.")
        else:
            await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"sd_id": self.sd_id, "dc_id": self.dc_id, "was": self.was}

    async def execute(self) -> None:
        await set_map_status(self.s, self.sd_id, self.dc_id, "preparing_for_maintenance")
        connector = self.s.storage.connector
        if self.row["master"]:  # the whole pool goes down
            await self.s.storage.spm.stop_pool(self.dc_id)
            for host in sorted(connector.connected.get(self.dc_id, set())):
                try:
                    await connector.disconnect_pool(host, self.dc_id)
                except (JsonRpcError, HostUnavailable) as exc:
                    raise host_error("A host could not leave the storage pool", exc) from None
            await set_map_status(self.s, self.sd_id, self.dc_id, "maintenance")
            await self.s.storage.refresh_status(self.dc_id)
        else:
            layout = await pool_layout(self.s.pool, self.dc_id)
            assert layout is not None and layout.master is not None
            try:
                await self.s.storage.spm_call(self.dc_id, "StorageDomain.deactivate", {
                    "storagedomainID": self.sd_id, "storagepoolID": self.dc_id,
                    "masterSdUUID": layout.master.id, "masterVersion": layout.master_version})
            except JsonRpcError as exc:
                raise storage_error("The SPM could not deactivate the domain", exc) from None
            await set_map_status(self.s, self.sd_id, self.dc_id, "maintenance")
            await connector.refresh(self.dc_id)
        self.s.storage.wake()
        await self.s.audit.log(_audit(StorageAudit.USER_DEACTIVATED_STORAGE_DOMAIN),
                               f"Storage Domain {self.name} was deactivated and has moved to "
                               f"'Maintenance' by {self.principal.name}.", self.refs())

    async def compensate(self) -> None:
        await set_map_status(self.s, self.sd_id, self.dc_id, self.was)

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        if not await undo_transient_status(services, params, "preparing_for_maintenance",
                                            "inactive"):
            return "nothing to undo"
        return "the domain is inactive: deactivate it again, or activate it"
