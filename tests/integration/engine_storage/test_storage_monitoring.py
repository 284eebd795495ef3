"""Domain monitoring and host maintenance with storage.

A host that cannot see the data center's active domain (its mount is gone)
becomes non_operational after `domain_failure_timeout_s`; the engine
reconnects its storage now and then (connectStorageServer mounts it again)
and sets it up once its reports show the domain working. A host moved to
maintenance stops being SPM and leaves the pool; another host becomes SPM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path
from typing import Any

from ovagent.storage.metadata import transform_path
from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk
from ovengine.domain.host_commands import ActivateHost, DeactivateHost
from tests.fixtures.engine import EngineFactory, wait_until
from tests.fixtures.engine_storage import (STORAGE_ENGINE, disk_status, finished,
                                           posix_data_center, require_storage, storage_hosts,
                                           wait_dc_up)


async def test_host_without_its_storage_is_non_operational_then_recovers(
        engines: EngineFactory) -> None:
    require_storage()
    cfg = dataclasses.replace(STORAGE_ENGINE, domain_failure_timeout_s=3.0,
                              host_recovery_interval_s=2.0)
    engine = await engines.start(storage=cfg)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 2)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    spm = str(await s.pool.fetchval("SELECT spm_host_id FROM data_centers WHERE id=$1",
                                    uuid.UUID(dc)))
    victim = next(a for a in hosts if engines.host_id(engine, a) != spm)
    rt = s.hosts.get(engines.host_id(engine, victim))

    mount = victim.repository / "mnt" / transform_path(str(shared))
    assert _mounted(mount)
    umount = await asyncio.create_subprocess_exec("umount", "-l", str(mount))
    assert await umount.wait() == 0
    await wait_until(lambda: rt.status == "non_operational", 30, "host non operational")

    async def recorded() -> Any:  # the database follows the in-memory status
        return await s.pool.fetchrow(
            "SELECT d.status_detail FROM host_dynamic d WHERE d.host_id=$1 AND "
            "d.status='non_operational' AND EXISTS (SELECT 1 FROM audit_log a WHERE "
            "a.log_type=522 AND a.host_id=d.host_id)", uuid.UUID(rt.id))
    row = await wait_until(recorded, 10, "non_operational recorded and audited")
    assert "cannot access the Storage Domain(s) data1" in row["status_detail"]
    # the data center stays up on the other host
    assert await s.pool.fetchval("SELECT status FROM data_centers WHERE id=$1",
                                 uuid.UUID(dc)) == "up"

    # auto-recovery: the storage is connected again and the host is up
    await wait_until(lambda: rt.status == "up", 40, "host up again")
    assert _mounted(mount)


def _mounted(path: Path) -> bool:
    """A bind mount of a directory of the same file system (os.path.ismount misses it)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


async def test_spm_host_to_maintenance_moves_the_spm(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 2)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    spm = str(await s.pool.fetchval("SELECT spm_host_id FROM data_centers WHERE id=$1",
                                    uuid.UUID(dc)))
    other = next(engines.host_id(engine, a) for a in hosts
                 if engines.host_id(engine, a) != spm)

    await s.runner.run(DeactivateHost(s, SYSTEM, spm))
    assert s.hosts.get(spm).status == "maintenance"
    # it gave the lease up: the other host is elected without waiting for expiry
    await wait_until(lambda: s.storage.spm.spm_of(dc) == other, 60, "SPM on the other host")
    assert await s.pool.fetchval("SELECT spm_host_id FROM data_centers WHERE id=$1",
                                 uuid.UUID(dc)) == uuid.UUID(other)
    assert (await s.hosts.call(spm, "Host.getConnectedStoragePools")) == []
    disk = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, 1 << 30)))
    assert await disk_status(engine, disk) == "ok"

    # back from maintenance: it joins the pool again (not SPM: the other one is)
    await s.runner.run(ActivateHost(s, SYSTEM, spm))
    assert s.hosts.get(spm).status == "up"
    assert (await s.hosts.call(spm, "Host.getConnectedStoragePools")) == [dc]
    assert s.storage.spm.spm_of(dc) == other


async def test_spm_agent_restart_reconnects_the_pool_and_an_spm_is_elected(
        engines: EngineFactory) -> None:
    """kill -9 of the SPM's agent (its sanlock daemon lives on and drops the
    dead agent's SPM lease): when the agent is back the engine connects it to
    the pool again, and the data center gets an SPM without waiting for any
    lease to expire."""
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 2)
    dc, sd = await posix_data_center(engine, hosts, engines.base / "shared")
    spm = str(await s.pool.fetchval("SELECT spm_host_id FROM data_centers WHERE id=$1",
                                    uuid.UUID(dc)))
    agent = next(a for a in hosts if engines.host_id(engine, a) == spm)
    rt = s.hosts.get(spm)
    connects = rt.connects
    await agent.kill()
    await wait_until(lambda: rt.status != "up", 20, "SPM host lost")
    await agent.start()
    await wait_until(lambda: rt.status == "up" and rt.connects > connects, 60, "host up again")
    assert await s.hosts.call(spm, "Host.getConnectedStoragePools") == [dc]
    await wait_until(lambda: s.storage.spm.spm_of(dc) is not None, 60, "an SPM again")
    await wait_dc_up(engine, dc)
    disk = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, 1 << 30)))
    assert await disk_status(engine, disk) == "ok"
