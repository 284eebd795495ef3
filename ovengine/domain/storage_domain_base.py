"""What the storage domain commands share: the domain spec, loading a
domain with its data center row, status changes of its pool map entry, and
the base class of commands on an existing domain."""

from __future__ import annotations

import re
import uuid
from typing import Any

from protocol.jsonrpc import JsonRpcError

from ..audit import AuditRefs
from ..errors import NotFound, OperationFailed
from ..storage.vdsm import connection_path
from .commands import Command, Principal
from .locks import LockSpec
from .storage_base import storage_error

__all__ = ["StorageSpec", "DomainCommand", "DOMAIN_NAME", "load_domain", "connection_of",
           "set_map_status", "host_error", "undo_transient_status", "unattach"]

DOMAIN_NAME = re.compile(r"^[\w.\-]{1,50}$")


class StorageSpec:
    """Where a new domain lives (oVirt's HostStorage)."""

    def __init__(self, storage_type: str, path: str, address: str = "", vfs_type: str = "",
                 mount_options: str = "", nfs_version: str = "", nfs_retrans: int | None = None,
                 nfs_timeo: int | None = None) -> None:
        self.storage_type = storage_type
        self.path = path
        self.address = address
        self.vfs_type = vfs_type
        self.mount_options = mount_options
        self.nfs_version = nfs_version
        self.nfs_retrans = nfs_retrans
        self.nfs_timeo = nfs_timeo

    @property
    def connection(self) -> str:
        return connection_path(self.storage_type, self.address, self.path)

    def row(self, conn_id: str) -> dict[str, Any]:
        return {"id": conn_id, "connection": self.connection, "storage_type": self.storage_type,
                "vfs_type": self.vfs_type, "mount_options": self.mount_options,
                "nfs_version": self.nfs_version, "nfs_retrans": self.nfs_retrans,
                "nfs_timeo": self.nfs_timeo}


async def load_domain(s: Any, sd_id: str) -> Any:
    try:
        key = uuid.UUID(sd_id)
    except ValueError:
        raise NotFound(f"storage domain {sd_id} does not exist") from None
    row = await s.pool.fetchrow("""
        SELECT sd.*, m.status AS dc_status, m.data_center_id AS map_dc,
               c.connection, c.storage_type AS c_type, c.vfs_type, c.mount_options,
               c.nfs_version, c.nfs_retrans, c.nfs_timeo
        FROM storage_domains sd
        LEFT JOIN storage_pool_iso_map m ON m.storage_domain_id = sd.id
        LEFT JOIN storage_server_connections c ON c.id = sd.connection_id
        WHERE sd.id = $1""", key)
    if row is None:
        raise NotFound(f"storage domain {sd_id} does not exist")
    return row


def connection_of(row: Any) -> dict[str, Any]:
    return {"id": row["connection_id"], "connection": row["connection"],
            "storage_type": row["c_type"], "vfs_type": row["vfs_type"],
            "mount_options": row["mount_options"], "nfs_version": row["nfs_version"],
            "nfs_retrans": row["nfs_retrans"], "nfs_timeo": row["nfs_timeo"]}


async def set_map_status(s: Any, sd_id: str, dc_id: str, status: str) -> None:
    await s.pool.execute("UPDATE storage_pool_iso_map SET status=$3, status_changed_at=now() "
                         "WHERE storage_domain_id=$1 AND data_center_id=$2",
                         uuid.UUID(sd_id), uuid.UUID(dc_id), status)


def host_error(what: str, exc: Exception) -> OperationFailed:
    if isinstance(exc, JsonRpcError):
        return storage_error(what, exc)
    return OperationFailed(f"{what}: {exc}")


async def undo_transient_status(services: Any, params: dict[str, Any], transient: str,
                                 back_to: str) -> bool:
    """Crash recovery of activate/deactivate: a domain left in `transient`
    goes back to `back_to`. False when the command died before knowing its
    domain."""
    sd_id, dc_id = params.get("sd_id"), params.get("dc_id")
    if not sd_id or not dc_id:
        return False
    await services.pool.execute(
        "UPDATE storage_pool_iso_map SET status=$3 WHERE storage_domain_id=$1 AND "
        "data_center_id=$2 AND status=$4", uuid.UUID(sd_id), uuid.UUID(dc_id), back_to,
        transient)
    return True


class DomainCommand(Command):
    """A command on an existing domain, in a data center (or not)."""

    verb = "change"

    def __init__(self, services: Any, principal: Principal, sd_id: str,
                 dc_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.sd_id = sd_id
        self.dc_id = dc_id or ""
        self.row: Any = None
        self.dc_name = self.dc_id
        self._dc_host_ids: set[str] = set()

    @property
    def name(self) -> str:
        return self.row["name"] if self.row is not None else self.sd_id

    def locks(self) -> list[LockSpec]:
        out = [LockSpec("storage_domain", self.sd_id, reason=f"a storage domain {self.verb}")]
        if self.dc_id:
            out.append(LockSpec("storage_pool", self.dc_id,
                                reason=f"a storage domain {self.verb}"))
        return out

    async def load(self, in_dc: bool = True) -> Any:
        self.row = row = await load_domain(self.s, self.sd_id)
        if in_dc:
            if row["map_dc"] is None or str(row["map_dc"]) != self.dc_id:
                raise NotFound(f"storage domain {self.sd_id} is not attached to data center "
                               f"{self.dc_id}")
        return row

    def refs(self) -> AuditRefs:
        return self.audit_refs(storage_domain_id=uuid.UUID(self.sd_id),
                               data_center_id=uuid.UUID(self.dc_id) if self.dc_id else None)

    def dc_hosts(self) -> list[str]:
        """Up hosts of the data center's clusters."""
        return [h.id for h in self.s.hosts.hosts.values()
                if h.status == "up" and h.connected and h.id in self._dc_host_ids]

    async def load_dc_hosts(self) -> list[str]:
        rows = await self.s.pool.fetch("SELECT h.id FROM hosts h JOIN clusters c ON "
                                       "c.id = h.cluster_id WHERE c.data_center_id=$1",
                                       uuid.UUID(self.dc_id))
        self._dc_host_ids = {str(r["id"]) for r in rows}
        return self.dc_hosts()


async def unattach(s: Any, sd_id: str, dc_id: str) -> None:
    async with s.pool.acquire() as c, c.transaction():
        await c.execute("DELETE FROM storage_pool_iso_map WHERE storage_domain_id=$1 AND "
                        "data_center_id=$2", uuid.UUID(sd_id), uuid.UUID(dc_id))
        await c.execute("UPDATE storage_domains SET data_center_id=NULL, master=false, "
                        "status='unattached' WHERE id=$1", uuid.UUID(sd_id))
