"""HostManager: a persistent STOMP/TLS link to every host and the host state machine.

States (oVirt's): installing (added, never reached) -> initializing (link up,
capabilities being read) -> up | maintenance. A lost link (heart-beat silence
or a closed connection) makes the host `connecting`; if it is not back within
the grace period it becomes `non_responsive` and its VMs `unknown`. When the
link returns, capabilities are read again and a full VM poll reconciles.

No thread per host: one RpcClient (a protocol object) and one polling task per
host on the event loop; polls run under a semaphore so at most
`max_concurrent_polls` are in flight whatever the number of hosts.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Protocol

import asyncpg

from protocol.jsonrpc import ErrorCode, JsonRpcError
from protocol.rpc import ClientState, RpcClient, RpcConnectionError

from ..audit import AuditLog, AuditRefs, AuditType
from ..bus import EventBus
from ..config import HostsConfig, MonitoringConfig
from ..errors import Conflict, NotFound
from ..monitoring.report import HostReport, reported_vm_from_stats, reported_vms_from_event
from ..monitoring.vm_monitor import VmMonitor
from .caps import (
    HostFacts,
    HostStats,
    facts_from_capabilities,
    save_capabilities,
    save_statistics,
    stats_from_report,
)

__all__ = ["HostManager", "HostRuntime", "HostUnavailable", "HostStorageHooks"]

log = logging.getLogger(__name__)

# Statuses in which the engine polls a connected host.
_POLLED = frozenset({"up", "maintenance", "preparing_for_maintenance", "non_operational"})
# Statuses a lost link turns into "connecting".
_LINKED = frozenset({"up", "initializing", "maintenance", "preparing_for_maintenance",
                     "non_operational"})


class HostUnavailable(Conflict):
    """The host is not connected (409: retry when it is up)."""


class HostStorageHooks(Protocol):
    """What the storage manager needs to hear from host management."""

    async def host_ready(self, host_id: str) -> str | None:
        """Before a host is recorded up: connect it to its storage; None or why not."""

    def host_stats(self, host_id: str, domains: dict[str, Any]) -> None:
        """The storageDomains member of a Host.getStats report."""


@dataclass(eq=False)
class HostRuntime:
    id: str
    name: str
    address: str
    port: int
    cluster_id: str
    fingerprint: str | None
    status: str
    admin_status: str = "up"
    client: RpcClient | None = None
    facts: HostFacts | None = None
    stats: HostStats | None = None
    # Memory promised to VMs started since the last statistics (MiB).
    pending_mib: int = 0
    grace: asyncio.TimerHandle | None = None
    poll_task: asyncio.Task[None] | None = None
    last_host_stats_at: float = 0.0
    connects: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.state is ClientState.CONNECTED


class HostManager:
    def __init__(self, pool: asyncpg.Pool, cfg: HostsConfig, mon: MonitoringConfig,
                 ssl_context: ssl.SSLContext, audit: AuditLog, bus: EventBus,
                 monitor: VmMonitor) -> None:
        self.pool = pool
        self.cfg = cfg
        self.mon = mon
        self.ssl_context = ssl_context
        self.audit = audit
        self.bus = bus
        self.monitor = monitor
        monitor.release = self._release_vm
        self.hosts: dict[str, HostRuntime] = {}
        # Set by the storage manager (it is built after this).
        self.storage: HostStorageHooks | None = None
        self._sem = asyncio.Semaphore(cfg.max_concurrent_polls)
        self._closing = False

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        rows = await self.pool.fetch("""
            SELECT h.id, h.name, h.address, h.port, h.cluster_id, h.cert_fingerprint,
                   d.status, d.admin_status
            FROM hosts h JOIN host_dynamic d ON d.host_id = h.id""")
        for r in rows:
            self._attach(self._runtime(r))
        log.info("connecting to %d hosts", len(rows))

    @staticmethod
    def _runtime(r: asyncpg.Record) -> HostRuntime:
        return HostRuntime(str(r["id"]), r["name"], r["address"], r["port"],
                           str(r["cluster_id"]), r["cert_fingerprint"], r["status"],
                           r["admin_status"])

    async def close(self) -> None:
        self._closing = True
        await asyncio.gather(*(self._detach(rt) for rt in list(self.hosts.values())),
                             return_exceptions=True)

    def _attach(self, rt: HostRuntime) -> None:
        self.hosts[rt.id] = rt
        self.monitor.host_names[rt.id] = rt.name
        self.monitor.host_clusters[rt.id] = rt.cluster_id
        hb = self.cfg.heartbeat_ms
        rt.client = RpcClient(
            rt.address, rt.port, self.ssl_context, server_hostname=rt.address,
            expected_fingerprint=rt.fingerprint, heartbeat_ms=(hb, hb),
            call_timeout_s=self.cfg.call_timeout_s, connect_timeout_s=self.cfg.connect_timeout_s,
            backoff_initial_s=self.cfg.reconnect_initial_s,
            backoff_max_s=self.cfg.reconnect_max_s,
            on_event=lambda m, p: self._on_event(rt, m, p),
            on_state=lambda s, reason: self._on_state(rt, s, reason), name=rt.name)
        rt.client.start()
        # A fresh context: the host's monitoring must not carry the flow id of
        # whatever command attached it.
        rt.poll_task = asyncio.get_running_loop().create_task(
            self._poll_loop(rt), name=f"poll {rt.name}", context=contextvars.Context())
        if rt.status not in ("installing",):
            # Until the link is back we do not know: start the grace clock now.
            self._start_grace(rt)

    async def _detach(self, rt: HostRuntime) -> None:
        if rt.grace is not None:
            rt.grace.cancel()
            rt.grace = None
        tasks = [t for t in (rt.poll_task, *rt.tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if rt.client is not None:
            await rt.client.close()

    def _spawn(self, rt: HostRuntime, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{name} {rt.name}")
        rt.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            rt.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", t.get_name(), exc_info=t.exception())
        task.add_done_callback(done)

    # --------------------------------------------------------------- states
    def _on_state(self, rt: HostRuntime, state: ClientState, reason: str | None) -> None:
        if self._closing:
            return
        if state is ClientState.CONNECTED:
            self._spawn(rt, self._connected(rt), "host-connected")
        elif state is ClientState.DISCONNECTED:
            if rt.status in _LINKED:
                self._spawn(rt, self.set_status(rt, "connecting", reason or "link lost"),
                            "host-connecting")
            self._start_grace(rt)

    def _start_grace(self, rt: HostRuntime) -> None:
        if rt.grace is None:
            rt.grace = asyncio.get_running_loop().call_later(
                self.cfg.grace_period_s,
                lambda: self._spawn(rt, self._grace_expired(rt), "host-grace"))

    async def _grace_expired(self, rt: HostRuntime) -> None:
        rt.grace = None
        if rt.connected or rt.status in ("non_responsive",):
            return
        await self.set_status(rt, "non_responsive",
                              rt.client.last_error if rt.client else "unreachable")
        await self.monitor.host_lost(rt.id)

    async def _connected(self, rt: HostRuntime) -> None:
        if rt.grace is not None:
            rt.grace.cancel()
            rt.grace = None
        rt.connects += 1
        link = rt.connects
        if rt.status != "maintenance":
            await self.set_status(rt, "initializing", "reading capabilities")
        # A failed initialization on a link that stays up (a timed out call, an
        # agent error, a database hiccup) is retried: nothing else would ever
        # move the host out of "initializing". A new link starts its own round.
        delay = self.cfg.reconnect_initial_s
        while rt.connected and rt.connects == link and not self._closing:
            try:
                await self._initialize(rt)
            except Exception as exc:  # a bug must not leave the host initializing either
                expected = isinstance(exc, (RpcConnectionError, JsonRpcError,
                                            asyncpg.PostgresError, OSError))
                log.warning("host %s: initialization failed: %s (retry in %.1f s)",
                            rt.name, exc, delay, exc_info=not expected)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)
                continue
            if rt.connected and rt.connects == link:
                status, detail = await self._ready_status(rt)
                if rt.connected and rt.connects == link:
                    await self.set_status(rt, status, detail)
            return

    async def _initialize(self, rt: HostRuntime) -> None:
        """Capabilities, hardware and a first poll of a freshly connected host."""
        caps = await self._call_recovering(rt, "Host.getCapabilities")
        try:
            hw = await self._call_recovering(rt, "Host.getHardwareInfo")
        except JsonRpcError:
            hw = {}
        rt.facts = facts_from_capabilities(caps)
        await save_capabilities(self.pool, uuid.UUID(rt.id), rt.facts, caps, hw)
        await self.poll_host(rt, vms=True, stats=True)

    async def _ready_status(self, rt: HostRuntime) -> tuple[str, str]:
        """The status a connected host goes to: its admin status, unless it
        cannot reach its data center's storage (non_operational)."""
        if rt.admin_status != "up" or self.storage is None:
            return rt.admin_status, ""
        try:
            reason = await self.storage.host_ready(rt.id)
        except (RpcConnectionError, JsonRpcError, HostUnavailable) as exc:
            reason = f"connecting to its storage failed: {exc}"
        except Exception as exc:  # a bug must not leave the host initializing
            log.exception("host %s: connecting to its storage failed", rt.name)
            reason = f"connecting to its storage failed: {exc}"
        if reason:
            return "non_operational", reason
        return "up", ""

    async def _call_recovering(self, rt: HostRuntime, method: str) -> Any:
        """Call, waiting out the agent's recovery (error 99) for up to a minute."""
        deadline = time.monotonic() + 60
        delay = 0.2
        while True:
            try:
                return await self.call(rt.id, method, timeout_s=self.cfg.connect_timeout_s * 3)
            except JsonRpcError as exc:
                if exc.code != ErrorCode.RECOVERY_IN_PROGRESS or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)

    async def set_status(self, rt: HostRuntime, status: str, detail: str = "") -> None:
        old = rt.status
        if old == status:
            return
        rt.status = status
        await self.pool.execute(
            "UPDATE host_dynamic SET status=$2, status_detail=$3, status_changed_at=now() "
            "WHERE host_id=$1", uuid.UUID(rt.id), status, detail[:1000])
        refs = AuditRefs(host_id=uuid.UUID(rt.id), host_name=rt.name,
                         cluster_id=uuid.UUID(rt.cluster_id))
        if status == "up":
            await self.audit.log(AuditType.VDS_DETECTED, f"Status of host {rt.name} was set "
                                                         f"to Up.", refs)
        elif status == "non_responsive":
            await self.audit.log(AuditType.VDS_FAILURE, f"Host {rt.name} is non responsive.",
                                 refs)
        elif status == "maintenance":
            await self.audit.log(AuditType.VDS_MAINTENANCE,
                                 f"Host {rt.name} was switched to Maintenance Mode.", refs)
        elif status == "initializing":
            await self.audit.log(AuditType.VDS_INITIALIZING, f"Host {rt.name} is initializing.",
                                 refs)
        elif status == "non_operational":
            await self.audit.log(AuditType.VDS_SET_NONOPERATIONAL,
                                 f"Host {rt.name} was set to NonOperational: {detail}.", refs)
        else:
            await self.audit.log(AuditType.HOST_STATUS_CHANGED,
                                 f"Host {rt.name} status changed from {old} to {status}"
                                 + (f" ({detail})" if detail else "") + ".", refs)
        self.bus.publish("host", {"id": rt.id, "name": rt.name, "status": status,
                                  "detail": detail})

    # -------------------------------------------------------------- polling
    async def _poll_loop(self, rt: HostRuntime) -> None:
        interval = self.mon.vm_stats_interval_s
        # Spread the hosts over the interval instead of polling all at once.
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            if rt.connected and rt.status in _POLLED:
                now = time.monotonic()
                want_stats = now - rt.last_host_stats_at >= self.mon.host_stats_interval_s * 0.9
                try:
                    async with self._sem:
                        await self.poll_host(rt, vms=True, stats=want_stats)
                except (RpcConnectionError, JsonRpcError, HostUnavailable) as exc:
                    log.info("host %s: poll failed: %s", rt.name, exc)
                except Exception:  # a bug must not end this host's monitoring
                    log.exception("host %s: poll failed", rt.name)
            await asyncio.sleep(interval)

    async def poll_host(self, rt: HostRuntime, vms: bool = True, stats: bool = True) -> None:
        if vms:
            requested_at = time.time()
            result = await self.call(rt.id, "Host.getAllVmStats", timeout_s=60)
            report = HostReport(rt.id, tuple(reported_vm_from_stats(s) for s in result),
                                complete=True, requested_at=requested_at)
            await self.monitor.apply(report)
        if stats:
            raw = await self.call(rt.id, "Host.getStats", timeout_s=60)
            rt.stats = stats_from_report(raw)
            if self.storage is not None:
                self.storage.host_stats(rt.id, raw.get("storageDomains") or {})
            rt.pending_mib = 0
            rt.last_host_stats_at = time.monotonic()
            await save_statistics(self.pool, uuid.UUID(rt.id), rt.stats)

    def _on_event(self, rt: HostRuntime, method: str, params: dict[str, Any]) -> None:
        if method.startswith("|virt|VM_status|"):
            report = HostReport(rt.id, tuple(reported_vms_from_event(params)), complete=False)
            # Tasks start in order and the monitor's per-host lock is FIFO, so
            # events of one host are applied in the order they arrived.
            self._spawn(rt, self.monitor.apply(report), "vm-event")

    async def _release_vm(self, host_id: str, vm_id: str) -> None:
        try:
            await self.call(host_id, "VM.destroy", {"vmID": vm_id}, timeout_s=60)
        except JsonRpcError as exc:
            if exc.code != ErrorCode.NO_VM:
                log.warning("releasing Down VM %s on %s failed: %s", vm_id, host_id, exc)
        except RpcConnectionError as exc:
            log.info("releasing Down VM %s on %s failed: %s", vm_id, host_id, exc)

    # --------------------------------------------------------------- calls
    def get(self, host_id: str) -> HostRuntime:
        rt = self.hosts.get(host_id)
        if rt is None:
            raise NotFound(f"host {host_id} does not exist")
        return rt

    async def call(self, host_id: str, method: str, params: dict[str, Any] | None = None,
                   timeout_s: float | None = None) -> Any:
        rt = self.get(host_id)
        if rt.client is None or not rt.connected:
            raise HostUnavailable(f"host {rt.name} is not connected ({rt.status})")
        try:
            return await rt.client.call(method, params or {}, timeout_s=timeout_s)
        except RpcConnectionError as exc:
            raise HostUnavailable(f"host {rt.name}: {exc}") from None

    # ---------------------------------------------------------- management
    async def add(self, host_id: str) -> HostRuntime:
        row = await self.pool.fetchrow("""
            SELECT h.id, h.name, h.address, h.port, h.cluster_id, h.cert_fingerprint,
                   d.status, d.admin_status
            FROM hosts h JOIN host_dynamic d ON d.host_id = h.id WHERE h.id = $1""",
                                       uuid.UUID(host_id))
        if row is None:
            raise NotFound(f"host {host_id} does not exist")
        rt = self._runtime(row)
        self._attach(rt)
        return rt

    async def remove(self, host_id: str) -> None:
        rt = self.hosts.pop(host_id, None)
        if rt is not None:
            await self._detach(rt)

    async def set_admin_status(self, host_id: str, admin_status: str) -> None:
        rt = self.get(host_id)
        rt.admin_status = admin_status
        await self.pool.execute("UPDATE host_dynamic SET admin_status=$2 WHERE host_id=$1",
                                uuid.UUID(host_id), admin_status)
        if rt.connected:
            status, detail = await self._ready_status(rt)
            await self.set_status(rt, status, detail)

    def up_hosts(self, cluster_id: str) -> list[HostRuntime]:
        return [rt for rt in self.hosts.values()
                if rt.cluster_id == cluster_id and rt.status == "up" and rt.connected]
