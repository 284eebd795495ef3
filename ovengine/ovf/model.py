"""What an OVF says about a VM, in ov's terms, and the oVirt facts the
OVF encodes (namespaces, enum values, OS ids).

Facts from oVirt's OVA writer and reader (OvfOvaWriter, OvfOvaVmWriter,
OvfWriter, OvfOvaReader, IOvfBuilder, osinfo-defaults.properties).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = ["OVF_NS", "RASD_NS", "VSSD_NS", "XSI_NS", "OVIRT_NS", "GiB", "OvfError",
           "OvfDisk", "OvfNic", "OvfVm", "OS_IDS", "os_name_of", "CIM_OS_OF",
           "DISK_INTERFACES", "interface_of", "VM_TYPES", "DATE_FORMAT"]

OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1"   # no trailing slash in oVirt's
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OVIRT_NS = "http://www.ovirt.org/ovf"
GiB = 1024 ** 3
# OvfParser.localDateToUtcDateString: UTC, "yyyy/MM/dd HH:mm:ss".
DATE_FORMAT = "%Y/%m/%d %H:%M:%S"


class OvfError(ValueError):
    """The OVF cannot describe a VM (the message says why)."""


# oVirt os ids (ovirt:id) by ov os type name; the CIM id (ovf:id) each maps to.
OS_IDS: dict[str, tuple[int, int, str]] = {
    "other": (0, 1, "Other OS"),
    "other_linux": (5, 36, "Linux"),
    "rhel_3": (9, 79, "Red Hat Enterprise Linux 3.x"),
    "rhel_4": (8, 79, "Red Hat Enterprise Linux 4.x"),
    "rhel_5": (7, 79, "Red Hat Enterprise Linux 5.x"),
    "rhel_6": (18, 79, "Red Hat Enterprise Linux 6.x"),
    "rhel_3x64": (15, 80, "Red Hat Enterprise Linux 3.x x64"),
    "rhel_4x64": (14, 80, "Red Hat Enterprise Linux 4.x x64"),
    "rhel_5x64": (13, 80, "Red Hat Enterprise Linux 5.x x64"),
    "rhel_6x64": (19, 80, "Red Hat Enterprise Linux 6.x x64"),
    "rhel_7x64": (24, 80, "Red Hat Enterprise Linux 7.x x64"),
    "windows_xp": (1, 67, "Windows XP"),
    "windows_2003": (3, 69, "Windows 2003"),
    "windows_2008": (4, 76, "Windows 2008"),
    "windows_2003x64": (10, 70, "Windows 2003 x64"),
    "windows_7": (11, 105, "Windows 7"),
    "windows_7x64": (12, 105, "Windows 7 x64"),
    "windows_2008x64": (16, 77, "Windows 2008 x64"),
    "windows_2008R2x64": (17, 103, "Windows 2008 R2 x64"),
    "windows_8": (20, 114, "Windows 8"),
    "windows_8x64": (21, 115, "Windows 8 x64"),
    "windows_2012x64": (23, 113, "Windows 2012 x64"),
    "windows_2012R2x64": (25, 116, "Windows 2012R2 x64"),
    "windows_10": (26, 120, "Windows 10"),
    "windows_10x64": (27, 121, "Windows 10 x64"),
    "sles_11": (1193, 83, "SUSE Linux Enterprise Server 11"),
    "ubuntu_12_04": (1252, 94, "Ubuntu Precise Pangolin LTS"),
    "ubuntu_14_04": (1256, 94, "Ubuntu Trusty Tahr LTS"),
    "debian_7": (1300, 96, "Debian 7"),
    "freebsd": (1500, 42, "FreeBSD 9.2"),
    "freebsdx64": (1501, 78, "FreeBSD 9.2 x64"),
}
_NAME_OF_OVIRT_ID = {v[0]: k for k, v in OS_IDS.items()}
# OvfOvaReader.mapOsId: CIM ids of other products' OVAs, to an ov os type.
CIM_OS_OF = {"67": "windows_xp", "71": "windows_xp", "72": "windows_xp", "69": "windows_2003",
             "70": "windows_2003x64", "76": "windows_2008", "77": "windows_2008x64",
             "103": "windows_2008R2x64", "105": "windows_7", "114": "windows_8",
             "115": "windows_8x64", "113": "windows_2012x64", "116": "windows_2012R2x64",
             "120": "windows_10", "121": "windows_10x64", "117": "other",
             "42": "freebsd", "78": "freebsdx64"}
_CIM_LINUX = {"36", "79", "80", "82", "83", "84", "85", "89", "90", "91", "92", "93", "94",
              "95", "96", "97", "98", "99", "100", "101", "106", "107", "108", "109"}


def os_name_of(ovirt_id: str | None, cim_id: str | None) -> str:
    if ovirt_id is not None and ovirt_id.strip().lstrip("-").isdigit():
        return _NAME_OF_OVIRT_ID.get(int(ovirt_id), "other")
    if cim_id is not None:
        if cim_id in _CIM_LINUX:
            return "other_linux"
        return CIM_OS_OF.get(cim_id, "other")
    return "other"


# DiskInterface.toString() in the OVF <-> ov's attachment interface.
DISK_INTERFACES = {"virtio": "VirtIO", "virtio_scsi": "VirtIO_SCSI", "ide": "IDE",
                   "sata": "SATA", "spapr_vscsi": "SPAPR_VSCSI"}
_INTERFACE_OF = {v.lower(): k for k, v in DISK_INTERFACES.items()}


def interface_of(text: str | None) -> str:
    return _INTERFACE_OF.get((text or "VirtIO").lower(), "virtio")


# VmType values: desktop 0, server 1, high_performance 2.
VM_TYPES = {"desktop": 0, "server": 1, "high_performance": 2}


@dataclass
class OvfDisk:
    disk_id: str                 # ovf:diskId: the image group (ov's disk id)
    file_id: str                 # ovf:fileRef = File ovf:id (oVirt: the volume id)
    href: str                    # File ovf:href: the tar member name
    capacity: int                # bytes
    file_size: int = 0           # File ovf:size: the member size
    populated_size: int = 0
    fmt: str = "cow"             # ovf:volume-format COW|RAW
    sparse: bool = True          # ovf:volume-type Sparse|Preallocated
    interface: str = "virtio"
    bootable: bool = False
    alias: str = ""
    description: str = ""
    pass_discard: bool = False
    wipe_after_delete: bool = False
    read_only: bool = False


@dataclass
class OvfNic:
    name: str
    mac: str = ""
    interface: str = "pv"       # VmInterfaceType name (pv = virtio)
    network: str = ""
    linked: bool = True


@dataclass
class OvfVm:
    vm_id: str
    name: str
    description: str = ""
    comment: str = ""
    creation_date: dt.datetime | None = None
    memory_mib: int = 1024
    min_allocated_mib: int | None = None
    max_memory_mib: int | None = None
    cpu_sockets: int = 1
    cpu_cores: int = 1
    cpu_threads: int = 1
    os_type: str = "other"
    vm_type: str = "server"
    stateless: bool = False
    delete_protected: bool = False
    template_id: str = "00000000-0000-0000-0000-000000000000"
    disks: list[OvfDisk] = field(default_factory=list)
    nics: list[OvfNic] = field(default_factory=list)
    entity: str = "vm"          # vm | template (a template.ovf)
    # A template's version (OvfOvaTemplateWriter's BaseTemplateId, TemplateVersion*).
    base_template_id: str = ""
    version_number: int = 1
    version_name: str = ""
