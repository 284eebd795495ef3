"""SPM failover driven by the engine, in the lab (network namespaces).

Two lab hosts (agents on the libvirt test driver, each with its own sanlock
daemon, io timeout 1 s) share a POSIX directory; the data center's SPM is
killed like a host that lost power (its agent and its sanlock daemon, kill
-9). The engine declares it non responsive and keeps trying spmStart on the
other host; sanlock refuses until the dead host's lease has expired
(8 x io timeout + 60 s after its last renewal), so the engine records the
new SPM only then, and only once that host's getSpmStatus says SPM. The
pool metadata is intact afterwards, the volumes made before are LEGAL and a
VM runs with one of them on the new SPM.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from typing import AsyncIterator

import pytest
import pytest_asyncio

from ovagent.storage.metadata import decode_domain_metadata
from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk, AttachDisk, DiskAttach
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm
from ovengine.lab.lab import Lab
from tests.fixtures.engine import (FAST_AGENT_CONFIG, engine_config_for_test, private_tmpdir,
                                   vm_status, wait_until)
from tests.fixtures.engine_storage import (AGENT_STORAGE, IO_TIMEOUT_S, STORAGE_ENGINE,
                                           default_ids, disk_status, finished,
                                           posix_data_center, require_storage, volume_path)
from tests.fixtures.storage import qemu_info, read_kv

pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None,
    reason="needs root, iproute2 and nsenter for network namespaces")]

log = logging.getLogger(__name__)

# sanlock's host_dead_seconds: 8 x io timeout + its watchdog fire timeout (60 s).
HOST_DEAD_S = 8 * IO_TIMEOUT_S + 60
# The dead host renewed its delta lease at most 2 x io timeout before it died.
EARLIEST_EXPIRY_S = HOST_DEAD_S - 2 * IO_TIMEOUT_S
GiB = 1024 ** 3


@pytest_asyncio.fixture
async def storage_lab(engine_dsn: str) -> AsyncIterator[Lab]:
    require_storage()
    base = private_tmpdir("ov-test-splab-")
    lab = Lab(base, engine_config_for_test(base / "engine", engine_dsn, storage=STORAGE_ENGINE),
              serve_api=False, agent_config=FAST_AGENT_CONFIG, storage=True,
              sanlock_io_timeout_s=IO_TIMEOUT_S, storage_config=AGENT_STORAGE)
    try:
        yield lab
    finally:
        await lab.down()
        shutil.rmtree(base, ignore_errors=True)


async def test_spm_moves_only_after_the_dead_hosts_lease_expired(storage_lab: Lab) -> None:
    lab = storage_lab
    await lab.up(2)
    engine = lab.engine
    assert engine is not None
    s = engine.s
    shared = lab.state_dir / "shared"
    dc, sd = await posix_data_center(engine, lab.agents, shared)
    _, cluster = await default_ids(engine)

    old_spm = str(await s.pool.fetchval("SELECT spm_host_id FROM data_centers WHERE id=$1",
                                        uuid.UUID(dc)))
    victim = next(i for i in range(2) if lab.host_id(i) == old_spm)
    survivor = 1 - victim
    new_host = lab.host_id(survivor)
    lver_before = await s.pool.fetchval("SELECT spm_lver FROM data_centers WHERE id=$1",
                                        uuid.UUID(dc))
    disks = [await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, GiB, fmt, fmt == "cow",
                                                       alias=f"before-{fmt}")))
             for fmt in ("cow", "raw")]
    for d in disks:
        assert await disk_status(engine, d) == "ok"
    audit_mark = await s.pool.fetchval("SELECT max(id) FROM audit_log")

    # Power loss of the SPM host: its agent and its sanlock daemon, kill -9.
    await lab.kill_host(victim)
    killed = time.monotonic()
    seen: list[tuple[float, str | None, str]] = []

    async def moved() -> bool:
        row = await s.pool.fetchrow("SELECT spm_host_id, status FROM data_centers WHERE id=$1",
                                    uuid.UUID(dc))
        assert row is not None
        spm = str(row["spm_host_id"]) if row["spm_host_id"] else None
        if not seen or seen[-1][1:] != (spm, row["status"]):
            seen.append((round(time.monotonic() - killed, 1), spm, row["status"]))
        return spm == new_host
    await wait_until(moved, HOST_DEAD_S + 90, "the SPM on the surviving host", interval_s=0.2)
    moved_after = time.monotonic() - killed
    attempts = await s.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE id > $1 AND log_type = 987 AND host_id = $2",
        audit_mark, uuid.UUID(new_host))
    contending = [t for t, spm, status in seen if status == "contend"]
    summary = (f"SPM moved to {lab.agents[survivor].name} {moved_after:.1f} s after "
               f"{lab.agents[victim].name} was killed (sanlock host_dead_seconds "
               f"{HOST_DEAD_S}); spmStart on it running from "
               f"{contending[0] if contending else '-'} s, {attempts} refused attempt(s); "
               f"data center (time, SPM, status): {seen}")
    log.info(summary)
    print("\n" + summary)

    # Never before the dead host's lease could have expired ...
    assert moved_after >= EARLIEST_EXPIRY_S, summary
    # ... although the engine tried from early on: spmStart on the survivor was
    # refused (651) or waited in sanlock (contend) until then.
    assert contending and contending[0] < 20, summary
    assert lab.status(victim) == "non_responsive"
    assert all(spm in (old_spm, None) for _, spm, _ in seen[:-1]), summary
    st = await s.hosts.call(new_host, "StoragePool.getSpmStatus", {"storagepoolID": dc})
    assert st["spmStatus"] == "SPM"
    assert await s.pool.fetchval("SELECT spm_lver FROM data_centers WHERE id=$1",
                                 uuid.UUID(dc)) > lver_before
    await wait_until(lambda: _dc_up(engine, dc), 30, "data center up again")

    # No metadata corruption: the sealed pool metadata names the new SPM.
    md = decode_domain_metadata((shared / sd / "dom_md" / "metadata").read_bytes())
    new_id = await s.pool.fetchval("SELECT vds_spm_id FROM vds_spm_id_map WHERE host_id=$1",
                                   uuid.UUID(new_host))
    assert md["ROLE"] == "Master" and md["POOL_UUID"] == dc and md["MASTER_VERSION"] == "1"
    assert md["POOL_DOMAINS"] == f"{sd}:Active" and md["POOL_SPM_ID"] == str(new_id)
    for d in disks:  # the volumes made before are still LEGAL and usable
        vol = str(await s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                        uuid.UUID(d)))
        assert read_kv(volume_path(shared, sd, d, f"{vol}.meta"))["LEGALITY"] == "LEGAL"
        info = await s.hosts.call(new_host, "Volume.getInfo", {
            "volumeID": vol, "storagepoolID": dc, "storagedomainID": sd, "imageID": d})
        assert info["legality"] == "LEGAL" and info["status"] == "OK"
        assert qemu_info(volume_path(shared, sd, d, vol))["virtual-size"] == GiB

    # The new SPM works, and a VM runs with a disk made before the failover.
    after = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, GiB, alias="after")))
    assert await disk_status(engine, after) == "ok"
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="after-failover", memory_mib=128)))).value
    await s.runner.run(AttachDisk(s, SYSTEM, disks[0], DiskAttach(vm, bootable=True)))
    assert (await s.runner.run(RunVm(s, SYSTEM, vm))).value == new_host
    await wait_until(lambda: _vm_up(engine, vm), 30, "VM up on the new SPM")


async def _dc_up(engine, dc: str) -> bool:  # type: ignore[no-untyped-def]
    return await engine.s.pool.fetchval("SELECT status FROM data_centers WHERE id=$1",
                                        uuid.UUID(dc)) == "up"


async def _vm_up(engine, vm: str) -> bool:  # type: ignore[no-untyped-def]
    return await vm_status(engine, vm) == "up"
