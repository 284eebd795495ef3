"""OVF reading and writing in oVirt's OVA flavour (no I/O besides the fixture)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ovengine.ovf.model import GiB, OVF_NS, OvfDisk, OvfError, OvfVm
from ovengine.ovf.reader import read_ovf
from ovengine.ovf.writer import write_ovf

FIXTURE = Path(__file__).parents[2] / "fixtures" / "ova" / "ovirt_vm.ovf"


def test_reads_an_ovirt_ova_ovf() -> None:
    vm = read_ovf(FIXTURE.read_text().replace("DISK_MEMBER_SIZE", "1234"))
    assert (vm.name, vm.memory_mib, vm.min_allocated_mib, vm.max_memory_mib) == \
        ("centos8", 2048, 1536, 8192)
    assert (vm.cpu_sockets, vm.cpu_cores, vm.cpu_threads) == (2, 2, 1)
    assert vm.os_type == "rhel_7x64" and vm.vm_type == "server"
    assert vm.vm_id == "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7"
    [d] = vm.disks
    assert d.disk_id == "0d8f7e6c-5b4a-4392-8170-6f5e4d3c2b1a"
    assert d.href == d.file_id == "6b3c1d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    assert (d.capacity, d.file_size, d.fmt, d.sparse) == (GiB, 1234, "cow", True)
    assert (d.interface, d.bootable, d.alias) == ("virtio_scsi", True, "centos8_Disk1")
    [nic] = vm.nics
    assert (nic.name, nic.mac, nic.network, nic.interface) == \
        ("nic1", "56:6f:1a:2b:00:01", "ovirtmgmt", "pv")


def test_written_ovf_has_ovirts_shape_and_reads_back() -> None:
    vm = OvfVm("7d0c3a4e-0000-4000-8000-000000000001", "web1", memory_mib=512, cpu_sockets=1,
               cpu_cores=2, os_type="other_linux",
               disks=[OvfDisk("d-1", "v-1", "v-1", 10 * 1024 * 1024, file_size=4096,
                              fmt="raw", sparse=False, bootable=True, alias="web1_Disk1")])
    text = write_ovf(vm)
    root = ET.fromstring(text)
    ns = {"ovf": OVF_NS}
    assert root.tag == f"{{{OVF_NS}}}Envelope"
    assert [c.tag.rsplit("}", 1)[-1] for c in root] == \
        ["References", "NetworkSection", "DiskSection", "VirtualSystem"]
    disk = root.find("ovf:DiskSection/ovf:Disk", ns)
    assert disk is not None
    assert disk.get(f"{{{OVF_NS}}}capacity") == "1"   # GiB, rounded up
    assert disk.get(f"{{{OVF_NS}}}capacityAllocationUnits") == "byte * 2^30"
    assert disk.get(f"{{{OVF_NS}}}volume-format") == "RAW"
    assert disk.get(f"{{{OVF_NS}}}volume-type") == "Preallocated"
    back = read_ovf(text)
    assert (back.name, back.memory_mib, back.cpu_cores, back.os_type) == \
        ("web1", 512, 2, "other_linux")
    assert back.disks[0].bootable and back.disks[0].fmt == "raw"


@pytest.mark.parametrize("text, message", [
    ("not xml", "not well-formed"),
    ("<html/>", "not an OVF Envelope"),
    (f'<Envelope xmlns="{OVF_NS}"><References/></Envelope>', "no VirtualSystem"),
])
def test_bad_ovfs_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(OvfError, match=message):
        read_ovf(text)


def test_template_ovf_names_itself_and_reads_back_as_a_template() -> None:
    tpl = OvfVm(vm_id="0d2e8a53-8f5e-4a41-9c1b-2f4f6a0c1e11", name="tpl", entity="template",
                version_name="base version",
                disks=[OvfDisk(disk_id="d1", file_id="v1", href="v1", capacity=GiB)])
    root = ET.fromstring(write_ovf(tpl))
    system = root.find(f"{{{OVF_NS}}}VirtualSystem")
    assert system is not None
    texts = {c.tag.rsplit("}", 1)[-1]: c.text for c in system}
    # OvfOvaTemplateWriter: TemplateId is the template's own id, plus version data.
    assert (texts["TemplateId"], texts["TemplateType"], texts["BaseTemplateId"],
            texts["TemplateVersionNumber"]) == (tpl.vm_id, "TEMPLATE", tpl.vm_id, "1")
    assert "IsInitilized" not in texts
    back = read_ovf(write_ovf(tpl))
    assert (back.entity, back.template_id, back.version_name) == \
        ("template", tpl.vm_id, "base version")
    assert read_ovf(write_ovf(OvfVm(vm_id="x", name="vm"))).entity == "vm"
