"""Two hosts share one POSIX domain; sanlock makes sure only one is SPM.

Each host is a real agent subprocess with its own sanlock daemon (own run
directory, no watchdog, io timeout 1 s); the shared directory is
bind-mounted into each agent's repository (posixfs, vfs_type "none"), as
an NFS export would be mounted.

When the SPM host dies (agent and sanlock daemon killed with SIGKILL, as a
power loss), the other host cannot take the SPM lease until the dead host's
delta lease expired: sanlock grants it 8 x io timeout + 60 s (its watchdog
constant) after the dead host's last renewal, never before.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import AsyncIterator

import pytest

from ovagent.storage.metadata import decode_domain_metadata, transform_path
from tests.fixtures.agent import AgentPki
from tests.fixtures.storage import (
    BLANK_UUID,
    POSIXFS,
    GiB,
    SanlockDaemon,
    StorageHost,
    new_uuid,
    qemu_info,
    read_kv,
    require_root,
    require_sanlock,
    umount_under,
)

pytestmark = [pytest.mark.system, pytest.mark.slow]

log = logging.getLogger(__name__)

IO_TIMEOUT_S = 1
# sanlock's host_dead_seconds: 8 x io timeout + its watchdog fire timeout (60 s).
HOST_DEAD_S = 8 * IO_TIMEOUT_S + 60
# The dead host renewed its delta lease at most 2 x io timeout before it died.
EARLIEST_EXPIRY_S = HOST_DEAD_S - 2 * IO_TIMEOUT_S


@pytest.fixture
async def two_hosts(agent_pki: AgentPki, tmp_path: Path, test_driver_uri: str
                    ) -> AsyncIterator[tuple[list[StorageHost], list[SanlockDaemon], Path]]:
    require_sanlock()
    require_root("bind-mounting the shared directory")
    shared = tmp_path / "shared"
    shared.mkdir()
    pool_id = new_uuid()
    daemons = [SanlockDaemon(tmp_path / f"sanlock-{name}", name) for name in ("hostA", "hostB")]
    hosts = [StorageHost(agent_pki, tmp_path / f"host{i + 1}", test_driver_uri, host_id=i + 1,
                         pool_id=pool_id, storage={
                             "sanlock_run_dir": str(daemons[i].run_dir),
                             "sanlock_io_timeout_s": IO_TIMEOUT_S,
                             "spm_acquire_timeout_s": 150.0})
             for i in range(2)]
    try:
        for daemon in daemons:
            await daemon.start()
        for host in hosts:
            await host.start()
        yield hosts, daemons, shared
    finally:
        for host in hosts:
            await host.stop()
        for daemon in daemons:
            await daemon.stop()
        umount_under(tmp_path)


async def test_one_spm_and_failover_only_after_the_dead_hosts_lease_expired(
        two_hosts: tuple[list[StorageHost], list[SanlockDaemon], Path]) -> None:
    (host_a, host_b), (daemon_a, daemon_b), shared = two_hosts
    a, b = host_a.driver, host_b.driver
    for d in (a, b):
        await d.connect(POSIXFS, str(shared), vfs_type="none")
    mount_a = host_a.repository / "mnt" / transform_path(str(shared))
    assert (await a.call("StoragePool.connectStorageServer", {
        "storagepoolID": a.pool_id, "domainType": POSIXFS,
        "connectionParams": [{"id": "c1", "connection": str(shared), "vfs_type": "none"}]})
            ) == [{"id": "c1", "status": 0}]  # already connected: fine
    assert mount_a.is_dir() and not mount_a.is_symlink()

    sd = new_uuid()
    await a.create_domain(sd, POSIXFS, str(shared))
    domain_dir = shared / sd
    assert (domain_dir / "dom_md" / "ids").stat().st_size == 1024 * 1024  # lockspace
    assert (domain_dir / "dom_md" / "leases").stat().st_size == 2 * 1024 * 1024  # SDM at 1M
    await a.create_pool(sd)
    await a.connect_pool(sd)
    await b.connect_pool(sd)

    # A becomes SPM; B cannot while A lives, whatever anyone asks
    await a.become_spm()
    refused = await b.wait_task(await b.spm_start(), 60)
    assert refused["taskResult"] != "success" and refused["code"] == 651, refused
    seen_by_b = await b.spm_status()
    assert seen_by_b["spmStatus"] == "Free" and seen_by_b["spmId"] == 1, seen_by_b
    lver_a = (await a.spm_status())["spmLver"]

    img, vol = new_uuid(), new_uuid()
    await a.create_volume(sd, img, vol, GiB)
    assert (domain_dir / "images" / img / f"{vol}.lease").stat().st_size == 1024 * 1024
    info = await b.volume_info(sd, img, vol)  # HSM reads work on B
    assert info["legality"] == "LEGAL" and info["lease"]["offset"] == 0
    assert await b.error("Volume.create", {
        **b.volume_params(sd, new_uuid(), new_uuid()), "size": str(GiB), "volFormat": 4,
        "preallocate": 2, "diskType": "DATA", "desc": "", "srcImgUUID": BLANK_UUID,
        "srcVolUUID": BLANK_UUID}) == 654
    vitals = (await b.call("Host.getStats"))["storageDomains"][sd]
    assert vitals["valid"] and vitals["acquired"]

    # Host A dies: sanlock daemon and agent, no clean release of anything. The
    # daemon goes first: one that outlives its client even briefly releases the
    # client's leases cleanly (then B got the SPM lease at once).
    await daemon_a.kill9()
    await host_a.kill9()
    killed_at = time.monotonic()

    # The engine retries spmStart on B. While A's lease may still be alive, sanlock
    # refuses (651) at once; once A stopped renewing, the attempt waits in sanlock
    # until A's host id expired, then succeeds.
    failures: list[float] = []
    while True:
        task_id = await b.spm_start()
        status = await b.wait_task(task_id, HOST_DEAD_S + 90)
        ended = time.monotonic() - killed_at
        await b.call("Task.clear", {"taskID": task_id})
        if status["taskResult"] == "success":
            break
        assert status["code"] == 651, status  # held by the (not yet dead) host A
        assert ended < HOST_DEAD_S + 30, failures
        failures.append(round(ended, 1))
    granted_after = round(ended, 1)
    summary = (f"B became SPM {granted_after} s after host A was killed (sanlock "
               f"host_dead_seconds {HOST_DEAD_S}); {len(failures)} refused attempts, the "
               f"last {failures[-1] if failures else '-'} s after the kill")
    log.info(summary)
    print("\n" + summary)
    # never before the dead host's lease could have expired
    assert granted_after >= EARLIEST_EXPIRY_S, summary
    # B's sanlock had not seen A renew for (about) host_dead_seconds: A is dead to it
    silence = await daemon_b.silence_of(sd, 1)
    assert silence >= HOST_DEAD_S - 2 * IO_TIMEOUT_S, (silence, await daemon_b.host_status(sd))

    spm = await b.spm_status()
    assert spm["spmStatus"] == "SPM" and spm["spmId"] == 2 and spm["spmLver"] > lver_a, spm

    # the metadata is intact: sealed, the pool as it was, B recorded as SPM
    md = decode_domain_metadata((domain_dir / "dom_md" / "metadata").read_bytes())
    assert md["ROLE"] == "Master" and md["POOL_UUID"] == b.pool_id
    assert md["POOL_DOMAINS"] == f"{sd}:Active" and md["MASTER_VERSION"] == "1"
    assert md["POOL_SPM_ID"] == "2" and int(md["POOL_SPM_LVER"]) == spm["spmLver"]
    assert read_kv(domain_dir / "images" / img / f"{vol}.meta")["LEGALITY"] == "LEGAL"
    assert qemu_info(domain_dir / "images" / img / vol)["virtual-size"] == GiB

    # and B works as SPM: a new volume, A's volume removed
    img2, vol2 = new_uuid(), new_uuid()
    await b.create_volume(sd, img2, vol2, GiB)
    await b.run_task("Volume.delete", {**b.volume_params(sd, img, vol), "postZero": "false",
                                       "force": "false"})
    assert not (domain_dir / "images" / img).exists()
    assert decode_domain_metadata((domain_dir / "dom_md" / "metadata").read_bytes())[
        "POOL_SPM_ID"] == "2"
