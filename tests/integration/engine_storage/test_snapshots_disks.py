"""VM snapshots with disks through the engine, on real storage (a POSIX
domain, qemu-img, sanlock) with local agents.

A stopped VM: snapshots make qcow2 leaves on the old ones, preview/undo and
preview/commit move between chains (and configurations), removal merges
cold. A running VM (agents on the fake hypervisor, which changes the domain
XML as libvirt does; the libvirt test driver has no disk snapshots): the
drives switch live, and removal merges live. The SDK test drives the same
through the REST API.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import ovirtsdk4.types as types

from ovengine.daemon import Engine
from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk, DiskAttach
from ovengine.domain.snapshot_commands import CreateSnapshot, RemoveSnapshot
from ovengine.domain.snapshot_preview import CommitSnapshot, PreviewSnapshot, UndoSnapshot
from ovengine.domain.vm_commands import AddVm, UpdateVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm, StopVm
from tests.fixtures.engine import EngineFactory, vm_status, wait_until
from tests.fixtures.engine_storage import (STORAGE_ENGINE, default_ids, finished, image_dir,
                                           posix_data_center, require_storage, storage_hosts,
                                           volume_path)
from tests.fixtures.storage import qemu_info, read_kv
from tests.integration.rest.test_sdk import connect, in_thread, sdk_wait

MiB = 1024 * 1024


async def _leaf(engine: Engine, disk: str) -> str:
    return str(await engine.s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                            uuid.UUID(disk)))


async def _rows(engine: Engine, disk: str) -> dict[str, dict[str, Any]]:
    """The disk's volume rows by id."""
    rows = await engine.s.pool.fetch("SELECT * FROM images WHERE disk_id=$1", uuid.UUID(disk))
    return {str(r["id"]): dict(r) for r in rows}


def _on_disk(shared: Path, sd: str, disk: str) -> dict[str, str]:
    """Volume -> parent, from the metadata on storage (legal volumes only)."""
    out = {}
    for meta in image_dir(shared, sd, disk).glob("*.meta"):
        kv = read_kv(meta)
        if kv["LEGALITY"] == "LEGAL":
            out[meta.stem] = kv["PUUID"]
    return out


async def _assert_consistent(engine: Engine, shared: Path, sd: str, disk: str) -> None:
    """The rows say what storage says: the same volumes with the same parents,
    and the disk's leaf backs onto its parent."""
    rows = await _rows(engine, disk)
    assert {v: str(r["parent_id"]) for v, r in rows.items()} == _on_disk(shared, sd, disk)
    leaf = await _leaf(engine, disk)
    info = qemu_info(volume_path(shared, sd, disk, leaf))
    parent = str(rows[leaf]["parent_id"])
    if parent != "00000000-0000-0000-0000-000000000000":
        assert info["backing-filename"] == parent


async def _snap_status(engine: Engine, sid: str) -> str | None:
    v = await engine.s.pool.fetchval("SELECT status FROM snapshots WHERE id=$1", uuid.UUID(sid))
    return None if v is None else str(v)


async def _setup(engines: EngineFactory, **host_kw: Any) -> tuple[Engine, Path, str, str,
                                                                     list[str], Any]:
    engine = await engines.start(serve_api=True, storage=STORAGE_ENGINE)
    hosts = await storage_hosts(engines, engine, 1, **host_kw)
    shared = engines.base / "shared"
    _, sd = await posix_data_center(engine, hosts, shared)
    _, cluster = await default_ids(engine)
    s = engine.s
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="snap-vm", memory_mib=128)))).value
    disks = [await finished(await s.runner.run(AddDisk(
        s, SYSTEM, sd, 64 * MiB, "cow", True, alias="boot",
        attach=DiskAttach(vm, bootable=True)))),
        await finished(await s.runner.run(AddDisk(
            s, SYSTEM, sd, 32 * MiB, "raw", False, alias="data", attach=DiskAttach(vm))))]
    return engine, shared, sd, vm, disks, hosts


async def test_snapshots_of_a_stopped_vm(engines: EngineFactory) -> None:
    require_storage()
    engine, shared, sd, vm, (boot, data), _ = await _setup(engines)
    s = engine.s
    base = {d: await _leaf(engine, d) for d in (boot, data)}

    # ---- create: each disk gets a qcow2 leaf on its old one
    s1 = await finished(await s.runner.run(CreateSnapshot(s, SYSTEM, vm, "s1")))
    assert await _snap_status(engine, s1) == "ok"
    for d in (boot, data):
        leaf = await _leaf(engine, d)
        rows = await _rows(engine, d)
        assert leaf != base[d] and str(rows[leaf]["parent_id"]) == base[d]
        assert str(rows[base[d]]["vm_snapshot_id"]) == s1
        assert rows[leaf]["vm_snapshot_id"] is None and rows[leaf]["status"] == "ok"
        info = qemu_info(volume_path(shared, sd, d, leaf))
        assert info["format"] == "qcow2" and info["backing-filename"] == base[d]
        await _assert_consistent(engine, shared, sd, d)
    # only the boot disk
    s2 = await finished(await s.runner.run(CreateSnapshot(s, SYSTEM, vm, "s2",
                                                          disk_ids=[boot])))
    assert len(await _rows(engine, boot)) == 3 and len(await _rows(engine, data)) == 2
    kinds = [(r["snapshot_type"], r["status"]) for r in await s.pool.fetch(
        "SELECT * FROM snapshots WHERE vm_id=$1 ORDER BY creation_date", uuid.UUID(vm))]
    assert kinds == [("active", "ok"), ("regular", "ok"), ("regular", "ok")]

    # ---- preview s1 then undo: back to the same chain and configuration
    await s.runner.run(UpdateVm(s, SYSTEM, vm, VmConfig(memory_mib=256)))
    before = {d: await _leaf(engine, d) for d in (boot, data)}
    await finished(await s.runner.run(PreviewSnapshot(s, SYSTEM, vm, s1)))
    assert await _snap_status(engine, s1) == "in_preview"
    assert await s.pool.fetchval("SELECT memory_mib FROM vm_static WHERE id=$1",
                                 uuid.UUID(vm)) == 128
    for d in (boot, data):
        leaf = await _leaf(engine, d)
        rows = await _rows(engine, d)
        assert str(rows[leaf]["parent_id"]) == base[d]  # a new leaf on s1's volume
        assert rows[before[d]]["vm_snapshot_id"] is not None  # kept by the preview snapshot
        await _assert_consistent(engine, shared, sd, d)
    # the VM runs from the preview
    host = (await s.runner.run(RunVm(s, SYSTEM, vm))).value
    await wait_until(lambda: _status_is(engine, vm, "up"), 30, "VM up")
    xml = (await s.hosts.call(host, "Host.dumpxmls", {"vmList": [vm]}))[vm]
    assert f"/{boot}/{await _leaf(engine, boot)}" in xml
    await s.runner.run(StopVm(s, SYSTEM, vm))
    await wait_until(lambda: _status_is(engine, vm, "down"), 30, "VM down")
    await finished(await s.runner.run(UndoSnapshot(s, SYSTEM, vm)))
    assert {d: await _leaf(engine, d) for d in (boot, data)} == before
    assert await _snap_status(engine, s1) == "ok"
    assert await s.pool.fetchval("SELECT memory_mib FROM vm_static WHERE id=$1",
                                 uuid.UUID(vm)) == 256
    assert not await s.pool.fetchval("SELECT 1 FROM snapshots WHERE vm_id=$1 AND "
                                     "snapshot_type='preview'", uuid.UUID(vm))
    for d in (boot, data):
        await _assert_consistent(engine, shared, sd, d)

    # ---- preview s1 and commit: what was newer than s1 goes (s2 too)
    await finished(await s.runner.run(PreviewSnapshot(s, SYSTEM, vm, s1)))
    await finished(await s.runner.run(CommitSnapshot(s, SYSTEM, vm)))
    assert await _snap_status(engine, s1) == "ok" and await _snap_status(engine, s2) is None
    for d in (boot, data):
        rows = await _rows(engine, d)
        assert set(rows) == {base[d], await _leaf(engine, d)}
        await _assert_consistent(engine, shared, sd, d)
    assert await s.pool.fetchval("SELECT memory_mib FROM vm_static WHERE id=$1",
                                 uuid.UUID(vm)) == 128

    # ---- remove s1 (cold merge): the leaf is committed into s1's volume
    await finished(await s.runner.run(RemoveSnapshot(s, SYSTEM, vm, s1)))
    assert await _snap_status(engine, s1) is None
    for d in (boot, data):
        assert await _leaf(engine, d) == base[d]
        assert set(await _rows(engine, d)) == {base[d]}
        await _assert_consistent(engine, shared, sd, d)
        assert not (await _rows(engine, d))[base[d]]["vm_snapshot_id"]
    assert await s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0
    assert await s.pool.fetchval("SELECT count(*) FROM async_tasks") == 0
    events = {r["log_type"] for r in await s.pool.fetch(
        "SELECT log_type FROM audit_log WHERE vm_id=$1", uuid.UUID(vm))}
    assert {45, 68, 46, 71, 47, 100, 342, 356} <= events


async def test_live_snapshot_and_live_merge(engines: EngineFactory) -> None:
    require_storage()
    engine, shared, sd, vm, (boot, _data), _ = await _setup(engines, libvirt_uri="fake://")
    s = engine.s
    base = await _leaf(engine, boot)
    host = (await s.runner.run(RunVm(s, SYSTEM, vm))).value
    await wait_until(lambda: _status_is(engine, vm, "up"), 30, "VM up")

    sid = await finished(await s.runner.run(CreateSnapshot(s, SYSTEM, vm, "live",
                                                           disk_ids=[boot])))
    leaf = await _leaf(engine, boot)
    assert leaf != base
    xml = (await s.hosts.call(host, "Host.dumpxmls", {"vmList": [vm]}))[vm]
    assert f"/{boot}/{leaf}" in xml  # the drive moved to the new leaf
    await _assert_consistent(engine, shared, sd, boot)

    await finished(await s.runner.run(RemoveSnapshot(s, SYSTEM, vm, sid)))
    assert await _snap_status(engine, sid) is None
    assert await _leaf(engine, boot) == base
    xml = (await s.hosts.call(host, "Host.dumpxmls", {"vmList": [vm]}))[vm]
    assert leaf not in xml and f"/{boot}/{base}" in xml
    await _assert_consistent(engine, shared, sd, boot)
    assert not (image_dir(shared, sd, boot) / leaf).exists()
    await s.runner.run(StopVm(s, SYSTEM, vm))


async def test_sdk_snapshot_preview_commit(engines: EngineFactory) -> None:
    require_storage()
    engine, shared, sd, vm_id, (boot, _data), _ = await _setup(engines)
    conn = connect(engine)
    try:
        vm_service = conn.system_service().vms_service().vm_service(vm_id)
        snaps = vm_service.snapshots_service()
        snap = await in_thread(snaps.add, types.Snapshot(
            description="sdk", persist_memorystate=False,
            disk_attachments=[types.DiskAttachment(disk=types.Disk(id=boot))]))
        await sdk_wait(lambda: snaps.snapshot_service(snap.id).get().snapshot_status
                       == types.SnapshotStatus.OK, 60, "snapshot ok")
        listed = await in_thread(snaps.list)
        assert sorted(x.snapshot_type.value for x in listed) == ["active", "regular"]
        disks = await in_thread(snaps.snapshot_service(snap.id).disks_service().list)
        assert [(d.id, d.image_id) for d in disks] == [
            (boot, str(await engine.s.pool.fetchval(
                "SELECT id FROM images WHERE vm_snapshot_id=$1", uuid.UUID(snap.id))))]
        first_leaf = await _leaf(engine, boot)

        await in_thread(vm_service.preview_snapshot, snapshot=types.Snapshot(id=snap.id),
                        restore_memory=False)
        await sdk_wait(lambda: snaps.snapshot_service(snap.id).get().snapshot_status
                       == types.SnapshotStatus.IN_PREVIEW, 60, "in preview")
        assert "preview" in [x.snapshot_type.value for x in await in_thread(snaps.list)]
        await in_thread(vm_service.commit_snapshot)
        await sdk_wait(lambda: snaps.snapshot_service(snap.id).get().snapshot_status
                       == types.SnapshotStatus.OK, 60, "committed")
        assert sorted(x.snapshot_type.value for x in await in_thread(snaps.list)) == \
            ["active", "regular"]
        assert await _leaf(engine, boot) != first_leaf
        assert first_leaf not in await _rows(engine, boot)
        await _assert_consistent(engine, shared, sd, boot)

        await in_thread(snaps.snapshot_service(snap.id).remove)
        await sdk_wait(lambda: [x.snapshot_type.value for x in snaps.list()] == ["active"],
                       60, "snapshot removed")
        await _assert_consistent(engine, shared, sd, boot)
    finally:
        await in_thread(conn.close)


async def _status_is(engine: Engine, vm_id: str, status: str) -> bool:
    return await vm_status(engine, vm_id) == status
