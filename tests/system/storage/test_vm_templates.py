"""A template and two thin clones: both VMs boot from their clone, the
template's volume is shared (qcow2 backing file + the agent's hard link into
each clone's image) and never written."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from tests.fixtures.storage import COW, SHARED, SPARSE, new_uuid
from tests.fixtures.vmdisks import Disk, DiskLab

pytestmark = [pytest.mark.system]


async def test_template_and_two_thin_clones(disk_lab: DiskLab) -> None:
    lab = disk_lab
    golden = await lab.new_disk()
    vm_id = await lab.start_vm("golden", golden, tag="golden")
    await lab.wait_records(golden.img, golden.vol, "the golden boot",
                           lambda r: r.last_heartbeat(1) >= 1)
    await lab.stop_vm(vm_id)

    # Template: the disk collapsed into a SHARED volume of a new image.
    tmpl = Disk(new_uuid(), new_uuid())
    await lab.driver.run_task("Volume.copy", {
        **lab.params(golden.img, golden.vol), "dstSdUUID": lab.sd, "dstImgUUID": tmpl.img,
        "dstVolUUID": tmpl.vol, "desc": "template", "volType": SHARED, "volFormat": COW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"})
    assert lab.meta(tmpl.img, tmpl.vol)["VOLTYPE"] == "SHARED"
    template_records = lab.records(tmpl.img, tmpl.vol)
    assert template_records.boots == {1: "golden"}

    # Two thin clones on the template, each in its own image.
    clones = []
    for _ in range(2):
        img = new_uuid()
        vol = await lab.new_leaf(img, tmpl.vol, parent_img=tmpl.img)
        clones.append(Disk(img, vol))
    shared = lab.path(tmpl.img, tmpl.vol).stat()
    assert shared.st_nlink == 3
    for clone in clones:
        link = lab.path(clone.img, tmpl.vol).stat()
        assert (link.st_ino, link.st_dev) == (shared.st_ino, shared.st_dev)
        info = json.loads(subprocess.run(
            ["qemu-img", "info", "-U", "--output", "json", str(lab.path(clone.img, clone.vol))],
            check=True, capture_output=True).stdout)
        assert info["backing-filename"] == tmpl.vol
        assert await lab.chain(clone.img, clone.vol) == [clone.vol, tmpl.vol]
    # a template in use cannot be deleted
    assert await lab.driver.error("Volume.delete", {
        **lab.params(tmpl.img, tmpl.vol), "postZero": "false", "force": "false"}) == 223

    # Both VMs boot from their clone, at the same time.
    tags = ["clone-a", "clone-b"]
    vms = await asyncio.gather(*(lab.start_vm(tag, clone, tag=tag)
                                 for tag, clone in zip(tags, clones)))
    for tag, clone in zip(tags, clones):
        await lab.wait_records(clone.img, clone.vol, f"{tag} booted",
                               lambda r, t=tag: r.boots.get(2) == t and r.last_heartbeat(2) >= 1)
    for vm in vms:
        await lab.stop_vm(vm)
    for tag, clone in zip(tags, clones):
        seen = lab.records(clone.img, clone.vol)
        assert seen.boots == {1: "golden", 2: tag} and seen.contiguous(2)
        assert seen.heartbeats[1] == template_records.heartbeats[1]
    # the template saw none of it
    assert lab.records(tmpl.img, tmpl.vol) == template_records
    assert lab.meta(tmpl.img, tmpl.vol)["LEGALITY"] == "LEGAL"
