"""Host capabilities and statistics (vdsm records) -> host_dynamic / host_statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = ["HostFacts", "facts_from_capabilities", "save_capabilities", "save_statistics",
           "HostStats", "stats_from_report"]


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return default


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True, slots=True)
class HostFacts:
    cpu_model: str
    cpu_cores: int
    cpu_threads: int
    cpu_sockets: int
    cpu_speed_mhz: float
    cpu_flags: str
    online_cpus: int
    mem_size_mib: int
    kvm_enabled: bool
    software_version: str
    os_name: str
    os_version: str
    kernel_version: str
    libvirt_version: str
    qemu_version: str
    cluster_levels: list[str]
    emulated_machines: list[str]
    # The host's image server port (ov agents report it; vdsm hosts run
    # ovirt-imageio on 54322); 0: it is not running.
    imageio_port: int = 54322


def facts_from_capabilities(caps: dict[str, Any]) -> HostFacts:
    pkgs = caps.get("packages2") or {}
    osv = caps.get("operatingSystem") or {}
    online = str(caps.get("onlineCpus") or "")
    return HostFacts(
        cpu_model=str(caps.get("cpuModel", "")),
        cpu_cores=_int(caps.get("cpuCores")),
        cpu_threads=_int(caps.get("cpuThreads")),
        cpu_sockets=_int(caps.get("cpuSockets")),
        cpu_speed_mhz=_float(caps.get("cpuSpeed")),
        cpu_flags=str(caps.get("cpuFlags", "")),
        online_cpus=len([c for c in online.split(",") if c]) or _int(caps.get("cpuThreads")),
        mem_size_mib=_int(caps.get("memSize")),
        kvm_enabled=str(caps.get("kvmEnabled", "false")).lower() == "true",
        software_version=str(caps.get("software_version", "")),
        os_name=str(osv.get("name", "")),
        os_version=str(osv.get("version", "")),
        kernel_version=str((pkgs.get("kernel") or {}).get("release", "")),
        libvirt_version=str((pkgs.get("libvirt") or {}).get("version", "")),
        qemu_version=str((pkgs.get("qemu-kvm") or {}).get("version", "")),
        cluster_levels=[str(x) for x in caps.get("clusterLevels") or []],
        emulated_machines=[str(x) for x in caps.get("emulatedMachines") or []],
        imageio_port=_int(caps.get("imageioPort"), 54322),
    )


async def save_capabilities(conn: asyncpg.Pool | asyncpg.Connection, host_id: Any,
                            f: HostFacts, caps: dict[str, Any],
                            hw: dict[str, Any] | None = None) -> None:
    hw = hw or {}
    await conn.execute("""
        UPDATE host_dynamic SET cpu_model=$2, cpu_cores=$3, cpu_threads=$4, cpu_sockets=$5,
            cpu_speed_mhz=$6, cpu_flags=$7, online_cpus=$8, mem_size_mib=$9, kvm_enabled=$10,
            software_version=$11, os_name=$12, os_version=$13, kernel_version=$14,
            libvirt_version=$15, qemu_version=$16, cluster_levels=$17, capabilities=$18,
            hw_manufacturer=$19, hw_product=$20, hw_serial=$21, hw_uuid=$22,
            last_seen_at=now()
        WHERE host_id=$1""",
        host_id, f.cpu_model, f.cpu_cores, f.cpu_threads, f.cpu_sockets, f.cpu_speed_mhz,
        f.cpu_flags, f.online_cpus, f.mem_size_mib, f.kvm_enabled, f.software_version,
        f.os_name, f.os_version, f.kernel_version, f.libvirt_version, f.qemu_version,
        f.cluster_levels, caps, hw.get("systemManufacturer"), hw.get("systemProductName"),
        hw.get("systemSerialNumber"), hw.get("systemUUID"))


@dataclass(frozen=True, slots=True)
class HostStats:
    cpu_user: float
    cpu_sys: float
    cpu_idle: float
    cpu_load: float
    mem_free_mib: int
    mem_available_mib: int
    mem_committed_mib: int
    mem_used_pct: int
    mem_shared_mib: int
    swap_total_mib: int
    swap_free_mib: int
    ksm_state: bool
    ksm_cpu: float
    vm_count: int
    vm_active: int
    vm_migrating: int
    boot_time: int


def stats_from_report(s: dict[str, Any]) -> HostStats:
    return HostStats(
        cpu_user=_float(s.get("cpuUser")), cpu_sys=_float(s.get("cpuSys")),
        cpu_idle=_float(s.get("cpuIdle")), cpu_load=_float(s.get("cpuLoad")),
        mem_free_mib=_int(s.get("memFree")), mem_available_mib=_int(s.get("memAvailable")),
        mem_committed_mib=_int(s.get("memCommitted")), mem_used_pct=_int(s.get("memUsed")),
        mem_shared_mib=_int(s.get("memShared")), swap_total_mib=_int(s.get("swapTotal")),
        swap_free_mib=_int(s.get("swapFree")), ksm_state=bool(s.get("ksmState")),
        ksm_cpu=_float(s.get("ksmCpu")), vm_count=_int(s.get("vmCount")),
        vm_active=_int(s.get("vmActive")), vm_migrating=_int(s.get("vmMigrating")),
        boot_time=_int(s.get("bootTime")))


async def save_statistics(conn: asyncpg.Pool | asyncpg.Connection, host_id: Any,
                          st: HostStats) -> None:
    await conn.execute("""
        UPDATE host_statistics SET cpu_user=$2, cpu_sys=$3, cpu_idle=$4, cpu_load=$5,
            mem_free_mib=$6, mem_available_mib=$7, mem_committed_mib=$8, mem_used_pct=$9,
            mem_shared_mib=$10, swap_total_mib=$11, swap_free_mib=$12, ksm_state=$13,
            ksm_cpu=$14, vm_count=$15, vm_active=$16, vm_migrating=$17, boot_time=$18,
            updated_at=now()
        WHERE host_id=$1""",
        host_id, st.cpu_user, st.cpu_sys, st.cpu_idle, st.cpu_load, st.mem_free_mib,
        st.mem_available_mib, st.mem_committed_mib, st.mem_used_pct, st.mem_shared_mib,
        st.swap_total_mib, st.swap_free_mib, st.ksm_state, st.ksm_cpu, st.vm_count,
        st.vm_active, st.vm_migrating, st.boot_time)
