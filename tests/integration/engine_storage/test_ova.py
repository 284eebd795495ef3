"""VM export to an OVA and import from OVAs, end to end: real PostgreSQL,
agents on the libvirt test driver with real storage (sanlock, qemu-img).

A VM whose raw disk holds known bytes is exported: the OVA is a tar with
vm.ovf first and one qcow2 member named by the volume id; importing it makes
a new VM whose disk holds the same bytes and whose NICs are on the same
networks (with new MACs: the source keeps its own). An OVA packed here from
the oVirt-style OVF fixture imports with its name, memory, CPUs, disk size,
disk interface and its NIC (network and MAC kept). Bad input gives clear faults.
"""

from __future__ import annotations

import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk, DiskAttach
from ovengine.domain.nic_commands import AddVmNic, NicConfig
from ovengine.domain.ova_commands import ExportVmToOva, ImportVmFromOva
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.errors import ValidationFailed
from ovengine.ovf.reader import read_ovf
from tests.fixtures.engine import EngineFactory
from tests.fixtures.engine_storage import (STORAGE_ENGINE, default_ids, finished,
                                           posix_data_center, require_storage, storage_hosts,
                                           volume_path)

MiB = 1024 * 1024
FIXTURE = Path(__file__).parents[2] / "fixtures" / "ova" / "ovirt_vm.ovf"
PATTERN = bytes(range(256)) * 4096   # 1 MiB of known bytes


def _tar(path: Path, members: list[tuple[str, bytes | Path]]) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            if isinstance(data, Path):
                tar.add(data, arcname=name)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                import io
                tar.addfile(info, io.BytesIO(data))


async def _vm_disk(engine, vm_id: str):  # type: ignore[no-untyped-def]
    rows = await engine.s.pool.fetch(
        "SELECT d.*, a.interface, a.bootable FROM disk_attachments a JOIN disks d "
        "ON d.id = a.disk_id WHERE a.vm_id=$1", uuid.UUID(vm_id))
    return rows


async def _vm_nics(engine, vm_id: str):  # type: ignore[no-untyped-def]
    return await engine.s.pool.fetch(
        "SELECT name, mac_address, interface, vnic_profile_id::text AS profile, linked "
        "FROM vm_interfaces WHERE vm_id=$1 ORDER BY name", uuid.UUID(vm_id))


async def test_export_and_import_ova(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 1)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    _, cluster = await default_ids(engine)
    host = next(h.id for h in s.hosts.hosts.values())

    # ---- a VM with a raw disk holding known bytes at 3 MiB
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="ova-src", memory_mib=768, memory_guaranteed_mib=768, cpu_sockets=2,
        cpu_cores=1, os_type="other_linux")))).value
    disk = await finished(await s.runner.run(AddDisk(
        s, SYSTEM, sd, 8 * MiB, "raw", True, alias="src_disk",
        attach=DiskAttach(vm, "virtio_scsi", bootable=True))))
    vol = str(await s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                    uuid.UUID(disk)))
    with open(volume_path(shared, sd, disk, vol), "r+b") as f:
        f.seek(3 * MiB)
        f.write(PATTERN)
    mgmt_profile = str(await s.pool.fetchval(
        "SELECT p.id FROM vnic_profiles p JOIN networks n ON n.id = p.network_id "
        "WHERE n.name = 'ovirtmgmt' AND n.data_center_id = $1", uuid.UUID(dc)))
    await s.runner.run(AddVmNic(s, SYSTEM, vm, NicConfig(
        name="nic1", interface="rtl8139", vnic_profile_id=mgmt_profile)))
    await s.runner.run(AddVmNic(s, SYSTEM, vm, NicConfig(name="nic2", linked=False)))
    src_macs = [r["mac_address"] for r in await _vm_nics(engine, vm)]

    # ---- export
    out = engines.base / "export"
    out.mkdir()
    res = await s.runner.run(ExportVmToOva(s, SYSTEM, vm, host, str(out), "src.ova"))
    await finished(res)
    ova = out / "src.ova"
    with tarfile.open(ova) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["vm.ovf", vol]
        ovf = read_ovf(tar.extractfile(members[0]).read())  # type: ignore[union-attr]
    assert not [p for p in out.iterdir() if p.name != "src.ova"]   # no temporary left
    [d] = ovf.disks
    assert (ovf.name, ovf.memory_mib, ovf.cpu_sockets) == ("ova-src", 768, 2)
    assert (d.disk_id, d.href, d.file_size) == (disk, vol, members[1].size)
    assert (d.interface, d.bootable, d.fmt) == ("virtio_scsi", True, "raw")
    assert [(n.name, n.mac, n.interface, n.network, n.linked) for n in ovf.nics] == [
        ("nic1", src_macs[0], "rtl8139", "ovirtmgmt", True),
        ("nic2", src_macs[1], "pv", "", False)]
    member = out / "member.qcow2"
    with tarfile.open(ova) as tar, open(member, "wb") as f:
        f.write(tar.extractfile(members[1]).read())  # type: ignore[union-attr]
    info = subprocess.run(["qemu-img", "info", "--output", "json", str(member)],
                          capture_output=True, text=True, check=True).stdout
    assert '"format": "qcow2"' in info and f'"virtual-size": {8 * MiB}' in info

    # ---- import it back as a new VM
    res = await s.runner.run(ImportVmFromOva(s, SYSTEM, str(ova), host, cluster, sd,
                                             name="ova-copy"))
    new_vm = await finished(res)
    row = await s.pool.fetchrow("SELECT * FROM vm_static WHERE id=$1", uuid.UUID(new_vm))
    assert (row["memory_mib"], row["cpu_sockets"], row["os_type"]) == (768, 2, "other_linux")
    [nd] = await _vm_disk(engine, new_vm)
    assert (nd["status"], nd["provisioned_size"], nd["interface"], nd["bootable"]) == \
        ("ok", 8 * MiB, "virtio_scsi", True)
    with open(volume_path(shared, sd, str(nd["id"]), str(nd["image_id"])), "rb") as f:
        f.seek(3 * MiB)
        assert f.read(len(PATTERN)) == PATTERN
    assert (await s.pool.fetchval("SELECT status FROM vm_dynamic WHERE vm_id=$1",
                                  uuid.UUID(new_vm))) == "down"
    # The NICs come back on the same profiles; their MACs are taken (the source
    # VM still has them), so the copy's come from the pool.
    copy_nics = await _vm_nics(engine, new_vm)
    assert [(n["name"], n["interface"], n["profile"], n["linked"]) for n in copy_nics] == [
        ("nic1", "rtl8139", mgmt_profile, True), ("nic2", "virtio", None, False)]
    assert not {n["mac_address"] for n in copy_nics} & set(src_macs)

    # ---- an OVA packed from the oVirt-style OVF fixture, with a small qcow2
    img = engines.base / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), str(16 * MiB)],
                   check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {MiB}", str(img)],
                   check=True, capture_output=True)
    text = FIXTURE.read_text().replace("DISK_MEMBER_SIZE", str(img.stat().st_size))
    fixture_ova = engines.base / "centos8.ova"
    _tar(fixture_ova, [("vm.ovf", text.encode()),
                       ("6b3c1d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", img)])
    vm3 = await finished(await s.runner.run(ImportVmFromOva(s, SYSTEM, str(fixture_ova),
                                                            host, cluster, sd)))
    row = await s.pool.fetchrow("SELECT * FROM vm_static WHERE id=$1", uuid.UUID(vm3))
    assert (row["name"], row["memory_mib"], row["cpu_sockets"], row["cpu_cores"],
            row["os_type"]) == ("centos8", 2048, 2, 2, "rhel_7x64")
    [d3] = await _vm_disk(engine, vm3)
    assert (d3["provisioned_size"], d3["interface"], d3["bootable"], d3["format"],
            d3["alias"]) == (16 * MiB, "virtio_scsi", True, "cow", "centos8_Disk1")
    # The fixture's NIC: its network exists here, its MAC is free (kept).
    [n3] = await _vm_nics(engine, vm3)
    assert (n3["name"], n3["mac_address"], n3["interface"], n3["profile"], n3["linked"]) == \
        ("nic1", "56:6f:1a:2b:00:01", "virtio", mgmt_profile, True)
    copy = volume_path(shared, sd, str(d3["id"]), str(d3["image_id"]))
    got = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(img),
                          str(copy)], capture_output=True, text=True)
    assert got.returncode == 0, got.stdout + got.stderr

    # ---- bad input: not an OVA, an OVF without a VirtualSystem
    junk = engines.base / "junk.ova"
    junk.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(ValidationFailed, match="not an OVA"):
        await s.runner.run(ImportVmFromOva(s, SYSTEM, str(junk), host, cluster, sd))
    no_vs = engines.base / "novs.ova"
    _tar(no_vs, [("vm.ovf", b'<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/'
                            b'envelope/1"><References/></ovf:Envelope>')])
    with pytest.raises(ValidationFailed, match="no VirtualSystem"):
        await s.runner.run(ImportVmFromOva(s, SYSTEM, str(no_vs), host, cluster, sd))
    with pytest.raises(ValidationFailed, match="no such file"):
        await s.runner.run(ImportVmFromOva(s, SYSTEM, str(engines.base / "nope.ova"), host,
                                           cluster, sd))


async def test_ova_export_and_import_through_the_sdk(engines: EngineFactory) -> None:
    """The same through the official SDK: vm.export_to_path_on_host, then
    external_vm_imports.add with provider kvm and an ova:// url (the SDK's
    own example); bad input comes back as REST faults."""
    import ovirtsdk4 as sdk
    import ovirtsdk4.types as types
    from tests.integration.rest.test_sdk import connect, in_thread, sdk_wait

    require_storage()
    engine = await engines.start(serve_api=True, storage=STORAGE_ENGINE)
    hosts = await storage_hosts(engines, engine, 1)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    out = engines.base / "export"
    out.mkdir()
    conn = connect(engine)
    try:
        system = conn.system_service()
        vms = system.vms_service()
        vm = await in_thread(vms.add, types.Vm(
            name="sdk-ova", memory=256 * MiB, cluster=types.Cluster(name="Default"),
            template=types.Template(name="Blank")))
        vm_service = vms.vm_service(vm.id)
        att = await in_thread(vm_service.disk_attachments_service().add, types.DiskAttachment(
            disk=types.Disk(name="sdk-ova-disk", format=types.DiskFormat.COW,
                            provisioned_size=8 * MiB,
                            storage_domains=[types.StorageDomain(id=sd)]),
            interface=types.DiskInterface.VIRTIO, bootable=True, active=True))
        disks = system.disks_service()
        await sdk_wait(lambda: disks.disk_service(att.disk.id).get().status
                       == types.DiskStatus.OK, 60, "disk ok")

        await in_thread(vm_service.export_to_path_on_host, host=types.Host(name=hosts[0].name),
                        directory=str(out), filename="sdk.ova")
        ova = out / "sdk.ova"
        await sdk_wait(lambda: ova.exists(), 60, "OVA written")
        with tarfile.open(ova) as tar:
            assert tar.getnames()[0] == "vm.ovf"

        imports = system.external_vm_imports_service()
        await in_thread(imports.add, types.ExternalVmImport(
            name="sdk-ova-copy", provider=types.ExternalVmProviderType.KVM,
            url=f"ova://{ova}", cluster=types.Cluster(name="Default"),
            storage_domain=types.StorageDomain(id=sd), host=types.Host(name=hosts[0].name),
            sparse=True))
        copies = await sdk_wait(lambda: vms.list(search="name=sdk-ova-copy"), 60, "VM imported")
        copy_service = vms.vm_service(copies[0].id)
        await sdk_wait(lambda: copy_service.get().status == types.VmStatus.DOWN, 60,
                       "import finished")
        (copy_att,) = await in_thread(copy_service.disk_attachments_service().list)
        copy_disk = await in_thread(disks.disk_service(copy_att.disk.id).get)
        assert copy_disk.provisioned_size == 8 * MiB and copy_disk.status == types.DiskStatus.OK
        assert copies[0].memory == 256 * MiB

        for url, provider, reason in (
                ("vpx://vcenter/dc/esx", types.ExternalVmProviderType.VMWARE, "only OVA"),
                (f"ova://{engines.base}/missing.ova", types.ExternalVmProviderType.KVM,
                 "no such file")):
            with pytest.raises(sdk.Error) as err:
                await in_thread(imports.add, types.ExternalVmImport(
                    name="bad", provider=provider, url=url,
                    cluster=types.Cluster(name="Default"),
                    storage_domain=types.StorageDomain(id=sd),
                    host=types.Host(name=hosts[0].name)))
            assert err.value.code == 400 and reason in str(err.value), str(err.value)
    finally:
        await in_thread(conn.close)


async def test_template_ova_export_and_import_through_the_sdk(engines: EngineFactory) -> None:
    """A template made from a VM with known bytes goes out through the SDK's
    template export_to_path_on_host (template.ovf first, one member named by
    the template volume id) and back in through external_template_imports;
    its volume is a template (SHARED) volume, and a thin VM made from the
    imported template reads the same bytes."""
    import ovirtsdk4.types as types
    from ovengine.domain.template_commands import AddTemplate
    from tests.integration.rest.test_sdk import connect, in_thread, sdk_wait

    require_storage()
    engine = await engines.start(serve_api=True, storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 1)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    _, cluster = await default_ids(engine)
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="tova-src", memory_mib=512, memory_guaranteed_mib=512)))).value
    disk = await finished(await s.runner.run(AddDisk(
        s, SYSTEM, sd, 8 * MiB, "raw", True, alias="tova_disk",
        attach=DiskAttach(vm, "virtio", bootable=True))))
    vol = str(await s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                    uuid.UUID(disk)))
    with open(volume_path(shared, sd, disk, vol), "r+b") as f:
        f.seek(3 * MiB)
        f.write(PATTERN)
    tpl = await finished(await s.runner.run(AddTemplate(s, SYSTEM, vm, "tova-tpl")))
    [td] = await _vm_disk(engine, tpl)
    out = engines.base / "export"
    out.mkdir()
    conn = connect(engine)
    try:
        system = conn.system_service()
        templates = system.templates_service()
        await in_thread(templates.template_service(tpl).export_to_path_on_host,
                        host=types.Host(name=hosts[0].name), directory=str(out),
                        filename="tpl.ova")
        ova = out / "tpl.ova"
        await sdk_wait(lambda: ova.exists(), 60, "OVA written")
        with tarfile.open(ova) as tar:
            assert tar.getnames() == ["template.ovf", str(td["image_id"])]
            ovf = read_ovf(tar.extractfile("template.ovf").read())  # type: ignore[union-attr]
        assert (ovf.entity, ovf.name, ovf.template_id) == ("template", "tova-tpl", tpl)

        await in_thread(system.external_template_imports_service().add,
                        types.ExternalTemplateImport(
                            template=types.Template(name="tova-copy"), url=f"ova://{ova}",
                            host=types.Host(name=hosts[0].name),
                            cluster=types.Cluster(name="Default"),
                            storage_domain=types.StorageDomain(id=sd), clone=False))
        copies = await sdk_wait(lambda: templates.list(search="name=tova-copy"), 60,
                                "template imported")
        copy_service = templates.template_service(copies[0].id)
        await sdk_wait(lambda: copy_service.get().status == types.TemplateStatus.OK, 60,
                       "import finished")
        assert copies[0].memory == 512 * MiB
        [cd] = await _vm_disk(engine, copies[0].id)
        role = await s.pool.fetchval("SELECT volume_role FROM images WHERE id=$1",
                                     cd["image_id"])
        assert (cd["status"], role, cd["provisioned_size"]) == ("ok", "shared", 8 * MiB)
        copy_vol = volume_path(shared, sd, str(cd["id"]), str(cd["image_id"]))
        assert "VOLTYPE=SHARED" in Path(f"{copy_vol}.meta").read_text()

        vms = system.vms_service()
        thin = await in_thread(vms.add, types.Vm(
            name="tova-thin", cluster=types.Cluster(name="Default"),
            template=types.Template(id=copies[0].id)))
        await sdk_wait(lambda: vms.vm_service(thin.id).get().status == types.VmStatus.DOWN,
                       60, "thin VM created")
    finally:
        await in_thread(conn.close)
    [vd] = await _vm_disk(engine, thin.id)
    flat = engines.base / "thin.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw",
                    str(volume_path(shared, sd, str(vd["id"]), str(vd["image_id"]))),
                    str(flat)], check=True)
    with open(flat, "rb") as f:
        f.seek(3 * MiB)
        assert f.read(len(PATTERN)) == PATTERN
