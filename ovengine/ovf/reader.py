"""Read an OVF from an OVA into an OvfVm: oVirt's own OVAs (DiskSection,
VirtualSystem, ovirt:id) first, and the export-domain flavour of the same
data (`Section xsi:type="ovf:DiskSection_Type"`, `Content
xsi:type="ovf:VirtualSystem_Type"`) and other products' OVAs as far as the
same elements carry the facts.

Namespaces are matched by URI, with or without a trailing slash on the OVF
one (both occur in the wild).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import xml.etree.ElementTree as ET

from .model import (DATE_FORMAT, OVF_NS, OVIRT_NS, RASD_NS, VM_TYPES, XSI_NS, OvfDisk,
                    OvfError, OvfNic, OvfVm, interface_of, os_name_of)

__all__ = ["read_ovf"]

_OVF_URIS = (OVF_NS, OVF_NS + "/")
_UNITS = re.compile(r"^\s*byte\s*(?:\*\s*(\d+)\s*\^\s*(\d+))?\s*$", re.I)
_MIB_UNITS = {"megabytes": 1, "mb": 1, "mib": 1, "byte * 2^20": 1, "gigabytes": 1024,
              "gb": 1024, "byte * 2^30": 1024}
_VM_TYPE_OF = {str(v): k for k, v in VM_TYPES.items()}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _is_ovf(tag: str, name: str) -> bool:
    return _local(tag) == name and (_ns(tag) in _OVF_URIS or _ns(tag) == "")


def _attr(el: ET.Element, name: str, ns: str = "ovf") -> str | None:
    uris = _OVF_URIS if ns == "ovf" else (OVIRT_NS,) if ns == "ovirt" else (XSI_NS,)
    for uri in uris:
        value = el.get(f"{{{uri}}}{name}")
        if value is not None:
            return value
    return el.get(name) if ns == "ovf" else None


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _child_text(el: ET.Element, name: str) -> str | None:
    for c in el:
        if _local(c.tag) == name:
            return (c.text or "").strip()
    return None


def _section(parent: ET.Element, name: str) -> ET.Element | None:
    """`<Name>` or `<Section xsi:type="ovf:Name_Type">`."""
    for c in parent:
        local = _local(c.tag)
        if local == name:
            return c
        if local in ("Section", "Content") and \
                (_attr(c, "type", "xsi") or "").split(":")[-1] == f"{name}_Type":
            return c
    return None


def _int(text: str | None, what: str, default: int | None = None) -> int:
    if text is None or text.strip() == "":
        if default is None:
            raise OvfError(f"the OVF has no {what}")
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise OvfError(f"the OVF's {what} is not a whole number: {text!r}") from None


def _bool(text: str | None, default: bool = False) -> bool:
    return default if text is None else text.strip().lower() == "true"


def _capacity(value: str | None, units: str | None) -> int:
    n = _int(value, "disk capacity")
    m = _UNITS.match(units or "byte * 2^30")
    if m is None:
        raise OvfError(f"unknown ovf:capacityAllocationUnits {units!r}")
    base, exp = m.groups()
    return n * (int(base) ** int(exp) if base else 1)


def _date(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text.strip(), DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def read_ovf(text: str | bytes) -> OvfVm:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise OvfError(f"the OVF is not well-formed XML: {exc}") from None
    if not _is_ovf(root.tag, "Envelope"):
        raise OvfError(f"the OVF's root element is {_local(root.tag)!r}, not an OVF Envelope")
    system = _section(root, "VirtualSystem")
    if system is None:
        raise OvfError("the OVF has no VirtualSystem: it describes no virtual machine")
    files = {}
    refs = _section(root, "References")
    for f in _children(refs, "File") if refs is not None else []:
        fid = _attr(f, "id")
        if fid:
            files[fid] = f
    vm = OvfVm(vm_id=_attr(system, "id") or str(uuid.uuid4()), name="")
    vm.name = _child_text(system, "Name") or vm.vm_id
    vm.description = _child_text(system, "Description") or ""
    vm.comment = _child_text(system, "Comment") or ""
    vm.creation_date = _date(_child_text(system, "CreationDate"))
    vm.vm_type = _VM_TYPE_OF.get(_child_text(system, "VmType") or "1", "server")
    vm.stateless = _bool(_child_text(system, "IsStateless"))
    vm.delete_protected = _bool(_child_text(system, "DeleteProtected"))
    min_mem = _child_text(system, "MinAllocatedMem")
    vm.min_allocated_mib = _int(min_mem, "MinAllocatedMem") if min_mem else None
    max_mem = _child_text(system, "MaxMemorySizeMb")
    vm.max_memory_mib = _int(max_mem, "MaxMemorySizeMb") if max_mem else None
    vm.template_id = _child_text(system, "TemplateId") or vm.template_id
    if _child_text(system, "TemplateType") is not None:  # a template.ovf
        vm.entity = "template"
        vm.base_template_id = _child_text(system, "BaseTemplateId") or vm.vm_id
        vm.version_number = _int(_child_text(system, "TemplateVersionNumber"),
                                 "TemplateVersionNumber", 1)
        vm.version_name = _child_text(system, "TemplateVersionName") or ""
    os_section = _section(system, "OperatingSystemSection")
    if os_section is not None:
        vm.os_type = os_name_of(_attr(os_section, "id", "ovirt"), _attr(os_section, "id"))
    disks = _read_disks(root, files)
    hardware = _section(system, "VirtualHardwareSection")
    if hardware is None:
        raise OvfError("the OVF's VirtualSystem has no VirtualHardwareSection")
    _read_hardware(hardware, vm, disks)
    vm.disks = list(disks.values())
    return vm


def _read_disks(root: ET.Element, files: dict[str, ET.Element]) -> dict[str, OvfDisk]:
    section = _section(root, "DiskSection")
    disks: dict[str, OvfDisk] = {}
    for el in _children(section, "Disk") if section is not None else []:
        disk_id = _attr(el, "diskId")
        file_ref = _attr(el, "fileRef")
        if not disk_id or not file_ref:
            raise OvfError("a Disk of the OVF lacks ovf:diskId or ovf:fileRef")
        f = files.get(file_ref)
        if f is None:
            raise OvfError(f"disk {disk_id} refers to file {file_ref!r}, which the OVF's "
                           f"References do not list")
        file_size = _int(_attr(f, "size"), "File ovf:size", 0)
        populated = _attr(el, "populatedSize")
        fmt = (_attr(el, "volume-format") or "COW").upper()
        disks[disk_id] = OvfDisk(
            disk_id=disk_id, file_id=file_ref, href=_attr(f, "href") or file_ref,
            capacity=_capacity(_attr(el, "capacity"), _attr(el, "capacityAllocationUnits")),
            file_size=file_size,
            populated_size=_int(populated, "populatedSize") if populated else file_size,
            fmt="raw" if fmt == "RAW" else "cow",
            sparse=(_attr(el, "volume-type") or "Sparse").lower() != "preallocated",
            interface=interface_of(_attr(el, "disk-interface")),
            bootable=_bool(_attr(el, "boot")),
            alias=_attr(el, "disk-alias") or "",
            description=_attr(el, "disk-description") or "",
            pass_discard=_bool(_attr(el, "pass-discard")),
            wipe_after_delete=_bool(_attr(el, "wipe-after-delete")))
    return disks


def _rasd(item: ET.Element, name: str) -> str | None:
    for c in item:
        if _local(c.tag) == name and _ns(c.tag) in (RASD_NS, ""):
            return (c.text or "").strip()
    return None


def _read_hardware(hw: ET.Element, vm: OvfVm, disks: dict[str, OvfDisk]) -> None:
    memory_seen = False
    for item in _children(hw, "Item"):
        kind = _rasd(item, "ResourceType")
        if kind == "3":
            sockets = _rasd(item, "num_of_sockets")
            if sockets:
                vm.cpu_sockets = _int(sockets, "num_of_sockets")
                vm.cpu_cores = _int(_rasd(item, "cpu_per_socket"), "cpu_per_socket", 1)
                vm.cpu_threads = _int(_rasd(item, "threads_per_cpu"), "threads_per_cpu", 1)
            else:  # other products: VirtualQuantity vCPUs, as sockets (as oVirt reads them)
                vm.cpu_sockets = _int(_rasd(item, "VirtualQuantity"), "CPU VirtualQuantity")
                vm.cpu_cores = vm.cpu_threads = 1
        elif kind == "4":
            units = (_rasd(item, "AllocationUnits") or "MegaBytes").lower()
            factor = _MIB_UNITS.get(units)
            if factor is None:
                raise OvfError(f"unknown memory AllocationUnits {units!r}")
            vm.memory_mib = _int(_rasd(item, "VirtualQuantity"), "memory size") * factor
            memory_seen = True
        elif kind == "17":
            resource = _rasd(item, "HostResource") or ""
            disk = disks.get(resource.rsplit("/", 1)[-1])
            if disk is not None:
                if not disk.alias:
                    disk.alias = _rasd(item, "Caption") or ""
                boot_order = _child_text(item, "BootOrder")
                if boot_order and boot_order.isdigit() and int(boot_order) > 0:
                    disk.bootable = disk.bootable or int(boot_order) == 1
                disk.read_only = _bool(_child_text(item, "IsReadOnly"))
        elif kind == "10":
            sub = _rasd(item, "ResourceSubType") or ""
            vm.nics.append(OvfNic(
                name=_rasd(item, "Name") or _rasd(item, "ElementName") or
                f"nic{len(vm.nics) + 1}",
                mac=_rasd(item, "MACAddress") or "",
                interface="pv" if sub in ("3", "VirtIO", "virtio") else
                "rtl8139" if sub in ("1", "rtl8139") else "e1000",
                network=_rasd(item, "Connection") or "",
                linked=_bool(_rasd(item, "Linked"), True)))
    if not memory_seen:
        raise OvfError("the OVF's VirtualHardwareSection has no memory Item (ResourceType 4)")
    if vm.memory_mib <= 0:
        raise OvfError("the OVF's memory size must be positive")
    for d in disks.values():
        if d.capacity <= 0:
            raise OvfError(f"disk {d.disk_id} has no capacity")
    if vm.min_allocated_mib is None or vm.min_allocated_mib > vm.memory_mib:
        vm.min_allocated_mib = vm.memory_mib
    if vm.max_memory_mib is None or vm.max_memory_mib < vm.memory_mib:
        vm.max_memory_mib = max(vm.memory_mib, 4 * vm.memory_mib)
