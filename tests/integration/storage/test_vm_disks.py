"""VM.snapshot, VM.merge and Host.getJobs over RPC on real storage and the fake hypervisor.

The fake hypervisor changes the domain XML as libvirt does (new overlay,
backing chain, commit, pivot) and sends the same block job events; the
volumes and their metadata are real (qemu-img, the agent's storage). The
QEMU system tests (tests/system/storage) run the same flows on a real guest.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from ovagent.virt.disks import drives
from protocol.jsonrpc import JsonRpcError
from tests.fixtures.agent import DOMAIN_PREFIX, domain_xml, new_vm_id, wait_until
from tests.fixtures.storage import COW, SHARED, SPARSE, MiB, new_uuid, read_kv

from .conftest import LocalPool

SIZE = 64 * MiB


def disk_xml(path: str, backing: str | None = None) -> str:
    # libvirt finds the backing chain in the qcow2 headers; the fake is told.
    store = "" if backing is None else (
        f"<backingStore type='file' index='1'><format type='qcow2'/>"
        f"<source file='{backing}'/></backingStore>")
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{path}'/>{store}<target dev='vda' bus='virtio'/></disk>")


async def make_disk(pool: LocalPool) -> tuple[str, str]:
    img, vol = new_uuid(), new_uuid()
    await pool.driver.create_volume(pool.sd, img, vol, SIZE, fmt=COW, prealloc=SPARSE)
    return img, vol


async def start_vm(pool: LocalPool, img: str, vol: str) -> str:
    prepared = await pool.driver.call("Image.prepare", {
        "storagepoolID": pool.driver.pool_id, "storagedomainID": pool.sd, "imageID": img,
        "volumeID": vol})
    vm_id = new_vm_id()
    volumes = prepared["imgVolumesInfo"]  # base first
    backing = volumes[-2]["path"] if len(volumes) > 1 else None
    xml = domain_xml("fake", f"{DOMAIN_PREFIX}disks-{vm_id[:8]}", vm_id,
                     devices=disk_xml(prepared["path"], backing))
    await pool.agent.call("VM.create", {"vmID": vm_id, "vmParams": {"xml": xml}})
    await pool.agent.wait_status(vm_id, "Up")
    return vm_id


async def chain(pool: LocalPool, vm_id: str) -> list[str]:
    xml = (await pool.agent.call("Host.dumpxmls", {"vmList": [vm_id]}))[vm_id]
    (drive,) = drives(xml)
    return drive.volumes


def meta(pool: LocalPool, img: str, vol: str) -> dict[str, str]:
    return read_kv(pool.volume_path(img, vol).with_name(f"{vol}.meta"))


async def new_leaf(pool: LocalPool, img: str, parent: str) -> str:
    vol = new_uuid()
    await pool.driver.create_volume(pool.sd, img, vol, SIZE, fmt=COW, prealloc=SPARSE,
                                    parent_img=img, parent_vol=parent)
    return vol


def snap(pool: LocalPool, vm_id: str, img: str, new: str, base: str | None,
         **extra: Any) -> dict[str, Any]:
    entry = {"domainID": pool.sd, "imageID": img, "volumeID": new}
    if base is not None:
        entry["baseVolumeID"] = base
    return {"vmID": vm_id, "snapDrives": [entry], **extra}


async def test_snapshot_chain_and_hash(local_pool: LocalPool) -> None:
    pool = local_pool
    img, base = await make_disk(pool)
    vm_id = await start_vm(pool, img, base)
    assert await chain(pool, vm_id) == [base]
    before = (await pool.agent.stats(vm_id))["hash"]
    leaf = await new_leaf(pool, img, base)
    assert await pool.agent.call("VM.snapshot", snap(pool, vm_id, img, leaf, base)) is True
    assert await chain(pool, vm_id) == [leaf, base]
    assert (await pool.agent.stats(vm_id))["hash"] != before
    # asking again for the same leaf changes nothing (the drive already uses it)
    await pool.agent.call("VM.snapshot", snap(pool, vm_id, img, leaf, base))
    assert await chain(pool, vm_id) == [leaf, base]
    # a status event carried the new hash to the engine
    hashes = [p[vm_id]["hash"] for m, p in pool.agent.events.items
              if m == f"|virt|VM_status|{vm_id}"]
    assert hashes[-1] == (await pool.agent.stats(vm_id))["hash"] != before


async def test_snapshot_refusals(local_pool: LocalPool) -> None:
    pool = local_pool
    img, base = await make_disk(pool)
    vm_id = await start_vm(pool, img, base)
    leaf = await new_leaf(pool, img, base)
    # a base that is not what the drive uses
    assert await pool.agent.call_error("VM.snapshot", snap(pool, vm_id, img, leaf,
                                                           new_uuid())) == 48
    # an image the VM does not have
    assert await pool.agent.call_error("VM.snapshot", snap(pool, vm_id, new_uuid(), leaf,
                                                           None)) == 48
    # a volume that is not a qcow2 child of the current leaf
    other_img, other = await make_disk(pool)
    assert await pool.agent.call_error("VM.snapshot", snap(pool, vm_id, img, other,
                                                           base)) == 48
    # memory snapshots are not supported
    assert await pool.agent.call_error("VM.snapshot", snap(
        pool, vm_id, img, leaf, base, snapMemory="a,b,c,d,e,f")) == 48
    assert await pool.agent.call_error("VM.snapshot", snap(pool, new_vm_id(), img, leaf,
                                                           base)) == 1
    assert await chain(pool, vm_id) == [base]


async def test_snapshot_as_a_host_job(local_pool: LocalPool) -> None:
    pool = local_pool
    img, base = await make_disk(pool)
    vm_id = await start_vm(pool, img, base)
    leaf = await new_leaf(pool, img, base)
    job = new_uuid()
    await pool.agent.call("VM.snapshot", snap(pool, vm_id, img, leaf, base, jobUUID=job))

    async def done() -> dict[str, Any] | None:
        jobs = await pool.agent.call("Host.getJobs", {"job_ids": [job]})
        return jobs[job] if jobs[job]["status"] == "done" else None
    info = await wait_until(done, 10, "the snapshot job")
    assert info == {"id": job, "job_type": "virt", "description": "snapshot_vm",
                    "status": "done"}
    assert await chain(pool, vm_id) == [leaf, base]
    # a failing one reports its error
    bad = new_uuid()
    await pool.agent.call("VM.snapshot", snap(pool, vm_id, img, new_uuid(), leaf, jobUUID=bad))

    async def failed() -> dict[str, Any] | None:
        jobs = await pool.agent.call("Host.getJobs", {"job_type": "virt"})
        return jobs[bad] if jobs[bad]["status"] == "failed" else None
    info = await wait_until(failed, 10, "the failed job")
    assert info["error"]["code"] == 48
    assert "Volume does not exist" in info["error"]["message"]  # the new leaf was never made
    assert await pool.agent.call("Host.getJobs", {"job_type": "storage"}) == {}


async def test_active_and_inner_merges(local_pool: LocalPool) -> None:
    pool = local_pool
    img, base = await make_disk(pool)
    vm_id = await start_vm(pool, img, base)
    s1 = await new_leaf(pool, img, base)
    await pool.agent.call("VM.snapshot", snap(pool, vm_id, img, s1, base))
    s2 = await new_leaf(pool, img, s1)
    await pool.agent.call("VM.snapshot", snap(pool, vm_id, img, s2, s1))
    assert await chain(pool, vm_id) == [s2, s1, base]
    drive = {"domainID": pool.sd, "imageID": img, "volumeID": s2}

    # inner: s1 into base
    await pool.agent.call("VM.merge", {"vmID": vm_id, "drive": drive, "baseVolUUID": base,
                                       "topVolUUID": s1, "jobUUID": (job := new_uuid())})

    async def merged(expected: list[str]) -> bool:
        stats = await pool.agent.stats(vm_id)
        return stats["vmJobs"] == {} and await chain(pool, vm_id) == expected
    await wait_until(lambda: merged([s2, base]), 10, "the inner merge")
    assert meta(pool, img, s2)["PUUID"] == base and meta(pool, img, s1)["LEGALITY"] == "LEGAL"
    await pool.driver.run_task("Volume.delete", {**pool.driver.volume_params(pool.sd, img, s1),
                                                 "postZero": "false", "force": "false"})
    assert job not in (await pool.agent.stats(vm_id))["vmJobs"]

    # active: s2 into base, pivot
    await pool.agent.call("VM.merge", {"vmID": vm_id, "drive": drive, "baseVolUUID": base,
                                       "topVolUUID": s2})
    await wait_until(lambda: merged([base]), 10, "the active merge")
    assert meta(pool, img, s2)["LEGALITY"] == "ILLEGAL"
    await pool.driver.run_task("Volume.delete", {**pool.driver.volume_params(pool.sd, img, s2),
                                                 "postZero": "false", "force": "false"})
    assert meta(pool, img, base)["VOLTYPE"] == "LEAF"


async def test_merge_refusals(local_pool: LocalPool) -> None:
    pool = local_pool
    img, base = await make_disk(pool)
    vm_id = await start_vm(pool, img, base)
    leaf = await new_leaf(pool, img, base)
    await pool.agent.call("VM.snapshot", snap(pool, vm_id, img, leaf, base))
    drive = {"domainID": pool.sd, "imageID": img, "volumeID": leaf}

    def merge(**kw: Any) -> dict[str, Any]:
        return {"vmID": vm_id, "drive": drive, "baseVolUUID": base, "topVolUUID": leaf, **kw}
    assert await pool.agent.call_error("VM.merge", merge(baseVolUUID=leaf,
                                                         topVolUUID=base)) == 52
    assert await pool.agent.call_error("VM.merge", merge(topVolUUID=new_uuid())) == 52
    assert await pool.agent.call_error("VM.merge", merge(
        drive={**drive, "imageID": new_uuid()})) == 13
    assert await chain(pool, vm_id) == [leaf, base]


async def test_merge_refuses_a_template_base(local_pool: LocalPool) -> None:
    pool = local_pool
    img, vol = await make_disk(pool)
    tmpl_img, tmpl = new_uuid(), new_uuid()
    await pool.driver.run_task("Volume.copy", {
        **pool.driver.volume_params(pool.sd, img, vol), "dstSdUUID": pool.sd,
        "dstImgUUID": tmpl_img, "dstVolUUID": tmpl, "desc": "", "volType": SHARED,
        "volFormat": COW, "preallocate": SPARSE, "postZero": "false", "force": "false"})
    clone_img, clone = new_uuid(), new_uuid()
    await pool.driver.create_volume(pool.sd, clone_img, clone, SIZE, fmt=COW, prealloc=SPARSE,
                                    parent_img=tmpl_img, parent_vol=tmpl)
    vm_id = await start_vm(pool, clone_img, clone)
    assert await chain(pool, vm_id) == [clone, tmpl]
    with pytest.raises(JsonRpcError) as refused:
        await pool.agent.client.call("VM.merge", {
            "vmID": vm_id, "baseVolUUID": tmpl, "topVolUUID": clone,
            "drive": {"domainID": pool.sd, "imageID": clone_img, "volumeID": clone}})
    assert refused.value.code == 52 and "shared" in refused.value.message


def qemu_io(path: Path, command: str) -> None:
    """One qemu-io command on a qcow2 file (a failed read -P check raises)."""
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(path)], check=True,
                   capture_output=True)


async def test_cold_merge_of_an_inner_volume(local_pool: LocalPool) -> None:
    """base <- mid <- leaf, VM down: mid is committed into base, leaf now backs onto base."""
    pool = local_pool
    img, base = await make_disk(pool)
    qemu_io(pool.volume_path(img, base), "write -P 0x11 0 1M")
    mid = await new_leaf(pool, img, base)
    qemu_io(pool.volume_path(img, mid), "write -P 0x22 1M 1M")
    leaf = await new_leaf(pool, img, mid)
    qemu_io(pool.volume_path(img, leaf), "write -P 0x33 2M 1M")
    task = await pool.driver.call("Image.coldMerge", {
        "storagepoolID": pool.driver.pool_id, "storagedomainID": pool.sd, "imageID": img,
        "baseVolUUID": base, "topVolUUID": mid})
    status = await pool.driver.wait_task(task)
    assert status["taskResult"] == "success", status
    assert meta(pool, img, mid)["LEGALITY"] == "ILLEGAL"
    assert meta(pool, img, leaf)["PUUID"] == base
    assert meta(pool, img, base)["VOLTYPE"] == "INTERNAL"
    assert meta(pool, img, base)["LEGALITY"] == "LEGAL"
    await pool.driver.run_task("Volume.delete", {**pool.driver.volume_params(pool.sd, img, mid),
                                                 "postZero": "false", "force": "false"})
    leaf_path = pool.volume_path(img, leaf)
    for pattern, offset in ((0x11, 0), (0x22, 1 << 20), (0x33, 2 << 20)):
        qemu_io(leaf_path, f"read -P {pattern:#x} {offset} 1M")
    # mid's data is in base itself now
    qemu_io(pool.volume_path(img, base), f"read -P 0x22 {1 << 20} 1M")
    # the leaf is not a child of an ILLEGAL volume: it can be prepared for a VM
    await pool.driver.call("Image.prepare", {
        "storagepoolID": pool.driver.pool_id, "storagedomainID": pool.sd, "imageID": img,
        "volumeID": leaf})
