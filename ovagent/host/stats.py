"""Host statistics for Host.getStats: sampled periodically, served from cache.

CPU, load, swap, KSM, boot time and interface traffic come from this
machine's /proc and /sys (rates from two successive readings). Memory comes
from the hypervisor's view of the node, so a simulated host (the libvirt test
driver with its own node definition) reports its own size.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable

from ..virt.hypervisor import Hypervisor, NodeMemory
from .procfs import HostReading, read_host_blocking

__all__ = ["HostStatsSampler", "VmCounts", "StorageVitals"]

log = logging.getLogger(__name__)

_TICKS = os.sysconf("SC_CLK_TCK")

# (vmCount, vmActive, vmMigrating, incoming, outgoing, committed KiB)
VmCounts = Callable[[], tuple[int, int, int, int, int, int]]
# Monitoring results of storage domains, keyed by domain UUID.
StorageVitals = Callable[[], dict[str, Any]]


def _pct(part: float, whole: float) -> str:
    return f"{(100.0 * part / whole) if whole > 0 else 0.0:.2f}"


class HostStatsSampler:
    def __init__(self, hypervisor: Hypervisor, vm_counts: VmCounts,
                 storage_vitals: StorageVitals | None = None) -> None:
        self.hypervisor = hypervisor
        self.vm_counts = vm_counts
        self.storage_vitals = storage_vitals
        self.started_at = time.monotonic()
        self._prev: tuple[float, HostReading] | None = None
        self._cpu: dict[str, str] = {"cpuUser": "0.00", "cpuSys": "0.00", "cpuIdle": "100.00",
                                     "cpuUserVdsmd": "0.00", "cpuSysVdsmd": "0.00"}
        self._net: dict[str, dict[str, Any]] = {}
        self._reading: HostReading | None = None
        self._memory: NodeMemory | None = None

    async def sample(self) -> None:
        """Take one reading (in a worker thread) and update the cached figures."""
        reading = await asyncio.to_thread(read_host_blocking)
        try:
            self._memory = await self.hypervisor.node_memory()
        except Exception as exc:  # stats must keep flowing when libvirt hiccups
            log.warning("node memory unavailable: %s", exc)
        now = time.monotonic()
        if self._prev is not None:
            then, old = self._prev
            self._update_rates(now - then, old, reading)
        self._prev = (now, reading)
        self._reading = reading

    def _update_rates(self, dt: float, old: HostReading, new: HostReading) -> None:
        total = new.cpu.total - old.cpu.total
        self._cpu = {
            "cpuUser": _pct(new.cpu.user + new.cpu.nice - old.cpu.user - old.cpu.nice, total),
            "cpuSys": _pct(new.cpu.system + new.cpu.irq + new.cpu.softirq - old.cpu.system
                           - old.cpu.irq - old.cpu.softirq, total),
            "cpuIdle": _pct(new.cpu.idle + new.cpu.iowait - old.cpu.idle - old.cpu.iowait,
                            total),
            "cpuUserVdsmd": _pct((new.process_user_ticks - old.process_user_ticks) / _TICKS,
                                 dt),
            "cpuSysVdsmd": _pct((new.process_system_ticks - old.process_system_ticks) / _TICKS,
                                dt),
        }
        net = {}
        for name, c in new.nics.items():
            o = old.nics.get(name)
            speed = int(c.get("speed", 0) or 1000)

            def rate(key: str) -> float:
                return max(0, int(c[key]) - int(o[key])) / dt if o and dt > 0 else 0.0

            net[name] = {
                "name": name, "state": "up" if c.get("operstate") == "up" else "down",
                "speed": str(speed), "duplex": "full",
                "rx": str(c["rx_bytes"]), "tx": str(c["tx_bytes"]),
                "rxErrors": str(c["rx_errors"]), "txErrors": str(c["tx_errors"]),
                "rxDropped": str(c["rx_dropped"]), "txDropped": str(c["tx_dropped"]),
                # Rates as a percent of link speed, like vdsm.
                "rxRate": f"{100 * rate('rx_bytes') * 8 / (speed * 1e6):.2f}",
                "txRate": f"{100 * rate('tx_bytes') * 8 / (speed * 1e6):.2f}",
                "sampleTime": time.monotonic(),
            }
        self._net = net

    def stats(self) -> dict[str, Any]:
        r = self._reading
        count, active, migrating, incoming, outgoing, committed_kib = self.vm_counts()
        mem = self._memory
        meminfo = r.meminfo if r else {}
        total_kib = mem.total_kib if mem else meminfo.get("MemTotal", 0)
        free_kib = mem.free_kib if mem else meminfo.get("MemAvailable", 0)
        used_pct = int(100 * (total_kib - free_kib) / total_kib) if total_kib else 0
        ksm = r.ksm if r else {}
        out: dict[str, Any] = dict(self._cpu)
        out.update({
            "cpuLoad": f"{r.loadavg_1m:.2f}" if r else "0.00",
            "elapsedTime": str(int(time.monotonic() - self.started_at)),
            "memUsed": str(used_pct),
            "anonHugePages": str(meminfo.get("AnonHugePages", 0) // 1024),
            # What a new VM can still get: free now, and not promised to a VM.
            "memAvailable": max(0, min(free_kib, total_kib - committed_kib)) // 1024,
            "memCommitted": committed_kib // 1024,
            "memFree": free_kib // 1024,
            "swapTotal": meminfo.get("SwapTotal", 0) // 1024,
            "swapFree": meminfo.get("SwapFree", 0) // 1024,
            "vmCount": count, "vmActive": active, "vmMigrating": migrating,
            "incomingVmMigrations": incoming, "outgoingVmMigrations": outgoing,
            "dateTime": time.strftime("%Y-%m-%dT%H:%M:%S GMT", time.gmtime()),
            "momStatus": "inactive",
            "netConfigDirty": "False",
            "haStats": {"configured": False, "active": False, "score": 0,
                        "globalMaintenance": False, "localMaintenance": False},
            "storageDomains": self.storage_vitals() if self.storage_vitals else {},
            "ksmState": bool(ksm.get("run", 0)),
            "ksmPages": ksm.get("pages_to_scan", 0),
            "ksmCpu": 0.0,
            "ksmMergeAcrossNodes": bool(ksm.get("merge_across_nodes", 1)),
            "memShared": ksm.get("pages_sharing", 0) * 4 // 1024,
            "network": self._net,
            "rxDropped": str(sum(int(n["rxDropped"]) for n in self._net.values())),
            "txDropped": str(sum(int(n["txDropped"]) for n in self._net.values())),
            "bootTime": str(r.boot_time) if r else "0",
        })
        if r and r.thp_state:
            out["thpState"] = r.thp_state
        return out
