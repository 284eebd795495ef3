"""Hosts and their data center's storage: storage server connections
(mounts/links on the host) and the host's connection to the storage pool.

A host joins its data center's pool when it comes up (HostManager calls
`connect_host` before it records the host as up; a failure makes it
non_operational) and leaves it when it goes to maintenance. Every host has
a stable id in each pool (vds_spm_id_map, 1..250): its sanlock host id.
After a change of domain statuses, `refresh` sends every connected host the
new domain map (StoragePool.connect on a connected pool refreshes it), so
each monitors exactly the pool's active domains.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from typing import Any, Iterable

import asyncpg

from protocol.jsonrpc import JsonRpcError

from ..config import StorageConfig
from ..errors import Conflict
from ..hosts.manager import HostManager, HostUnavailable
from .layout import DomainRef, PoolLayout, host_data_center, pool_domain_dict, pool_layout
from .vdsm import BLANK_UUID, ERR_POOL_UNKNOWN, STORAGE_TYPE_IDS, connection_params

__all__ = ["PoolConnector", "ConnectFailed"]

log = logging.getLogger(__name__)


class ConnectFailed(Conflict):
    """A host could not reach storage it needs."""


class PoolConnector:
    def __init__(self, pool: asyncpg.Pool, hosts: HostManager, cfg: StorageConfig) -> None:
        self.pool = pool
        self.hosts = hosts
        self.cfg = cfg
        # data center -> hosts connected to its storage pool
        self.connected: dict[str, set[str]] = defaultdict(set)

    # ------------------------------------------------------------ queries
    def pool_hosts(self, dc_id: str, statuses: Iterable[str] = ("up",)) -> list[str]:
        """Hosts connected to the pool, linked, and in one of `statuses`."""
        wanted = set(statuses)
        out = []
        for host_id in sorted(self.connected.get(dc_id, ())):
            rt = self.hosts.hosts.get(host_id)
            if rt is not None and rt.connected and rt.status in wanted:
                out.append(host_id)
        return out

    def is_connected(self, dc_id: str, host_id: str) -> bool:
        return host_id in self.connected.get(dc_id, ())

    def is_connected_any(self, host_id: str) -> bool:
        return any(host_id in hosts for hosts in self.connected.values())

    async def spm_id(self, dc_id: str, host_id: str) -> int:
        """The host's id in the pool: given at the first connection, then kept."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE vds_spm_id_map IN SHARE ROW EXCLUSIVE MODE")
            got = await conn.fetchval("SELECT vds_spm_id FROM vds_spm_id_map WHERE "
                                      "data_center_id=$1 AND host_id=$2",
                                      uuid.UUID(dc_id), uuid.UUID(host_id))
            if got is not None:
                return int(got)
            free = await conn.fetchval("""
                SELECT min(n) FROM generate_series(1, 250) n WHERE n NOT IN
                (SELECT vds_spm_id FROM vds_spm_id_map WHERE data_center_id=$1)""",
                uuid.UUID(dc_id))
            if free is None:
                raise ConnectFailed("the data center has no free host id (250 hosts)")
            await conn.execute("INSERT INTO vds_spm_id_map (data_center_id, host_id, "
                               "vds_spm_id) VALUES ($1, $2, $3)",
                               uuid.UUID(dc_id), uuid.UUID(host_id), free)
            return int(free)

    # -------------------------------------------------------- connections
    async def connect_servers(self, host_id: str, connections: list[dict[str, Any]]
                              ) -> dict[str, int]:
        """StoragePool.connectStorageServer per storage type; {connection id: status}."""
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in connections:
            by_type[c["storage_type"]].append(connection_params(c))
        statuses: dict[str, int] = {}
        for storage_type, params in by_type.items():
            result = await self.hosts.call(host_id, "StoragePool.connectStorageServer", {
                "storagepoolID": BLANK_UUID, "domainType": STORAGE_TYPE_IDS[storage_type],
                "connectionParams": params}, timeout_s=self.cfg.call_timeout_s)
            for entry in result:
                statuses[str(entry["id"])] = int(entry["status"])
        return statuses

    async def disconnect_servers(self, host_id: str, connections: list[dict[str, Any]]) -> None:
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in connections:
            by_type[c["storage_type"]].append(connection_params(c))
        for storage_type, params in by_type.items():
            try:
                await self.hosts.call(host_id, "StoragePool.disconnectStorageServer", {
                    "storagepoolID": BLANK_UUID, "domainType": STORAGE_TYPE_IDS[storage_type],
                    "connectionParams": params}, timeout_s=self.cfg.call_timeout_s)
            except (JsonRpcError, HostUnavailable) as exc:
                log.info("disconnecting %s from storage: %s", host_id, exc)

    @staticmethod
    def _connections(domains: Iterable[DomainRef]) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for d in domains:
            if d.connection is not None:
                seen.setdefault(str(d.connection["id"]), d.connection)
        return list(seen.values())

    # -------------------------------------------------------------- pool
    async def connect_host(self, host_id: str) -> str | None:
        """Connect a host to its data center's storage; None, or why it cannot."""
        dc_id = await host_data_center(self.pool, host_id)
        if dc_id is None:
            return None
        layout = await pool_layout(self.pool, dc_id)
        if layout is None or not layout.domains:
            return None
        try:
            statuses = await self.connect_servers(host_id, self._connections(layout.domains))
            bad = [d.name for d in layout.domains if d.status == "active" and d.connection
                   is not None and statuses.get(str(d.connection["id"]), 0) != 0]
            if bad:
                return (f"Host cannot access the Storage Domain(s) {', '.join(bad)} attached "
                        f"to the Data Center {layout.name}")
            if layout.initialized and layout.master is not None and \
                    layout.master.status not in ("maintenance",):
                await self.connect_pool(host_id, layout)
        except (JsonRpcError, HostUnavailable, ConnectFailed) as exc:
            msg = exc.message if isinstance(exc, JsonRpcError) else str(exc)
            return f"cannot connect to the storage of Data Center {layout.name}: {msg}"
        return None

    async def connect_pool(self, host_id: str, layout: PoolLayout) -> None:
        """StoragePool.connect (a refresh when the host is connected already)."""
        master = layout.master
        assert master is not None
        spm_id = await self.spm_id(layout.dc_id, host_id)
        await self.hosts.call(host_id, "StoragePool.connect", {
            "storagepoolID": layout.dc_id, "hostID": spm_id, "scsiKey": layout.dc_id,
            "masterSdUUID": master.id, "masterVersion": layout.master_version,
            "domainDict": pool_domain_dict(layout)}, timeout_s=self.cfg.call_timeout_s)
        self.connected[layout.dc_id].add(host_id)

    async def disconnect_pool(self, host_id: str, dc_id: str) -> None:
        self.connected.get(dc_id, set()).discard(host_id)
        spm_id = await self.pool.fetchval("SELECT vds_spm_id FROM vds_spm_id_map WHERE "
                                          "data_center_id=$1 AND host_id=$2",
                                          uuid.UUID(dc_id), uuid.UUID(host_id))
        try:
            await self.hosts.call(host_id, "StoragePool.disconnect", {
                "storagepoolID": dc_id, "hostID": int(spm_id or 0), "scsiKey": dc_id,
                "remove": False}, timeout_s=self.cfg.call_timeout_s)
        except JsonRpcError as exc:
            if exc.code != ERR_POOL_UNKNOWN:
                raise

    async def disconnect_host(self, host_id: str) -> None:
        """The host leaves its data center's storage (maintenance)."""
        dc_id = await host_data_center(self.pool, host_id)
        if dc_id is None:
            return
        layout = await pool_layout(self.pool, dc_id)
        try:
            await self.disconnect_pool(host_id, dc_id)
        except (JsonRpcError, HostUnavailable) as exc:
            log.info("disconnecting %s from pool %s: %s", host_id, dc_id, exc)
        if layout is not None:
            await self.disconnect_servers(host_id, self._connections(layout.domains))

    async def refresh(self, dc_id: str, extra_hosts: Iterable[str] = ()) -> list[str]:
        """Send every connected host the pool's current domain map; returns the
        hosts that failed (logged; monitoring will tell if they cannot see storage)."""
        layout = await pool_layout(self.pool, dc_id)
        if layout is None or not layout.initialized:
            return []
        failed = []
        hosts = set(self.pool_hosts(dc_id, ("up", "non_operational"))) | set(extra_hosts)
        for host_id in sorted(hosts):
            try:
                await self.connect_servers(host_id, self._connections(layout.domains))
                await self.connect_pool(host_id, layout)
            except (JsonRpcError, HostUnavailable, ConnectFailed) as exc:
                log.warning("refreshing pool %s on host %s: %s", layout.name, host_id, exc)
                failed.append(host_id)
        return failed
