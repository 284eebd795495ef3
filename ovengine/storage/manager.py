"""StorageManager: the engine's storage runtime, built by the daemon.

It owns the pool connector (hosts <-> storage), the SPM manager, domain
monitoring and the orphan tasks of a crashed engine, and runs one
supervisor loop (every `storage.spm_poll_interval_s`, or at once when
something changed) that, per data center with a storage pool, verifies or
elects the SPM, refreshes domain space from the SPM, judges the hosts'
domain reports and records the data center's status.

HostManager calls it (`host_ready` before a host is recorded up,
`host_stats` with each Host.getStats); VmStateStore tells it when a VM went
down on a host (its images are torn down there). Commands use it to reach
the SPM (`spm_call`, `start_task`), wait for tasks (`waiter`) and prepare
images (`prepare_image`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg

from protocol.jsonrpc import JsonRpcError

from ..audit import AuditLog, AuditRefs
from ..bus import EventBus
from ..config import StorageConfig
from ..hosts.manager import HostManager, HostUnavailable
from ..monitoring.store import VmStateStore
from .connector import PoolConnector
from .layout import PoolLayout, pool_data_centers, pool_layout
from .monitor import DomainMonitor
from .spm import SpmManager, StorageAudit, _audit
from .tasks import OrphanTasks, SpmTask, TaskWaiter

__all__ = ["StorageManager"]

log = logging.getLogger(__name__)


class StorageManager:
    def __init__(self, pool: asyncpg.Pool, hosts: HostManager, store: VmStateStore,
                 audit: AuditLog, bus: EventBus, cfg: StorageConfig) -> None:
        self.pool = pool
        self.hosts = hosts
        self.audit = audit
        self.bus = bus
        self.cfg = cfg
        self.waiter = TaskWaiter(hosts, cfg)
        self.connector = PoolConnector(pool, hosts, cfg)
        self.spm = SpmManager(pool, hosts, self.connector, self.waiter, audit, cfg)
        self.monitor = DomainMonitor(pool, hosts, self.connector, audit, cfg)
        self.orphans = OrphanTasks(pool, self.waiter, audit)
        self.spm.on_change.append(self.wake)
        hosts.storage = self
        store.stop_listeners.append(self._vm_stopped)
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.rounds = 0

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        orphans = await self.orphans.load()
        if orphans:
            log.warning("%d storage tasks of interrupted commands will be checked when "
                        "their hosts answer", orphans)
        self._loop = asyncio.get_running_loop().create_task(self._run(), name="storage")

    async def close(self) -> None:
        tasks = [t for t in (self._loop, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.spm.close()

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())
        task.add_done_callback(done)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end storage monitoring
                log.exception("storage round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.cfg.spm_poll_interval_s)
            except asyncio.TimeoutError:
                pass

    async def round(self) -> None:
        for dc_id in await pool_data_centers(self.pool):
            layout = await pool_layout(self.pool, dc_id)
            if layout is None:
                continue
            await self.spm.check(layout)
            if layout.initialized:
                await self.monitor.check(layout)
                await self._refresh_space(layout)
            await self._record_status(layout)
        await self.monitor.retry_unconnected()
        if self.orphans.orphans:
            await self.orphans.reap()
        self.rounds += 1

    # ------------------------------------------------------ data center status
    def dc_status(self, layout: PoolLayout) -> str:
        master = layout.master
        if not layout.initialized or master is None:
            return "contend" if layout.dc_id in self.spm.elections else "uninitialized"
        if master.status == "maintenance":
            return "maintenance"
        if self.spm.spm_of(layout.dc_id) is not None:
            return "up" if master.status == "active" else "contend"
        if layout.dc_id in self.spm.elections:
            return "contend"
        if self.spm.candidates(layout.dc_id):
            return "problematic"
        if master.status == "locked":
            return "uninitialized"
        return "not_operational"

    async def _record_status(self, layout: PoolLayout) -> None:
        status = self.dc_status(layout)
        if status == layout.status:
            return
        await self.pool.execute("UPDATE data_centers SET status=$2 WHERE id=$1",
                                uuid.UUID(layout.dc_id), status)
        log.info("data center %s: %s -> %s", layout.name, layout.status, status)
        refs = AuditRefs(data_center_id=uuid.UUID(layout.dc_id))
        if status == "not_operational":
            await self.audit.log(
                _audit(StorageAudit.SYSTEM_CHANGE_STORAGE_POOL_STATUS_NO_HOST_FOR_SPM),
                f"No host of Data Center {layout.name} can be its Storage Pool Manager. "
                f"Setting status to Non-Operational.", refs)
        elif status == "problematic" and layout.status == "up":
            await self.audit.log(
                _audit(StorageAudit.SYSTEM_CHANGE_STORAGE_POOL_STATUS_PROBLEMATIC),
                f"Invalid status on Data Center {layout.name}. Setting status to Non "
                f"Responsive.", refs)
        self.bus.publish("data_center", {"id": layout.dc_id, "name": layout.name,
                                         "status": status})

    async def refresh_status(self, dc_id: str) -> str:
        """Record the data center's status now (commands call it after changes)."""
        layout = await pool_layout(self.pool, dc_id)
        if layout is None:
            return "unknown"
        await self._record_status(layout)
        return self.dc_status(layout)

    async def _refresh_space(self, layout: PoolLayout) -> None:
        host = self.spm.spm_of(layout.dc_id)
        if host is None:
            return
        try:
            info = await self.hosts.call(host, "StoragePool.getInfo",
                                         {"storagepoolID": layout.dc_id},
                                         timeout_s=self.cfg.call_timeout_s)
        except (JsonRpcError, HostUnavailable) as exc:
            log.info("StoragePool.getInfo on the SPM of %s: %s", layout.name, exc)
            return
        for sd_id, entry in (info.get("dominfo") or {}).items():
            if "disktotal" not in entry or "diskfree" not in entry:
                continue
            total, free = int(entry["disktotal"]), int(entry["diskfree"])
            await self.pool.execute("""
                UPDATE storage_domains SET available_bytes=$2, used_bytes=$3,
                    committed_bytes=(SELECT COALESCE(sum(size), 0) FROM images
                                     WHERE storage_domain_id=$1),
                    space_checked_at=now()
                WHERE id=$1""", uuid.UUID(sd_id), free, max(0, total - free))

    # ---------------------------------------------------------- host hooks
    async def host_ready(self, host_id: str) -> str | None:
        """Before a host is recorded up: connect it to its data center's storage."""
        try:
            reason = await self.connector.connect_host(host_id)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the host cannot use storage
            log.exception("connecting host %s to its storage", host_id)
            reason = f"connecting to its storage failed: {exc}"
        if reason is None:
            self.monitor.non_operational.discard(host_id)
        else:
            rt = self.hosts.hosts.get(host_id)
            await self.audit.log(_audit(StorageAudit.VDS_SET_NONOPERATIONAL_DOMAIN),
                                 f"{reason}. Setting Host state to Non-Operational.",
                                 AuditRefs(host_id=uuid.UUID(host_id),
                                           host_name=rt.name if rt else None))
            self.monitor.non_operational.add(host_id)
        self.wake()
        return reason

    def host_stats(self, host_id: str, domains: dict[str, Any]) -> None:
        self.monitor.on_host_stats(host_id, domains)

    async def host_maintenance(self, host_id: str) -> None:
        """The host goes to maintenance: stop it being SPM, leave the pool."""
        # Still "up" meanwhile: without this the supervisor may elect it SPM
        # again between spmStop and the disconnect, and sanlock kills an agent
        # that leaves a lockspace while it holds the SDM lease there.
        self.spm.leaving.add(host_id)
        try:
            await self.spm.release(host_id)
            await self.connector.disconnect_host(host_id)
        finally:
            self.spm.leaving.discard(host_id)
        self.monitor.non_operational.discard(host_id)
        self.wake()

    # ------------------------------------------------------------ routing
    async def spm_call(self, dc_id: str, method: str, params: dict[str, Any],
                       timeout_s: float | None = None) -> Any:
        return await self.spm.spm_call(dc_id, method, params, timeout_s)

    async def start_task(self, dc_id: str, method: str, params: dict[str, Any]) -> SpmTask:
        return await self.spm.start_task(dc_id, method, params)

    async def host_call(self, host_id: str, method: str, params: dict[str, Any]) -> Any:
        return await self.hosts.call(host_id, method, params, timeout_s=self.cfg.call_timeout_s)

    # ------------------------------------------------------------ VM images
    async def prepare_image(self, host_id: str, dc_id: str, sd_id: str, disk_id: str,
                            volume_id: str) -> str:
        result = await self.host_call(host_id, "Image.prepare", {
            "storagepoolID": dc_id, "storagedomainID": sd_id, "imageID": disk_id,
            "volumeID": volume_id})
        return str(result["path"])

    async def teardown_image(self, host_id: str, dc_id: str, sd_id: str, disk_id: str,
                             volume_id: str | None = None) -> None:
        try:
            await self.host_call(host_id, "Image.teardown", {
                "storagepoolID": dc_id, "storagedomainID": sd_id, "imageID": disk_id,
                "volumeID": volume_id})
        except (JsonRpcError, HostUnavailable) as exc:
            log.info("Image.teardown of %s on %s: %s", disk_id, host_id, exc)

    def _vm_stopped(self, vm_id: str, host_id: str) -> None:
        self._spawn(self.teardown_vm(vm_id, host_id), f"teardown {vm_id}")

    async def teardown_vm(self, vm_id: str, host_id: str) -> None:
        rows = await self.pool.fetch("""
            SELECT d.id, d.storage_domain_id, d.image_id, c.data_center_id
            FROM disk_attachments a JOIN disks d ON d.id = a.disk_id
            JOIN vm_static s ON s.id = a.vm_id JOIN clusters c ON c.id = s.cluster_id
            WHERE a.vm_id = $1 AND d.storage_domain_id IS NOT NULL""", uuid.UUID(vm_id))
        for r in rows:
            await self.teardown_image(host_id, str(r["data_center_id"]),
                                      str(r["storage_domain_id"]), str(r["id"]),
                                      str(r["image_id"]) if r["image_id"] else None)
