"""The libvirt domain XML the engine sends in VM.create (as oVirt 4.2+ does).

Pure: configuration in, XML text out. The VNC console starts with a password
that expired long ago (so nobody connects until the engine issues a ticket
with VM.setTicket), which is also what QEMU needs to accept tickets later.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

__all__ = ["VmSpec", "DiskSpec", "NicSpec", "build_domain_xml", "disk_targets", "OVIRT_VM_NS"]

OVIRT_VM_NS = "http://ovirt.org/vm/1.0"


@dataclass(frozen=True, slots=True)
class DiskSpec:
    path: str
    target: str
    bus: str = "virtio"      # virtio | scsi (on a virtio-scsi controller)
    fmt: str = "qcow2"
    bootable: bool = False
    read_only: bool = False
    serial: str = ""
    # Where the volume lives (vdsm's drive identity, kept in the metadata as
    # oVirt does, so the host knows which volume each disk is).
    pool_id: str = ""
    domain_id: str = ""
    image_id: str = ""
    volume_id: str = ""


def disk_targets(buses: list[str]) -> list[str]:
    """Device names in order: virtio disks vda, vdb, ...; SCSI disks sda, sdb, ..."""
    counters = {"virtio": 0, "scsi": 0}
    out = []
    for bus in buses:
        n = counters[bus]
        counters[bus] += 1
        letters = ""
        n += 1
        while n:
            n, r = divmod(n - 1, 26)
            letters = chr(ord("a") + r) + letters
        out.append(("vd" if bus == "virtio" else "sd") + letters)
    return out


@dataclass(frozen=True, slots=True)
class NicSpec:
    mac: str
    model: str = "virtio"
    network: str = ""  # libvirt network or bridge; empty: no backend (link down)
    linked: bool = True


@dataclass(frozen=True, slots=True)
class VmSpec:
    id: str
    name: str
    memory_mib: int
    memory_guaranteed_mib: int
    memory_max_mib: int
    sockets: int = 1
    cores: int = 1
    threads: int = 1
    boot_devices: tuple[str, ...] = ("hd",)
    display_type: str = "vnc"
    display_address: str = "0"
    ballooning: bool = True
    kvm: bool = False
    machine: str = "pc"
    cluster_version: str = "4.7"
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = field(default=())


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def build_domain_xml(vm: VmSpec) -> str:
    ET.register_namespace("ovirt-vm", OVIRT_VM_NS)
    root = ET.Element("domain", {"type": "kvm" if vm.kvm else "qemu"})
    _sub(root, "name", vm.name)
    _sub(root, "uuid", vm.id)
    meta = _sub(root, "metadata")
    ov = ET.SubElement(meta, f"{{{OVIRT_VM_NS}}}vm")
    ET.SubElement(ov, f"{{{OVIRT_VM_NS}}}clusterVersion").text = vm.cluster_version
    ET.SubElement(ov, f"{{{OVIRT_VM_NS}}}minGuaranteedMemoryMb").text = \
        str(vm.memory_guaranteed_mib)
    for d in vm.disks:
        if not d.volume_id:
            continue
        dev = ET.SubElement(ov, f"{{{OVIRT_VM_NS}}}device", {"devtype": "disk",
                                                            "name": d.target})
        for tag, value in (("domainID", d.domain_id), ("imageID", d.image_id),
                           ("poolID", d.pool_id), ("volumeID", d.volume_id)):
            ET.SubElement(dev, f"{{{OVIRT_VM_NS}}}{tag}").text = value
    _sub(root, "memory", str(vm.memory_mib * 1024), unit="KiB")
    _sub(root, "currentMemory", str(vm.memory_mib * 1024), unit="KiB")
    vcpus = vm.sockets * vm.cores * vm.threads
    _sub(root, "vcpu", str(vcpus), placement="static")
    # The default CPU model: host-model breaks under nested KVM on some
    # machines, and the cluster CPU type is not modelled yet.
    cpu = _sub(root, "cpu")
    _sub(cpu, "topology", sockets=str(vm.sockets), cores=str(vm.cores),
         threads=str(vm.threads))
    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine=vm.machine)
    for dev in vm.boot_devices:
        _sub(os_el, "boot", dev={"hd": "hd", "cdrom": "cdrom", "network": "network"}
             .get(dev, "hd"))
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    devices = _sub(root, "devices")
    if any(d.bus == "scsi" for d in vm.disks):
        _sub(devices, "controller", type="scsi", model="virtio-scsi", index="0")
    for d in vm.disks:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=d.fmt, cache="none", error_policy="stop",
             io="threads")
        _sub(disk, "source", file=d.path)
        _sub(disk, "target", dev=d.target, bus=d.bus)
        if d.serial:
            _sub(disk, "serial", d.serial)
        if d.read_only:
            _sub(disk, "readonly")
    for n in vm.nics:
        if n.network:
            iface = _sub(devices, "interface", type="bridge")
            _sub(iface, "source", bridge=n.network)
        else:
            iface = _sub(devices, "interface", type="user")
        _sub(iface, "mac", address=n.mac)
        _sub(iface, "model", type=n.model)
        if not (n.network and n.linked):
            _sub(iface, "link", state="down")
    if vm.display_type in ("vnc", "spice"):
        g = _sub(devices, "graphics", type=vm.display_type, port="-1", autoport="yes",
                 passwd="*****", passwdValidTo="1970-01-01T00:00:01")
        _sub(g, "listen", type="address", address=vm.display_address)
        video = _sub(devices, "video")
        _sub(video, "model", type="vga" if vm.display_type == "vnc" else "qxl")
    _sub(devices, "memballoon", model="virtio" if vm.ballooning else "none")
    _sub(devices, "serial", type="pty")
    _sub(devices, "console", type="pty")
    return ET.tostring(root, encoding="unicode")
