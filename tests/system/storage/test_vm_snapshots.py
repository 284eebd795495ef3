"""Live snapshots, revert and live merge of a running QEMU VM's disk.

The guest (tests/fixtures/bootimage.py) records its boots and writes a
heartbeat record twice a second on its disk; the test reads the volumes
offline (qemu-img) to tell which records landed in which volume. Everything
is driven through the agent's verbs, as the engine would: Volume.create of
the new leaf on the SPM, VM.snapshot, VM.merge, Volume.delete.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from ovagent.virt.disks import drives
from tests.fixtures.agent import wait_until
from tests.fixtures.vmdisks import Disk, DiskLab

pytestmark = [pytest.mark.system]


def drive_chain(xml: str) -> list[str]:
    """Volume UUIDs of the VM's first disk as libvirt runs it, leaf first."""
    (drive,) = [d for d in drives(xml) if d.ref is not None]
    return drive.volumes


async def snapshot(lab: DiskLab, vm_id: str, disk: Disk, base: str, new: str) -> None:
    hash_before = (await lab.agent.stats(vm_id))["hash"]
    await lab.agent.call("VM.snapshot", {"vmID": vm_id, "snapDrives": [
        {"domainID": lab.sd, "imageID": disk.img, "volumeID": new, "baseVolumeID": base}]})
    assert drive_chain(await lab.xml(vm_id))[:2] == [new, base]
    assert (await lab.agent.stats(vm_id))["hash"] != hash_before  # the engine refetches


async def test_snapshot_then_revert_to_the_snapshot(disk_lab: DiskLab) -> None:
    lab = disk_lab
    disk = await lab.new_disk()
    vm_id = await lab.start_vm("snap", disk, tag="first")
    await lab.wait_records(disk.img, disk.vol, "boot 1 and 3 heartbeats",
                           lambda r: r.boots == {1: "first"} and r.last_heartbeat(1) >= 2)

    # The engine makes the new leaf on the SPM, then asks for the snapshot.
    leaf = await lab.new_leaf(disk.img, disk.vol)
    assert lab.meta(disk.img, disk.vol)["VOLTYPE"] == "INTERNAL"
    await snapshot(lab, vm_id, disk, disk.vol, leaf)

    # From now on the guest writes into the leaf; the base holds the past.
    at_snapshot = lab.records(disk.img, disk.vol, backing=False)
    taken = at_snapshot.last_heartbeat(1)
    assert taken >= 2 and at_snapshot.contiguous(1), at_snapshot
    after = await lab.wait_records(disk.img, leaf, "3 heartbeats after the snapshot",
                                   lambda r: r.last_heartbeat(1) >= taken + 3)
    # (the leaf also holds copies of older records that share a qcow2 cluster)
    only_leaf = lab.records(disk.img, leaf, backing=False)
    assert only_leaf.boots == {} and only_leaf.last_heartbeat(1) > taken
    assert after.contiguous(1)
    assert lab.records(disk.img, disk.vol, backing=False).last_heartbeat(1) == taken

    # Revert: stop the VM, drop the leaf, start on the base again.
    await lab.stop_vm(vm_id)
    await lab.delete_volume(disk.img, leaf)
    assert not lab.path(disk.img, leaf).exists()
    assert lab.meta(disk.img, disk.vol)["VOLTYPE"] == "LEAF"
    reverted = lab.records(disk.img, disk.vol)
    assert reverted.last_heartbeat(1) == taken and reverted.contiguous(1)

    vm2 = await lab.start_vm("revert", disk, tag="second")
    second = await lab.wait_records(disk.img, disk.vol, "boot 2 and 2 heartbeats",
                                    lambda r: r.last_heartbeat(2) >= 1)
    await lab.stop_vm(vm2)
    final = lab.records(disk.img, disk.vol)
    # the boot before the snapshot is there, the writes after it are gone
    assert final.boots == {1: "first", 2: "second"} and final.counter == 2
    assert final.heartbeats[1] == list(range(taken + 1))
    assert second.contiguous(2) and final.contiguous(2)


async def test_live_merge_of_the_active_layer(disk_lab: DiskLab) -> None:
    lab = disk_lab
    disk = await lab.new_disk()
    vm_id = await lab.start_vm("merge", disk, tag="merge")
    await lab.wait_records(disk.img, disk.vol, "2 heartbeats",
                           lambda r: r.last_heartbeat(1) >= 1)
    leaf = await lab.new_leaf(disk.img, disk.vol)
    await snapshot(lab, vm_id, disk, disk.vol, leaf)
    taken = lab.records(disk.img, disk.vol, backing=False).last_heartbeat(1)
    await lab.wait_records(disk.img, leaf, "heartbeats in the leaf",
                           lambda r: r.last_heartbeat(1) >= taken + 3)

    job = "5c7d1c52-6a2e-4c52-8b7f-0a1e2d3c4b5a"
    await lab.agent.call("VM.merge", {
        "vmID": vm_id, "drive": {"domainID": lab.sd, "imageID": disk.img, "volumeID": leaf},
        "baseVolUUID": disk.vol, "topVolUUID": leaf, "bandwidth": 0, "jobUUID": job})

    seen_jobs: list[dict[str, object]] = []

    async def merged() -> bool:
        stats = await lab.agent.stats(vm_id)
        jobs = stats.get("vmJobs", {})
        if job in jobs:
            seen_jobs.append(jobs[job])
            return False
        return drive_chain(await lab.xml(vm_id)) == [disk.vol]
    await wait_until(merged, 60, "the merge to finish and the VM to run on the base")
    # progress was reported the way vdsm does (if the job lived long enough to be seen)
    for info in seen_jobs:
        assert info["jobType"] == "block" and info["blockJobType"] == "commit"
        assert info["imgUUID"] == disk.img and isinstance(info["cur"], str)

    # the metadata follows: the leaf is out of the chain, ILLEGAL, for the engine to delete
    assert lab.meta(disk.img, leaf)["LEGALITY"] == "ILLEGAL"
    assert lab.meta(disk.img, disk.vol)["LEGALITY"] == "LEGAL"
    await lab.delete_volume(disk.img, leaf)
    assert lab.meta(disk.img, disk.vol)["VOLTYPE"] == "LEAF"
    assert await lab.chain(disk.img, disk.vol) == [disk.vol]

    # the guest goes on writing into the base; nothing was lost on the way
    now = lab.records(disk.img, disk.vol).last_heartbeat(1)
    await lab.wait_records(disk.img, disk.vol, "heartbeats after the merge",
                           lambda r: r.last_heartbeat(1) >= now + 2)
    await lab.stop_vm(vm_id)
    final = lab.records(disk.img, disk.vol)
    assert final.boots == {1: "merge"} and final.contiguous(1), final
    assert final.last_heartbeat(1) >= taken + 5


async def test_live_merge_of_an_inner_snapshot(disk_lab: DiskLab) -> None:
    """base <- s1 <- s2 (active): merging s1 into base leaves base <- s2."""
    lab = disk_lab
    disk = await lab.new_disk()
    vm_id = await lab.start_vm("inner", disk, tag="inner")
    await lab.wait_records(disk.img, disk.vol, "a heartbeat", lambda r: r.last_heartbeat(1) >= 0)
    s1 = await lab.new_leaf(disk.img, disk.vol)
    await snapshot(lab, vm_id, disk, disk.vol, s1)
    await lab.wait_records(disk.img, s1, "heartbeats in s1",
                           lambda r: bool(lab.records(disk.img, s1, backing=False).heartbeats))
    s2 = await lab.new_leaf(disk.img, s1)
    await snapshot(lab, vm_id, disk, s1, s2)
    in_s1 = lab.records(disk.img, s1, backing=False).heartbeats[1]
    assert drive_chain(await lab.xml(vm_id)) == [s2, s1, disk.vol]

    await lab.agent.call("VM.merge", {
        "vmID": vm_id, "drive": {"domainID": lab.sd, "imageID": disk.img, "volumeID": s2},
        "baseVolUUID": disk.vol, "topVolUUID": s1})

    async def merged() -> bool:
        stats = await lab.agent.stats(vm_id)
        return not stats.get("vmJobs") and drive_chain(await lab.xml(vm_id)) == [s2, disk.vol]
    await wait_until(merged, 60, "the inner merge")
    assert lab.meta(disk.img, s2)["PUUID"] == disk.vol  # relinked in the metadata
    await lab.delete_volume(disk.img, s1)
    assert await lab.chain(disk.img, s2) == [s2, disk.vol]
    # s1's records are now in the base itself
    base_only = lab.records(disk.img, disk.vol, backing=False)
    assert set(in_s1) <= set(base_only.heartbeats[1])
    await lab.stop_vm(vm_id)
    final = lab.records(disk.img, s2)
    assert final.contiguous(1) and final.boots == {1: "inner"}
    # the qcow2 header of s2 names the base now (relative, as vdsm keeps it)
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output", "json", str(lab.path(disk.img, s2))],
        check=True, capture_output=True).stdout)
    assert info["backing-filename"] == disk.vol


async def test_cold_merge_of_a_stopped_vm(disk_lab: DiskLab) -> None:
    """Snapshot while running, stop, then Image.coldMerge (qemu-img commit) on the SPM."""
    lab = disk_lab
    disk = await lab.new_disk()
    vm_id = await lab.start_vm("cold", disk, tag="cold")
    await lab.wait_records(disk.img, disk.vol, "a heartbeat", lambda r: r.last_heartbeat(1) >= 0)
    top = await lab.new_leaf(disk.img, disk.vol)
    await snapshot(lab, vm_id, disk, disk.vol, top)
    taken = lab.records(disk.img, disk.vol, backing=False).last_heartbeat(1)
    await lab.wait_records(disk.img, top, "heartbeats in the snapshot",
                           lambda r: r.last_heartbeat(1) >= taken + 2)
    await lab.stop_vm(vm_id)
    before = lab.records(disk.img, top)

    merge = {"storagepoolID": lab.driver.pool_id, "storagedomainID": lab.sd,
             "imageID": disk.img, "baseVolUUID": disk.vol, "topVolUUID": top}
    # base and top swapped: refused at once, nothing started
    assert await lab.driver.error("Image.coldMerge", {**merge, "baseVolUUID": top,
                                                      "topVolUUID": disk.vol}) == 250
    await lab.driver.run_task("Image.coldMerge", merge)
    assert lab.meta(disk.img, top)["LEGALITY"] == "ILLEGAL"
    base_meta = lab.meta(disk.img, disk.vol)
    assert (base_meta["LEGALITY"], base_meta["VOLTYPE"]) == ("LEGAL", "LEAF")
    # everything the VM saw through the snapshot is now in the base alone
    assert lab.records(disk.img, disk.vol, backing=False) == before
    await lab.delete_volume(disk.img, top)
    assert await lab.chain(disk.img, disk.vol) == [disk.vol]
