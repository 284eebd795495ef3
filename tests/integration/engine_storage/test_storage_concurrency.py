"""Many volume operations at once on a sanlock-guarded (POSIX) domain.

Each Volume.create on the SPM checks the SDM lease (sanlock inquire on the
agent's registration socket) and writes a volume lease; with several
creations in flight these calls run in parallel worker threads. Before the
calls on the registration socket took turns, two threads read each other's
replies and a task hung until its 60 s timeout.
"""

from __future__ import annotations

import asyncio
import uuid

from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk
from tests.fixtures.engine import EngineFactory
from tests.fixtures.engine_storage import (STORAGE_ENGINE, disk_status, finished,
                                           posix_data_center, require_storage, storage_hosts)

MiB = 1024 * 1024


async def test_forty_disks_created_at_once(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 1)
    _, sd = await posix_data_center(engine, hosts, engines.base / "shared")

    async def add(i: int) -> str:
        result = await s.runner.run(AddDisk(s, SYSTEM, sd, 4 * MiB, "cow", True,
                                            alias=f"parallel-{i}"))
        return str(await finished(result, 60))

    disks = await asyncio.wait_for(asyncio.gather(*(add(i) for i in range(40))), 90)
    assert len(set(disks)) == 40
    assert [await disk_status(engine, d) for d in disks] == ["ok"] * 40


async def test_hundreds_of_spm_checks_at_once(engines: EngineFactory) -> None:
    """Every SPM-only verb asks sanlock whether this host still holds the SDM
    lease; 300 of them in flight all answer."""
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 1)
    dc, sd = await posix_data_center(engine, hosts, engines.base / "shared")
    disk = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, 4 * MiB, "cow", True,
                                                     alias="described")))
    volume = str(await s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                       uuid.UUID(str(disk))))

    async def describe(i: int) -> None:
        await s.storage.spm_call(dc, "Volume.setDescription", {
            "volumeID": volume, "storagepoolID": dc, "storagedomainID": sd,
            "imageID": str(disk), "description": f"call {i}"}, timeout_s=60)

    await asyncio.wait_for(asyncio.gather(*(describe(i) for i in range(300))), 90)
