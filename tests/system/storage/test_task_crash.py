"""An agent killed with SIGKILL in the middle of a volume copy.

The copy is made slow enough to hit (qemu-img convert is rate limited by the
agent's copy_rate_limit_bytes_s) and the kill happens only once the task is
reported running and the destination's data file exists. After the restart
the task is reported finished, and not successful unless the copy provably
completed; the half-made destination is ILLEGAL in its metadata (it cannot
be prepared for a VM) until it is deleted; no qemu-img is left writing it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import AsyncIterator

import pytest

from ovagent.storage.metadata import transform_path
from tests.fixtures.agent import AgentPki, wait_until
from tests.fixtures.storage import (
    LEAF,
    LOCALFS,
    PREALLOCATED,
    RAW,
    SPARSE,
    MiB,
    StorageHost,
    new_uuid,
    qemu_info,
    read_kv,
)

pytestmark = [pytest.mark.system]

RATE = 4 * MiB  # bytes/s: a 64 MiB copy takes about 16 s


@pytest.fixture
async def host(agent_pki: AgentPki, tmp_path: Path, test_driver_uri: str
               ) -> AsyncIterator[StorageHost]:
    if shutil.which("qemu-img") is None or shutil.which("qemu-io") is None:
        pytest.skip("qemu-img/qemu-io are not installed (qemu-utils)")
    h = StorageHost(agent_pki, tmp_path / "host1", test_driver_uri, host_id=1,
                    pool_id=new_uuid(), storage={"copy_rate_limit_bytes_s": RATE})
    try:
        yield h
    finally:
        await h.stop()


def writers_of(path: Path) -> list[int]:
    """Processes that still have path on their command line (an orphan qemu-img)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                pids.append(int(entry))
    return pids


async def test_kill9_during_a_copy(host: StorageHost, tmp_path: Path) -> None:
    d = await host.start()
    export = tmp_path / "export"
    export.mkdir()
    await d.connect(LOCALFS, str(export))
    sd = new_uuid()
    await d.create_domain(sd, LOCALFS, str(export))
    await d.create_pool(sd)
    await d.connect_pool(sd)
    await d.become_spm()
    images = host.repository / "mnt" / transform_path(str(export)) / sd / "images"

    img, vol = new_uuid(), new_uuid()
    await d.create_volume(sd, img, vol, 64 * MiB, RAW, PREALLOCATED)
    src = images / img / vol
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5c 0 64M", str(src)],
                   check=True, capture_output=True)

    dst_img, dst_vol = new_uuid(), new_uuid()
    task_id = await d.call("Volume.copy", {
        **d.volume_params(sd, img, vol), "dstSdUUID": sd, "dstImgUUID": dst_img,
        "dstVolUUID": dst_vol, "desc": "clone", "volType": LEAF, "volFormat": RAW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"})
    dst = images / dst_img / dst_vol

    async def copying() -> bool:
        status = await d.task_status(task_id)
        assert status["taskState"] == "running", status
        return dst.exists() and dst.stat().st_blocks > 0 and bool(writers_of(dst))
    await wait_until(copying, 30, "the copy to be under way", interval_s=0.05)
    assert read_kv(dst.with_name(f"{dst_vol}.meta"))["LEGALITY"] == "ILLEGAL"

    await host.kill9()

    # the kernel ends the orphaned qemu-img with its agent
    await wait_until(lambda: not writers_of(dst), 10, "qemu-img to die with the agent")
    copied = dst.stat().st_blocks * 512
    assert 0 < copied < 64 * MiB, copied  # really half-made

    d = await host.start()
    status = await d.task_status(task_id)
    assert status["taskState"] == "finished", status
    assert status["taskResult"] == "cleanFailure" and status["code"] == 100, status
    assert "interrupted" in status["message"]
    assert (await d.call("Host.getAllTasksInfo"))[task_id]["verb"] == "copyImage"
    assert read_kv(dst.with_name(f"{dst_vol}.meta"))["LEGALITY"] == "ILLEGAL"
    info = await d.volume_info(sd, dst_img, dst_vol)
    assert info["legality"] == "ILLEGAL" and info["status"] == "ILLEGAL"
    assert await d.error("Image.prepare", d.volume_params(sd, dst_img, dst_vol)) == 227
    assert await d.error("Volume.copy", {
        **d.volume_params(sd, img, vol), "dstSdUUID": sd, "dstImgUUID": dst_img,
        "dstVolUUID": dst_vol, "desc": "", "volType": LEAF, "volFormat": RAW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"}) == 309  # not connected
    await d.call("Task.clear", {"taskID": task_id})

    # the engine reconnects, becomes SPM again, removes the leftover and copies again
    await d.connect_pool(sd)
    await d.become_spm()
    await d.run_task("Volume.delete", {**d.volume_params(sd, dst_img, dst_vol),
                                       "postZero": "false", "force": "false"})
    assert not dst.exists()
    await d.run_task("Volume.copy", {
        **d.volume_params(sd, img, vol), "dstSdUUID": sd, "dstImgUUID": dst_img,
        "dstVolUUID": dst_vol, "desc": "clone", "volType": LEAF, "volFormat": RAW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"}, timeout_s=60)
    assert read_kv(dst.with_name(f"{dst_vol}.meta"))["LEGALITY"] == "LEGAL"
    assert qemu_info(dst)["virtual-size"] == 64 * MiB
    assert subprocess.run(["qemu-img", "compare", str(src), str(dst)]).returncode == 0


async def test_a_task_that_completed_before_the_kill_is_reported_done(
        host: StorageHost, tmp_path: Path) -> None:
    """The record may still say running when the work is done (killed between the
    LEGAL mark and the record update): recovery looks at storage and says success."""
    d = await host.start()
    export = tmp_path / "export"
    export.mkdir()
    await d.connect(LOCALFS, str(export))
    sd = new_uuid()
    await d.create_domain(sd, LOCALFS, str(export))
    await d.create_pool(sd)
    await d.connect_pool(sd)
    await d.become_spm()
    img, vol = new_uuid(), new_uuid()
    task_id = await d.call("Volume.create", {
        **d.volume_params(sd, img, vol), "size": str(MiB), "volFormat": 4,
        "preallocate": SPARSE, "diskType": "DATA", "desc": "",
        "srcImgUUID": "00000000-0000-0000-0000-000000000000",
        "srcVolUUID": "00000000-0000-0000-0000-000000000000"})
    await d.wait_task(task_id)
    await host.kill9()
    record = host.proc.state_dir / "tasks" / f"{task_id}.json"
    text = record.read_text()
    # what a kill right before the final record write leaves behind
    record.write_text(text.replace('"state": "finished"', '"state": "running"')
                      .replace('"result": "success"', '"result": ""'))
    d = await host.start()
    status = await d.task_status(task_id)
    assert status["taskState"] == "finished" and status["taskResult"] == "success", status
