"""The engine's storage end to end, with local agents on the libvirt test
driver: real files, real qemu-img, a sanlock daemon per agent.

Two hosts share one POSIX directory (each agent bind-mounts it): a data
center on it with an SPM, thin and raw disks, a VM that runs with them (the
domain XML the host got has them), a template from the VM, two thin clones
that share the template's volume on disk and a full clone that does not,
and removals (a VM takes its disks with it; a template used by VMs stays).
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ovengine.daemon import Engine
from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk, AttachDisk, DetachDisk, DiskAttach, RemoveDisk
from ovengine.domain.template_commands import AddTemplate, RemoveTemplate
from ovengine.domain.vm_commands import AddVm, RemoveVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm, StopVm
from ovengine.errors import Conflict
from tests.fixtures.engine import EngineFactory, vm_status, wait_until
from tests.fixtures.engine_storage import (STORAGE_ENGINE, default_ids, disk_status, finished,
                                           image_dir, posix_data_center, require_storage,
                                           storage_hosts, volume_path)
from tests.fixtures.storage import qemu_info, read_kv

MiB = 1024 * 1024
GiB = 1024 * MiB


async def _disk(engine: Engine, disk_id: str) -> dict[str, object]:
    row = await engine.s.pool.fetchrow(
        "SELECT d.*, i.parent_id, i.template_volume_id FROM disks d "
        "LEFT JOIN images i ON i.id = d.image_id WHERE d.id=$1", uuid.UUID(disk_id))
    assert row is not None, disk_id
    return dict(row)


async def _vm_disk_ids(engine: Engine, vm_id: str) -> list[str]:
    rows = await engine.s.pool.fetch("SELECT disk_id FROM disk_attachments WHERE vm_id=$1 "
                                     "ORDER BY bootable DESC, disk_id", uuid.UUID(vm_id))
    return [str(r["disk_id"]) for r in rows]


async def test_posix_data_center_disks_vm_template_and_clones(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 2)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    _, cluster = await default_ids(engine)

    # ---- the pool: one SPM, both hosts connected with stable host ids
    spm = await s.pool.fetchval("SELECT spm_host_id FROM data_centers WHERE id=$1",
                                uuid.UUID(dc))
    assert spm is not None
    st = await s.hosts.call(str(spm), "StoragePool.getSpmStatus", {"storagepoolID": dc})
    assert st["spmStatus"] == "SPM"
    ids = {str(r["host_id"]): r["vds_spm_id"] for r in await s.pool.fetch(
        "SELECT host_id, vds_spm_id FROM vds_spm_id_map WHERE data_center_id=$1",
        uuid.UUID(dc))}
    assert sorted(ids.values()) == [1, 2] and st["spmId"] == ids[str(spm)]
    other = next(h for h in ids if h != str(spm))
    assert (await s.hosts.call(other, "StoragePool.getSpmStatus", {"storagepoolID": dc})
            )["spmStatus"] == "Free"
    assert await s.pool.fetchval("SELECT status FROM storage_pool_iso_map WHERE "
                                 "storage_domain_id=$1", uuid.UUID(sd)) == "active"
    assert await s.pool.fetchval("SELECT master FROM storage_domains WHERE id=$1",
                                 uuid.UUID(sd))
    md = read_kv(shared / sd / "dom_md" / "metadata")
    assert md["ROLE"] == "Master" and md["POOL_UUID"] == dc
    for h in ids:  # every host monitors the domain and holds its host id
        vitals = await wait_until(lambda h=h: _vitals(engine, h, sd), 30, "domain vitals")
        assert vitals["acquired"]

    # ---- disks: qcow2 thin and raw preallocated
    thin = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, GiB, "cow", True,
                                                     alias="thin1")))
    raw = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, 64 * MiB, "raw", False,
                                                    alias="raw1")))
    for disk, fmt in ((thin, "qcow2"), (raw, "raw")):
        assert await disk_status(engine, disk) == "ok"
        row = await _disk(engine, disk)
        info = qemu_info(volume_path(shared, sd, disk, str(row["image_id"])))
        assert info["format"] == fmt
        meta = read_kv(volume_path(shared, sd, disk, f"{row['image_id']}.meta"))
        assert meta["LEGALITY"] == "LEGAL" and meta["IMAGE"] == disk
    assert qemu_info(volume_path(shared, sd, raw, str((await _disk(engine, raw))["image_id"]))
                     )["actual-size"] >= 64 * MiB  # preallocated

    # ---- a VM with both, running: the host got them in its domain XML
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="stor-vm", memory_mib=128)))).value
    await s.runner.run(AttachDisk(s, SYSTEM, thin, DiskAttach(vm, "virtio", bootable=True)))
    await s.runner.run(AttachDisk(s, SYSTEM, raw, DiskAttach(vm, "virtio_scsi")))
    with pytest.raises(Conflict):  # one bootable disk per VM
        await s.runner.run(AttachDisk(s, SYSTEM, raw, DiskAttach(vm, "virtio", bootable=True)))
    host = (await s.runner.run(RunVm(s, SYSTEM, vm))).value
    await wait_until(lambda: _status_is(engine, vm, "up"), 30, "VM up")
    xml = (await s.hosts.call(host, "Host.dumpxmls", {"vmList": [vm]}))[vm]
    dom = ET.fromstring(xml)
    disks = {d.find("target").get("dev"): d for d in dom.iter("disk")}  # type: ignore[union-attr]
    assert set(disks) == {"vda", "sda"}
    vda, sda = disks["vda"], disks["sda"]
    assert vda.find("target").get("bus") == "virtio"  # type: ignore[union-attr]
    assert sda.find("target").get("bus") == "scsi"  # type: ignore[union-attr]
    assert vda.find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert sda.find("driver").get("type") == "raw"  # type: ignore[union-attr]
    thin_vol = str((await _disk(engine, thin))["image_id"])
    assert vda.find("source").get("file", "").endswith(f"/{sd}/images/{thin}/{thin_vol}")  # type: ignore[union-attr]
    assert any(c.get("model") == "virtio-scsi" for c in dom.iter("controller"))
    with pytest.raises(Conflict):  # no hot-unplug
        await s.runner.run(DetachDisk(s, SYSTEM, vm, raw))
    await s.runner.run(StopVm(s, SYSTEM, vm))
    assert await vm_status(engine, vm) == "down"

    # ---- a template from the VM: its disks collapsed into SHARED volumes
    tpl = await finished(await s.runner.run(AddTemplate(s, SYSTEM, vm, "tpl1")), 120)
    assert await s.pool.fetchval("SELECT template_status FROM vm_static WHERE id=$1",
                                 uuid.UUID(tpl)) == "ok"
    tpl_disks = await _vm_disk_ids(engine, tpl)
    assert len(tpl_disks) == 2
    tpl_boot = await _disk(engine, tpl_disks[0])
    tpl_vol_path = volume_path(shared, sd, tpl_disks[0], str(tpl_boot["image_id"]))
    assert read_kv(Path(f"{tpl_vol_path}.meta"))["VOLTYPE"] == "SHARED"
    assert "backing-filename" not in qemu_info(tpl_vol_path)

    # ---- two thin clones share the template's volume; a full clone does not
    clones = []
    for name in ("thin-a", "thin-b"):
        clones.append(await finished(await s.runner.run(AddVm(
            s, SYSTEM, cluster, tpl, VmConfig(name=name)))))
    full = await finished(await s.runner.run(AddVm(s, SYSTEM, cluster, tpl,
                                                   VmConfig(name="full-a"), clone=True)))
    for vm_id in (*clones, full):
        assert await vm_status(engine, vm_id) == "down"
        for d in await _vm_disk_ids(engine, vm_id):
            assert await disk_status(engine, d) == "ok"
    base_inode = os.stat(tpl_vol_path).st_ino
    for vm_id in clones:
        boot = await _vm_disk_ids(engine, vm_id)
        row = await _disk(engine, boot[0])
        assert str(row["parent_id"]) == str(tpl_boot["image_id"])
        assert str(row["template_volume_id"]) == str(tpl_boot["image_id"])
        leaf = volume_path(shared, sd, boot[0], str(row["image_id"]))
        info = qemu_info(leaf)
        assert info["format"] == "qcow2"
        assert info["backing-filename"] == str(tpl_boot["image_id"])
        linked = image_dir(shared, sd, boot[0]) / str(tpl_boot["image_id"])
        assert os.stat(linked).st_ino == base_inode  # the agent hard-links the template
    assert os.stat(tpl_vol_path).st_nlink == 3
    full_boot = await _vm_disk_ids(engine, full)
    frow = await _disk(engine, full_boot[0])
    finfo = qemu_info(volume_path(shared, sd, full_boot[0], str(frow["image_id"])))
    assert "backing-filename" not in finfo
    assert not (image_dir(shared, sd, full_boot[0]) / str(tpl_boot["image_id"])).exists()

    # a thin clone runs: its chain is prepared on the host
    host = (await s.runner.run(RunVm(s, SYSTEM, clones[0]))).value
    await wait_until(lambda: _status_is(engine, clones[0], "up"), 30, "clone up")
    xml = (await s.hosts.call(host, "Host.dumpxmls", {"vmList": [clones[0]]}))[clones[0]]
    assert f"/images/{(await _vm_disk_ids(engine, clones[0]))[0]}/" in xml
    await s.runner.run(StopVm(s, SYSTEM, clones[0]))

    # ---- removals
    with pytest.raises(Conflict, match="used by the following VMs"):
        await s.runner.run(RemoveTemplate(s, SYSTEM, tpl))
    gone = await _vm_disk_ids(engine, clones[1])
    await finished(await s.runner.run(RemoveVm(s, SYSTEM, clones[1])))
    for d in gone:  # the VM took its disks with it, in the database and on storage
        assert await disk_status(engine, d) is None
        assert not image_dir(shared, sd, d).exists()
    assert os.stat(tpl_vol_path).st_nlink == 2  # the template's volume stays
    for vm_id in (clones[0], full, vm):
        await finished(await s.runner.run(RemoveVm(s, SYSTEM, vm_id)))
    assert await disk_status(engine, thin) is None and await disk_status(engine, raw) is None
    await finished(await s.runner.run(RemoveTemplate(s, SYSTEM, tpl)))
    assert not await s.pool.fetchval("SELECT 1 FROM vm_static WHERE id=$1", uuid.UUID(tpl))
    for d in tpl_disks:
        assert not image_dir(shared, sd, d).exists()
    floating = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, GiB)))
    await finished(await s.runner.run(RemoveDisk(s, SYSTEM, floating)))
    assert await disk_status(engine, floating) is None
    assert not image_dir(shared, sd, floating).exists()
    assert await s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0
    assert await s.pool.fetchval("SELECT count(*) FROM async_tasks") == 0
    assert await s.pool.fetchval("SELECT count(*) FROM disks") == 0


async def _status_is(engine: Engine, vm_id: str, status: str) -> bool:
    return await vm_status(engine, vm_id) == status


async def _vitals(engine: Engine, host_id: str, sd: str) -> dict[str, object] | None:
    stats = await engine.s.hosts.call(host_id, "Host.getStats")
    v = stats["storageDomains"].get(sd)
    return v if v and v.get("actual") and v.get("valid") and v.get("acquired") else None
