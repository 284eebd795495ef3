"""VmMonitor: feeds host reports (events and polls) through reconcile() and
applies the changes: database, audit log, live notifications, host clean-up.

Reports of one host are applied one at a time (a lock per host), so an event
and a poll of the same host never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Awaitable, Callable

import asyncpg

from ..audit import AuditLog, AuditRefs, AuditType
from ..bus import EventBus
from .reconcile import ExternalVm, ReleaseVm, StatsUpdate, StatusChange, Vanished, reconcile
from .report import HostReport, ReportedVm
from .store import ExitInfo, VmStateStore, display_from_report

__all__ = ["VmMonitor", "Releaser"]

log = logging.getLogger(__name__)

Releaser = Callable[[str, str], Awaitable[None]]  # (host_id, vm_id)


class VmMonitor:
    def __init__(self, pool: asyncpg.Pool, store: VmStateStore, audit: AuditLog,
                 bus: EventBus) -> None:
        self.pool = pool
        self.store = store
        self.audit = audit
        self.bus = bus
        self.release: Releaser | None = None
        self.host_names: dict[str, str] = {}
        self.host_clusters: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.applied_reports = 0

    def _lock(self, host_id: str) -> asyncio.Lock:
        lock = self._locks.get(host_id)
        if lock is None:
            lock = self._locks[host_id] = asyncio.Lock()
        return lock

    async def apply(self, report: HostReport) -> None:
        async with self._lock(report.host_id):
            changes = reconcile(self.store.view, self.store.on_host(report.host_id), report)
            stats: list[tuple[str, dict[str, Any]]] = []
            for c in changes:
                if isinstance(c, StatsUpdate):
                    stats.append((c.vm_id, c.stats))
                elif isinstance(c, StatusChange):
                    await self._status_change(c)
                elif isinstance(c, Vanished):
                    await self._vanished(c)
                elif isinstance(c, ExternalVm):
                    await self._external(c)
                elif isinstance(c, ReleaseVm):
                    self._release(c.host_id, c.vm_id)
            if stats:
                await self.store.write_stats(stats)
            self.applied_reports += 1

    # ------------------------------------------------------------ changes
    async def _status_change(self, c: StatusChange) -> None:
        r = c.report
        exit_info = None
        if c.new_status == "down":
            exit_info = ExitInfo(r.exit_code, r.exit_message, r.exit_reason)
        view = await self.store.set_status(
            c.vm_id, c.new_status, c.host_id, agent_time=c.agent_time, exit_info=exit_info,
            pause_code=r.pause_code, display=display_from_report(r.display),
            xml_hash=r.xml_hash)
        await self._audit_status(view.name, c.vm_id, c.host_id, c.old_status, c.new_status, r)
        self.bus.publish("vm", {"id": c.vm_id, "name": view.name, "status": c.new_status,
                                "host_id": c.host_id if c.new_status != "down" else None})

    async def _audit_status(self, name: str, vm_id: str, host_id: str, old: str, new: str,
                            r: ReportedVm | None) -> None:
        host = self.host_names.get(host_id, host_id)
        refs = AuditRefs(vm_id=uuid.UUID(vm_id), vm_name=name, host_id=uuid.UUID(host_id),
                         host_name=host)
        if new == "down":
            message = (r.exit_message if r and r.exit_message else "") or "unknown reason"
            if r is not None and r.exit_code:
                await self.audit.log(AuditType.VM_DOWN_ERROR,
                                     f"VM {name} is down with error. Exit message: {message}.",
                                     refs)
            else:
                await self.audit.log(AuditType.VM_DOWN,
                                     f"VM {name} is down. Exit message: {message}.", refs)
        elif new == "up" and old in ("wait_for_launch", "powering_up", "down"):
            await self.audit.log(AuditType.USER_RUN_VM, f"VM {name} started on Host {host}",
                                 refs)
        elif new == "paused" and r is not None and r.pause_code in ("EIO", "ENOSPC"):
            kind = AuditType.VM_PAUSED_EIO if r.pause_code == "EIO" else \
                AuditType.VM_PAUSED_ENOSPC
            await self.audit.log(kind, f"VM {name} has been paused due to a storage error "
                                       f"({r.pause_code}).", refs)
        elif new == "not_responding":
            await self.audit.log(AuditType.VM_NOT_RESPONDING, f"VM {name} is not responding.",
                                 refs)
        elif new == "unknown":
            await self.audit.log(AuditType.VM_SET_TO_UNKNOWN_STATUS,
                                 f"VM {name} was set to the Unknown status.", refs)
        else:
            await self.audit.log(AuditType.VM_STATUS_CHANGED,
                                 f"VM {name} status changed from {old} to {new} "
                                 f"(Host: {host}).", refs)

    async def _vanished(self, c: Vanished) -> None:
        exit_info = ExitInfo(1, "VM is not running on its host any more", 9)
        view = await self.store.set_status(c.vm_id, "down", None, exit_info=exit_info,
                                           stop_reason="vanished")
        host = self.host_names.get(c.host_id, c.host_id)
        await self.audit.log(AuditType.VM_DOWN_ERROR,
                             f"VM {view.name} is down with error. Exit message: VM is not "
                             f"running on Host {host} any more.",
                             AuditRefs(vm_id=uuid.UUID(c.vm_id), vm_name=view.name,
                                       host_id=uuid.UUID(c.host_id), host_name=host))
        self.bus.publish("vm", {"id": c.vm_id, "name": view.name, "status": "down",
                                "host_id": None})

    async def _external(self, c: ExternalVm) -> None:
        """Record a VM the host runs but ov did not start (oVirt: external-<name>)."""
        r = c.report
        base = f"external-{r.name or r.vm_id[:8]}"
        cluster = self.host_clusters.get(c.host_id)
        async with self.pool.acquire() as conn, conn.transaction():
            name = base
            n = 1
            while await conn.fetchval(
                    "SELECT 1 FROM vm_static WHERE entity_type = 'vm' AND name = $1", name):
                n += 1
                name = f"{base}-{n}"
            await conn.execute("""
                INSERT INTO vm_static (id, entity_type, name, description, cluster_id, origin,
                                       template_id, original_template_id)
                VALUES ($1, 'vm', $2, 'Running on a host but not started by the engine',
                        $3, 'external', '00000000-0000-0000-0000-000000000000',
                        '00000000-0000-0000-0000-000000000000')
                ON CONFLICT (id) DO NOTHING""",
                uuid.UUID(r.vm_id), name, uuid.UUID(cluster) if cluster else None)
            await conn.execute("INSERT INTO vm_dynamic (vm_id) VALUES ($1) "
                               "ON CONFLICT DO NOTHING", uuid.UUID(r.vm_id))
            await conn.execute("INSERT INTO vm_statistics (vm_id) VALUES ($1) "
                               "ON CONFLICT DO NOTHING", uuid.UUID(r.vm_id))
        self.store.add(r.vm_id, name)
        await self.store.set_status(r.vm_id, r.status, c.host_id, agent_time=r.agent_time,
                                    display=display_from_report(r.display))
        host = self.host_names.get(c.host_id, c.host_id)
        await self.audit.log(AuditType.VM_EXTERNAL_DISCOVERED,
                             f"VM {name} was discovered running on Host {host} (external).",
                             AuditRefs(vm_id=uuid.UUID(r.vm_id), vm_name=name,
                                       host_id=uuid.UUID(c.host_id), host_name=host))

    def _release(self, host_id: str, vm_id: str) -> None:
        if self.release is None:
            return
        task = asyncio.get_running_loop().create_task(self.release(host_id, vm_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ host-wide
    async def host_lost(self, host_id: str) -> None:
        """The host is non responsive: what ran there is now unknown."""
        async with self._lock(host_id):
            for vm_id in list(self.store.on_host(host_id)):
                v = self.store.get(vm_id)
                if v is None or v.status in ("down", "unknown"):
                    continue
                await self.store.set_status(vm_id, "unknown", host_id)
                await self._audit_status(v.name, vm_id, host_id, v.status, "unknown", None)
                self.bus.publish("vm", {"id": vm_id, "name": v.name, "status": "unknown",
                                        "host_id": host_id})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
