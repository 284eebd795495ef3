"""Write an OVF the way oVirt's OVA export does (OvfOvaVmWriter, and
OvfOvaTemplateWriter for a template: the same shape, other general data).

The envelope is `ovf:Envelope`, and the OVF namespace is also the default
namespace, so sections and items are unprefixed: References, NetworkSection,
DiskSection, VirtualSystem ovf:id, then in the VirtualSystem the general
data, OperatingSystemSection (ovf:id = CIM id, ovirt:id = oVirt's os id)
and VirtualHardwareSection with rasd Items (3 CPU, 4 memory, 17 disks whose
HostResource is "ovf:/disk/<diskId>", 10 NICs, 23 USB). A disk's File is
named by its volume id, as oVirt's tar members are.
"""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape, quoteattr

from .model import (DATE_FORMAT, DISK_INTERFACES, GiB, OS_IDS, OVF_NS, OVIRT_NS, RASD_NS,
                    VM_TYPES, VSSD_NS, XSI_NS, OvfDisk, OvfVm)

__all__ = ["write_ovf", "QCOW_FORMAT_URL", "RAW_FORMAT_URL", "VIRTUAL_SYSTEM_TYPE"]

# OvfWriter.getVolumeImageFormat.
QCOW_FORMAT_URL = "http://www.gnome.org/~markmc/qcow-image-format.html"
RAW_FORMAT_URL = "http://www.vmware.com/specifications/vmdk.html#sparse"
# ConfigValues.OvfVirtualSystemType + VdcVersion.
VIRTUAL_SYSTEM_TYPE = "ENGINE 4.5.0.0"
COMPAT_VERSION = "4.7"
BLANK = "00000000-0000-0000-0000-000000000000"


class _Xml:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def open(self, tag: str, attrs: dict[str, str] | None = None) -> None:
        self.parts.append(f"<{tag}{_attrs(attrs or {})}>")

    def close(self, tag: str) -> None:
        self.parts.append(f"</{tag}>")

    def empty(self, tag: str, attrs: dict[str, str]) -> None:
        self.parts.append(f"<{tag}{_attrs(attrs)}></{tag}>")

    def el(self, tag: str, text: object) -> None:
        self.parts.append(f"<{tag}>{escape(str(text))}</{tag}>")


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())


def _date(value: dt.datetime | None) -> str:
    value = value or dt.datetime.now(dt.timezone.utc)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime(DATE_FORMAT)


def _b(value: bool) -> str:
    return "true" if value else "false"


def _capacity_gib(size: int) -> int:
    return -(-size // GiB)   # OvfWriter.convertBytesToGigabyte rounds up


def _disk_attrs(d: OvfDisk) -> dict[str, str]:
    return {"ovf:diskId": d.disk_id, "ovf:capacity": str(_capacity_gib(d.capacity)),
            "ovf:capacityAllocationUnits": "byte * 2^30",
            "ovf:populatedSize": str(d.populated_size or d.file_size),
            "ovf:parentRef": "", "ovf:fileRef": d.file_id,
            "ovf:format": QCOW_FORMAT_URL if d.fmt == "cow" else RAW_FORMAT_URL,
            "ovf:volume-format": "COW" if d.fmt == "cow" else "RAW",
            "ovf:volume-type": "Sparse" if d.sparse else "Preallocated",
            "ovf:disk-interface": DISK_INTERFACES.get(d.interface, "VirtIO"),
            "ovf:boot": _b(d.bootable), "ovf:pass-discard": _b(d.pass_discard),
            "ovf:disk-alias": d.alias, "ovf:disk-description": d.description,
            "ovf:wipe-after-delete": _b(d.wipe_after_delete),
            "ovf:description": "Auto-generated for Export To OVA",
            "ovf:disk_storage_type": "IMAGE", "ovf:cinder_volume_type": ""}


def write_ovf(vm: OvfVm, exported_at: dt.datetime | None = None) -> str:
    x = _Xml()
    x.parts.append("<?xml version='1.0' encoding='UTF-8'?>")
    x.parts.append(f'<ovf:Envelope xmlns:ovf="{OVF_NS}" xmlns:rasd="{RASD_NS}" '
                   f'xmlns:vssd="{VSSD_NS}" xmlns:xsi="{XSI_NS}" xmlns="{OVF_NS}" '
                   f'xmlns:ovirt="{OVIRT_NS}">')
    x.open("References")
    for d in vm.disks:
        x.empty("File", {"ovf:href": d.href, "ovf:id": d.file_id,
                         "ovf:size": str(d.file_size)})
    x.close("References")
    x.open("NetworkSection")
    x.el("Info", "List of networks")
    for net in sorted({n.network for n in vm.nics if n.network}):
        x.empty("Network", {"ovf:name": net})
    x.close("NetworkSection")
    x.open("DiskSection")
    x.el("Info", "List of Virtual Disks")
    for d in vm.disks:
        x.empty("Disk", _disk_attrs(d))
    x.close("DiskSection")
    x.open("VirtualSystem", {"ovf:id": vm.vm_id})
    _general(x, vm, exported_at)
    _os(x, vm)
    _hardware(x, vm)
    x.close("VirtualSystem")
    x.close("ovf:Envelope")
    return "".join(x.parts)


def _general(x: _Xml, vm: OvfVm, exported_at: dt.datetime | None) -> None:
    x.el("Name", vm.name)
    x.el("Description", vm.description)
    x.el("Comment", vm.comment)
    x.el("CreationDate", _date(vm.creation_date))
    x.el("ExportDate", _date(exported_at))
    x.el("DeleteProtected", _b(vm.delete_protected))
    x.el("IsSmartcardEnabled", "false")
    x.el("TimeZone", "")
    x.el("default_boot_sequence", "0")
    x.el("Generation", "1")
    x.el("ClusterCompatibilityVersion", COMPAT_VERSION)
    x.el("VmType", VM_TYPES.get(vm.vm_type, 1))
    x.el("MinAllocatedMem", vm.min_allocated_mib if vm.min_allocated_mib is not None
         else vm.memory_mib)
    x.el("IsStateless", _b(vm.stateless))
    x.el("IsRunAndPause", "false")
    x.el("AutoStartup", "false")
    x.el("Priority", "1")
    x.el("IsBootMenuEnabled", "false")
    x.el("IsSpiceFileTransferEnabled", "true")
    x.el("IsSpiceCopyPasteEnabled", "true")
    x.el("AllowConsoleReconnect", "false")
    x.el("ConsoleDisconnectAction", "LOCK_SCREEN")
    x.el("CustomEmulatedMachine", "")
    x.el("BiosType", "0")
    x.el("CustomCpuName", "")
    x.el("PredefinedProperties", "")
    x.el("UserDefinedProperties", "")
    x.el("MaxMemorySizeMb", vm.max_memory_mib if vm.max_memory_mib is not None
         else 4 * vm.memory_mib)
    if vm.entity == "template":
        _template_data(x, vm)
        return
    # OvfOvaVmWriter's additions: an OVA VM has no template.
    x.el("TemplateId", BLANK)
    x.el("IsInitilized", "true")  # sic: oVirt's element name
    x.el("Origin", "0")
    x.el("DefaultDisplayType", "2")
    x.el("TrustedService", "false")
    x.el("OriginalTemplateId", vm.template_id)
    x.el("UseLatestVersion", "false")


def _template_data(x: _Xml, vm: OvfVm) -> None:
    # OvfOvaTemplateWriter's additions: the template names itself and its version.
    x.el("TemplateId", vm.vm_id)
    x.el("Origin", "0")
    x.el("DefaultDisplayType", "2")
    x.el("IsDisabled", "false")
    x.el("TrustedService", "false")
    x.el("TemplateType", "TEMPLATE")   # VmEntityType name
    x.el("BaseTemplateId", vm.base_template_id or vm.vm_id)
    x.el("TemplateVersionNumber", vm.version_number)
    x.el("TemplateVersionName", vm.version_name)
    x.el("TemplateSealed", "false")


def _os(x: _Xml, vm: OvfVm) -> None:
    ovirt_id, cim_id, name = OS_IDS.get(vm.os_type, OS_IDS["other"])
    x.open("OperatingSystemSection", {"ovf:id": str(cim_id), "ovirt:id": str(ovirt_id),
                                      "ovf:required": "false"})
    x.el("Info", "Guest Operating System")
    x.el("Description", name)
    x.close("OperatingSystemSection")


def _item(x: _Xml, fields: list[tuple[str, object]]) -> None:
    x.open("Item")
    for tag, value in fields:
        x.el(tag, value)
    x.close("Item")


def _hardware(x: _Xml, vm: OvfVm) -> None:
    vcpus = vm.cpu_sockets * vm.cpu_cores * vm.cpu_threads
    x.open("VirtualHardwareSection")
    x.el("Info", f"{vcpus} CPU, {vm.memory_mib} Memory")
    x.open("System")
    x.el("vssd:VirtualSystemType", VIRTUAL_SYSTEM_TYPE)
    x.close("System")
    _item(x, [("rasd:Caption", f"{vcpus} virtual cpu"),
              ("rasd:Description", "Number of virtual CPU"), ("rasd:InstanceId", 1),
              ("rasd:ResourceType", 3), ("rasd:num_of_sockets", vm.cpu_sockets),
              ("rasd:cpu_per_socket", vm.cpu_cores), ("rasd:threads_per_cpu", vm.cpu_threads),
              ("rasd:max_num_of_vcpus", max(16, vcpus)), ("rasd:VirtualQuantity", vcpus)])
    _item(x, [("rasd:Caption", f"{vm.memory_mib} MB of memory"),
              ("rasd:Description", "Memory Size"), ("rasd:InstanceId", 2),
              ("rasd:ResourceType", 4), ("rasd:AllocationUnits", "MegaBytes"),
              ("rasd:VirtualQuantity", vm.memory_mib)])
    for i, d in enumerate(vm.disks):
        _item(x, [("rasd:Caption", d.alias), ("rasd:InstanceId", d.file_id),
                  ("rasd:ResourceType", 17), ("rasd:HostResource", f"ovf:/disk/{d.disk_id}"),
                  ("rasd:Parent", BLANK), ("rasd:Template", BLANK),
                  ("rasd:ApplicationList", ""), ("Type", "disk"), ("Device", "disk"),
                  ("rasd:Address", ""), ("BootOrder", 1 if d.bootable else 0),
                  ("IsPlugged", "true"), ("IsReadOnly", _b(d.read_only)),
                  ("Alias", f"ua-{d.disk_id}")])
    for n in vm.nics:
        _item(x, [("rasd:Caption", f"Ethernet adapter on {n.network or '[No Network]'}"),
                  ("rasd:InstanceId", n.name), ("rasd:ResourceType", 10),
                  ("rasd:OtherResourceType", n.network),
                  ("rasd:ResourceSubType", {"pv": 3, "rtl8139": 1}.get(n.interface, 2)),
                  ("rasd:Connection", n.network), ("rasd:Linked", _b(n.linked)),
                  ("rasd:Name", n.name), ("rasd:ElementName", n.name),
                  ("rasd:MACAddress", n.mac),
                  ("rasd:speed", {"pv": 10000, "rtl8139": 100}.get(n.interface, 1000))])
    _item(x, [("rasd:Caption", "USB Controller"), ("rasd:InstanceId", 3),
              ("rasd:ResourceType", 23), ("rasd:UsbPolicy", "DISABLED")])
    x.close("VirtualHardwareSection")
