"""FakeHypervisor: the Hypervisor role in pure Python, for tests and the host simulator.

Domains are created from their XML (read with ovagent.virt.domxml) and live
in a dict; lifecycle operations change their state at once and deliver the
events libvirt would send, on the event loop (call_soon), in order. There is
no task or timer per domain: counters (CPU time, network and disk bytes) are
computed from the time a domain has spent running when `sample()` is called,
so one process can hold tens of thousands of fake domains.

Failures can be injected per method (and optionally per domain): an error, or
a hang that ends in HypervisorTimeoutError after `call_timeout_s` unless
`release_hangs()` lets it through first (what a stuck libvirt call looks like
to the agent, see ovagent.virt.libvirt.boundary).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable

from .domxml import DomainXmlError, parse
from .fake_disks import FakeDisks
from .hypervisor import (
    BlockJobInfo,
    BlockJobStatus,
    DomainEvent,
    DomainEventKind,
    DomainExistsError,
    DomainInfo,
    DomainSample,
    DomainState,
    EventCallback,
    HypervisorError,
    HypervisorTimeoutError,
    NodeInfo,
    NodeMemory,
    NoSuchDomainError,
    ReconnectCallback,
)

__all__ = ["FakeHypervisor", "Fault"]

_GRAPHICS_BASE_PORT = 5900


@dataclass
class Fault:
    """What an injected failure does: raise `error`, or hang (then time out)."""

    error: HypervisorError | None = None
    hang: bool = False
    uuid: str | None = None  # only calls about this domain (None: every call)
    times: int | None = None  # how many calls it affects (None: until cleared)


@dataclass(eq=False)
class _Domain:
    uuid: str
    name: str
    root: ET.Element  # the live definition (ports filled in)
    memory_kib: int
    current_kib: int
    vcpus: int
    nics: tuple[str, ...]
    disks: tuple[str, ...]
    # Per-domain load, so that domains differ but stay deterministic.
    cpu_share: float
    net_bps: float
    disk_bps: float
    state: DomainState = DomainState.RUNNING
    reason: str = "booted"
    # Seconds spent running before `running_since` (None while not running).
    run_s: float = 0.0
    running_since: float | None = None
    shutdown_handle: asyncio.TimerHandle | None = field(default=None, repr=False)
    disk_jobs: FakeDisks | None = field(default=None, repr=False)

    def running_seconds(self, now: float) -> float:
        if self.running_since is None:
            return self.run_s
        return self.run_s + (now - self.running_since)

    def stop_clock(self, now: float) -> None:
        if self.running_since is not None:
            self.run_s += now - self.running_since
            self.running_since = None

    def start_clock(self, now: float) -> None:
        if self.running_since is None:
            self.running_since = now

    def xml(self) -> str:
        return ET.tostring(self.root, encoding="unicode")


def _share(uuid: str, lo: float, hi: float, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}:{uuid}".encode(), digest_size=4).digest()
    return lo + (hi - lo) * int.from_bytes(digest, "big") / 0xFFFFFFFF


def _kib(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip():
        return 0
    value = int((el.text or "0").strip())
    unit = (el.get("unit") or "KiB").lower()
    factor = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024,
              "m": 1024, "mib": 1024, "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2,
              "gb": 1000**3 / 1024}.get(unit, 1)
    return int(value * factor)


class FakeHypervisor:
    """A hypervisor that runs nothing: see the module docstring."""

    def __init__(self, *, cpus: int = 8, memory_mib: int = 32768, hostname: str = "fake-host",
                 cpu_model: str = "Skylake-Client-IBRS", cpu_mhz: int = 2400,
                 sockets: int = 1, threads_per_core: int = 1,
                 acpi_shutdown_s: float | None = 0.0, call_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`acpi_shutdown_s`: how long a guest takes to obey ACPI shutdown (None: it
        ignores it, like a diskless QEMU guest); `call_timeout_s`: when a hanging
        call gives up with HypervisorTimeoutError."""
        if cpus < 1 or memory_mib < 1:
            raise ValueError("a host needs at least one CPU and some memory")
        self.cpus = cpus
        self.memory_mib = memory_mib
        self.hostname = hostname
        self.cpu_model = cpu_model
        self.cpu_mhz = cpu_mhz
        self.sockets = max(1, sockets)
        self.threads_per_core = max(1, threads_per_core)
        self.acpi_shutdown_s = acpi_shutdown_s
        self.call_timeout_s = call_timeout_s
        self.clock = clock
        self.system_uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, hostname))
        self.domains: dict[str, _Domain] = {}
        self.faults: dict[str, Fault] = {}
        self.calls: dict[str, int] = {}  # method -> number of calls (for tests)
        self._alive = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_event: EventCallback | None = None
        self._on_reconnect: ReconnectCallback | None = None
        self._unhang: asyncio.Event | None = None
        self._ids = itertools.count(1)
        self._ports = itertools.count(_GRAPHICS_BASE_PORT)
        self._vnets = itertools.count(0)

    # ----------------------------------------------------------- faults
    def inject(self, method: str, error: HypervisorError | None = None, *, hang: bool = False,
               uuid: str | None = None, times: int | None = None) -> None:
        """Make `method` (e.g. "suspend", "sample") fail or hang from now on."""
        if not hasattr(self, method) or method.startswith("_"):
            raise ValueError(f"FakeHypervisor has no method {method!r}")
        if error is None and not hang:
            raise ValueError("a fault raises an error or hangs")
        self.faults[method] = Fault(error, hang, uuid, times)

    def clear_faults(self, method: str | None = None) -> None:
        if method is None:
            self.faults.clear()
        else:
            self.faults.pop(method, None)

    def release_hangs(self) -> None:
        """Let every call that is hanging now go on (and clear hang faults)."""
        for name in [n for n, f in self.faults.items() if f.hang]:
            del self.faults[name]
        if self._unhang is not None:
            self._unhang.set()
            self._unhang = None

    async def _enter(self, method: str, uuid: str | None = None) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if not self._alive:
            raise HypervisorError(f"fake hypervisor {self.hostname}: not connected")
        fault = self.faults.get(method)
        if fault is None or (fault.uuid is not None and fault.uuid != uuid):
            return
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self.faults[method]
        if fault.hang:
            if self._unhang is None:
                self._unhang = asyncio.Event()
            try:
                await asyncio.wait_for(self._unhang.wait(), self.call_timeout_s)
            except asyncio.TimeoutError:
                raise HypervisorTimeoutError(
                    f"fake call {method} did not return within {self.call_timeout_s} s"
                ) from None
        if fault.error is not None:
            raise fault.error

    # ------------------------------------------------------- connection
    async def connect(self, on_event: EventCallback,
                      on_reconnect: ReconnectCallback | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._alive = True

    async def close(self) -> None:
        self._alive = False
        self._on_event = None
        for dom in self.domains.values():
            self._cancel_shutdown(dom)
        self.release_hangs()

    def is_alive(self) -> bool:
        return self._alive

    def break_connection(self) -> None:
        """Simulate losing the hypervisor (libvirtd restart): calls fail until restored."""
        self._alive = False

    def restore_connection(self) -> None:
        """The connection is back: `on_reconnect` runs on the loop (resync)."""
        self._alive = True
        if self._on_reconnect is not None and self._loop is not None:
            self._loop.call_soon(self._on_reconnect)

    # ----------------------------------------------------------- events
    def _emit(self, dom: _Domain, kind: DomainEventKind, detail: str = "",
              disk: str = "") -> None:
        if self._on_event is not None and self._loop is not None and self._alive:
            self._loop.call_soon(self._deliver, DomainEvent(dom.uuid, kind, detail, disk))

    def _deliver(self, event: DomainEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    # ---------------------------------------------------- domain helpers
    def _get(self, uuid: str) -> _Domain:
        dom = self.domains.get(uuid.lower())
        if dom is None:
            raise NoSuchDomainError(f"Domain not found: no domain with matching uuid '{uuid}'")
        return dom

    def _info(self, dom: _Domain) -> DomainInfo:
        return DomainInfo(dom.uuid, dom.name, dom.state, dom.xml(), dom.reason)

    def _build(self, xml: str) -> _Domain:
        try:
            root = parse(xml)
        except DomainXmlError as exc:
            raise HypervisorError(f"XML error: {exc}") from None
        name = (root.findtext("name") or "").strip()
        if not name:
            raise HypervisorError("XML error: missing domain name")
        uuid_el = root.find("uuid")
        if uuid_el is None:
            uuid_el = ET.SubElement(root, "uuid")
            uuid_el.text = str(uuidlib.uuid4())
        try:
            uuid = str(uuidlib.UUID((uuid_el.text or "").strip()))
        except ValueError:
            raise HypervisorError(f"XML error: malformed uuid {uuid_el.text!r}") from None
        uuid_el.text = uuid
        memory = _kib(root.find("memory"))
        if memory <= 0:
            raise HypervisorError("XML error: missing or zero <memory>")
        current = _kib(root.find("currentMemory")) or memory
        vcpus = int((root.findtext("vcpu") or "1").strip() or 1)
        nics = []
        for iface in root.iterfind("devices/interface"):
            target = iface.find("target")
            if target is None:
                target = ET.SubElement(iface, "target")
            if not target.get("dev"):
                target.set("dev", f"vnet{next(self._vnets)}")
            nics.append(target.get("dev", ""))
        disks = []
        for disk in root.iterfind("devices/disk"):
            target = disk.find("target")
            if target is not None and target.get("dev") and disk.get("device", "disk") == "disk":
                disks.append(target.get("dev", ""))
        for g in root.iterfind("devices/graphics"):
            if g.get("autoport") == "yes" or g.get("port") in (None, "-1"):
                g.set("port", str(next(self._ports)))
                g.set("autoport", "yes")
            if g.get("type") == "spice" and g.get("tlsPort") == "-1":
                g.set("tlsPort", str(next(self._ports)))
        root.set("id", str(next(self._ids)))
        return _Domain(uuid=uuid, name=name, root=root, memory_kib=memory, current_kib=current,
                       vcpus=max(1, vcpus), nics=tuple(nics), disks=tuple(disks),
                       cpu_share=_share(uuid, 0.02, 0.30, "cpu"),
                       net_bps=_share(uuid, 1e3, 1e6, "net"),
                       disk_bps=_share(uuid, 1e4, 1e7, "disk"), disk_jobs=FakeDisks(root))

    def _stop(self, dom: _Domain, detail: str) -> None:
        """The domain is gone (transient domains vanish when they stop)."""
        self._cancel_shutdown(dom)
        dom.stop_clock(self.clock())
        dom.state, dom.reason = DomainState.SHUTOFF, detail
        self.domains.pop(dom.uuid, None)
        self._emit(dom, DomainEventKind.STOPPED, detail)

    @staticmethod
    def _cancel_shutdown(dom: _Domain) -> None:
        if dom.shutdown_handle is not None:
            dom.shutdown_handle.cancel()
            dom.shutdown_handle = None

    # ---------------------------------------------------------- domains
    async def list_domains(self) -> list[DomainInfo]:
        await self._enter("list_domains")
        return [self._info(d) for d in self.domains.values()]

    async def create(self, xml: str, start_paused: bool = False) -> DomainInfo:
        await self._enter("create")
        dom = self._build(xml)
        if dom.uuid in self.domains:
            raise DomainExistsError(f"domain '{self.domains[dom.uuid].name}' already exists "
                                    f"with uuid {dom.uuid}")
        for other in self.domains.values():
            if other.name == dom.name:
                raise DomainExistsError(f"domain '{dom.name}' already exists with uuid "
                                        f"{other.uuid}")
        self.domains[dom.uuid] = dom
        self._emit(dom, DomainEventKind.STARTED, "booted")
        if start_paused:
            dom.state, dom.reason = DomainState.PAUSED, "user"
            self._emit(dom, DomainEventKind.SUSPENDED, "user")
        else:
            dom.start_clock(self.clock())
        return self._info(dom)

    async def destroy(self, uuid: str, graceful: bool = False) -> None:
        await self._enter("destroy", uuid)
        self._stop(self._get(uuid), "destroyed")

    async def shutdown(self, uuid: str) -> None:
        await self._enter("shutdown", uuid)
        dom = self._get(uuid)
        if dom.state is DomainState.PAUSED:
            raise HypervisorError(f"domain '{dom.name}' is paused: the guest cannot "
                                  "react to ACPI")
        if self.acpi_shutdown_s is None or dom.shutdown_handle is not None:
            return  # the guest ignores the power button (or is already on it)
        assert self._loop is not None
        dom.shutdown_handle = self._loop.call_later(self.acpi_shutdown_s,
                                                    self._guest_powers_off, dom)

    def _guest_powers_off(self, dom: _Domain) -> None:
        dom.shutdown_handle = None
        if self.domains.get(dom.uuid) is dom:
            self._emit(dom, DomainEventKind.SHUTDOWN, "finished")
            self._stop(dom, "shutdown")

    async def reboot(self, uuid: str) -> None:
        await self._enter("reboot", uuid)
        self._emit(self._get(uuid), DomainEventKind.REBOOTED)

    async def reset(self, uuid: str) -> None:
        await self._enter("reset", uuid)
        self._emit(self._get(uuid), DomainEventKind.REBOOTED)

    async def suspend(self, uuid: str) -> None:
        await self._enter("suspend", uuid)
        dom = self._get(uuid)
        if dom.state is not DomainState.RUNNING:
            raise HypervisorError(f"domain '{dom.name}' not running")
        dom.stop_clock(self.clock())
        dom.state, dom.reason = DomainState.PAUSED, "user"
        self._emit(dom, DomainEventKind.SUSPENDED, "user")

    async def resume(self, uuid: str) -> None:
        await self._enter("resume", uuid)
        dom = self._get(uuid)
        if dom.state is not DomainState.PAUSED:
            raise HypervisorError(f"domain '{dom.name}' not paused")
        dom.start_clock(self.clock())
        dom.state, dom.reason = DomainState.RUNNING, "unpaused"
        self._emit(dom, DomainEventKind.RESUMED, "user")

    async def get_xml(self, uuid: str) -> str:
        await self._enter("get_xml", uuid)
        dom = self._get(uuid)
        # Like libvirt without VIR_DOMAIN_XML_SECURE: passwords are not shown.
        xml = dom.root
        if any("passwd" in g.attrib for g in xml.iterfind("devices/graphics")):
            copy = ET.fromstring(dom.xml())
            for g in copy.iterfind("devices/graphics"):
                g.attrib.pop("passwd", None)
            return ET.tostring(copy, encoding="unicode")
        return dom.xml()

    async def set_graphics_password(self, uuid: str, graphics_xml: str) -> None:
        await self._enter("set_graphics_password", uuid)
        dom = self._get(uuid)
        try:
            new = ET.fromstring(graphics_xml)
        except ET.ParseError as exc:
            raise HypervisorError(f"XML error: {exc}") from None
        if new.tag != "graphics":
            raise HypervisorError(f"expected a <graphics> device, got <{new.tag}>")
        for g in dom.root.iterfind("devices/graphics"):
            if g.get("type") == new.get("type"):
                for attr in ("passwd", "passwdValidTo", "connected"):
                    if attr in new.attrib:
                        g.set(attr, new.attrib[attr])
                    elif attr != "connected":
                        g.attrib.pop(attr, None)
                return
        raise HypervisorError(f"domain '{dom.name}' has no {new.get('type')} graphics device")

    async def set_balloon(self, uuid: str, target_kib: int) -> None:
        await self._enter("set_balloon", uuid)
        dom = self._get(uuid)
        if not 0 < target_kib <= dom.memory_kib:
            raise HypervisorError(f"invalid argument: cannot set memory higher than max "
                                  f"memory ({target_kib} > {dom.memory_kib} KiB)")
        dom.current_kib = target_kib

    # ------------------------------------------------------ disk jobs
    def _disks(self, uuid: str) -> tuple[_Domain, FakeDisks]:
        dom = self._get(uuid)
        if dom.disk_jobs is None:
            dom.disk_jobs = FakeDisks(dom.root)
        return dom, dom.disk_jobs

    async def snapshot_disks(self, uuid: str, snapshot_xml: str, quiesce: bool = False) -> None:
        await self._enter("snapshot_disks", uuid)
        _dom, disks = self._disks(uuid)
        if quiesce:
            raise HypervisorError("argument unsupported: QEMU guest agent is not connected")
        disks.snapshot(snapshot_xml)

    async def block_commit(self, uuid: str, disk: str, base: str, top: str,
                           bandwidth_mib_s: int = 0, active: bool = False) -> None:
        await self._enter("block_commit", uuid)
        dom, disks = self._disks(uuid)
        job = disks.commit(disk, base, top, active)
        if active:  # copied at once: ready to pivot
            disks.mark_ready(job)
            self._emit(dom, DomainEventKind.BLOCK_JOB, BlockJobStatus.READY.value, disk)
        else:
            disks.finish(job)
            self._emit(dom, DomainEventKind.BLOCK_JOB, BlockJobStatus.COMPLETED.value, disk)

    async def block_job_info(self, uuid: str, disk: str) -> BlockJobInfo | None:
        await self._enter("block_job_info", uuid)
        return self._disks(uuid)[1].info(disk)

    async def block_job_abort(self, uuid: str, disk: str, pivot: bool = False) -> None:
        await self._enter("block_job_abort", uuid)
        dom, disks = self._disks(uuid)
        status = disks.abort(disk, pivot)
        disks.clear_mirror(disk)
        self._emit(dom, DomainEventKind.BLOCK_JOB, status.value, disk)

    # ------------------------------------------------------- monitoring
    async def sample(self) -> list[DomainSample]:
        await self._enter("sample")
        now = self.clock()
        return [self._sample(dom, now) for dom in self.domains.values()]

    @staticmethod
    def _sample(dom: _Domain, now: float) -> DomainSample:
        run = dom.running_seconds(now)
        cpu_ns = int(run * dom.cpu_share * dom.vcpus * 1e9)
        s = DomainSample(uuid=dom.uuid, state=dom.state, cpu_time_ns=cpu_ns,
                         cpu_user_ns=cpu_ns * 7 // 10, cpu_system_ns=cpu_ns * 2 // 10,
                         vcpus=dom.vcpus, balloon_current_kib=dom.current_kib,
                         balloon_maximum_kib=dom.memory_kib,
                         memory_rss_kib=min(dom.current_kib, dom.current_kib // 2 + int(run)))
        s.memory_stats = {"available": dom.current_kib,
                          "unused": max(0, dom.current_kib // 2 - int(run)),
                          "usable": dom.current_kib // 2}
        rx = int(run * dom.net_bps)
        for i, dev in enumerate(dom.nics):
            tx = rx // (2 + i)
            s.net[dev] = {"rx_bytes": rx, "tx_bytes": tx, "rx_pkts": rx // 800,
                          "tx_pkts": tx // 800, "rx_errs": 0, "tx_errs": 0, "rx_drop": 0,
                          "tx_drop": 0}
        io = int(run * dom.disk_bps)
        for dev in dom.disks:
            reads, writes = io // 4096, io // 16384
            s.block[dev] = {"rd_reqs": reads, "wr_reqs": writes, "rd_bytes": io,
                            "wr_bytes": io // 4, "rd_times": reads * 200_000,
                            "wr_times": writes * 500_000, "fl_reqs": writes // 8,
                            "allocation": 1 << 30, "capacity": 10 << 30,
                            "physical": 1 << 30}
        return s

    async def node_info(self) -> NodeInfo:
        await self._enter("node_info")
        cores = max(1, self.cpus // (self.sockets * self.threads_per_core))
        return NodeInfo(
            hostname=self.hostname, arch="x86_64", cpu_model=self.cpu_model,
            cpu_mhz=self.cpu_mhz, cpu_sockets=self.sockets, cpu_cores_per_socket=cores,
            cpu_threads_per_core=self.threads_per_core, online_cpus=self.cpus,
            memory_mib=self.memory_mib,
            cpu_flags=("fpu", "vme", "sse2", "ssse3", "sse4_1", "sse4_2", "avx", "avx2",
                       "vmx", "aes", "x2apic"),
            emulated_machines=("pc-q35-rhel8.6.0", "pc-i440fx-2.12", "pc", "q35"),
            numa_nodes=1, kvm_enabled=True, driver="FAKE", libvirt_version="9.0.0",
            qemu_version="7.2.0", system_manufacturer="ov", system_product="fake host",
            system_serial=self.system_uuid[:8], system_uuid=self.system_uuid)

    async def node_memory(self) -> NodeMemory:
        await self._enter("node_memory")
        total = self.memory_mib * 1024
        used = sum(d.current_kib for d in self.domains.values())
        return NodeMemory(total, max(0, total - used))

    # ------------------------------------------- what happens on its own
    def guest_shutdown(self, uuid: str) -> None:
        """The guest powered itself off (from inside)."""
        dom = self._get(uuid)
        self._emit(dom, DomainEventKind.SHUTDOWN, "guest")
        self._stop(dom, "shutdown")

    def crash(self, uuid: str) -> None:
        """The QEMU process died."""
        self._stop(self._get(uuid), "crashed")

    def io_error(self, uuid: str, reason: str = "eio") -> None:
        """A disk error paused the domain (werror=stop)."""
        dom = self._get(uuid)
        self._emit(dom, DomainEventKind.IO_ERROR, reason)
        if dom.state is DomainState.RUNNING:
            dom.stop_clock(self.clock())
            dom.state, dom.reason = DomainState.PAUSED, "ioerror"
            self._emit(dom, DomainEventKind.SUSPENDED, "ioerror")
