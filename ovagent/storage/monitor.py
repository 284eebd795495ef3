"""Domain monitoring: every monitored domain is checked periodically.

A check reads the start of dom_md/metadata bypassing the cache (its time is
the reported `delay`), verifies the metadata seal, reads free/total space,
and, when the pool gave this host an id, makes sure the host holds its id in
the domain's lockspace (`acquired`; joining is asynchronous in sanlock).
Results feed Host.getStats `storageDomains` and Host.getStorageRepoStats.
Checks run in the storage boundary's own monitor pool, so a hung server
delays only its own domain's report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from protocol.jsonrpc import ErrorCode

from .boundary import Pool, StorageIO
from .constants import DOMAIN_VERSION
from .domain import FileDomain
from .errors import StorageError
from .fileio import free_space_blocking, read_direct_blocking
from .metadata import decode_domain_metadata

__all__ = ["DomainMonitor", "Vitals"]

log = logging.getLogger(__name__)

FindDomain = Callable[[str], Awaitable[FileDomain]]


@dataclass
class Vitals:
    code: int = 0
    delay: float = 0.0
    checked_at: float = field(default_factory=time.monotonic)
    valid: bool = False
    acquired: bool = False
    actual: bool = False
    version: int = DOMAIN_VERSION
    disktotal: int = 0
    diskfree: int = 0

    def report(self) -> dict[str, Any]:
        return {"code": self.code, "delay": f"{self.delay:.6f}",
                "lastCheck": f"{time.monotonic() - self.checked_at:.1f}",
                "valid": self.valid, "acquired": self.acquired, "actual": self.actual,
                "version": self.version}


class DomainMonitor:
    def __init__(self, io: StorageIO, interval_s: float, find: FindDomain) -> None:
        self.io = io
        self.interval_s = interval_s
        self.find = find
        self.vitals: dict[str, Vitals] = {}
        self._host_ids: dict[str, int | None] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}
        self.checked = asyncio.Condition()

    def monitored(self) -> list[str]:
        return list(self._loops)

    def start(self, sd_uuid: str, host_id: int | None) -> None:
        self._host_ids[sd_uuid] = host_id
        if sd_uuid in self._loops:
            return
        self.vitals[sd_uuid] = Vitals()
        self._loops[sd_uuid] = asyncio.get_running_loop().create_task(
            self._loop(sd_uuid), name=f"monitor-{sd_uuid[:8]}")
        log.info("monitoring domain %s (host id %s)", sd_uuid, host_id)

    async def stop(self, sd_uuid: str) -> None:
        task = self._loops.pop(sd_uuid, None)
        self._host_ids.pop(sd_uuid, None)
        self.vitals.pop(sd_uuid, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        for sd_uuid in list(self._loops):
            await self.stop(sd_uuid)

    def report(self, domains: list[str] | None = None) -> dict[str, Any]:
        return {sd: v.report() for sd, v in self.vitals.items()
                if not domains or sd in domains}

    async def _loop(self, sd_uuid: str) -> None:
        while True:
            try:
                await self.check(sd_uuid)
            except Exception:
                log.exception("monitoring %s failed", sd_uuid)
            await asyncio.sleep(self.interval_s)  # the monitoring period

    async def check(self, sd_uuid: str) -> Vitals:
        vitals = self.vitals.setdefault(sd_uuid, Vitals())
        try:
            dom = await self.find(sd_uuid)
            data, delay = await self.io.run(read_direct_blocking, dom.metadata_path,
                                            pool=Pool.MONITOR)
            md = decode_domain_metadata(data) if len(data) < 4096 else dom.md
            total, free = await self.io.run(free_space_blocking, dom.path, pool=Pool.MONITOR)
            acquired = await self._host_id(dom, sd_uuid)
        except StorageError as exc:
            vitals.code, vitals.valid = exc.code, False
            log.warning("domain %s check failed: %s", sd_uuid, exc.message)
        except OSError as exc:
            vitals.code, vitals.valid = int(ErrorCode.DOMAIN_ACTION_ERROR), False
            log.warning("domain %s check failed: %s", sd_uuid, exc)
        else:
            vitals.code, vitals.valid, vitals.delay = 0, True, delay
            vitals.version = int(md.get("VERSION", DOMAIN_VERSION) or DOMAIN_VERSION)
            vitals.disktotal, vitals.diskfree = total, free
            vitals.acquired = acquired
        vitals.checked_at = time.monotonic()
        vitals.actual = True
        async with self.checked:
            self.checked.notify_all()
        return vitals

    async def _host_id(self, dom: FileDomain, sd_uuid: str) -> bool:
        host_id = self._host_ids.get(sd_uuid)
        if host_id is None:
            return False
        state = await dom.lock.has_host_id(host_id)
        if state is False:
            await dom.lock.acquire_host_id(host_id)  # joining; seen by a later check
            state = await dom.lock.has_host_id(host_id)
        return state is True

    async def wait_acquired(self, sd_uuid: str, timeout_s: float) -> bool:
        """Until the host holds its id in the domain's lockspace (or timeout)."""
        async def acquired() -> None:
            async with self.checked:
                await self.checked.wait_for(
                    lambda: self.vitals.get(sd_uuid, Vitals()).acquired)
        try:
            await asyncio.wait_for(acquired(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True
