"""Pure parts of the engine's storage: connection parameters, the pool's
domain map, domain report verdicts, disk device names, disks in the domain
XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ovengine.domain.domxml import OVIRT_VM_NS, DiskSpec, VmSpec, build_domain_xml, disk_targets
from ovengine.storage.layout import DomainRef, PoolLayout, pool_domain_dict
from ovengine.storage.monitor import judge
from ovengine.storage.vdsm import connection_params, connection_path


def _conn(**kw: object) -> dict[str, object]:
    row: dict[str, object] = {"id": "c1", "connection": "/x", "storage_type": "posixfs",
                              "vfs_type": "none", "mount_options": "", "nfs_version": "",
                              "nfs_retrans": None, "nfs_timeo": None}
    row.update(kw)
    return row


def test_connection_params_as_vdsm_takes_them() -> None:
    assert connection_params(_conn()) == {"id": "c1", "connection": "/x", "vfs_type": "none"}
    nfs = connection_params(_conn(storage_type="nfs", connection="srv:/exp", nfs_version="4.1",
                                  nfs_retrans=6, nfs_timeo=600, mount_options="soft"))
    assert nfs == {"id": "c1", "connection": "srv:/exp", "protocol_version": "4.1",
                   "retrans": 6, "timeout": 600, "mnt_options": "soft"}
    assert "vfs_type" not in connection_params(_conn(storage_type="localfs"))
    assert connection_path("nfs", "srv", "/exp") == "srv:/exp"
    assert connection_path("posixfs", "", "/dir") == "/dir"
    assert connection_path("posixfs", "gl", "/vol") == "gl:/vol"
    assert connection_path("localfs", "", "/data") == "/data"


def test_pool_domain_dict() -> None:
    def d(i: str, status: str, master: bool = False) -> DomainRef:
        return DomainRef(i, i, status, master, "posixfs", None)
    layout = PoolLayout("dc", "Default", False, "up", 1, None, (
        d("m", "locked", True), d("a", "active"), d("b", "maintenance"), d("c", "inactive")))
    assert pool_domain_dict(layout) == {"m": "active", "a": "active", "b": "attached",
                                        "c": "attached"}
    assert layout.master is not None and layout.master.id == "m" and layout.initialized
    down = PoolLayout("dc", "Default", False, "maintenance", 1, None, (d("m", "maintenance",
                                                                         True),))
    assert pool_domain_dict(down) == {"m": "attached"}


def test_domain_report_verdicts() -> None:
    assert judge(None) is False                      # not monitored at all
    assert judge({"valid": False, "actual": False, "code": 0}) is None  # no check yet
    assert judge({"valid": True, "actual": True, "code": 0, "acquired": True}) is True
    assert judge({"valid": False, "actual": True, "code": 358}) is False
    assert judge({"valid": True, "code": 0}) is True  # agents without `actual`


def test_disk_device_names() -> None:
    assert disk_targets(["virtio", "scsi", "virtio", "scsi"]) == ["vda", "sda", "vdb", "sdb"]
    assert disk_targets(["virtio"] * 28)[25:] == ["vdz", "vdaa", "vdab"]


def test_disks_in_the_domain_xml() -> None:
    spec = VmSpec(id="11111111-2222-3333-4444-555555555555", name="v", memory_mib=128,
                  memory_guaranteed_mib=128, memory_max_mib=128, disks=(
                      DiskSpec("/rhev/a/vol1", "vda", "virtio", "qcow2", bootable=True,
                               serial="img1", pool_id="p", domain_id="d", image_id="img1",
                               volume_id="vol1"),
                      DiskSpec("/rhev/a/vol2", "sda", "scsi", "raw", serial="img2",
                               pool_id="p", domain_id="d", image_id="img2", volume_id="vol2")))
    root = ET.fromstring(build_domain_xml(spec))
    devices = root.find("devices")
    assert devices is not None
    ctrl = devices.find("controller")
    assert ctrl is not None and ctrl.get("model") == "virtio-scsi"
    disks = devices.findall("disk")
    assert [(d.find("target").get("dev"), d.find("target").get("bus"),  # type: ignore[union-attr]
             d.find("driver").get("type"), d.find("source").get("file"),  # type: ignore[union-attr]
             d.findtext("serial")) for d in disks] == [
        ("vda", "virtio", "qcow2", "/rhev/a/vol1", "img1"),
        ("sda", "scsi", "raw", "/rhev/a/vol2", "img2")]
    ns = {"o": OVIRT_VM_NS}
    meta = root.findall("metadata/o:vm/o:device", ns)
    assert [(m.get("name"), m.findtext("o:domainID", namespaces=ns),
             m.findtext("o:imageID", namespaces=ns), m.findtext("o:volumeID", namespaces=ns),
             m.findtext("o:poolID", namespaces=ns)) for m in meta] == [
        ("vda", "d", "img1", "vol1", "p"), ("sda", "d", "img2", "vol2", "p")]
    # no disks: no controller, no device metadata
    bare = ET.fromstring(build_domain_xml(VmSpec(id="x", name="y", memory_mib=1,
                                                 memory_guaranteed_mib=1, memory_max_mib=1)))
    assert bare.find("devices/controller") is None and bare.find("devices/disk") is None
