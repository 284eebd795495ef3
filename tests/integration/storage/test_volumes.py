"""Domains, pools and volumes over the agent's RPC, on real files with real qemu-img.

Every result is checked against protocol/schema/storage.yml by the driver.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ovagent.config import StorageConfig
from ovagent.storage.metadata import decode_domain_metadata, transform_path
from tests.fixtures.agent import StartAgent
from tests.fixtures.storage import (
    BLANK_UUID,
    COW,
    LEAF,
    LOCALFS,
    PREALLOCATED,
    RAW,
    SHARED,
    SPARSE,
    GiB,
    MiB,
    StorageDriver,
    new_uuid,
    qemu_info,
    read_kv,
)

from .conftest import LocalPool


def qemu_io(path: Path, command: str, fmt: str = "qcow2") -> str:
    """Run one qemu-io command; a failed read pattern check raises."""
    return subprocess.run(["qemu-io", "-f", fmt, "-c", command, str(path)], check=True,
                          capture_output=True, text=True).stdout


def compare(a: Path, b: Path) -> bool:
    return subprocess.run(["qemu-img", "compare", "-U", str(a), str(b)],
                          capture_output=True).returncode == 0


# ---------------------------------------------------------------- domain
async def test_domain_layout_metadata_and_reports(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    dom = local_pool.domain_dir
    for name in ("metadata", "ids", "leases", "inbox", "outbox"):
        assert (dom / "dom_md" / name).is_file(), name
    assert (dom / "dom_md" / "inbox").stat().st_size == 16 * MiB
    assert (dom / "images").is_dir()
    # the mount point is vdsm's transformed path of the connection
    assert dom.parent.name == transform_path(str(local_pool.export))
    assert "__" in dom.parent.name  # pytest's directory names have "_": doubled
    assert dom.parent.is_symlink()

    raw = (dom / "dom_md" / "metadata").read_bytes()
    md = decode_domain_metadata(raw)  # checks the _SHA_CKSUM seal
    assert raw.decode().splitlines()[-1].startswith("_SHA_CKSUM=")
    assert md["SDUUID"] == sd and md["TYPE"] == "LOCALFS" and md["CLASS"] == "Data"
    assert md["VERSION"] == "5" and md["ROLE"] == "Master"
    assert md["POOL_UUID"] == d.pool_id and md["MASTER_VERSION"] == "1"
    assert md["POOL_DOMAINS"] == f"{sd}:Active" and md["POOL_DESCRIPTION"] == "dc1"
    assert md["POOL_SPM_ID"] == "1" and int(md["POOL_SPM_LVER"]) >= 1
    assert md["REMOTE_PATH"] == str(local_pool.export)

    info = await d.call("StorageDomain.getInfo", {"storagedomainID": sd})
    assert info["role"] == "Master" and info["pool"] == [d.pool_id]
    assert info["type"] == "LOCALFS" and info["version"] == "5"
    stats = await d.call("StorageDomain.getStats", {"storagedomainID": sd})
    assert int(stats["disktotal"]) > int(stats["diskfree"]) > 0
    pool = await d.call("StoragePool.getInfo", {"storagepoolID": d.pool_id})
    assert pool["info"]["master_uuid"] == sd and pool["info"]["spm_id"] == 1
    assert pool["dominfo"][sd]["status"] == "Active"
    assert await d.call("Host.getConnectedStoragePools") == [d.pool_id]
    assert await d.call("Host.getStorageDomains", {"storagepoolID": d.pool_id}) == [sd]
    assert await d.call("Host.getStorageDomains", {"storageType": LOCALFS}) == [sd]
    assert await d.call("Host.getStorageDomains", {"storageType": 1}) == []


async def test_monitoring_reports_the_domain(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    stats = await d.call("Host.getStats")
    vitals = stats["storageDomains"][sd]
    assert vitals["valid"] and vitals["code"] == 0 and vitals["acquired"] and vitals["actual"]
    assert float(vitals["delay"]) < 5 and vitals["version"] == 5
    repo = await d.call("Host.getStorageRepoStats", {"domains": [sd]})
    assert set(repo) == {sd}


async def test_domain_errors(local_pool: LocalPool) -> None:
    d = local_pool.driver
    missing = new_uuid()
    assert await d.error("StorageDomain.getInfo", {"storagedomainID": missing}) == 358
    assert await d.error("StorageDomain.create", {
        "storagedomainID": local_pool.sd, "domainType": LOCALFS,
        "typeArgs": str(local_pool.export), "name": "again", "domainClass": 1}) == 365
    assert await d.error("StorageDomain.create", {
        "storagedomainID": new_uuid(), "domainType": LOCALFS,
        "typeArgs": "/not/connected", "name": "x", "domainClass": 1}) == 360
    assert await d.error("StoragePool.getInfo", {"storagepoolID": new_uuid()}) == 309
    assert await d.error("Task.getStatus", {"taskID": new_uuid()}) == 401


# --------------------------------------------------------------- volumes
async def test_qcow2_thin_volume(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    img, vol = new_uuid(), new_uuid()
    await d.create_volume(sd, img, vol, 10 * GiB, COW, SPARSE, desc="boot disk")
    path = local_pool.volume_path(img, vol)
    qi = qemu_info(path)
    assert qi["format"] == "qcow2" and qi["virtual-size"] == 10 * GiB
    assert qi["format-specific"]["data"]["compat"] == "1.1" and "backing-filename" not in qi
    assert qi["actual-size"] < 10 * MiB

    meta_text = (path.parent / f"{vol}.meta").read_text()
    assert meta_text.endswith("EOF\n")
    meta = read_kv(path.parent / f"{vol}.meta")
    assert meta == {"CAP": str(10 * GiB), "CTIME": meta["CTIME"], "DESCRIPTION": "boot disk",
                    "DISKTYPE": "DATA", "DOMAIN": sd, "FORMAT": "COW", "GEN": "0",
                    "IMAGE": img, "LEGALITY": "LEGAL", "PUUID": BLANK_UUID, "TYPE": "SPARSE",
                    "VOLTYPE": "LEAF"}
    assert list(meta) == sorted(meta)
    assert not (path.parent / f"{vol}.lease").exists()  # local domains have no volume leases

    info = await d.volume_info(sd, img, vol)
    assert info["format"] == "COW" and info["type"] == "SPARSE" and info["voltype"] == "LEAF"
    assert info["capacity"] == str(10 * GiB) and info["legality"] == "LEGAL"
    assert info["status"] == "OK" and info["parent"] == BLANK_UUID
    assert info["apparentsize"] == str(path.stat().st_size)
    size = await d.call("Volume.getSize", d.volume_params(sd, img, vol))
    assert size == {"apparentsize": str(path.stat().st_size),
                    "truesize": str(path.stat().st_blocks * 512)}
    assert await d.call("Image.getVolumes", {"imageID": img, "storagepoolID": d.pool_id,
                                             "storagedomainID": sd}) == [vol]
    assert img in await d.call("StorageDomain.getImages", {"storagedomainID": sd})
    assert await d.call("StorageDomain.getVolumes", {
        "storagedomainID": sd, "storagepoolID": d.pool_id, "imageID": img}) == [vol]


async def test_raw_sparse_and_preallocated(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    sparse_img, sparse = new_uuid(), new_uuid()
    await d.create_volume(sd, sparse_img, sparse, 256 * MiB, RAW, SPARSE)
    qi = qemu_info(local_pool.volume_path(sparse_img, sparse))
    assert qi["format"] == "raw" and qi["virtual-size"] == 256 * MiB
    assert qi["actual-size"] < MiB

    full_img, full = new_uuid(), new_uuid()
    await d.create_volume(sd, full_img, full, 32 * MiB, RAW, PREALLOCATED)
    qi = qemu_info(local_pool.volume_path(full_img, full))
    assert qi["format"] == "raw" and qi["virtual-size"] == 32 * MiB
    assert qi["actual-size"] >= 32 * MiB
    info = await d.volume_info(sd, full_img, full)
    assert info["type"] == "PREALLOCATED" and int(info["truesize"]) >= 32 * MiB

    # qcow2 preallocated, for completeness
    img, vol = new_uuid(), new_uuid()
    await d.create_volume(sd, img, vol, 8 * MiB, COW, PREALLOCATED)
    assert qemu_info(local_pool.volume_path(img, vol))["actual-size"] >= 8 * MiB


async def test_qcow2_chain(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    img, base, top = new_uuid(), new_uuid(), new_uuid()
    await d.create_volume(sd, img, base, GiB, COW, SPARSE)
    base_path = local_pool.volume_path(img, base)
    qemu_io(base_path, "write -P 0x5a 0 1M")
    await d.create_volume(sd, img, top, GiB, COW, SPARSE, parent_img=img, parent_vol=base)

    top_path = local_pool.volume_path(img, top)
    qi = qemu_info(top_path)
    assert qi["backing-filename"] == base and qi["backing-filename-format"] == "qcow2"
    assert qi["virtual-size"] == GiB
    assert (await d.volume_info(sd, img, base))["voltype"] == "INTERNAL"
    top_info = await d.volume_info(sd, img, top)
    assert top_info["parent"] == base and top_info["voltype"] == "LEAF"
    assert sorted(await d.call("Image.getVolumes", {
        "imageID": img, "storagepoolID": d.pool_id, "storagedomainID": sd})) == sorted(
        [base, top])

    prepared = await d.call("Image.prepare", {**d.volume_params(sd, img, top)})
    assert prepared["path"] == str(top_path)
    assert [v["volumeID"] for v in prepared["imgVolumesInfo"]] == [base, top]
    # the base's data reads through the top (qemu-io fails on a pattern mismatch)
    assert "read 1048576/1048576" in qemu_io(Path(prepared["path"]), "read -P 0x5a 0 1M")
    await d.call("Image.teardown", {**d.volume_params(sd, img, top)})

    # a raw volume cannot sit on a parent; a volume with children cannot go
    assert await d.error("Volume.create", {
        **d.volume_params(sd, img, new_uuid()), "size": str(GiB), "volFormat": RAW,
        "preallocate": SPARSE, "diskType": "DATA", "desc": "", "srcImgUUID": img,
        "srcVolUUID": top}) == 202
    assert await d.error("Volume.delete", {**d.volume_params(sd, img, base),
                                           "postZero": "false", "force": "false"}) == 204
    await d.run_task("Volume.delete", {**d.volume_params(sd, img, top), "postZero": "false",
                                       "force": "false"})
    assert not top_path.exists() and not top_path.with_suffix(".meta").exists()
    assert (await d.volume_info(sd, img, base))["voltype"] == "LEAF"
    await d.run_task("Volume.delete", {**d.volume_params(sd, img, base), "postZero": False,
                                       "force": False})
    assert not base_path.parent.exists()
    assert await d.error("Volume.getInfo", d.volume_params(sd, img, base)) == 201


async def test_extend(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    for fmt in (COW, RAW):
        img, vol = new_uuid(), new_uuid()
        await d.create_volume(sd, img, vol, GiB, fmt, SPARSE)
        await d.run_task("Volume.extendSize", {**d.volume_params(sd, img, vol),
                                               "newSize": str(3 * GiB)})
        assert qemu_info(local_pool.volume_path(img, vol))["virtual-size"] == 3 * GiB
        info = await d.volume_info(sd, img, vol)
        assert info["capacity"] == str(3 * GiB) and info["legality"] == "LEGAL"
        assert info["generation"] == 1
        assert await d.error("Volume.extendSize", {**d.volume_params(sd, img, vol),
                                                   "newSize": str(GiB)}) == 232


async def test_legality(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    img, vol = new_uuid(), new_uuid()
    await d.create_volume(sd, img, vol, GiB)
    await d.call("Volume.setLegality", {**d.volume_params(sd, img, vol), "legality": "ILLEGAL"})
    info = await d.volume_info(sd, img, vol)
    assert info["legality"] == "ILLEGAL" and info["status"] == "ILLEGAL"
    assert read_kv(local_pool.volume_path(img, vol).with_suffix(".meta"))["LEGALITY"] \
        == "ILLEGAL"
    assert await d.error("Image.prepare", d.volume_params(sd, img, vol)) == 227
    prepared = await d.call("Image.prepare", {**d.volume_params(sd, img, vol),
                                              "allowIllegal": True})
    assert prepared["path"] == str(local_pool.volume_path(img, vol))
    await d.call("Volume.setLegality", {**d.volume_params(sd, img, vol), "legality": "LEGAL"})
    assert (await d.volume_info(sd, img, vol))["status"] == "OK"
    await d.call("Volume.setDescription", {**d.volume_params(sd, img, vol),
                                           "description": "renamed"})
    assert (await d.volume_info(sd, img, vol))["description"] == "renamed"
    # a volume can be born ILLEGAL (legal=false), as the engine does for some flows
    other = new_uuid()
    status = await d.wait_task(await d.call("Volume.create", {
        **d.volume_params(sd, img, other), "size": str(GiB), "volFormat": COW,
        "preallocate": SPARSE, "diskType": "DATA", "desc": "", "srcImgUUID": img,
        "srcVolUUID": vol, "legal": False}))
    assert status["taskResult"] == "success"
    assert (await d.volume_info(sd, img, other))["legality"] == "ILLEGAL"


async def test_image_delete(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    img, base, top = new_uuid(), new_uuid(), new_uuid()
    await d.create_volume(sd, img, base, GiB)
    await d.create_volume(sd, img, top, GiB, parent_img=img, parent_vol=base)
    await d.run_task("Image.delete", {"imageID": img, "storagepoolID": d.pool_id,
                                      "storagedomainID": sd, "postZero": "false",
                                      "force": "false"})
    assert img not in await d.call("StorageDomain.getImages", {"storagedomainID": sd})
    assert not (local_pool.domain_dir / "images" / img).exists()
    assert not any(p.name.startswith("_remove_me_")
                   for p in (local_pool.domain_dir / "images").iterdir())
    assert await d.error("Image.delete", {"imageID": img, "storagepoolID": d.pool_id,
                                          "storagedomainID": sd, "postZero": "false",
                                          "force": "false"}) == 268


# ------------------------------------------------------ templates and copies
async def test_template_thin_and_full_clones(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    # a VM disk with data, on a two-volume chain
    img, base, top = new_uuid(), new_uuid(), new_uuid()
    await d.create_volume(sd, img, base, 64 * MiB)
    qemu_io(local_pool.volume_path(img, base), "write -P 0x11 0 2M")
    await d.create_volume(sd, img, top, 64 * MiB, parent_img=img, parent_vol=base)
    qemu_io(local_pool.volume_path(img, top), "write -P 0x22 1M 2M")

    # template: the chain collapsed into one SHARED volume (vdsm's copyImage)
    t_img, t_vol = new_uuid(), new_uuid()
    await d.run_task("Volume.copy", {
        **d.volume_params(sd, img, top), "dstSdUUID": sd, "dstImgUUID": t_img,
        "dstVolUUID": t_vol, "desc": "template", "volType": SHARED, "volFormat": RAW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"})
    t_path = local_pool.volume_path(t_img, t_vol)
    assert qemu_info(t_path)["format"] == "raw" and "backing-filename" not in qemu_info(t_path)
    assert compare(local_pool.volume_path(img, top), t_path)
    t_info = await d.volume_info(sd, t_img, t_vol)
    assert t_info["voltype"] == "SHARED" and t_info["legality"] == "LEGAL"
    assert t_info["capacity"] == str(64 * MiB)
    assert await d.error("Volume.delete", {**d.volume_params(sd, t_img, t_vol),
                                           "postZero": "false", "force": "false"}) == 223

    # thin clone: a qcow2 volume on the template, which is linked into the new image
    c_img, c_vol = new_uuid(), new_uuid()
    await d.create_volume(sd, c_img, c_vol, 64 * MiB, COW, SPARSE, parent_img=t_img,
                          parent_vol=t_vol)
    linked = local_pool.volume_path(c_img, t_vol)
    assert linked.exists() and linked.stat().st_ino == t_path.stat().st_ino
    qi = qemu_info(local_pool.volume_path(c_img, c_vol))
    assert qi["backing-filename"] == t_vol and qi["backing-filename-format"] == "raw"
    prepared = await d.call("Image.prepare", d.volume_params(sd, c_img, c_vol))
    assert [v["volumeID"] for v in prepared["imgVolumesInfo"]] == [t_vol, c_vol]
    assert compare(Path(prepared["path"]), t_path)
    assert (await d.volume_info(sd, t_img, t_vol))["voltype"] == "SHARED"

    # full clone: the template copied into a standalone qcow2 LEAF
    f_img, f_vol = new_uuid(), new_uuid()
    await d.run_task("Volume.copy", {
        **d.volume_params(sd, t_img, t_vol), "dstSdUUID": sd, "dstImgUUID": f_img,
        "dstVolUUID": f_vol, "desc": "clone", "volType": LEAF, "volFormat": COW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"})
    f_path = local_pool.volume_path(f_img, f_vol)
    assert qemu_info(f_path)["format"] == "qcow2" and compare(f_path, t_path)
    assert (await d.volume_info(sd, f_img, f_vol))["voltype"] == "LEAF"

    # deleting the thin clone leaves the template (and drops its link)
    await d.run_task("Image.delete", {"imageID": c_img, "storagepoolID": d.pool_id,
                                      "storagedomainID": sd, "postZero": "false",
                                      "force": "false"})
    assert t_path.exists() and not linked.exists()


async def test_second_domain_attach_copy_detach(local_pool: LocalPool,
                                                tmp_path: Path) -> None:
    d, sd = local_pool.driver, local_pool.sd
    export2 = tmp_path / "export2"
    export2.mkdir()
    await d.connect(LOCALFS, str(export2))
    sd2 = new_uuid()
    await d.create_domain(sd2, LOCALFS, str(export2), name="data2")
    await d.call("StorageDomain.attach", {"storagedomainID": sd2, "storagepoolID": d.pool_id})
    await d.call("StorageDomain.activate", {"storagedomainID": sd2,
                                            "storagepoolID": d.pool_id})
    pool = await d.call("StoragePool.getInfo", {"storagepoolID": d.pool_id})
    assert pool["dominfo"][sd2]["status"] == "Active"
    assert decode_domain_metadata((local_pool.domain_dir / "dom_md" / "metadata")
                                  .read_bytes())["POOL_DOMAINS"] == f"{sd}:Active,{sd2}:Active"

    img, vol = new_uuid(), new_uuid()
    await d.create_volume(sd, img, vol, 32 * MiB)
    qemu_io(local_pool.volume_path(img, vol), "write -P 0x33 0 1M")
    await d.run_task("Volume.copy", {
        **d.volume_params(sd, img, vol), "dstSdUUID": sd2, "dstImgUUID": img,
        "dstVolUUID": vol, "desc": "moved", "volType": LEAF, "volFormat": COW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"})
    dst = await d.volume_info(sd2, img, vol)
    assert dst["domain"] == sd2 and dst["legality"] == "LEGAL"
    prepared = await d.call("Image.prepare", d.volume_params(sd2, img, vol))
    assert compare(Path(prepared["path"]), local_pool.volume_path(img, vol))

    assert await d.error("StorageDomain.detach", {"storagedomainID": sd2,
                                                  "storagepoolID": d.pool_id}) == 382
    await d.call("StorageDomain.deactivate", {"storagedomainID": sd2,
                                              "storagepoolID": d.pool_id,
                                              "masterSdUUID": sd, "masterVersion": 1})
    await d.call("StorageDomain.detach", {"storagedomainID": sd2, "storagepoolID": d.pool_id})
    assert (await d.call("StorageDomain.getInfo", {"storagedomainID": sd2}))["pool"] == []
    assert await d.error("StorageDomain.detach", {"storagedomainID": sd,
                                                  "storagepoolID": d.pool_id}) == 383
    await d.call("StorageDomain.format", {"storagedomainID": sd2, "autoDetach": False})
    assert await d.error("StorageDomain.getInfo", {"storagedomainID": sd2}) == 358


# ------------------------------------------------------------- SPM and tasks
async def test_spm_only_verbs_need_the_spm(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    img, vol = new_uuid(), new_uuid()
    await d.create_volume(sd, img, vol, GiB)
    await d.call("StoragePool.spmStop", {"storagepoolID": d.pool_id})
    status = await d.spm_status()
    assert status["spmStatus"] == "Free" and status["spmId"] == -1
    assert await d.error("Volume.create", {
        **d.volume_params(sd, new_uuid(), new_uuid()), "size": str(GiB), "volFormat": COW,
        "preallocate": SPARSE, "diskType": "DATA", "desc": "", "srcImgUUID": BLANK_UUID,
        "srcVolUUID": BLANK_UUID}) == 654
    assert await d.error("Volume.delete", {**d.volume_params(sd, img, vol),
                                           "postZero": "false", "force": "false"}) == 654
    assert await d.error("Volume.setLegality", {**d.volume_params(sd, img, vol),
                                                "legality": "ILLEGAL"}) == 654
    # HSM verbs keep working
    assert (await d.volume_info(sd, img, vol))["legality"] == "LEGAL"
    spm = await d.become_spm()
    assert spm["spmLver"] >= 2  # every takeover bumps the lease version


async def test_a_second_agent_cannot_be_spm_of_a_local_domain(
        local_pool: LocalPool, start_agent: StartAgent) -> None:
    other = StorageDriver(await start_agent("fake"), local_pool.driver.pool_id, host_id=2)
    await other.connect(LOCALFS, str(local_pool.export))
    await other.connect_pool(local_pool.sd)
    status = await other.wait_task(await other.spm_start())
    assert status["taskResult"] != "success" and status["code"] == 651, status
    assert (await other.spm_status())["spmStatus"] == "Free"


async def test_task_reports_and_failures(local_pool: LocalPool) -> None:
    d, sd = local_pool.driver, local_pool.sd
    img, vol = new_uuid(), new_uuid()
    task_id = await d.call("Volume.create", {
        **d.volume_params(sd, img, vol), "size": str(GiB), "volFormat": COW,
        "preallocate": SPARSE, "diskType": "DATA", "desc": "", "srcImgUUID": BLANK_UUID,
        "srcVolUUID": BLANK_UUID})
    await d.wait_task(task_id)
    statuses = await d.call("Host.getAllTasksStatuses")
    assert statuses[task_id] == {"taskID": task_id, "taskState": "finished",
                                 "taskResult": "success", "code": 0,
                                 "message": "1 jobs completed successfully"}
    assert (await d.call("Host.getAllTasksInfo"))[task_id] == {"id": task_id,
                                                              "verb": "createVolume"}
    assert (await d.call("Host.getAllTasks"))[task_id]["tag"] == "spm"
    assert await d.call("Task.getInfo", {"taskID": task_id}) == {"id": task_id,
                                                                "verb": "createVolume"}
    await d.call("Task.clear", {"taskID": task_id})
    assert task_id not in await d.call("Host.getAllTasksStatuses")

    # a volume too big to preallocate: the task fails and is rolled back
    img2, vol2 = new_uuid(), new_uuid()
    failed = await d.wait_task(await d.call("Volume.create", {
        **d.volume_params(sd, img2, vol2), "size": str(2 ** 60), "volFormat": RAW,
        "preallocate": PREALLOCATED, "diskType": "DATA", "desc": "",
        "srcImgUUID": BLANK_UUID, "srcVolUUID": BLANK_UUID}))
    assert failed["taskResult"] == "cleanSuccess" and failed["code"] != 0, failed
    assert not (local_pool.domain_dir / "images" / img2).exists()


async def test_task_stop_rolls_back_a_copy(start_agent: StartAgent, tmp_path: Path) -> None:
    agent = await start_agent("fake", storage=StorageConfig(
        repository=tmp_path / "rhev", monitor_interval_s=0.2,
        copy_rate_limit_bytes_s=2 * MiB))
    d = StorageDriver(agent)
    export = tmp_path / "export"
    export.mkdir()
    await d.connect(LOCALFS, str(export))
    sd = new_uuid()
    await d.create_domain(sd, LOCALFS, str(export))
    await d.create_pool(sd)
    await d.connect_pool(sd)
    await d.become_spm()
    img, vol = new_uuid(), new_uuid()
    await d.create_volume(sd, img, vol, 64 * MiB, RAW, PREALLOCATED)
    dst_img, dst_vol = new_uuid(), new_uuid()
    task_id = await d.call("Volume.copy", {
        **d.volume_params(sd, img, vol), "dstSdUUID": sd, "dstImgUUID": dst_img,
        "dstVolUUID": dst_vol, "desc": "", "volType": LEAF, "volFormat": RAW,
        "preallocate": SPARSE, "postZero": "false", "force": "false"})
    assert (await d.task_status(task_id))["taskState"] == "running"
    assert await d.error("StoragePool.spmStop", {"storagepoolID": d.pool_id}) == 653
    await d.call("Task.stop", {"taskID": task_id})
    status = await d.task_status(task_id)
    assert status["taskState"] == "finished" and status["taskResult"] == "cleanSuccess"
    assert status["code"] == 411
    domain_dir = agent.agent.storage.mnt_root / transform_path(str(export)) / sd
    assert (domain_dir / "images" / img / vol).exists()
    assert not (domain_dir / "images" / dst_img).exists()
    assert await d.error("Task.stop", {"taskID": task_id}) == 410


@pytest.mark.parametrize("bad", [{"volFormat": 9}, {"preallocate": "SOMETIMES"},
                                 {"size": "0"}, {"size": "lots"}])
async def test_bad_volume_params(local_pool: LocalPool, bad: dict[str, object]) -> None:
    d, sd = local_pool.driver, local_pool.sd
    params = {**d.volume_params(sd, new_uuid(), new_uuid()), "size": str(GiB),
              "volFormat": COW, "preallocate": SPARSE, "diskType": "DATA", "desc": "",
              "srcImgUUID": BLANK_UUID, "srcVolUUID": BLANK_UUID, **bad}
    assert await d.error("Volume.create", params) in (202, 229, 231, 1000)
