"""Storage tasks: waiting for an agent task, recording it for crash recovery,
and finishing the tasks a crashed engine left behind.

A command that starts a task (Volume.create, Volume.copy, Image.delete on the
SPM) records it in async_tasks with what the task's success means
(`on_success`), waits for it with `wait()` (Task.getStatus until finished,
then Task.clear) and forgets the row. If the engine dies meanwhile, crash
recovery marks the command's entities illegal, and `reap_orphans()` later
asks the task's host how the task ended: success applies `on_success`
(disks ok, a template ok, disks gone), anything else leaves them illegal.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol.jsonrpc import ErrorCode, JsonRpcError

from ..audit import AuditLog, AuditRefs, AuditType
from ..config import StorageConfig
from ..errors import OperationFailed
from ..hosts.manager import HostManager, HostUnavailable
from .vdsm import ERR_NO_TASK

__all__ = ["SpmTask", "TaskFailed", "TaskWaiter", "OrphanTasks", "apply_success"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpmTask:
    """A task an agent runs for us: which host, which task, what it does."""

    host_id: str
    task_id: str
    dc_id: str
    verb: str


class TaskFailed(OperationFailed):
    """A storage task ended without success (its status is kept)."""

    def __init__(self, detail: str, status: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status or {}


class TaskWaiter:
    def __init__(self, hosts: HostManager, cfg: StorageConfig) -> None:
        self.hosts = hosts
        self.cfg = cfg

    async def status(self, host_id: str, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.hosts.call(
            host_id, "Task.getStatus", {"taskID": task_id}, timeout_s=self.cfg.call_timeout_s)
        return result

    async def clear(self, host_id: str, task_id: str) -> None:
        try:
            await self.hosts.call(host_id, "Task.clear", {"taskID": task_id},
                                  timeout_s=self.cfg.call_timeout_s)
        except (JsonRpcError, HostUnavailable) as exc:
            log.info("Task.clear %s on %s: %s", task_id, host_id, exc)

    async def wait(self, host_id: str, task_id: str, timeout_s: float | None = None,
                   what: str = "storage task", give_up_if_gone: bool = False
                   ) -> dict[str, Any]:
        """Poll until the task finished; clear it; raise TaskFailed unless it
        succeeded. A host that is away (agent restarting, link down) is waited
        for: the agent keeps its tasks across restarts; with `give_up_if_gone`,
        not once it is declared non responsive."""
        deadline = time.monotonic() + (timeout_s or self.cfg.task_timeout_s)
        interval = min(0.2, self.cfg.task_poll_interval_s)
        while True:
            try:
                st = await self.status(host_id, task_id)
            except HostUnavailable:
                st = None
                rt = self.hosts.hosts.get(host_id)
                if give_up_if_gone and (rt is None or rt.status in ("non_responsive",
                                                                    "maintenance")):
                    raise TaskFailed(f"{what}: the host is "
                                     f"{rt.status if rt else 'gone'}") from None
            except JsonRpcError as exc:
                if exc.code == ERR_NO_TASK:
                    raise TaskFailed(f"{what}: the host does not know task {task_id} "
                                     f"any more") from None
                if exc.code != ErrorCode.RECOVERY_IN_PROGRESS:  # a restarted agent: wait
                    raise TaskFailed(f"{what}: {exc.message} (code {exc.code})") from None
                st = None
            if st is not None and st.get("taskState") == "finished":
                await self.clear(host_id, task_id)
                if st.get("taskResult") == "success":
                    return st
                raise TaskFailed(f"{what} failed: {st.get('message') or st.get('taskResult')}"
                                 f" (code {st.get('code')})", st)
            if time.monotonic() > deadline:
                raise TaskFailed(f"{what}: task {task_id} did not finish in time")
            await asyncio.sleep(interval)
            # Short tasks finish fast; long ones are polled at the configured pace.
            interval = min(interval * 2, self.cfg.task_poll_interval_s)


async def apply_success(conn: asyncpg.Connection, on_success: dict[str, Any]) -> list[str]:
    """What a finished task's success means for the database; returns a summary."""
    done: list[str] = []
    ok = [uuid.UUID(d) for d in on_success.get("ok_disks", [])]
    if ok:
        await conn.execute("UPDATE images SET status='ok' WHERE disk_id = ANY($1::uuid[]) "
                           "AND status <> 'ok'", ok)
        await conn.execute("UPDATE disks SET status='ok' WHERE id = ANY($1::uuid[])", ok)
        done.append(f"{len(ok)} disk(s) ok")
    gone = [uuid.UUID(d) for d in on_success.get("removed_disks", [])]
    if gone:
        await conn.execute("DELETE FROM disks WHERE id = ANY($1::uuid[])", gone)
        done.append(f"{len(gone)} disk(s) removed")
    template = on_success.get("ok_template")
    if template:
        pending = await conn.fetchval(
            "SELECT count(*) FROM disk_attachments a JOIN disks d ON d.id = a.disk_id "
            "WHERE a.vm_id = $1 AND d.status <> 'ok'", uuid.UUID(template))
        if not pending:
            await conn.execute("UPDATE vm_static SET template_status='ok' WHERE id=$1 AND "
                               "entity_type='template'", uuid.UUID(template))
            done.append("template ok")
    return done


class OrphanTasks:
    """Tasks recorded by commands that a previous engine did not see to the end."""

    def __init__(self, pool: asyncpg.Pool, waiter: TaskWaiter, audit: AuditLog) -> None:
        self.pool = pool
        self.waiter = waiter
        self.audit = audit
        self.orphans: set[str] = set()

    async def load(self) -> int:
        """At start (after command recovery): every recorded task is an orphan."""
        rows = await self.pool.fetch("SELECT id FROM async_tasks")
        self.orphans = {str(r["id"]) for r in rows}
        return len(self.orphans)

    async def reap(self) -> int:
        """Ask each orphan task's host how it ended; returns how many were settled."""
        settled = 0
        for task_id in sorted(self.orphans):
            row = await self.pool.fetchrow("SELECT * FROM async_tasks WHERE id=$1",
                                           uuid.UUID(task_id))
            if row is None:
                self.orphans.discard(task_id)
                continue
            host_id = str(row["host_id"])
            if host_id not in self.waiter.hosts.hosts:
                outcome = "its host is gone"
            else:
                try:
                    st = await self.waiter.status(host_id, task_id)
                except HostUnavailable:
                    continue  # ask again when the host is back
                except JsonRpcError as exc:
                    if exc.code != ERR_NO_TASK:
                        log.info("orphan task %s: %s", task_id, exc)
                        continue
                    st = {"taskState": "finished", "taskResult": "unknown"}
                if st.get("taskState") != "finished":
                    continue
                await self.waiter.clear(host_id, task_id)
                outcome = f"it ended with {st.get('taskResult') or 'failure'}"
                if st.get("taskResult") == "success":
                    async with self.pool.acquire() as conn, conn.transaction():
                        done = await apply_success(conn, row["on_success"] or {})
                    outcome = "it succeeded: " + (", ".join(done) or "nothing to do")
            await self.pool.execute("DELETE FROM async_tasks WHERE id=$1", uuid.UUID(task_id))
            self.orphans.discard(task_id)
            settled += 1
            await self.audit.log(AuditType.USER_RUN_UNLOCK_ENTITY_SCRIPT,
                                 f"Storage task {task_id} ({row['verb']}) of an interrupted "
                                 f"{row['command_type']}: {outcome}.",
                                 AuditRefs(data_center_id=row["data_center_id"]))
        return settled
