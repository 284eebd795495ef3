"""Host.getCapabilities and Host.getHardwareInfo records.

Built from the hypervisor's NodeInfo (so a simulated node reports its own
CPUs and memory) plus facts read from this machine (OS release, network
interfaces). vdsm's value types are kept: most numbers are strings.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from ..virt.hypervisor import NodeInfo

__all__ = ["AGENT_VERSION", "CLUSTER_LEVELS", "build_capabilities", "hardware_info",
           "host_facts_blocking"]

AGENT_VERSION = "4.50.0"  # the vdsm release line whose verbs we speak
CLUSTER_LEVELS = ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7"]


def _os_release() -> dict[str, str]:
    info = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            info[key] = value.strip().strip('"')
    except OSError:
        pass
    return info


def _nics() -> dict[str, dict[str, Any]]:
    nics = {}
    base = Path("/sys/class/net")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return {}
    for name in names:
        d = base / name
        if name == "lo" or (d / "bridge").exists() or not (d / "device").exists() and \
                not name.startswith(("veth", "eth", "ens", "enp")):
            continue
        try:
            mac = (d / "address").read_text().strip()
            mtu = (d / "mtu").read_text().strip()
        except OSError:
            continue
        nics[name] = {"hwaddr": mac, "mtu": mtu, "speed": 1000, "ipv4addrs": [],
                      "ipv6addrs": [], "addr": "", "netmask": "", "gateway": "",
                      "ipv4defaultroute": False, "dhcpv4": False, "dhcpv6": False}
    return nics


def host_facts_blocking() -> dict[str, Any]:
    """Facts of this machine that do not change while the agent runs."""
    osr = _os_release()
    kdump = -1
    try:
        kdump = 1 if "crashkernel=" in Path("/proc/cmdline").read_text() else 0
    except OSError:
        pass
    return {
        "os": {"name": osr.get("NAME", "Linux"), "version": osr.get("VERSION_ID", ""),
               "release": platform.release(), "pretty_name": osr.get("PRETTY_NAME", "")},
        "kernel": platform.release(),
        "nics": _nics(),
        "kdump": kdump,
        "iommu": Path("/sys/kernel/iommu_groups").is_dir() and any(
            Path("/sys/kernel/iommu_groups").iterdir()),
    }


def build_capabilities(node: NodeInfo, facts: dict[str, Any], hooks: dict[str, Any],
                       client_iface: str = "") -> dict[str, Any]:
    cores = node.cpu_sockets * node.cpu_cores_per_socket
    threads = cores * node.cpu_threads_per_core
    cpus = list(range(node.online_cpus))
    per_cell = max(1, len(cpus) // max(1, node.numa_nodes))
    numa = {
        str(cell): {"cpus": cpus[cell * per_cell:(cell + 1) * per_cell],
                    "totalMemory": str(node.memory_mib // max(1, node.numa_nodes))}
        for cell in range(max(1, node.numa_nodes))
    }
    distances = {str(a): [10 if a == b else 20 for b in range(len(numa))]
                 for a in range(len(numa))}
    kernel = facts.get("kernel", platform.release())
    return {
        "kvmEnabled": "true" if node.kvm_enabled else "false",
        "cpuCores": str(cores),
        "cpuThreads": str(threads),
        "cpuSockets": str(node.cpu_sockets),
        "onlineCpus": ",".join(map(str, cpus)),
        "cpuSpeed": f"{float(node.cpu_mhz):.3f}",
        "cpuModel": node.cpu_model,
        "cpuFlags": ",".join(node.cpu_flags),
        "memSize": str(node.memory_mib),
        "reservedMem": "321",
        "guestOverhead": "65",
        "software_version": AGENT_VERSION,
        "software_revision": "1",
        "version_name": "ov agent",
        "supportedENGINEs": CLUSTER_LEVELS,
        "clusterLevels": CLUSTER_LEVELS,
        "packages2": {
            "kernel": {"version": kernel.split("-")[0], "release": kernel},
            "libvirt": {"version": node.libvirt_version, "release": "1"},
            "qemu-kvm": {"version": node.qemu_version or "0", "release": "1"},
            "vdsm": {"version": AGENT_VERSION, "release": "1"},
        },
        "operatingSystem": facts["os"],
        "uuid": node.system_uuid,
        "emulatedMachines": list(node.emulated_machines),
        "vmTypes": ["kvm"],
        "numaNodes": numa,
        "numaNodeDistance": distances,
        "autoNumaBalancing": 2,
        "hooks": hooks,
        "networks": {},
        "bridges": {},
        "nics": facts.get("nics", {}),
        "bondings": {},
        "vlans": {},
        "nameservers": [],
        "supportsIPv6": True,
        "netConfigDirty": "False",
        "lastClientIface": client_iface,
        "ISCSIInitiatorName": "",
        "HBAInventory": {"iSCSI": [], "FC": []},
        "selinux": {"mode": "-1"},
        "rngSources": ["random"],
        "liveSnapshot": "true",
        "liveMerge": "true",
        "kdumpStatus": facts.get("kdump", -1),
        "hostdevPassthrough": "true" if facts.get("iommu") else "false",
        "additionalFeatures": [],
        "hostedEngineDeployed": False,
        "fipsEnabled": False,
        "vncEncrypted": False,
        "backupEnabled": False,
        "domain_versions": [],
    }


def hardware_info(node: NodeInfo) -> dict[str, str]:
    info = {
        "systemManufacturer": node.system_manufacturer,
        "systemProductName": node.system_product,
        "systemSerialNumber": node.system_serial,
        "systemUUID": node.system_uuid,
    }
    return {k: v for k, v in info.items() if v}
