"""LibvirtHypervisor: the Hypervisor role on real libvirt (QEMU or the test driver).

Events come through libvirt's event loop running on the asyncio loop (see
events.py: a thread-safe replacement of libvirtaio), no polling. When the
connection closes (libvirtd restarted), it reconnects with backoff, registers
its event callbacks again and calls `on_reconnect` so the VM manager can
resynchronise with whatever happened meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

import libvirt

from ..hypervisor import (
    BlockJobInfo,
    DomainEvent,
    DomainEventKind,
    DomainInfo,
    DomainSample,
    EventCallback,
    HypervisorError,
    NodeInfo,
    NodeMemory,
    ReconnectCallback,
)
from .boundary import ConnectionBrokenError, LibvirtBoundary, Pool
from .codes import (
    block_job_kind,
    block_job_status,
    domain_state,
    event_detail,
    event_kind,
    state_reason,
)
from .events import ensure_event_loop_impl
from .nodeinfo import node_info_blocking

__all__ = ["LibvirtHypervisor", "ensure_event_loop_impl"]  # the latter from events.py

log = logging.getLogger(__name__)

_STATS_GROUPS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                 | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                 | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
# Do not wait for a domain busy with another job: report what is there.
_STATS_FLAGS = getattr(libvirt, "VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT", 0)

_NET_KEYS = {"rx.bytes": "rx_bytes", "tx.bytes": "tx_bytes", "rx.pkts": "rx_pkts",
             "tx.pkts": "tx_pkts", "rx.errs": "rx_errs", "tx.errs": "tx_errs",
             "rx.drop": "rx_drop", "tx.drop": "tx_drop"}
_BLOCK_KEYS = {"rd.reqs": "rd_reqs", "wr.reqs": "wr_reqs", "rd.bytes": "rd_bytes",
               "wr.bytes": "wr_bytes", "rd.times": "rd_times", "wr.times": "wr_times",
               "fl.reqs": "fl_reqs", "allocation": "allocation", "capacity": "capacity",
               "physical": "physical"}


def _parse_sample(uuid: str, rec: dict[str, Any]) -> DomainSample:
    s = DomainSample(uuid=uuid, state=domain_state(rec.get("state.state", 0)))
    s.cpu_time_ns = rec.get("cpu.time", 0)
    s.cpu_user_ns = rec.get("cpu.user", 0)
    s.cpu_system_ns = rec.get("cpu.system", 0)
    s.vcpus = rec.get("vcpu.current", 0)
    s.balloon_current_kib = rec.get("balloon.current", 0)
    s.balloon_maximum_kib = rec.get("balloon.maximum", 0)
    s.memory_rss_kib = rec.get("balloon.rss", 0)
    for key in ("unused", "available", "usable", "swap_in", "swap_out", "major_fault",
                "minor_fault", "disk_caches"):
        value = rec.get(f"balloon.{key}")
        if value is not None:
            s.memory_stats[key] = value
    for i in range(rec.get("net.count", 0)):
        name = rec.get(f"net.{i}.name")
        if name:
            s.net[name] = {ours: rec.get(f"net.{i}.{theirs}", 0)
                           for theirs, ours in _NET_KEYS.items()}
    for i in range(rec.get("block.count", 0)):
        name = rec.get(f"block.{i}.name")
        if name and f"block.{i}.backingIndex" not in rec:
            s.block[name] = {ours: rec.get(f"block.{i}.{theirs}", 0)
                             for theirs, ours in _BLOCK_KEYS.items()}
    return s


class LibvirtHypervisor:
    def __init__(self, uri: str, *, lifecycle_threads: int = 8, monitoring_threads: int = 4,
                 lifecycle_timeout_s: float = 120.0, monitoring_timeout_s: float = 30.0,
                 reconnect_max_s: float = 10.0, use_kvm: bool = True) -> None:
        self.uri = uri
        self.use_kvm = use_kvm
        self._boundary = LibvirtBoundary(lifecycle_threads, monitoring_threads,
                                         lifecycle_timeout_s, monitoring_timeout_s)
        self._reconnect_max_s = reconnect_max_s
        self._conn: libvirt.virConnect | None = None
        self._driver = ""
        self._on_event: EventCallback | None = None
        self._on_reconnect: ReconnectCallback | None = None
        self._callback_ids: list[int] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closing = False
        self._node_info: NodeInfo | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connections = 0  # successful opens (1 + reconnections)

    # -------------------------------------------------------- connection
    async def connect(self, on_event: EventCallback,
                      on_reconnect: ReconnectCallback | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        ensure_event_loop_impl(self._loop)
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        await self._open()

    async def _open(self) -> None:
        def run() -> tuple[libvirt.virConnect, str, list[int]]:
            conn = libvirt.open(self.uri)
            try:
                driver = conn.getType()
                ids = [
                    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                self._lifecycle_cb, None),
                    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT,
                                                self._reboot_cb, None),
                ]
                for event_id, cb in (
                        (libvirt.VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, self._io_error_cb),
                        (libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, self._block_job_cb)):
                    try:
                        ids.append(conn.domainEventRegisterAny(None, event_id, cb, None))
                    except libvirt.libvirtError:
                        pass  # the test driver has no I/O error or block job events
                if not self.uri.startswith("test:"):
                    try:
                        conn.registerCloseCallback(self._close_cb, None)
                        conn.setKeepAlive(5, 3)
                    except libvirt.libvirtError as exc:
                        log.debug("no close callback/keepalive on %s: %s", self.uri, exc)
            except BaseException:
                conn.close()
                raise
            return conn, driver, ids

        self._conn, self._driver, self._callback_ids = await self._boundary.call(
            Pool.LIFECYCLE, run)
        self.connections += 1
        log.info("connected to libvirt %s (%s driver)%s", self.uri, self._driver,
                 f", reconnection {self.connections - 1}" if self.connections > 1 else "")

    def is_alive(self) -> bool:
        return self._conn is not None

    async def close(self) -> None:
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            try:
                await self._reconnect_task
            except asyncio.CancelledError:
                pass
        conn, self._conn = self._conn, None
        if conn is not None:
            ids, uri = self._callback_ids, self.uri

            def run() -> None:
                for cb_id in ids:
                    try:
                        conn.domainEventDeregisterAny(cb_id)
                    except libvirt.libvirtError:
                        pass
                try:
                    if not uri.startswith("test:"):
                        conn.unregisterCloseCallback()
                    conn.close()
                except libvirt.libvirtError:
                    pass
            try:
                await self._boundary.call(Pool.LIFECYCLE, run, timeout_s=10.0)
            except HypervisorError as exc:
                log.warning("closing the libvirt connection failed: %s", exc)
        self._boundary.shutdown()

    def _close_cb(self, _conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        # libvirt calls this from whichever thread noticed the close.
        log.warning("libvirt connection closed (reason %d)", reason)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._connection_broken)

    def _connection_broken(self) -> None:
        if self._closing:
            return
        old, self._conn = self._conn, None
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect(old), name=f"libvirt-reconnect {self.uri}")

    async def _reconnect(self, old: libvirt.virConnect | None) -> None:
        if old is not None:
            def drop() -> None:
                try:
                    old.close()
                except libvirt.libvirtError:
                    pass
            try:
                await self._boundary.call(Pool.LIFECYCLE, drop, timeout_s=5.0)
            except HypervisorError:
                pass
        delay = 0.25
        while not self._closing:
            try:
                await self._open()
                break
            except HypervisorError as exc:
                log.warning("reconnect to %s failed (%s), next try in %.1f s", self.uri, exc,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._reconnect_max_s)
        if self._on_reconnect is not None and not self._closing:
            self._on_reconnect()

    def _require(self) -> libvirt.virConnect:
        if self._conn is None:
            raise ConnectionBrokenError(f"not connected to {self.uri} (reconnecting)")
        return self._conn

    async def _call(self, pool: Pool, fn: Callable[..., Any], *args: Any,
                    timeout_s: float | None = None) -> Any:
        try:
            return await self._boundary.call(pool, fn, *args, timeout_s=timeout_s)
        except ConnectionBrokenError:
            self._connection_broken()
            raise

    # ------------------------------------------------------------ events
    def _emit(self, dom: libvirt.virDomain, kind: DomainEventKind, detail: str,
              disk: str = "") -> None:
        if self._on_event is None or self._loop is None:
            return
        event = DomainEvent(dom.UUIDString(), kind, detail, disk)
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # libvirt dispatches events from its event loop: ours
            self._on_event(event)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_event, event)

    def _lifecycle_cb(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int,
                      detail: int, _opaque: object) -> None:
        self._emit(dom, event_kind(event), event_detail(event, detail))

    def _reboot_cb(self, _conn: libvirt.virConnect, dom: libvirt.virDomain,
                   _opaque: object) -> None:
        self._emit(dom, DomainEventKind.REBOOTED, "")

    def _io_error_cb(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, src: str,
                     alias: str, action: int, reason: str, _opaque: object) -> None:
        self._emit(dom, DomainEventKind.IO_ERROR, reason or "eio")

    def _block_job_cb(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, disk: str,
                      job_type: int, status: int, _opaque: object) -> None:
        self._emit(dom, DomainEventKind.BLOCK_JOB, block_job_status(status).value, disk)

    # ---------------------------------------------------------- domains
    @staticmethod
    def _info_blocking(dom: libvirt.virDomain) -> DomainInfo:
        state, reason = dom.state()
        return DomainInfo(dom.UUIDString(), dom.name(), domain_state(state), dom.XMLDesc(0),
                          state_reason(state, reason))

    def _lookup_blocking(self, uuid: str) -> libvirt.virDomain:
        return self._require().lookupByUUIDString(uuid)

    async def list_domains(self) -> list[DomainInfo]:
        def run() -> list[DomainInfo]:
            return [self._info_blocking(d) for d in self._require().listAllDomains(0)]
        result: list[DomainInfo] = await self._call(Pool.MONITORING, run)
        return result

    async def create(self, xml: str, start_paused: bool = False) -> DomainInfo:
        # The test driver refuses VIR_DOMAIN_START_PAUSED: start, then suspend
        # (it sends the same STARTED, SUSPENDED events QEMU sends).
        emulate_paused = start_paused and self._driver == "TEST"
        flags = libvirt.VIR_DOMAIN_START_PAUSED if start_paused and not emulate_paused else 0

        def run() -> DomainInfo:
            dom = self._require().createXML(xml, flags)
            if emulate_paused:
                dom.suspend()
            return self._info_blocking(dom)
        result: DomainInfo = await self._call(Pool.LIFECYCLE, run)
        return result

    async def _domain_op(self, uuid: str, op: Callable[[libvirt.virDomain], Any],
                         pool: Pool = Pool.LIFECYCLE) -> Any:
        def run() -> Any:
            return op(self._lookup_blocking(uuid))
        return await self._call(pool, run)

    async def destroy(self, uuid: str, graceful: bool = False) -> None:
        flag = libvirt.VIR_DOMAIN_DESTROY_GRACEFUL if graceful else 0
        await self._domain_op(uuid, lambda d: d.destroyFlags(flag))

    async def shutdown(self, uuid: str) -> None:
        await self._domain_op(uuid, lambda d: d.shutdownFlags(
            libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN if self._driver == "QEMU" else 0))

    async def reboot(self, uuid: str) -> None:
        await self._domain_op(uuid, lambda d: d.reboot(
            libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN if self._driver == "QEMU" else 0))

    async def reset(self, uuid: str) -> None:
        await self._domain_op(uuid, lambda d: d.reset(0))

    async def suspend(self, uuid: str) -> None:
        await self._domain_op(uuid, lambda d: d.suspend())

    async def resume(self, uuid: str) -> None:
        await self._domain_op(uuid, lambda d: d.resume())

    async def get_xml(self, uuid: str) -> str:
        xml: str = await self._domain_op(uuid, lambda d: d.XMLDesc(0), Pool.MONITORING)
        return xml

    async def set_graphics_password(self, uuid: str, graphics_xml: str) -> None:
        await self._domain_op(uuid, lambda d: d.updateDeviceFlags(
            graphics_xml, libvirt.VIR_DOMAIN_AFFECT_LIVE))

    async def set_balloon(self, uuid: str, target_kib: int) -> None:
        await self._domain_op(uuid, lambda d: d.setMemoryFlags(
            target_kib, libvirt.VIR_DOMAIN_AFFECT_LIVE))

    # ------------------------------------------------------ disk jobs
    async def snapshot_disks(self, uuid: str, snapshot_xml: str, quiesce: bool = False) -> None:
        flags = (libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
                 | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT
                 | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA)
        if quiesce:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
        await self._domain_op(uuid, lambda d: d.snapshotCreateXML(snapshot_xml, flags))

    async def block_commit(self, uuid: str, disk: str, base: str, top: str,
                           bandwidth_mib_s: int = 0, active: bool = False) -> None:
        flags = libvirt.VIR_DOMAIN_BLOCK_COMMIT_RELATIVE
        if active:
            flags |= libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE
        await self._domain_op(uuid, lambda d: d.blockCommit(disk, base, top,
                                                            bandwidth_mib_s, flags))

    async def block_job_info(self, uuid: str, disk: str) -> BlockJobInfo | None:
        def info(d: libvirt.virDomain) -> BlockJobInfo | None:
            raw = d.blockJobInfo(disk, 0)
            if not raw:
                return None
            return BlockJobInfo(block_job_kind(raw.get("type", -1)), int(raw.get("cur", 0)),
                                int(raw.get("end", 0)), int(raw.get("bandwidth", 0)))
        result: BlockJobInfo | None = await self._domain_op(uuid, info, Pool.MONITORING)
        return result

    async def block_job_abort(self, uuid: str, disk: str, pivot: bool = False) -> None:
        flags = libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT if pivot else 0
        await self._domain_op(uuid, lambda d: d.blockJobAbort(disk, flags))

    # ------------------------------------------------------- monitoring
    def _sample_blocking(self) -> list[DomainSample]:
        conn = self._require()
        samples = []
        for dom, rec in conn.getAllDomainStats(_STATS_GROUPS, _STATS_FLAGS):
            sample = _parse_sample(dom.UUIDString(), rec)
            if "cpu.time" not in rec:
                # The test driver implements only the state group; its
                # per-domain info() has CPU time and memory that move.
                try:
                    _state, max_kib, cur_kib, vcpus, cpu_ns = dom.info()
                    sample.cpu_time_ns = cpu_ns
                    sample.cpu_user_ns = cpu_ns // 2
                    sample.cpu_system_ns = cpu_ns // 10
                    sample.vcpus = vcpus
                    sample.balloon_current_kib = cur_kib
                    sample.balloon_maximum_kib = max_kib
                except libvirt.libvirtError:
                    pass
            samples.append(sample)
        return samples

    async def sample(self) -> list[DomainSample]:
        result: list[DomainSample] = await self._call(Pool.MONITORING, self._sample_blocking)
        return result

    async def node_info(self) -> NodeInfo:
        if self._node_info is None:
            info: NodeInfo = await self._call(Pool.MONITORING, node_info_blocking,
                                              self._require())
            if not self.use_kvm:  # the admin says KVM does not work here: TCG
                info = dataclasses.replace(info, kvm_enabled=False)
            self._node_info = info
        return self._node_info

    def _node_memory_blocking(self) -> NodeMemory:
        conn = self._require()
        if self._driver == "QEMU":
            # The node is this machine: the kernel knows best.
            meminfo = {}
            for line in Path("/proc/meminfo").read_text().splitlines():
                key, _, rest = line.partition(":")
                meminfo[key] = int(rest.split()[0])
            return NodeMemory(meminfo["MemTotal"],
                              meminfo.get("MemAvailable", meminfo["MemFree"]))
        # A simulated node (test driver): its memory is what its domains do not use.
        used = sum(dom.info()[2]
                   for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
        total = conn.getInfo()[1] * 1024
        return NodeMemory(total, max(0, total - used))

    async def node_memory(self) -> NodeMemory:
        result: NodeMemory = await self._call(Pool.MONITORING, self._node_memory_blocking)
        return result
