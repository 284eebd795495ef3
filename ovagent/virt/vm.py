"""One VM as the agent sees it: status (vdsm's strings), exit info, stats.

The Vm object is state only; VmManager does the I/O and drives transitions.
Stats members and their JSON types follow vdsm (most numbers are strings).
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from .domxml import display_info, summary, xml_hash
from .hypervisor import DomainSample

__all__ = ["VmStatus", "ExitReason", "ExitInfo", "Vm", "vdsm_time_ms"]

# vdsm's clock for statusTime/notify_time: monotonic milliseconds shifted by
# 2**31-1, so values are positive and grow across the agent's restarts.
_CLOCK_OFFSET_MS = 2**31 - 1


def vdsm_time_ms(monotonic_s: float | None = None) -> int:
    t = time.monotonic() if monotonic_s is None else monotonic_s
    return _CLOCK_OFFSET_MS + int(t * 1000)


class VmStatus(str, enum.Enum):
    WAIT_FOR_LAUNCH = "WaitForLaunch"
    POWERING_UP = "Powering up"
    UP = "Up"
    PAUSED = "Paused"
    POWERING_DOWN = "Powering down"
    DOWN = "Down"
    MIGRATION_SOURCE = "Migration Source"
    MIGRATION_DESTINATION = "Migration Destination"
    SAVING_STATE = "Saving State"  # sic: vdsm's capitalisation
    RESTORING_STATE = "Restoring state"
    REBOOT_IN_PROGRESS = "RebootInProgress"
    # There is no "Not Responding" here: the engine derives it from
    # monitorResponse "-1" in the stats.

    @property
    def running(self) -> bool:
        return self not in (VmStatus.DOWN, VmStatus.WAIT_FOR_LAUNCH)


class ExitReason(enum.IntEnum):
    """vdsm's exitReason codes (the engine maps them to messages and actions)."""

    SUCCESS = 0
    GENERIC_ERROR = 1
    LOST_QEMU_CONNECTION = 2
    LIBVIRT_START_FAILED = 3
    MIGRATION_SUCCEEDED = 4
    SAVE_STATE_SUCCEEDED = 5
    ADMIN_SHUTDOWN = 6
    USER_SHUTDOWN = 7
    MIGRATION_FAILED = 8
    LIBVIRT_DOMAIN_MISSING = 9
    DESTROYED_ON_STARTUP = 10
    HOST_SHUTDOWN = 11


# exitCode values
NORMAL = 0
ERROR = 1


@dataclass(frozen=True, slots=True)
class ExitInfo:
    code: int
    message: str
    reason: ExitReason

    def to_stats(self) -> dict[str, Any]:
        return {"exitCode": self.code, "exitMessage": self.message,
                "exitReason": int(self.reason)}


@dataclass(slots=True)
class _Counters:
    at: float
    sample: DomainSample


def _rate(new: int, old: int, seconds: float) -> float:
    return max(0.0, (new - old) / seconds) if seconds > 0 else 0.0


# Vm attributes stats() is built from: setting one drops the cached record.
_STATS_INPUTS = frozenset({"status", "exit_info", "pause_code", "monitor_response", "xml",
                           "_sampled", "_hash", "_display", "_facts", "vm_jobs"})


@dataclass(eq=False)
class Vm:
    id: str
    params: dict[str, Any]  # vmParams as the engine sent them (minus the XML)
    xml: str
    status: VmStatus = VmStatus.WAIT_FOR_LAUNCH
    status_time_ms: int = field(default_factory=vdsm_time_ms)  # of the last change
    launching: bool = False  # VM.create's launch (hooks, domain start) under way
    start_time_s: float = field(default_factory=time.time)  # wall clock, survives restarts
    exit_info: ExitInfo | None = None
    pause_code: str = "NOERR"
    monitor_response: int = 0
    external: bool = False  # running, but not started through this agent
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # What the engine asked for, to tell an admin shutdown from a guest one.
    shutdown_requested: bool = False
    destroy_requested: bool = False
    # Counts pause/resume events: a state check started before the latest
    # one is stale and must not overrule it.
    pause_events: int = 0
    balloon_target_kib: int | None = None
    # Block jobs (live merges) by job id, as vdsm's vmJobs; replace, never mutate.
    vm_jobs: dict[str, Any] = field(default_factory=dict)
    _prev: _Counters | None = field(default=None, repr=False)
    _sampled: dict[str, Any] = field(default_factory=dict, repr=False)
    _facts: dict[str, Any] = field(default_factory=dict, repr=False)
    _hash: str = ""
    # stats() without its per-call members; dropped whenever a member it is
    # built from changes (see __setattr__). getAllVmStats at 1,000 VMs then
    # costs a dict copy per VM instead of building ~35 members.
    _stats_cache: dict[str, Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.set_xml(self.xml)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _STATS_INPUTS:
            object.__setattr__(self, "_stats_cache", None)

    # ----------------------------------------------------------- identity
    def set_xml(self, xml: str) -> None:
        self.xml = xml
        self._facts = summary(xml)
        self._hash = xml_hash(xml)
        self._display = display_info(xml)

    @property
    def name(self) -> str:
        return str(self._facts["name"])

    @property
    def memory_kib(self) -> int:
        return int(self._facts["memory_kib"])

    @property
    def vcpus(self) -> int:
        return int(self._facts["vcpus"])

    @property
    def hash(self) -> str:
        return self._hash

    # ------------------------------------------------------------- status
    def set_status(self, status: VmStatus, exit_info: ExitInfo | None = None) -> bool:
        """Change status; True when it changed (an event is due)."""
        if status is self.status and exit_info is None:
            return False
        self.status = status
        self.status_time_ms = vdsm_time_ms()
        if status is VmStatus.DOWN:
            self.exit_info = exit_info or self.exit_info
        return True

    def elapsed_s(self) -> int:
        return max(0, int(time.time() - self.start_time_s))

    # -------------------------------------------------------------- stats
    def absorb_sample(self, sample: DomainSample, now: float) -> None:
        """Compute rates against the previous sample and keep the result."""
        prev, self._prev = self._prev, _Counters(now, sample)
        self.monitor_response = 0
        out: dict[str, Any] = {}
        vcpus = max(1, sample.vcpus or self.vcpus)
        if prev is not None:
            dt = now - prev.at
            p = prev.sample
            # Percent of the VM's vCPUs, like vdsm (100 = all vCPUs busy).
            scale = 100.0 / (vcpus * 1e9)
            user = _rate(sample.cpu_user_ns, p.cpu_user_ns, dt) * scale
            system = _rate(sample.cpu_system_ns, p.cpu_system_ns, dt) * scale
            total = _rate(sample.cpu_time_ns, p.cpu_time_ns, dt) * scale
            # cpu.time includes time outside user/system (e.g. TCG emulation).
            user = max(user, total - system)
            out["cpuUser"] = f"{min(user, 100.0):.2f}"
            out["cpuSys"] = f"{min(system, 100.0):.2f}"
        else:
            out["cpuUser"] = "0.00"
            out["cpuSys"] = "0.00"
        out["cpuUsage"] = str(sample.cpu_time_ns)
        out["vcpuCount"] = str(vcpus)
        cur = sample.balloon_current_kib or self.memory_kib
        maximum = sample.balloon_maximum_kib or self.memory_kib
        unused = sample.memory_stats.get("unused")
        if unused is not None and cur:
            out["memUsage"] = str(int(100 * (cur - unused) / cur))
        elif sample.memory_rss_kib and cur:
            out["memUsage"] = str(min(100, int(100 * sample.memory_rss_kib / cur)))
        else:
            out["memUsage"] = "0"
        out["memoryStats"] = {k: str(v) for k, v in sample.memory_stats.items()}
        target = self.balloon_target_kib if self.balloon_target_kib is not None else cur
        out["balloonInfo"] = {"balloon_max": str(maximum), "balloon_min": "0",
                              "balloon_cur": str(cur), "balloon_target": str(target),
                              "ballooning_enabled": True}
        out["network"] = self._network_stats(sample, prev)
        out["disks"] = self._disk_stats(sample, prev)
        self._sampled = out

    def _network_stats(self, s: DomainSample, prev: _Counters | None) -> dict[str, Any]:
        macs = {n["name"]: n["macAddr"] for n in self._facts["nics"]}
        dt = (self._prev.at - prev.at) if (prev and self._prev) else 0.0
        result = {}
        for dev, c in s.net.items():
            old = prev.sample.net.get(dev) if prev else None
            entry = {"name": dev, "macAddr": macs.get(dev, ""), "state": "unknown",
                     "speed": "1000",
                     "rx": str(c["rx_bytes"]), "tx": str(c["tx_bytes"]),
                     "rxErrors": str(c["rx_errs"]), "txErrors": str(c["tx_errs"]),
                     "rxDropped": str(c["rx_drop"]), "txDropped": str(c["tx_drop"]),
                     "sampleTime": float(vdsm_time_ms()) / 1000}
            entry["rxRate"] = f"{_rate(c['rx_bytes'], old['rx_bytes'], dt) if old else 0.0:.1f}"
            entry["txRate"] = f"{_rate(c['tx_bytes'], old['tx_bytes'], dt) if old else 0.0:.1f}"
            result[dev] = entry
        return result

    def _disk_stats(self, s: DomainSample, prev: _Counters | None) -> dict[str, Any]:
        dt = (self._prev.at - prev.at) if (prev and self._prev) else 0.0
        result = {}
        for dev, c in s.block.items():
            old = prev.sample.block.get(dev) if prev else None
            entry = {"readRate": "0.0", "writeRate": "0.0", "readOps": str(c["rd_reqs"]),
                     "writeOps": str(c["wr_reqs"]), "readBytes": str(c["rd_bytes"]),
                     "writtenBytes": str(c["wr_bytes"]), "readLatency": "0",
                     "writeLatency": "0", "flushLatency": "0",
                     "truesize": str(c["allocation"] or c["physical"]),
                     "apparentsize": str(c["capacity"]), "imageID": ""}
            if old:
                entry["readRate"] = f"{_rate(c['rd_bytes'], old['rd_bytes'], dt):.1f}"
                entry["writeRate"] = f"{_rate(c['wr_bytes'], old['wr_bytes'], dt):.1f}"
                rd_ops = c["rd_reqs"] - old["rd_reqs"]
                wr_ops = c["wr_reqs"] - old["wr_reqs"]
                if rd_ops > 0:
                    entry["readLatency"] = str((c["rd_times"] - old["rd_times"]) // rd_ops)
                if wr_ops > 0:
                    entry["writeLatency"] = str((c["wr_times"] - old["wr_times"]) // wr_ops)
            result[dev] = entry
        return result

    def set_balloon_target(self, target_kib: int) -> None:
        """The engine's new balloon target: reported at once, not at the next sample."""
        self.balloon_target_kib = target_kib
        info = self._sampled.get("balloonInfo")
        if info is not None:  # a new dict: records already handed out stay as they were
            self._sampled = {**self._sampled,
                             "balloonInfo": {**info, "balloon_target": str(target_kib)}}

    def mark_not_responding(self) -> None:
        self.monitor_response = -1

    def stats(self) -> dict[str, Any]:
        """VM.getStats / getAllVmStats entry for this VM (a new dict each call)."""
        cached = self._stats_cache
        if cached is None:
            cached = self._build_stats()
            object.__setattr__(self, "_stats_cache", cached)
        out = cached.copy()
        # When this record was built, as vdsm: the engine drops a report older
        # than the newest it applied, so a status-change time would make every
        # later poll of an unchanged VM look stale.
        out["statusTime"] = str(vdsm_time_ms())
        if "elapsedTime" in out:
            out["elapsedTime"] = str(self.elapsed_s())
        return out

    def _build_stats(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "vmId": self.id,
            "vmName": self.name,
            "status": self.status.value,
            "statusTime": "",  # per call
            "vmType": "kvm",
            "kvmEnable": "true",
            "acpiEnable": "true",
            "timeOffset": "0",
            "clientIp": "",
            "hash": self._hash,
        }
        if self.status is VmStatus.DOWN:
            if self.exit_info is not None:
                base.update(self.exit_info.to_stats())
            return base
        base["elapsedTime"] = ""  # per call
        base["monitorResponse"] = str(self.monitor_response)
        base["displayInfo"] = self._display
        base["guestFQDN"] = ""
        base["guestName"] = ""
        base["username"] = "Unknown"
        base["appsList"] = []
        base["netIfaces"] = []
        base["guestCPUCount"] = -1
        if self.status is VmStatus.PAUSED:
            base["pauseCode"] = self.pause_code
        base["vmJobs"] = self.vm_jobs
        base.update(self._sampled)
        return base

    def status_event(self) -> dict[str, Any]:
        """The per-VM body of a |virt|VM_status| event."""
        body: dict[str, Any] = {"status": self.status.value, "vmId": self.id,
                                "hash": self._hash}
        if self.status is VmStatus.DOWN and self.exit_info is not None:
            body.update(self.exit_info.to_stats())
        elif self.status is VmStatus.PAUSED:
            body["pauseCode"] = self.pause_code
        else:
            body["elapsedTime"] = str(self.elapsed_s())
            body["displayInfo"] = self._display
        return body

    def short_status(self) -> dict[str, Any]:
        """VM.create result and Host.getVMList entries (as current vdsm)."""
        return {"vmId": self.id, "status": self.status.value,
                "statusTime": str(vdsm_time_ms()), "vmName": self.name}

    def definition(self) -> dict[str, Any]:
        """Host.getVMFullList entries: the VM's parameters, status and XML."""
        d = dict(self.params)
        d.update({"vmId": self.id, "vmName": self.name, "status": self.status.value,
                  "memSize": self.memory_kib // 1024, "smp": str(self.vcpus),
                  "displayInfo": self._display, "xml": self.xml})
        if self.external:
            d["external"] = True
        return d
