"""Readers of /proc and /sys for host statistics (blocking: call in a thread).

Each reader returns plain numbers; rates and percentages come from comparing
two readings (HostStatsSampler).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CpuTimes", "HostReading", "read_host_blocking", "parse_proc_stat",
           "parse_meminfo"]

PROC = Path("/proc")
SYS = Path("/sys")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def total(self) -> int:
        return (self.user + self.nice + self.system + self.idle + self.iowait + self.irq
                + self.softirq + self.steal)


@dataclass(slots=True)
class HostReading:
    cpu: CpuTimes
    boot_time: int
    meminfo: dict[str, int]  # KiB
    loadavg_1m: float
    process_user_ticks: int
    process_system_ticks: int
    ksm: dict[str, int] = field(default_factory=dict)
    thp_state: str = ""
    # device -> counters (rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped,
    # tx_dropped) and facts (operstate, speed)
    nics: dict[str, dict[str, str | int]] = field(default_factory=dict)


def parse_proc_stat(text: str) -> tuple[CpuTimes, int]:
    cpu: CpuTimes | None = None
    btime = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:9]]
            v += [0] * (8 - len(v))
            cpu = CpuTimes(*v)
        elif line.startswith("btime "):
            btime = int(line.split()[1])
    if cpu is None:
        raise ValueError("/proc/stat has no cpu line")
    return cpu, btime


def parse_meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            try:
                out[key] = int(parts[0])
            except ValueError:
                pass
    return out


def _read_int(path: Path, default: int = 0) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return default


def _read_nics() -> dict[str, dict[str, str | int]]:
    nics: dict[str, dict[str, str | int]] = {}
    base = SYS / "class" / "net"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return nics
    for name in names:
        if name == "lo":
            continue
        d = base / name
        entry: dict[str, str | int] = {}
        for key in ("rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped",
                    "tx_dropped"):
            entry[key] = _read_int(d / "statistics" / key)
        try:
            entry["operstate"] = (d / "operstate").read_text().strip()
        except OSError:
            entry["operstate"] = "unknown"
        entry["speed"] = max(0, _read_int(d / "speed", 0))
        nics[name] = entry
    return nics


def read_host_blocking() -> HostReading:
    cpu, btime = parse_proc_stat((PROC / "stat").read_text())
    meminfo = parse_meminfo((PROC / "meminfo").read_text())
    load = float((PROC / "loadavg").read_text().split()[0])
    fields = (PROC / "self" / "stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    ksm = {}
    ksm_dir = SYS / "kernel" / "mm" / "ksm"
    if ksm_dir.is_dir():
        for key in ("run", "pages_to_scan", "pages_sharing", "merge_across_nodes"):
            ksm[key] = _read_int(ksm_dir / key)
    thp = ""
    try:
        text = (SYS / "kernel" / "mm" / "transparent_hugepage" / "enabled").read_text()
        if "[" in text:
            thp = text.split("[", 1)[1].split("]", 1)[0]
    except OSError:
        pass
    return HostReading(cpu, btime, meminfo, load, utime, stime, ksm, thp, _read_nics())
