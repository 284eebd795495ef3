"""The thread and subprocess boundary of storage work.

File I/O on shared storage and sanlock calls block, possibly for a long time
when a server hangs. They run in bounded worker pools under a copy of the
caller's context (the flow id reaches the threads' log lines), with a
timeout. Separate pools: `io` (metadata and file operations), `monitor`
(domain checks, so a hung mount never blocks other work) and `sanlock`.
A timed-out call keeps its worker until it returns; the caller gets
StorageTimeout at once.

Commands (qemu-img, mount) run as asyncio subprocesses with a timeout; a
command that times out or whose caller is cancelled is killed, and one whose
agent dies (kill -9) is killed by the kernel (setpriv --pdeathsig KILL), so
no orphan keeps writing to a volume the restarted agent reports ILLEGAL.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from .errors import StorageTimeout

__all__ = ["Pool", "StorageIO", "CommandResult"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pool(enum.Enum):
    IO = "io"
    MONITOR = "monitor"
    SANLOCK = "sanlock"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    rc: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        return (self.err or self.out).decode(errors="replace").strip()


class StorageIO:
    def __init__(self, threads: int, timeout_s: float, command_timeout_s: float) -> None:
        self._threads = max(1, threads)
        self._pools: dict[Pool, ThreadPoolExecutor] = {}
        self.timeout_s = timeout_s
        self.command_timeout_s = command_timeout_s
        setpriv = shutil.which("setpriv")
        self._wrapper = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []

    def _pool(self, pool: Pool) -> ThreadPoolExecutor:
        # Created on first use: an agent without storage starts no threads.
        executor = self._pools.get(pool)
        if executor is None:
            size = self._threads if pool is Pool.IO else max(2, self._threads // 2)
            executor = ThreadPoolExecutor(size, f"storage-{pool.value}")
            self._pools[pool] = executor
        return executor

    async def run(self, fn: Callable[..., T], *args: Any, pool: Pool = Pool.IO,
                  timeout_s: float | None = None) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        future = loop.run_in_executor(self._pool(pool), ctx.run, fn, *args)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            name = getattr(fn, "__name__", repr(fn))
            raise StorageTimeout(f"{name} did not return within {timeout} s") from None

    def submit(self, fn: Callable[..., T], *args: Any,
               pool: Pool = Pool.IO) -> "asyncio.Future[T]":
        """Start a blocking call without waiting (the caller owns the future)."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return loop.run_in_executor(self._pool(pool), ctx.run, fn, *args)

    async def command(self, *argv: str, timeout_s: float | None = None,
                      on_start: Callable[[int], None] | None = None) -> CommandResult:
        """Run a command to completion; killed on timeout or cancellation."""
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        log.debug("running %s", " ".join(argv))
        proc = await asyncio.create_subprocess_exec(
            *self._wrapper, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        if on_start is not None:
            on_start(proc.pid)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            await self._kill(proc)
            raise StorageTimeout(f"{argv[0]} did not finish within {timeout} s") from None
        except BaseException:
            await self._kill(proc)
            raise
        assert proc.returncode is not None
        return CommandResult(tuple(argv), proc.returncode, out, err)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            try:
                proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                log.error("process %d did not exit after SIGKILL", proc.pid)

    def shutdown(self) -> None:
        for executor in self._pools.values():
            # Do not wait: a call hung on storage must not hang the agent's exit.
            executor.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()
