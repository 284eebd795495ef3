"""Reading VM drives from domain XML (ovagent.virt.disks) and the fake's disk jobs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ovagent.virt.disks import drives, find_drive, snapshot_xml, volume_ref
from ovagent.virt.fake_disks import FakeDisks
from ovagent.virt.hypervisor import BlockJobStatus, HypervisorError

SD = "0c7e5b1a-92d4-4f63-a8e0-3b5d71c2f946"
IMG = "e5d30a27-14c8-4b9f-bd62-9f0a8c4e7d13"
V1 = "11111111-1111-4111-8111-111111111111"
V2 = "22222222-2222-4222-8222-222222222222"
V3 = "33333333-3333-4333-8333-333333333333"


def vol_path(vol: str, root: str = "/rhev/data-center/mnt/_export") -> str:
    return f"{root}/{SD}/images/{IMG}/{vol}"


LIVE = f"""<domain type='kvm'><name>x</name><devices>
  <disk type='file' device='disk'>
    <driver name='qemu' type='qcow2'/>
    <source file='{vol_path(V3)}' index='3'/>
    <backingStore type='file' index='2'><format type='qcow2'/>
      <source file='{vol_path(V2)}'/>
      <backingStore type='file' index='1'><format type='qcow2'/>
        <source file='{vol_path(V1)}'/><backingStore/>
      </backingStore>
    </backingStore>
    <target dev='vda' bus='virtio'/>
    <mirror type='file' job='active-commit' ready='yes'/>
  </disk>
  <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='hdc'/></disk>
  <disk type='file' device='cdrom'><target dev='hdd'/></disk>
</devices></domain>"""


def test_volume_ref_from_paths() -> None:
    ref = volume_ref(vol_path(V1))
    assert ref is not None and (ref.sd, ref.img, ref.vol) == (SD, IMG, V1)
    pool_link = f"/rhev/data-center/{IMG}/{SD}/images/{IMG}/{V2}"
    assert volume_ref(pool_link) is not None
    assert volume_ref("/iso/x.iso") is None
    assert volume_ref(f"/x/{SD}/images/not-a-uuid/{V1}") is None


def test_live_chain_with_indexes() -> None:
    vda, hdc = drives(LIVE)  # hdd has no source
    assert vda.name == "vda" and vda.format == "qcow2" and vda.mirror_ready
    assert vda.volumes == [V3, V2, V1]
    assert [layer.index for layer in vda.chain] == [3, 2, 1]
    assert vda.target(V3) == "vda[3]" and vda.target(V1) == "vda[1]"
    with pytest.raises(LookupError):
        vda.target("nope")
    assert hdc.ref is None and hdc.device == "cdrom"
    assert find_drive(LIVE, SD, IMG) == vda
    assert find_drive(LIVE, SD, IMG, V2) == vda
    assert find_drive(LIVE, SD, IMG, "other") is None


def test_snapshot_xml_names_every_drive() -> None:
    all_drives = drives(LIVE)
    root = ET.fromstring(snapshot_xml({"vda": "/new/leaf"}, all_drives))
    assert root.tag == "domainsnapshot"
    disks = {d.get("name"): d for d in root.iterfind("disks/disk")}
    assert disks["vda"].get("snapshot") == "external"
    assert disks["vda"].find("source").get("file") == "/new/leaf"  # type: ignore[union-attr]
    assert disks["vda"].find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert disks["hdc"].get("snapshot") == "no"


START = f"""<domain><devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='{vol_path(V1)}'/><target dev='vda'/></disk></devices></domain>"""


def test_fake_disks_follow_libvirt() -> None:
    root = ET.fromstring(START)
    disks = FakeDisks(root)
    xml = lambda: ET.tostring(root, encoding="unicode")  # noqa: E731
    disks.snapshot(snapshot_xml({"vda": vol_path(V2)}, drives(xml())))
    disks.snapshot(snapshot_xml({"vda": vol_path(V3)}, drives(xml())))
    (vda,) = drives(xml())
    assert vda.volumes == [V3, V2, V1] and vda.format == "qcow2"
    assert vda.chain[-1].format == "raw"
    # inner commit: V2 into V1
    job = disks.commit("vda", vda.target(V1), vda.target(V2), active=False)
    disks.finish(job)
    (vda,) = drives(xml())
    assert vda.volumes == [V3, V1]
    # active commit: ready, then pivot
    with pytest.raises(HypervisorError):
        disks.commit("vda", vda.target(V1), vda.target(V3), active=False)
    job = disks.commit("vda", vda.target(V1), vda.target(V3), active=True)
    disks.mark_ready(job)
    assert drives(xml())[0].mirror_ready
    with pytest.raises(HypervisorError):
        disks.commit("vda", vda.target(V1), vda.target(V3), active=True)  # one job a drive
    assert disks.abort("vda", pivot=True) is BlockJobStatus.COMPLETED
    disks.clear_mirror("vda")
    (vda,) = drives(xml())
    assert vda.volumes == [V1] and vda.format == "raw" and not vda.mirror_ready
    assert disks.info("vda") is None
    with pytest.raises(HypervisorError):
        disks.abort("vda", pivot=False)
