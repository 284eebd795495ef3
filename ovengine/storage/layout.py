"""What the database says about a data center's storage: its domains, their
status in the data center, their connections, the master domain and the
recorded SPM. Read-only queries shared by the storage manager and commands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

__all__ = ["DomainRef", "PoolLayout", "pool_layout", "host_data_center", "pool_domain_dict",
           "pool_data_centers"]


@dataclass(frozen=True, slots=True)
class DomainRef:
    id: str
    name: str
    status: str             # in the data center: active | inactive | maintenance | locked
    master: bool
    storage_type: str
    connection: dict[str, Any] | None  # the storage_server_connections row


@dataclass(frozen=True)
class PoolLayout:
    dc_id: str
    name: str
    local: bool
    status: str
    master_version: int
    spm_host_id: str | None
    domains: tuple[DomainRef, ...] = field(default=())

    @property
    def master(self) -> DomainRef | None:
        return next((d for d in self.domains if d.master), None)

    @property
    def initialized(self) -> bool:
        """The storage pool exists (StoragePool.create ran on its master)."""
        return self.master_version > 0 and self.master is not None

    def active(self) -> list[DomainRef]:
        return [d for d in self.domains if d.status == "active"]


def pool_domain_dict(layout: PoolLayout) -> dict[str, str]:
    """The domainDict of StoragePool.connect: active domains Active, the others
    Attached. The master is Active unless in maintenance (while the engine
    still records it locked, during the attach that made the pool, the pool's
    own metadata already says Active)."""
    def status(d: DomainRef) -> str:
        if d.status == "active" or (d.master and d.status in ("locked", "activating")):
            return "active"
        return "attached"
    return {d.id: status(d) for d in layout.domains}


async def pool_layout(pool: asyncpg.Pool | asyncpg.Connection, dc_id: str) -> PoolLayout | None:
    dc = await pool.fetchrow("SELECT id, name, local, status, master_version, spm_host_id "
                             "FROM data_centers WHERE id=$1", uuid.UUID(dc_id))
    if dc is None:
        return None
    rows = await pool.fetch("""
        SELECT sd.id, sd.name, sd.master, sd.storage_type, m.status,
               c.id AS c_id, c.connection, c.storage_type AS c_type, c.vfs_type,
               c.mount_options, c.nfs_version, c.nfs_retrans, c.nfs_timeo
        FROM storage_pool_iso_map m JOIN storage_domains sd ON sd.id = m.storage_domain_id
        LEFT JOIN storage_server_connections c ON c.id = sd.connection_id
        WHERE m.data_center_id = $1 ORDER BY sd.master DESC, sd.name""", uuid.UUID(dc_id))
    domains = tuple(DomainRef(
        str(r["id"]), r["name"], r["status"], r["master"], r["storage_type"],
        None if r["c_id"] is None else {
            "id": r["c_id"], "connection": r["connection"], "storage_type": r["c_type"],
            "vfs_type": r["vfs_type"], "mount_options": r["mount_options"],
            "nfs_version": r["nfs_version"], "nfs_retrans": r["nfs_retrans"],
            "nfs_timeo": r["nfs_timeo"]})
        for r in rows)
    return PoolLayout(str(dc["id"]), dc["name"], dc["local"], dc["status"],
                      dc["master_version"],
                      str(dc["spm_host_id"]) if dc["spm_host_id"] else None, domains)


async def host_data_center(pool: asyncpg.Pool | asyncpg.Connection, host_id: str) -> str | None:
    dc = await pool.fetchval("SELECT c.data_center_id FROM hosts h JOIN clusters c "
                             "ON c.id = h.cluster_id WHERE h.id = $1", uuid.UUID(host_id))
    return str(dc) if dc else None


async def pool_data_centers(pool: asyncpg.Pool) -> list[str]:
    """Data centers with a storage pool (or on the way to one)."""
    rows = await pool.fetch("SELECT DISTINCT data_center_id FROM storage_pool_iso_map")
    return [str(r["data_center_id"]) for r in rows]
