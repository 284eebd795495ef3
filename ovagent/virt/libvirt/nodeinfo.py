"""NodeInfo from libvirt's node data (runs in a worker thread)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from ..hypervisor import NodeInfo

__all__ = ["node_info_blocking", "version_string"]


def version_string(packed: int) -> str:
    return f"{packed // 1_000_000}.{packed // 1000 % 1000}.{packed % 1000}"


def _proc_cpu_flags() -> tuple[str, ...]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return tuple(line.split(":", 1)[1].split())
    except OSError:
        pass
    return ()


def _proc_mem_total_mib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kvm_works() -> bool:
    """Can this machine really create a KVM VM? libvirt lists the kvm domain
    type whenever /dev/kvm exists, even where KVM cannot run (no nested
    virtualization), and a VM started as type='kvm' there fails."""
    import fcntl
    import os

    kvm_create_vm = 0xAE01
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        vm_fd = fcntl.ioctl(fd, kvm_create_vm, 0)
        os.close(vm_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _sysinfo_blocking(conn: libvirt.virConnect) -> dict[str, str]:
    try:
        root = ET.fromstring(conn.getSysinfo(0))
    except libvirt.libvirtError:
        return {}
    found = {}
    for entry in root.iterfind("./system/entry"):
        found[entry.get("name", "")] = (entry.text or "").strip()
    return found


def node_info_blocking(conn: libvirt.virConnect) -> NodeInfo:
    arch, mem_mib, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
    caps = ET.fromstring(conn.getCapabilities())
    model = caps.findtext("./host/cpu/model") or ""
    features = tuple(f.get("name", "") for f in caps.iterfind("./host/cpu/feature"))
    topo = caps.find("./host/cpu/topology")
    if topo is not None:
        sockets = int(topo.get("sockets", sockets))
        cores = int(topo.get("cores", cores))
        threads = int(topo.get("threads", threads))
    machines = []
    kvm = False
    for guest in caps.iterfind("./guest"):
        for m in guest.iterfind("./arch/machine"):
            if m.text and m.text not in machines:
                machines.append(m.text)
        if guest.find("./arch/domain[@type='kvm']") is not None:
            kvm = True
    cells = caps.find("./host/topology/cells")
    numa = max(1, int(cells.get("num", "1")) if cells is not None else nodes)
    driver = conn.getType()
    host_arch = caps.findtext("./host/cpu/arch") or arch
    if driver == "TEST":
        # The test driver's capabilities are canned (i686); its node
        # definition's <model> is what the simulated host claims to be.
        host_arch, model = "x86_64", model or arch
    qemu_version = ""
    if driver == "QEMU":
        qemu_version = version_string(conn.getVersion())
        # libvirt sums its NUMA cells, which can miss memory (seen: 4.3 of 24 GiB
        # on a VM with hot-added memory); vdsm reports MemTotal, and so does
        # node_memory(): the kernel knows best.
        mem_mib = _proc_mem_total_mib() or mem_mib
        # The host really is this machine: its flags are the truth.
        features = _proc_cpu_flags() or features
    sysinfo = _sysinfo_blocking(conn) if driver == "QEMU" else {}
    host_uuid = caps.findtext("./host/uuid") or ""
    return NodeInfo(
        hostname=conn.getHostname(),
        arch=host_arch,
        cpu_model=model or arch,
        cpu_mhz=int(mhz),
        cpu_sockets=int(sockets) * max(1, int(nodes) if topo is None else 1),
        cpu_cores_per_socket=int(cores),
        cpu_threads_per_core=int(threads),
        online_cpus=int(cpus),
        memory_mib=int(mem_mib),
        cpu_flags=features,
        emulated_machines=tuple(machines),
        numa_nodes=numa,
        kvm_enabled=kvm and driver == "QEMU" and _kvm_works(),
        driver=driver,
        libvirt_version=version_string(conn.getLibVersion()),
        qemu_version=qemu_version,
        system_manufacturer=sysinfo.get("manufacturer", "ov"),
        system_product=sysinfo.get("product", "libvirt " + driver.lower()),
        system_serial=sysinfo.get("serial", ""),
        system_uuid=sysinfo.get("uuid", host_uuid),
    )
