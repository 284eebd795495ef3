"""TaskManager: vdsm's task states, persistence, rollback and restart recovery.

Real files in a temporary directory and the real storage boundary; a
"restart" is a second TaskManager reading the records the first left.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from ovagent.storage.boundary import StorageIO
from ovagent.storage.errors import StorageError, VolumeCreationError
from ovagent.storage.tasks import TaskContext, TaskManager


@pytest.fixture
async def io() -> AsyncIterator[StorageIO]:
    boundary = StorageIO(2, 10.0, 10.0)
    yield boundary
    boundary.shutdown()


async def test_success_is_persisted(io: StorageIO, tmp_path: Path) -> None:
    tasks = TaskManager(tmp_path, io)
    ran = asyncio.Event()

    async def body(ctx: TaskContext) -> None:
        await ctx.note(step="half")
        ran.set()

    task_id = await tasks.start("createVolume", body, tag="spm", recovery={"kind": "x"})
    record = await tasks.wait(task_id)
    assert ran.is_set()
    assert record.status() == {"taskID": task_id, "taskState": "finished",
                               "taskResult": "success", "code": 0,
                               "message": "1 jobs completed successfully"}
    saved = json.loads((tmp_path / f"{task_id}.json").read_text())
    assert saved["state"] == "finished" and saved["recovery"] == {"kind": "x", "step": "half"}
    await tasks.clear(task_id)
    assert not (tmp_path / f"{task_id}.json").exists()
    with pytest.raises(StorageError) as err:
        tasks.get(task_id)
    assert err.value.code == 401


async def test_failures_roll_back(io: StorageIO, tmp_path: Path) -> None:
    tasks = TaskManager(tmp_path, io)
    rolled_back = []

    async def fails(_ctx: TaskContext) -> None:
        raise VolumeCreationError("disk full")

    async def rollback() -> bool:
        rolled_back.append(True)
        return True

    task_id = await tasks.start("createVolume", fails, rollback=rollback)
    record = await tasks.wait(task_id)
    assert rolled_back and record.result == "cleanSuccess" and record.code == 205
    assert record.message == "Error creating a new volume: disk full"

    async def crashes(_ctx: TaskContext) -> None:
        raise RuntimeError("bug")

    record = await tasks.wait(await tasks.start("copyImage", crashes))
    assert record.result == "cleanFailure" and record.code == 200  # nothing rolled back


async def test_stop_aborts_and_rolls_back(io: StorageIO, tmp_path: Path) -> None:
    tasks = TaskManager(tmp_path, io)
    started = asyncio.Event()

    async def forever(_ctx: TaskContext) -> None:
        started.set()
        await asyncio.Event().wait()

    async def rollback() -> bool:
        return True

    task_id = await tasks.start("copyImage", forever, tag="spm", rollback=rollback)
    await started.wait()
    assert [r.id for r in tasks.running("spm")] == [task_id]
    with pytest.raises(StorageError) as err:
        await tasks.clear(task_id)
    assert err.value.code == 410  # not finished
    await tasks.stop(task_id)
    record = tasks.get(task_id)
    assert record.state == "finished" and record.result == "cleanSuccess"
    assert record.code == 411
    assert tasks.running() == []


@pytest.mark.parametrize("done,result,code", [(True, "success", 0),
                                              (False, "cleanFailure", 100)])
async def test_a_restart_finishes_interrupted_tasks(io: StorageIO, tmp_path: Path, done: bool,
                                                    result: str, code: int) -> None:
    first = TaskManager(tmp_path, io)
    started = asyncio.Event()

    async def forever(_ctx: TaskContext) -> None:
        started.set()
        await asyncio.Event().wait()

    task_id = await first.start("createVolume", forever,
                                recovery={"kind": "create_volume", "meta": "/x"})
    await started.wait()
    await first.close()  # the agent goes away; the record still says running
    assert json.loads((tmp_path / f"{task_id}.json").read_text())["state"] == "running"

    seen: list[dict[str, Any]] = []

    async def checker(recovery: dict[str, Any]) -> bool:
        seen.append(recovery)
        return done

    second = TaskManager(tmp_path, io)
    await second.load({"create_volume": checker})
    assert seen == [{"kind": "create_volume", "meta": "/x"}]
    record = second.get(task_id)
    assert (record.state, record.result, record.code) == ("finished", result, code)
    assert json.loads((tmp_path / f"{task_id}.json").read_text())["result"] == result
    # a third start changes nothing: finished records are not recovered again
    third = TaskManager(tmp_path, io)
    await third.load({})
    assert third.get(task_id).result == result
