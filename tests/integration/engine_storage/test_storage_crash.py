"""kill -9 of the engine while a disk is being made (AddDisk's asynchronous
phase: the Volume.create task started on the SPM, the disk locked). After a
restart nothing is locked: the disk is illegal until the storage manager has
asked the SPM how the task ended, then ok (it succeeded while the engine was
dead); the interrupted command is closed and audited."""

from __future__ import annotations

import asyncio
import sys
import uuid

from tests.fixtures.engine import EngineFactory, wait_until
from tests.fixtures.engine_storage import (STORAGE_ENGINE, disk_status, posix_data_center,
                                           require_storage, storage_hosts, volume_path,
                                           wait_disk)
from tests.fixtures.storage import read_kv
from tests.integration.engine.test_crash_recovery import REPO


async def test_engine_killed_during_disk_creation(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    hosts = await storage_hosts(engines, engine, 2)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    state_dir = str(engine.config.state_dir)
    await engine.stop()
    engines.engines.remove(engine)

    disk = str(uuid.uuid4())
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.engine_storage.crash_child", state_dir,
        engines.dsn, dc, sd, disk, cwd=REPO, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdin is not None and child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 180)
        assert line.strip() == b"READY", line
        child.stdin.write(b"GO\n")
        await child.stdin.drain()
        assert await asyncio.wait_for(child.wait(), 60) == -9
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    # What the dead engine left: the disk locked, its command active, the task recorded.
    probe = await engines.start_probe_pool()
    assert await probe.fetchval("SELECT status FROM disks WHERE id=$1", uuid.UUID(disk)) \
        == "locked"
    assert await probe.fetchval("SELECT count(*) FROM command_entities WHERE "
                                "command_type='AddDisk' AND status='active'") == 1
    assert await probe.fetchval("SELECT count(*) FROM async_tasks") == 1
    assert await probe.fetchval("SELECT count(*) FROM entity_locks") > 0

    engine = await engines.start(storage=STORAGE_ENGINE)  # the same state dir and database
    s = engine.s
    assert await s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0
    assert await s.pool.fetchval("SELECT count(*) FROM command_entities WHERE "
                                 "status='active'") == 0
    assert await s.pool.fetchval("SELECT count(*) FROM disks WHERE status='locked'") == 0
    assert await disk_status(engine, disk) in ("illegal", "ok")
    assert await s.pool.fetchval("SELECT count(*) FROM vm_static WHERE entity_type='template' "
                                 "AND template_status='locked'") == 0

    # The task succeeded on the SPM while the engine was dead: the disk ends ok.
    await wait_disk(engine, disk, "ok", 90)
    await wait_until(lambda: _no_tasks(engine), 30, "the orphan task settled")
    vol = await s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1", uuid.UUID(disk))
    assert read_kv(volume_path(shared, sd, disk, f"{vol}.meta"))["LEGALITY"] == "LEGAL"
    messages = [r["message"] for r in await s.pool.fetch(
        "SELECT message FROM audit_log WHERE log_type=2024 ORDER BY id")]
    assert any(m.startswith("AddDisk was interrupted") for m in messages), messages
    assert any("createVolume" in m or "Volume.create" in m for m in messages), messages


async def _no_tasks(engine) -> bool:  # type: ignore[no-untyped-def]
    return await engine.s.pool.fetchval("SELECT count(*) FROM async_tasks") == 0
