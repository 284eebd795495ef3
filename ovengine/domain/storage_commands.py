"""Storage domains: add (create on storage through a host), attach to a data
center, activate, deactivate (maintenance), detach, remove.

The first domain attached to a data center becomes its master: the engine
connects the data center's up hosts to it, creates the storage pool on it
(StoragePool.create, master version 1), connects every host to the pool
with its host id, and waits (an asynchronous phase) until an SPM is elected;
the domain is then active and the data center up. Further domains are
attached and activated by the SPM, then every host gets the new domain map.

The master domain can go to maintenance only as the last active domain:
the SPM stops, every host leaves the pool, the data center is in
maintenance; activating it again reconnects the hosts and elects an SPM.
Detaching the master (the last domain) makes the data center uninitialized
again; the domain's metadata still names the data center's pool, so it can
be attached again to that data center only (or formatted when removed).
Moving the master role to another domain (oVirt's reconstruct) is not
supported.
"""

from __future__ import annotations

import uuid
from typing import Any

from protocol.jsonrpc import JsonRpcError

from ..errors import Conflict, NotFound, OperationFailed, ValidationFailed
from ..hosts.manager import HostUnavailable
from ..storage.layout import pool_layout
from ..storage.spm import StorageAudit, _audit
from ..storage.vdsm import DATA_CLASS, DOMAIN_VERSION, STORAGE_TYPE_IDS
from .commands import Command, Principal
from .locks import LockSpec
from .storage_base import storage_error
from .storage_domain_base import (DOMAIN_NAME, DomainCommand, StorageSpec, connection_of,
                                  host_error, set_map_status, unattach)

__all__ = ["AddStorageDomain", "AttachStorageDomain", "DetachStorageDomain",
           "RemoveStorageDomain", "StorageSpec"]

# ------------------------------------------------------------------- add
class AddStorageDomain(Command):
    action_type = "AddStorageDomain"

    def __init__(self, services: Any, principal: Principal, name: str, host_id: str,
                 storage: StorageSpec, domain_type: str = "data", description: str = "",
                 comment: str = "", wipe_after_delete: bool = False,
                 sd_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.name = name
        self.host_id = host_id
        self.storage = storage
        self.domain_type = domain_type
        self.sd_description = description
        self.comment = comment
        self.wipe_after_delete = wipe_after_delete
        self.sd_id = sd_id or str(uuid.uuid4())
        self.conn_id = str(uuid.uuid4())

    def description(self) -> str:
        return f"Adding storage domain {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("storage_domain_name", str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                               f"sd:{self.name}")),
                         reason=self.description()),
                LockSpec("storage_domain", self.sd_id, reason=self.description())]

    async def validate(self) -> None:
        st = self.storage
        if not DOMAIN_NAME.match(self.name or ""):
            raise ValidationFailed(f"Invalid storage domain name {self.name!r}: use 1-50 "
                                   f"letters, digits, '_', '-' or '.'", "name")
        if self.domain_type != "data":
            raise ValidationFailed(f"storage domain type {self.domain_type!r} is not "
                                   f"supported (data)", "type")
        if st.storage_type not in STORAGE_TYPE_IDS:
            raise ValidationFailed(f"storage type {st.storage_type!r} is not supported "
                                   f"({', '.join(STORAGE_TYPE_IDS)})", "storage.type")
        if not st.path or not st.path.startswith("/"):
            raise ValidationFailed("storage.path must be an absolute path", "storage.path")
        if st.storage_type == "nfs" and not st.address:
            raise ValidationFailed("an NFS domain needs storage.address", "storage.address")
        if st.storage_type == "posixfs" and not st.vfs_type:
            raise ValidationFailed("a POSIX domain needs storage.vfs_type (\"none\" binds a "
                                   "local directory)", "storage.vfs_type")
        if await self.s.pool.fetchval("SELECT 1 FROM storage_domains WHERE name=$1", self.name):
            raise Conflict(f"Cannot add Storage. The Storage Domain name {self.name} is "
                           f"already in use.")
        used = await self.s.pool.fetchval(
            "SELECT sd.name FROM storage_server_connections c JOIN storage_domains sd ON "
            "sd.connection_id = c.id WHERE c.connection=$1 AND c.storage_type=$2",
            st.connection, st.storage_type)
        if used:
            raise Conflict(f"Cannot add Storage: the connection {st.connection} is used by "
                           f"storage domain {used} already.")
        rt = self.s.hosts.hosts.get(self.host_id)
        if rt is None:
            raise ValidationFailed(f"host {self.host_id} does not exist", "host")
        if rt.status != "up" or not rt.connected:
            raise Conflict(f"Cannot add Storage: host {rt.name} is {rt.status}.")

    async def execute(self) -> str:
        st = self.storage
        connector = self.s.storage.connector
        conn = st.row(self.conn_id)
        try:
            statuses = await connector.connect_servers(self.host_id, [conn])
        except (JsonRpcError, HostUnavailable) as exc:
            raise host_error("The host could not connect to the storage", exc) from None
        if statuses.get(self.conn_id, 0) != 0:
            raise OperationFailed(f"The host could not connect to the storage "
                                  f"{st.connection} (error {statuses[self.conn_id]}).")
        try:
            await self.s.hosts.call(self.host_id, "StorageDomain.create", {
                "storagedomainID": self.sd_id, "domainType": STORAGE_TYPE_IDS[st.storage_type],
                "typeArgs": st.connection, "name": self.name, "domainClass": DATA_CLASS,
                "version": str(DOMAIN_VERSION)}, timeout_s=self.s.config.storage.call_timeout_s)
        except (JsonRpcError, HostUnavailable) as exc:
            raise host_error("The host could not create the storage domain", exc) from None
        total = free = 0
        try:
            stats = await self.s.hosts.call(self.host_id, "StorageDomain.getStats",
                                            {"storagedomainID": self.sd_id})
            total, free = int(stats["disktotal"]), int(stats["diskfree"])
        except (JsonRpcError, HostUnavailable, KeyError, ValueError):
            pass
        async with self.s.pool.acquire() as c, c.transaction():
            await c.execute("""
                INSERT INTO storage_server_connections (id, connection, storage_type, vfs_type,
                    mount_options, nfs_version, nfs_retrans, nfs_timeo)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                uuid.UUID(self.conn_id), st.connection, st.storage_type, st.vfs_type,
                st.mount_options, st.nfs_version, st.nfs_retrans, st.nfs_timeo)
            await c.execute("""
                INSERT INTO storage_domains (id, name, description, comment, domain_type,
                    storage_type, address, path, status, connection_id, wipe_after_delete,
                    available_bytes, used_bytes, storage_format, space_checked_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'unattached', $9, $10, $11, $12, 'v5',
                        now())""",
                uuid.UUID(self.sd_id), self.name, self.sd_description, self.comment,
                self.domain_type, st.storage_type, st.address, st.path,
                uuid.UUID(self.conn_id), self.wipe_after_delete, free, max(0, total - free))
        rt = self.s.hosts.hosts[self.host_id]
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_STORAGE_DOMAIN),
                               f"Storage Domain {self.name} was added by "
                               f"{self.principal.name} (Host {rt.name}).",
                               self.audit_refs(storage_domain_id=uuid.UUID(self.sd_id),
                                               host_id=uuid.UUID(self.host_id),
                                               host_name=rt.name))
        return self.sd_id


# ---------------------------------------------------------------- attach
class AttachStorageDomain(DomainCommand):
    action_type = "AttachStorageDomainToPool"
    verb = "attachment"

    def __init__(self, services: Any, principal: Principal, sd_id: str, dc_id: str) -> None:
        super().__init__(services, principal, sd_id, dc_id)
        self.first = False
        self.pool_created = False
        self.hosts: list[str] = []
        self.attached = False

    def description(self) -> str:
        return f"Attaching storage domain {self.name} to data center {self.dc_id}"

    async def validate(self) -> None:
        row = await self.load(in_dc=False)
        dc = await self.s.pool.fetchrow("SELECT * FROM data_centers WHERE id=$1",
                                        uuid.UUID(self.dc_id))
        if dc is None:
            raise NotFound(f"data center {self.dc_id} does not exist")
        self.dc_name = dc["name"]
        if row["map_dc"] is not None:
            raise Conflict(f"Cannot attach Storage Domain {self.name}: it is attached to a "
                           f"data center already.")
        if row["status"] != "unattached":
            raise Conflict(f"Cannot attach Storage Domain {self.name}: it is {row['status']}.")
        if row["storage_type"] == "localfs" and not dc["local"]:
            raise Conflict(f"Cannot attach the local Storage Domain {self.name} to the shared "
                           f"Data Center {dc['name']}.")
        layout = await pool_layout(self.s.pool, self.dc_id)
        assert layout is not None
        self.first = not layout.domains
        if layout.domains and not layout.initialized:
            raise Conflict(f"Cannot attach Storage Domain {self.name}: Data Center "
                           f"{dc['name']} has no storage pool yet (an earlier attachment did "
                           f"not complete; detach its domain first).")
        if self.first:
            self.hosts = await self.load_dc_hosts()
            if not self.hosts:
                raise Conflict(f"Cannot attach Storage Domain {self.name}: Data Center "
                               f"{dc['name']} has no host up.")
        else:
            await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"sd_id": self.sd_id, "dc_id": self.dc_id, "first": self.first}

    def has_async_phase(self) -> bool:
        return self.first

    async def execute(self) -> str:
        async with self.s.pool.acquire() as c, c.transaction():
            await c.execute("INSERT INTO storage_pool_iso_map (storage_domain_id, "
                            "data_center_id, status) VALUES ($1, $2, 'locked')",
                            uuid.UUID(self.sd_id), uuid.UUID(self.dc_id))
            await c.execute("UPDATE storage_domains SET data_center_id=$2, master=$3 "
                            "WHERE id=$1", uuid.UUID(self.sd_id), uuid.UUID(self.dc_id),
                            self.first)
        if self.first:
            await self._create_pool()
        else:
            await self._attach_to_pool()
        return self.sd_id

    async def _create_pool(self) -> None:
        connector = self.s.storage.connector
        conn = connection_of(self.row)
        ok = []
        for host in self.hosts:
            try:
                statuses = await connector.connect_servers(host, [conn])
            except (JsonRpcError, HostUnavailable):
                continue
            if statuses.get(str(conn["id"]), 0) == 0:
                ok.append(host)
        if not ok:
            raise OperationFailed(f"No host of Data Center {self.dc_name} could connect to "
                                  f"the storage of {self.name}.")
        try:
            await self.s.hosts.call(ok[0], "StoragePool.create", {
                "storagepoolID": self.dc_id, "name": self.dc_name, "masterSdUUID": self.sd_id,
                "masterVersion": 1, "domainList": [self.sd_id], "lockRenewalIntervalSec": 5,
                "leaseTimeSec": 60, "ioOpTimeoutSec": 10, "leaseRetries": 3},
                timeout_s=self.s.config.storage.spm_start_timeout_s)
        except (JsonRpcError, HostUnavailable) as exc:
            raise host_error("Creating the storage pool failed", exc) from None
        self.pool_created = True
        await self.s.pool.execute("UPDATE data_centers SET master_version=1 WHERE id=$1",
                                  uuid.UUID(self.dc_id))
        layout = await pool_layout(self.s.pool, self.dc_id)
        assert layout is not None
        for host in ok:
            try:
                await connector.connect_pool(host, layout)
            except (JsonRpcError, HostUnavailable) as exc:
                if host == ok[0]:
                    raise host_error("Connecting to the new storage pool failed",
                                      exc) from None
        self.s.storage.wake()

    async def finish(self) -> None:
        # The first domain: active once an SPM runs the new pool.
        await self.s.storage.spm.wait_for_spm(self.dc_id,
                                              self.s.config.storage.spm_start_timeout_s)
        await set_map_status(self.s, self.sd_id, self.dc_id, "active")
        await self.s.storage.refresh_status(self.dc_id)
        self.s.storage.wake()
        await self._audit_attached()

    async def _attach_to_pool(self) -> None:
        connector = self.s.storage.connector
        conn = connection_of(self.row)
        for host in connector.pool_hosts(self.dc_id, ("up", "non_operational")):
            try:
                await connector.connect_servers(host, [conn])
            except (JsonRpcError, HostUnavailable):
                pass  # domain monitoring will tell
        params = {"storagedomainID": self.sd_id, "storagepoolID": self.dc_id}
        try:
            await self.s.storage.spm_call(self.dc_id, "StorageDomain.attach", params)
            self.attached = True
            await self.s.storage.spm_call(self.dc_id, "StorageDomain.activate", params)
        except JsonRpcError as exc:
            raise storage_error("The SPM refused the domain", exc) from None
        except HostUnavailable as exc:
            raise OperationFailed(f"The SPM is not reachable: {exc.detail}") from None
        await set_map_status(self.s, self.sd_id, self.dc_id, "active")
        await connector.refresh(self.dc_id)
        await self._audit_attached()
        await self.s.audit.log(_audit(StorageAudit.USER_ACTIVATED_STORAGE_DOMAIN),
                               f"Storage Domain {self.name} (Data Center {self.dc_name}) was "
                               f"activated by {self.principal.name}", self.refs())

    async def _audit_attached(self) -> None:
        await self.s.audit.log(_audit(StorageAudit.USER_ATTACH_STORAGE_DOMAIN_TO_POOL),
                               f"Storage Domain {self.name} was attached to Data Center "
                               f"{self.dc_name} by {self.principal.name}", self.refs())

    async def compensate(self) -> None:
        if self.pool_created or self.attached:
            # On storage it is part of the pool now: keep it, inactive.
            if not self.first:
                await set_map_status(self.s, self.sd_id, self.dc_id, "inactive")
            return
        await unattach(self.s, self.sd_id, self.dc_id)
        await self.s.audit.log(_audit(StorageAudit.USER_ATTACH_STORAGE_DOMAIN_TO_POOL_FAILED),
                               f"Failed to attach Storage Domain {self.name} to Data Center "
                               f"{self.dc_name}.", self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        sd_id, dc_id = params.get("sd_id"), params.get("dc_id")
        if not sd_id or not dc_id:
            return "nothing to undo"
        status = await services.pool.fetchval(
            "SELECT status FROM storage_pool_iso_map WHERE storage_domain_id=$1 AND "
            "data_center_id=$2", uuid.UUID(sd_id), uuid.UUID(dc_id))
        if status != "locked":
            return "nothing to undo"
        master_version = await services.pool.fetchval(
            "SELECT master_version FROM data_centers WHERE id=$1", uuid.UUID(dc_id))
        if params.get("first"):
            if master_version:
                await set_map_status(services, sd_id, dc_id, "active")
                return "the storage pool was created: its master domain is active"
            await unattach(services, sd_id, dc_id)
            return "the storage pool was not created: the domain is unattached again"
        await set_map_status(services, sd_id, dc_id, "inactive")
        return "the domain is inactive: activate it (or detach it)"


# ---------------------------------------------------------------- detach
class DetachStorageDomain(DomainCommand):
    action_type = "DetachStorageDomainFromPool"
    verb = "detachment"

    def description(self) -> str:
        return f"Detaching storage domain {self.name}"

    async def validate(self) -> None:
        row = await self.load()
        if row["dc_status"] not in ("maintenance", "inactive"):
            raise Conflict(f"Cannot detach Storage Domain {self.name}: it is "
                           f"{row['dc_status']}; move it to maintenance first.")
        disks = await self.s.pool.fetchval("SELECT count(*) FROM disks WHERE "
                                           "storage_domain_id=$1", uuid.UUID(self.sd_id))
        if disks:
            raise Conflict(f"Cannot detach Storage Domain {self.name}: it holds {disks} "
                           f"disk(s) the engine uses; remove them first.")
        if row["master"]:
            others = await self.s.pool.fetchval(
                "SELECT count(*) FROM storage_pool_iso_map WHERE data_center_id=$1 AND "
                "storage_domain_id <> $2", uuid.UUID(self.dc_id), uuid.UUID(self.sd_id))
            if others:
                raise Conflict(f"Cannot detach the master Storage Domain {self.name} while "
                               f"the data center has other domains.")
            if row["dc_status"] != "maintenance":
                raise Conflict(f"Cannot detach the master Storage Domain {self.name}: move "
                               f"it to maintenance first.")
        else:
            await self.s.storage.spm.require_spm(self.dc_id)

    async def execute(self) -> None:
        if not self.row["master"]:
            layout = await pool_layout(self.s.pool, self.dc_id)
            assert layout is not None and layout.master is not None
            try:
                await self.s.storage.spm_call(self.dc_id, "StorageDomain.detach", {
                    "storagedomainID": self.sd_id, "storagepoolID": self.dc_id,
                    "masterSdUUID": layout.master.id, "masterVersion": layout.master_version,
                    "force": "false"})
            except JsonRpcError as exc:
                raise storage_error("The SPM could not detach the domain", exc) from None
        await unattach(self.s, self.sd_id, self.dc_id)
        if self.row["master"]:
            await self.s.pool.execute("UPDATE data_centers SET master_version=0, "
                                      "spm_host_id=NULL, status='uninitialized' WHERE id=$1",
                                      uuid.UUID(self.dc_id))
            self.s.storage.connector.connected.pop(self.dc_id, None)
        else:
            await self.s.storage.connector.refresh(self.dc_id)
        self.s.storage.wake()
        await self.s.audit.log(_audit(StorageAudit.USER_DETACH_STORAGE_DOMAIN_FROM_POOL),
                               f"Storage Domain {self.name} was detached from Data Center by "
                               f"{self.principal.name}", self.refs())


# ---------------------------------------------------------------- remove
class RemoveStorageDomain(DomainCommand):
    action_type = "RemoveStorageDomain"
    verb = "removal"

    def __init__(self, services: Any, principal: Principal, sd_id: str,
                 host_id: str | None = None, format: bool = False,
                 destroy: bool = False) -> None:
        super().__init__(services, principal, sd_id)
        self.host_id = host_id
        self.format = format
        self.destroy = destroy

    def description(self) -> str:
        return f"Removing storage domain {self.name}"

    async def validate(self) -> None:
        row = await self.load(in_dc=False)
        if row["map_dc"] is not None:
            raise Conflict(f"Cannot remove Storage Domain {self.name}: it is attached to a "
                           f"data center; detach it first.")
        if self.destroy:
            return
        if self.host_id is None:
            raise ValidationFailed("the host to remove the domain with is required (host=)",
                                   "host")
        rt = self.s.hosts.hosts.get(self.host_id)
        if rt is None:
            raise ValidationFailed(f"host {self.host_id} does not exist", "host")
        if rt.status != "up" or not rt.connected:
            raise Conflict(f"Cannot remove Storage Domain {self.name}: host {rt.name} is "
                           f"{rt.status}.")

    async def execute(self) -> None:
        if not self.destroy and self.host_id is not None:
            connector = self.s.storage.connector
            conn = connection_of(self.row)
            try:
                await connector.connect_servers(self.host_id, [conn])
                if self.format:
                    await self.s.hosts.call(self.host_id, "StorageDomain.format", {
                        "storagedomainID": self.sd_id, "autoDetach": True},
                        timeout_s=self.s.config.storage.call_timeout_s)
                else:  # it must at least be there and readable
                    await self.s.hosts.call(self.host_id, "StorageDomain.getInfo",
                                            {"storagedomainID": self.sd_id})
            except (JsonRpcError, HostUnavailable) as exc:
                raise host_error("The host could not reach the storage domain (destroy=true "
                                  "removes it from the engine anyway)", exc) from None
            await connector.disconnect_servers(self.host_id, [conn])
        async with self.s.pool.acquire() as c, c.transaction():
            await c.execute("DELETE FROM disks WHERE storage_domain_id=$1",
                            uuid.UUID(self.sd_id))
            await c.execute("DELETE FROM permissions WHERE object_type='storage_domain' AND "
                            "object_id=$1", uuid.UUID(self.sd_id))
            await c.execute("DELETE FROM storage_domains WHERE id=$1", uuid.UUID(self.sd_id))
            if self.row["connection_id"] is not None:
                await c.execute("DELETE FROM storage_server_connections WHERE id=$1 AND NOT "
                                "EXISTS (SELECT 1 FROM storage_domains WHERE connection_id=$1)",
                                self.row["connection_id"])
        await self.s.audit.log(_audit(StorageAudit.USER_REMOVE_STORAGE_DOMAIN),
                               f"Storage Domain {self.name} was removed by "
                               f"{self.principal.name}", self.refs())
