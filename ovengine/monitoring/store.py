"""VmStateStore: the one write path for VM runtime state (vm_dynamic, vm_statistics).

Monitoring and commands both change VM status through here, so the database
and the in-memory view that `reconcile()` reads never disagree. The view is
loaded once at start; afterwards every write updates the database first and
then the view.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable
from uuid import UUID

import asyncpg

from .reconcile import VmView
from .report import RUNNING_STATUSES

__all__ = ["VmStateStore", "ExitInfo", "Display"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExitInfo:
    status: int | None
    message: str | None
    reason: int | None


@dataclass(frozen=True, slots=True)
class Display:
    type: str | None
    address: str | None
    port: int | None
    tls_port: int | None


def _int_or_none(value: Any) -> int | None:
    try:
        v = int(value)
    except (TypeError, ValueError):
        return None
    return v if v >= 0 else None


def display_from_report(display: Iterable[dict[str, str]]) -> Display | None:
    for d in display:
        return Display(d.get("type"), d.get("ipAddress"), _int_or_none(d.get("port")),
                       _int_or_none(d.get("tlsPort")))
    return None


@dataclass
class VmStateStore:
    pool: asyncpg.Pool
    view: dict[str, VmView] = field(default_factory=dict)
    by_host: dict[str, set[str]] = field(default_factory=dict)
    # Called with (vm_id, host_id) when a VM that ran on a host went down.
    stop_listeners: list[Callable[[str, str], None]] = field(default_factory=list)

    async def load(self) -> None:
        rows = await self.pool.fetch("""
            SELECT s.id, s.name, d.status, d.run_on_host_id, d.agent_status_time,
                   extract(epoch FROM d.status_changed_at) AS changed
            FROM vm_static s JOIN vm_dynamic d ON d.vm_id = s.id
            WHERE s.entity_type = 'vm'""")
        self.view.clear()
        self.by_host.clear()
        for r in rows:
            host = str(r["run_on_host_id"]) if r["run_on_host_id"] else None
            self._put(VmView(str(r["id"]), r["name"], r["status"], host,
                             r["agent_status_time"], float(r["changed"])))
        log.info("VM state loaded: %d VMs", len(self.view))

    def _put(self, v: VmView) -> None:
        old = self.view.get(v.vm_id)
        if old is not None and old.run_on_host_id and old.run_on_host_id != v.run_on_host_id:
            self.by_host.get(old.run_on_host_id, set()).discard(v.vm_id)
        self.view[v.vm_id] = v
        if v.run_on_host_id:
            self.by_host.setdefault(v.run_on_host_id, set()).add(v.vm_id)

    def on_host(self, host_id: str) -> set[str]:
        return self.by_host.get(host_id, set())

    def get(self, vm_id: str) -> VmView | None:
        return self.view.get(vm_id)

    def add(self, vm_id: str, name: str) -> None:
        self._put(VmView(vm_id, name, "down", None, 0, time.time()))

    def remove(self, vm_id: str) -> None:
        v = self.view.pop(vm_id, None)
        if v is not None and v.run_on_host_id:
            self.by_host.get(v.run_on_host_id, set()).discard(vm_id)

    def rename(self, vm_id: str, name: str) -> None:
        v = self.view.get(vm_id)
        if v is not None:
            self.view[vm_id] = replace(v, name=name)

    async def set_status(self, vm_id: str, status: str, host_id: str | None, *,
                         agent_time: int | None = None, exit_info: ExitInfo | None = None,
                         pause_code: str | None = None, display: Display | None = None,
                         xml_hash: str | None = None, stop_reason: str | None = None,
                         expect: VmView | None = None,
                         conn: asyncpg.Connection | None = None) -> VmView:
        """Record a status (and where the VM runs now: None when it does not).

        With `expect`, the write happens only if the VM's state is still that
        view: a command that learns the outcome of a host call must not
        overwrite a newer report that arrived during the call.
        """
        old = self.view.get(vm_id)
        if expect is not None and old is not expect and old is not None:
            return old
        if status not in RUNNING_STATUSES:
            host_id = None
        now = time.time()
        started = status in ("wait_for_launch", "powering_up", "up") and (
            old is None or old.status not in RUNNING_STATUSES)
        stopped = status == "down" and old is not None and old.status != "down"
        await (conn or self.pool).execute("""
            UPDATE vm_dynamic SET
                status = $2,
                run_on_host_id = $3,
                last_host_id = COALESCE($3, last_host_id),
                agent_status_time = GREATEST(agent_status_time, COALESCE($4::bigint, 0)),
                status_changed_at = to_timestamp($5),
                start_time = CASE WHEN $6 THEN to_timestamp($5) ELSE start_time END,
                stop_time = CASE WHEN $7 THEN to_timestamp($5) ELSE stop_time END,
                exit_status = CASE WHEN $7 THEN $8 WHEN $6 THEN NULL ELSE exit_status END,
                exit_message = CASE WHEN $7 THEN $9 WHEN $6 THEN NULL ELSE exit_message END,
                exit_reason = CASE WHEN $7 THEN $10 WHEN $6 THEN NULL ELSE exit_reason END,
                stop_reason = CASE WHEN $7 THEN $11 WHEN $6 THEN NULL ELSE stop_reason END,
                pause_code = $12,
                display_type = COALESCE($13, display_type),
                display_address = COALESCE($14, display_address),
                display_port = CASE WHEN $3 IS NULL THEN NULL ELSE COALESCE($15, display_port)
                               END,
                display_tls_port = CASE WHEN $3 IS NULL THEN NULL
                                   ELSE COALESCE($16, display_tls_port) END,
                domxml_hash = COALESCE($17, domxml_hash),
                not_responding = ($2 = 'not_responding')
            WHERE vm_id = $1""",
            UUID(vm_id), status, UUID(host_id) if host_id else None, agent_time, now,
            started, stopped,
            exit_info.status if exit_info else None, exit_info.message if exit_info else None,
            exit_info.reason if exit_info else None, stop_reason,
            pause_code if status == "paused" else None,
            display.type if display else None, display.address if display else None,
            display.port if display else None, display.tls_port if display else None,
            xml_hash)
        agent = max(old.agent_time if old else 0, agent_time or 0)
        name = old.name if old else vm_id
        view = VmView(vm_id, name, status, host_id, agent, now)
        self._put(view)
        if stopped and old is not None and old.run_on_host_id:
            for listener in self.stop_listeners:
                listener(vm_id, old.run_on_host_id)
        return view

    async def write_stats(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        """Statistics of many VMs in one statement (polls bring them in bulk)."""
        if not batch:
            return
        ids = [UUID(vm_id) for vm_id, _ in batch]
        await self.pool.execute("""
            UPDATE vm_statistics AS t SET
                cpu_user = u.cpu_user, cpu_sys = u.cpu_sys, mem_usage = u.mem_usage,
                elapsed_s = u.elapsed_s, network = u.network, disks = u.disks,
                updated_at = now()
            FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::int[], $5::int8[],
                        $6::jsonb[], $7::jsonb[])
                 AS u(vm_id, cpu_user, cpu_sys, mem_usage, elapsed_s, network, disks)
            WHERE t.vm_id = u.vm_id""",
            ids, [s["cpu_user"] for _, s in batch], [s["cpu_sys"] for _, s in batch],
            [s["mem_usage"] for _, s in batch], [s["elapsed_s"] for _, s in batch],
            [s["network"] for _, s in batch], [s["disks"] for _, s in batch])
