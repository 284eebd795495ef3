"""The command framework: validate -> lock -> execute -> finish or compensate.

Every change of the world goes through a Command. The runner:
1. takes the command's entity locks (persisted; a held lock is a 409),
2. validates with the locks held (state cannot change under it),
3. records the command (type + params) and a job with one step,
4. executes; on error compensates (undoes partial work) and fails the job,
5. optionally runs an asynchronous phase (e.g. a snapshot that takes time)
   with the locks still held, then ends the job and releases the locks.

After an engine crash, `recover_after_restart()` finds the commands that were
active, lets each command type finish or roll back its own half-done work
from its recorded params, fails their jobs, and clears every stale lock, so no
entity stays locked.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import asyncpg

from protocol.flow import flow_id, new_flow_id

from ..audit import AuditRefs, AuditType
from ..errors import EngineError
from .locks import LockSpec

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["Command", "CommandRunner", "CommandResult", "Principal", "SYSTEM"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asked: a logged-in user, or the engine itself (SYSTEM)."""

    user_id: str | None
    name: str
    is_admin: bool = False


SYSTEM = Principal(None, "SYSTEM", is_admin=True)


@dataclass(frozen=True, slots=True)
class CommandResult:
    value: Any
    job_id: str
    command_id: str
    # Set when the command goes on in the background (async phase).
    pending: asyncio.Task[None] | None = field(default=None, compare=False)


class Command:
    """Subclasses set `action_type` and implement validate/locks/execute."""

    action_type: ClassVar[str] = "Command"
    registry: ClassVar[dict[str, type["Command"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "action_type" in cls.__dict__:  # bases like VmCommand are not commands
            Command.registry[cls.action_type] = cls

    def __init__(self, services: "Services", principal: Principal = SYSTEM) -> None:
        self.s = services
        self.principal = principal
        self.command_id = str(uuid.uuid4())
        self.job_id: str | None = None

    # ---- to implement
    def description(self) -> str:
        return self.action_type

    def locks(self) -> list[LockSpec]:
        return []

    async def validate(self) -> None:
        """Raise ValidationFailed / NotFound / Conflict; runs with locks held."""

    async def execute(self) -> Any:
        raise NotImplementedError

    async def compensate(self) -> None:
        """Undo what execute() did before it failed."""

    def has_async_phase(self) -> bool:
        return False

    async def finish(self) -> None:
        """The asynchronous phase (only when has_async_phase())."""

    def recovery_params(self) -> dict[str, Any]:
        """What recover() needs after a crash (stored as JSON)."""
        return {}

    @classmethod
    async def recover(cls, services: "Services", params: dict[str, Any]) -> str:
        """Finish or undo a command that was active when the engine died.

        Returns what was done (for the audit log)."""
        return "nothing to undo"

    # ---- helpers
    def audit_refs(self, **kw: Any) -> AuditRefs:
        uid = uuid.UUID(self.principal.user_id) if self.principal.user_id else None
        return AuditRefs(user_id=uid, user_name=self.principal.name,
                         job_id=uuid.UUID(self.job_id) if self.job_id else None, **kw)


class CommandRunner:
    def __init__(self, services: "Services") -> None:
        self.s = services
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, cmd: Command) -> CommandResult:
        # The command's flow id: the caller's (REST Correlation-Id) or a new one,
        # for this command only (tasks it spawns inherit it).
        token = flow_id.set(flow_id.get() or new_flow_id())
        try:
            return await self._run(cmd)
        finally:
            flow_id.reset(token)

    async def _run(self, cmd: Command) -> CommandResult:
        await self.s.locks.acquire(cmd.command_id, cmd.locks())
        try:
            await cmd.validate()
        except BaseException:
            await self.s.locks.release(cmd.command_id)
            raise
        job_id = str(uuid.uuid4())
        cmd.job_id = job_id
        await self._record_start(cmd, job_id)
        try:
            value = await cmd.execute()
        except BaseException as exc:
            await self._fail(cmd, exc)
            raise
        if cmd.has_async_phase():
            task = asyncio.get_running_loop().create_task(self._finish(cmd),
                                                          name=f"{cmd.action_type} finish")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return CommandResult(value, job_id, cmd.command_id, task)
        await self._succeed(cmd)
        return CommandResult(value, job_id, cmd.command_id)

    async def _finish(self, cmd: Command) -> None:
        try:
            await cmd.finish()
        except asyncio.CancelledError:
            # Engine shutting down: leave the command active; the next start
            # recovers it from its recorded params.
            raise
        except BaseException as exc:
            await self._fail(cmd, exc)
            return
        await self._succeed(cmd)

    async def _record_start(self, cmd: Command, job_id: str) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO jobs (id, action_type, description, owner_id, correlation_id) "
                "VALUES ($1, $2, $3, $4, $5)",
                uuid.UUID(job_id), cmd.action_type, cmd.description(),
                uuid.UUID(cmd.principal.user_id) if cmd.principal.user_id else None,
                flow_id.get())
            await conn.execute(
                "INSERT INTO steps (id, job_id, step_type, description, step_number, "
                "correlation_id) VALUES ($1, $2, 'executing', $3, 0, $4)",
                uuid.uuid4(), uuid.UUID(job_id), f"Executing {cmd.description()}",
                flow_id.get())
            await conn.execute(
                "INSERT INTO command_entities (id, command_type, params, job_id) "
                "VALUES ($1, $2, $3, $4)",
                uuid.UUID(cmd.command_id), cmd.action_type, cmd.recovery_params(),
                uuid.UUID(job_id))

    async def _end(self, cmd: Command, status: str, job_status: str,
                   conn: asyncpg.Connection) -> None:
        await conn.execute("UPDATE command_entities SET status=$2, updated_at=now() "
                           "WHERE id=$1", uuid.UUID(cmd.command_id), status)
        if cmd.job_id:
            await conn.execute("UPDATE jobs SET status=$2, end_time=now(), last_update=now() "
                               "WHERE id=$1", uuid.UUID(cmd.job_id), job_status)
            await conn.execute("UPDATE steps SET status=$2, end_time=now() WHERE job_id=$1",
                               uuid.UUID(cmd.job_id), job_status)

    async def _succeed(self, cmd: Command) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await self._end(cmd, "succeeded", "finished", conn)
        await self.s.locks.release(cmd.command_id)

    async def _fail(self, cmd: Command, exc: BaseException) -> None:
        log.warning("%s failed: %s", cmd.description(), exc)
        try:
            await cmd.compensate()
            status = "compensated"
        except Exception:
            log.exception("compensation of %s failed", cmd.description())
            status = "failed"
        async with self.s.pool.acquire() as conn, conn.transaction():
            await self._end(cmd, status, "failed", conn)
        await self.s.locks.release(cmd.command_id)

    async def recover_after_restart(self) -> int:
        """Finish or undo what a crashed engine left half-done; clear its locks."""
        rows = await self.s.pool.fetch(
            "SELECT id, command_type, params, job_id FROM command_entities "
            "WHERE status = 'active' ORDER BY created_at")
        from .catalog import command_types

        types = command_types()
        for r in rows:
            cls = types.get(r["command_type"])
            outcome = "unknown command type"
            if cls is not None:
                try:
                    outcome = await cls.recover(self.s, r["params"] or {})
                except Exception as exc:
                    log.exception("recovery of %s %s failed", r["command_type"], r["id"])
                    outcome = f"recovery failed: {exc}"
            await self.s.pool.execute("UPDATE command_entities SET status='compensated', "
                                      "updated_at=now() WHERE id=$1", r["id"])
            await self.s.audit.log(
                AuditType.USER_RUN_UNLOCK_ENTITY_SCRIPT,
                f"{r['command_type']} was interrupted by an engine restart: {outcome}.",
                AuditRefs(job_id=r["job_id"]))
        await self.s.pool.execute(
            "UPDATE jobs SET status='failed', end_time=now(), last_update=now() "
            "WHERE status='started'")
        await self.s.pool.execute(
            "UPDATE steps SET status='failed', end_time=now() WHERE status='started'")
        stale = await self.s.locks.clear_stale()
        if stale:
            log.warning("released %d locks left by a crashed engine", len(stale))
        return len(rows)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def engine_error_message(exc: BaseException) -> str:
    return exc.detail if isinstance(exc, EngineError) else str(exc)
