"""Storage tasks with vdsm's semantics, persisted so they survive a restart.

A long operation (create, copy, delete a volume, spmStart, ...) answers its
verb with a task UUID at once and runs in the background. Its record is a
JSON file <state dir>/tasks/<taskID>.json, rewritten atomically at every
state change, holding what recovery needs (paths of the volume it makes).

Wire view (Task.getStatus): taskState "running" then "finished"; taskResult
"" while running, then "success", "cleanSuccess" (failed or stopped and
rolled back) or "cleanFailure" (failed and not rolled back: what it made is
left marked ILLEGAL); code 0 or the vdsm error code; message.

After a restart, a task whose record says running was interrupted: its
`recovery` checker decides from storage whether the work was verifiably
completed (then it is reported as success) or not (then it is finished as
cleanFailure, code 100, "interrupted"). Work is ordered so that an
interrupted volume is always ILLEGAL in its metadata.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from protocol.jsonrpc import ErrorCode

from .boundary import StorageIO
from .errors import StorageError, TaskAborted, TaskStateError, UnknownTask
from .fileio import remove_blocking, write_atomic_blocking

__all__ = ["TaskManager", "TaskRecord", "TaskContext", "Recoverer", "Body", "Rollback"]

log = logging.getLogger(__name__)

RUNNING, FINISHED, ABORTING = "running", "finished", "aborting"
SUCCESS, CLEAN_SUCCESS, CLEAN_FAILURE = "success", "cleanSuccess", "cleanFailure"


@dataclass
class TaskRecord:
    id: str
    verb: str
    tag: str = ""
    state: str = RUNNING
    result: str = ""
    code: int = 0
    message: str = "running job 1 of 1"
    created: float = field(default_factory=time.time)
    recovery: dict[str, Any] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        return {"taskID": self.id, "taskState": self.state, "taskResult": self.result,
                "code": self.code, "message": self.message}

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "verb": self.verb}

    def details(self) -> dict[str, Any]:
        return {"id": self.id, "verb": self.verb, "state": self.state,
                "taskResult": self.result, "code": self.code, "message": self.message,
                "tag": self.tag}


class TaskContext:
    """Handed to a task body: lets it record what recovery will need."""

    def __init__(self, manager: "TaskManager", record: TaskRecord) -> None:
        self._manager = manager
        self.record = record

    @property
    def id(self) -> str:
        return self.record.id

    async def note(self, **recovery: Any) -> None:
        self.record.recovery.update(recovery)
        await self._manager._save(self.record)


Body = Callable[[TaskContext], Awaitable[None]]
Rollback = Callable[[], Awaitable[bool]]
# kind -> checker(recovery data) -> True when the work is verifiably complete
Recoverer = Callable[[dict[str, Any]], Awaitable[bool]]


class TaskManager:
    def __init__(self, directory: Path, io: StorageIO) -> None:
        self.directory = directory
        self.io = io
        self.records: dict[str, TaskRecord] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._aborting: set[str] = set()
        self._closing = False

    # ----------------------------------------------------------- persistence
    def _path(self, task_id: str) -> Path:
        return self.directory / f"{task_id}.json"

    async def _save(self, record: TaskRecord) -> None:
        def write() -> None:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic_blocking(self._path(record.id),
                                  json.dumps(asdict(record), sort_keys=True).encode(), 0o600)
        await self.io.run(write)

    async def load(self, recoverers: dict[str, Recoverer]) -> None:
        """Read persisted tasks; finish those a restart interrupted."""
        if not self.directory.is_dir():
            # The agent's local state dir (not shared storage): a plain check keeps
            # agents that never ran a task from starting a worker thread.
            return

        def read_all() -> list[dict[str, Any]]:
            if not self.directory.is_dir():
                return []
            out = []
            for path in sorted(self.directory.glob("*.json")):
                try:
                    out.append(json.loads(path.read_text()))
                except (OSError, ValueError) as exc:
                    log.error("unreadable task record %s: %s", path, exc)
            return out

        for raw in await self.io.run(read_all):
            try:
                record = TaskRecord(**raw)
            except TypeError as exc:
                log.error("bad task record %r: %s", raw, exc)
                continue
            self.records[record.id] = record
            if record.state != FINISHED:
                await self._recover(record, recoverers)

    async def _recover(self, record: TaskRecord, recoverers: dict[str, Recoverer]) -> None:
        kind = str(record.recovery.get("kind", ""))
        checker = recoverers.get(kind)
        done = False
        if checker is not None:
            try:
                done = await checker(record.recovery)
            except Exception as exc:
                log.warning("task %s (%s): recovery check failed: %s", record.id,
                            record.verb, exc)
        record.state = FINISHED
        if done:
            record.result, record.code = SUCCESS, 0
            record.message = "1 jobs completed successfully"
        else:
            record.result, record.code = CLEAN_FAILURE, int(ErrorCode.GENERAL)
            record.message = ("Task interrupted: the agent restarted while it ran; "
                              "what it was making is left ILLEGAL")
        log.warning("task %s (%s) was interrupted by a restart: reported %s", record.id,
                    record.verb, record.result)
        await self._save(record)

    # ------------------------------------------------------------- lifecycle
    async def start(self, verb: str, body: Body, *, tag: str = "",
                    recovery: dict[str, Any] | None = None,
                    rollback: Rollback | None = None) -> str:
        record = TaskRecord(id=str(uuid.uuid4()), verb=verb, tag=tag,
                            recovery=dict(recovery or {}))
        await self._save(record)  # before the id is handed out
        self.records[record.id] = record
        task = asyncio.get_running_loop().create_task(
            self._run(record, body, rollback), name=f"task-{verb}-{record.id[:8]}")
        self._running[record.id] = task
        return record.id

    async def _run(self, record: TaskRecord, body: Body, rollback: Rollback | None) -> None:
        ctx = TaskContext(self, record)
        try:
            try:
                await body(ctx)
            except asyncio.CancelledError:
                if record.id not in self._aborting:
                    raise  # the agent is stopping: leave the record for recovery
                await self._fail(record, TaskAborted(f"task {record.id} stopped"), rollback)
            except StorageError as exc:
                await self._fail(record, exc, rollback)
            except Exception as exc:
                log.exception("task %s (%s) failed", record.id, record.verb)
                await self._fail(record, StorageError(f"{type(exc).__name__}: {exc}"),
                                 rollback)
            else:
                record.state, record.result, record.code = FINISHED, SUCCESS, 0
                record.message = "1 jobs completed successfully"
                await self._save(record)
                log.info("task %s (%s) succeeded", record.id, record.verb)
        finally:
            self._running.pop(record.id, None)
            self._aborting.discard(record.id)

    async def _fail(self, record: TaskRecord, exc: StorageError,
                    rollback: Rollback | None) -> None:
        log.warning("task %s (%s) failed: %s", record.id, record.verb, exc.message)
        record.state = ABORTING
        clean = False
        if rollback is not None:
            try:
                clean = await rollback()
            except Exception as rb_exc:
                log.error("task %s rollback failed: %s", record.id, rb_exc)
        record.state = FINISHED
        record.result = CLEAN_SUCCESS if clean else CLEAN_FAILURE
        record.code, record.message = exc.code, exc.message
        await self._save(record)

    # --------------------------------------------------------------- queries
    def get(self, task_id: str) -> TaskRecord:
        record = self.records.get(task_id)
        if record is None:
            raise UnknownTask(task_id)
        return record

    def running(self, tag: str | None = None) -> list[TaskRecord]:
        return [r for r in self.records.values()
                if r.state != FINISHED and (tag is None or r.tag == tag)]

    async def wait(self, task_id: str) -> TaskRecord:
        """For in-process callers: until the task finished."""
        task = self._running.get(task_id)
        if task is not None:
            await asyncio.wait({task})
        return self.get(task_id)

    # ------------------------------------------------------------- mutations
    async def clear(self, task_id: str) -> None:
        record = self.get(task_id)
        if record.state != FINISHED:
            raise TaskStateError(f"task {task_id} is {record.state}")
        await self.io.run(remove_blocking, self._path(task_id))
        del self.records[task_id]

    async def stop(self, task_id: str) -> None:
        record = self.get(task_id)
        task = self._running.get(task_id)
        if record.state == FINISHED or task is None:
            raise TaskStateError(f"task {task_id} is {record.state}")
        self._aborting.add(task_id)
        task.cancel()
        await asyncio.wait({task})

    async def close(self) -> None:
        """Agent stop: running tasks are cancelled as a crash would end them."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
