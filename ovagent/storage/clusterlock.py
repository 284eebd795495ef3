"""Cluster locks of a storage domain: host ids and the SPM lease.

Shared domains (NFS, POSIXFS) use sanlock as vdsm does: the lockspace is the
domain UUID on dom_md/ids (delta leases: one host id per host), the SPM
lease is the resource "SDM" in dom_md/leases at offset 1 MiB (a paxos
lease), and every volume has a lease "<vol>.lease" (resource vol UUID at
offset 0). A host can take the SDM lease only while it holds its host id,
and sanlock grants it only when the previous owner released it or its host
id expired (8 x io timeout + 60 s after the owner's last renewal), so two
hosts never hold it together, whatever the engine believes.

Leases are held by this process (registered with sanlock): if the agent
dies, sanlock releases them; if the host loses its storage, sanlock kills
the agent before the lease can expire elsewhere.

Local domains (LOCALFS) are single-host: LocalLock keeps the SPM lease as a
flock on dom_md/leases (released when the process dies) and has no host ids
nor volume leases, like vdsm's LocalLock.

Every sanlock call blocks; all of them go through StorageIO's sanlock pool.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from .boundary import Pool, StorageIO
from .constants import ALIGNMENT, BLOCK_SIZE, SDM_LEASE_NAME, SDM_LEASE_OFFSET
from .errors import (
    AcquireHostIdFailure,
    AcquireLockFailure,
    ReleaseHostIdFailure,
    StorageError,
    StorageTimeout,
)

__all__ = ["ClusterLock", "SanlockClient", "SanlockLock", "LocalLock"]

log = logging.getLogger(__name__)

# sanlock errno values for "the lease is held by another live host".
_HELD_ELSEWHERE = {-243, errno.EAGAIN, errno.EBUSY}


class ClusterLock(Protocol):
    has_volume_leases: bool

    async def format(self) -> None: ...

    async def acquire_host_id(self, host_id: int) -> None: ...

    async def has_host_id(self, host_id: int) -> bool | None: ...

    async def release_host_id(self, host_id: int) -> None: ...

    async def acquire_spm(self, host_id: int, timeout_s: float) -> int | None: ...

    async def release_spm(self) -> None: ...

    async def holds_spm(self) -> bool: ...

    async def spm_owner(self) -> tuple[int, int] | None: ...

    async def init_volume_lease(self, path: Path, vol_uuid: str) -> None: ...


class SanlockClient:
    """This process' registration with its sanlock daemon.

    libsanlock finds the daemon through SANLOCK_RUN_DIR (read once, at the
    first call in the process), so the run dir is exported before the
    module is first used. One process talks to one daemon.
    """

    def __init__(self, io: StorageIO, run_dir: Path | None, io_timeout_s: int) -> None:
        self.io = io
        self.run_dir = run_dir
        self.io_timeout_s = io_timeout_s
        self._module: Any = None
        self._fd: int | None = None
        self._lock = threading.Lock()  # sanlock calls run in several worker threads
        # Calls on the registration fd send a request and read the reply on
        # that one socket: two threads at once would read each other's
        # replies (one hangs for ever), so they take turns.
        self.fd_lock = threading.Lock()

    def module(self) -> Any:
        with self._lock:
            return self._load()

    def _load(self) -> Any:
        if self._module is None:
            if self.run_dir is not None:
                current = os.environ.get("SANLOCK_RUN_DIR")
                if current not in (None, str(self.run_dir)):
                    log.warning("SANLOCK_RUN_DIR was %s, using %s", current, self.run_dir)
                os.environ["SANLOCK_RUN_DIR"] = str(self.run_dir)
            try:
                import sanlock
            except ImportError as exc:
                raise StorageError(f"sanlock is not available: {exc}") from None
            self._module = sanlock
        return self._module

    def registration_blocking(self) -> int:
        with self._lock:
            if self._fd is None:
                self._fd = int(self._load().register())
            return self._fd

    @property
    def registered(self) -> int | None:
        """The registration fd, None before the first lease was taken."""
        return self._fd

    async def run(self, fn: Any, *args: Any, timeout_s: float | None = None) -> Any:
        return await self.io.run(fn, *args, pool=Pool.SANLOCK, timeout_s=timeout_s)


def _errno(exc: BaseException) -> int:
    value = getattr(exc, "errno", None)
    if value is None and getattr(exc, "args", None):
        value = exc.args[0]
    return int(value) if isinstance(value, int) else 0


class SanlockLock:
    has_volume_leases = True

    def __init__(self, client: SanlockClient, sd_uuid: str, ids: Path, leases: Path) -> None:
        self.client = client
        self.lockspace = sd_uuid.encode()
        self.ids = ids
        self.leases = leases

    @property
    def _sdm(self) -> list[tuple[str, int]]:
        return [(str(self.leases), SDM_LEASE_OFFSET)]

    async def format(self) -> None:
        def init() -> None:
            sl = self.client.module()
            sl.write_lockspace(self.lockspace, str(self.ids),
                               iotimeout=self.client.io_timeout_s, align=ALIGNMENT,
                               sector=BLOCK_SIZE)
            sl.write_resource(self.lockspace, SDM_LEASE_NAME.encode(), self._sdm,
                              align=ALIGNMENT, sector=BLOCK_SIZE)
        await self.client.run(init)

    async def acquire_host_id(self, host_id: int) -> None:
        """Start joining the lockspace (asynchronous; see has_host_id)."""
        def add() -> None:
            try:
                self.client.module().add_lockspace(
                    self.lockspace, host_id, str(self.ids),
                    iotimeout=self.client.io_timeout_s, wait=False)
            except Exception as exc:
                if _errno(exc) not in (errno.EEXIST, errno.EINPROGRESS):
                    raise AcquireHostIdFailure(f"{self.lockspace.decode()}:{host_id}: {exc}") \
                        from None
        await self.client.run(add)

    async def has_host_id(self, host_id: int) -> bool | None:
        def inq() -> bool | None:
            result = self.client.module().inq_lockspace(self.lockspace, host_id,
                                                         str(self.ids), wait=False)
            return None if result is None else bool(result)
        try:
            value: bool | None = await self.client.run(inq)
            return value
        except StorageError:
            raise
        except Exception as exc:
            log.debug("inq_lockspace %s: %s", self.lockspace.decode(), exc)
            return False

    async def release_host_id(self, host_id: int) -> None:
        # Wait until the lockspace is gone: an add_lockspace while sanlock is
        # still removing it finds it (EEXIST, taken as success), and a lease
        # taken in it then gets its holder killed when the removal completes.
        def rem() -> None:
            try:
                self.client.module().rem_lockspace(self.lockspace, host_id, str(self.ids),
                                                   wait=True)
            except Exception as exc:
                if _errno(exc) not in (errno.ENOENT, errno.EINPROGRESS):
                    raise ReleaseHostIdFailure(f"{self.lockspace.decode()}: {exc}") from None
        await self.client.run(rem)

    def _acquire_blocking(self) -> int:
        sl = self.client.module()
        fd = self.client.registration_blocking()
        try:
            with self.client.fd_lock:
                sl.acquire(self.lockspace, SDM_LEASE_NAME.encode(), self._sdm, slkfd=fd)
        except Exception as exc:
            code = _errno(exc)
            if code in _HELD_ELSEWHERE:
                raise AcquireLockFailure(f"id={self.lockspace.decode()}, rc={code}, "
                                         f"out=Cannot acquire SDM lease: {exc}") from None
            if code == errno.EEXIST:  # already ours
                pass
            else:
                raise AcquireLockFailure(f"id={self.lockspace.decode()}, rc={code}, "
                                         f"out={exc}") from None
        info = sl.read_resource(str(self.leases), SDM_LEASE_OFFSET, align=ALIGNMENT,
                                sector=BLOCK_SIZE)
        return int(info.get("version", 0))

    def _release_blocking(self) -> None:
        sl = self.client.module()
        try:
            fd = self.client.registration_blocking()
            with self.client.fd_lock:
                sl.release(self.lockspace, SDM_LEASE_NAME.encode(), self._sdm, slkfd=fd)
        except Exception as exc:
            if _errno(exc) not in (errno.ENOENT, errno.EINVAL):
                raise StorageError(f"cannot release SDM lease: {exc}") from None

    async def acquire_spm(self, host_id: int, timeout_s: float) -> int | None:
        """Take the SDM lease; sanlock may keep the call while the owner's host
        id is failing. A late grant (after our timeout) is released at once."""
        future = self.client.io.submit(self._acquire_blocking, pool=Pool.SANLOCK)
        try:
            lver: int = await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return lver
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            def late(f: "asyncio.Future[int]") -> None:
                if not f.cancelled() and f.exception() is None:
                    log.warning("SDM lease of %s granted after the caller gave up: "
                                "releasing it", self.lockspace.decode())
                    self.client.io.submit(self._release_blocking, pool=Pool.SANLOCK)
            future.add_done_callback(late)
            if isinstance(exc, asyncio.TimeoutError):
                raise StorageTimeout(f"SDM lease not granted within {timeout_s} s") from None
            raise

    async def release_spm(self) -> None:
        await self.client.run(self._release_blocking)

    async def holds_spm(self) -> bool:
        def inquire() -> bool:
            sl = self.client.module()
            fd = self.client.registered
            if fd is None:
                return False
            # Only asked while this host is SPM, so never queued behind a
            # long SDM acquire. (By pid instead, sanlock answers EBUSY
            # while another call of this client is in progress.)
            with self.client.fd_lock:
                resources = sl.inquire(slkfd=fd)
            for res in resources:
                if res.get("lockspace") == self.lockspace and \
                        res.get("resource") == SDM_LEASE_NAME.encode():
                    return True
            return False
        value: bool = await self.client.run(inquire)
        return value

    async def spm_owner(self) -> tuple[int, int] | None:
        def read() -> tuple[int, int]:
            sl = self.client.module()
            info = sl.read_resource(str(self.leases), SDM_LEASE_OFFSET, align=ALIGNMENT,
                                    sector=BLOCK_SIZE)
            owners = sl.read_resource_owners(self.lockspace, SDM_LEASE_NAME.encode(),
                                             self._sdm, align=ALIGNMENT, sector=BLOCK_SIZE)
            owner = int(owners[0]["host_id"]) if owners else -1
            return int(info.get("version", -1)), owner
        value: tuple[int, int] = await self.client.run(read)
        return value

    async def init_volume_lease(self, path: Path, vol_uuid: str) -> None:
        def init() -> None:
            self.client.module().write_resource(self.lockspace, vol_uuid.encode(),
                                                [(str(path), 0)], align=ALIGNMENT,
                                                sector=BLOCK_SIZE)
        await self.client.run(init)


class LocalLock:
    """Single-host domains: the SPM lease is a flock on dom_md/leases."""

    has_volume_leases = False

    def __init__(self, io: StorageIO, leases: Path) -> None:
        self.io = io
        self.leases = leases
        self._fd: int | None = None
        self._host_ids: set[int] = set()

    async def format(self) -> None:
        return None

    async def acquire_host_id(self, host_id: int) -> None:
        self._host_ids.add(host_id)

    async def has_host_id(self, host_id: int) -> bool | None:
        return host_id in self._host_ids

    async def release_host_id(self, host_id: int) -> None:
        self._host_ids.discard(host_id)

    def _lock_blocking(self) -> int:
        fd = os.open(self.leases, os.O_RDWR | os.O_CREAT, 0o660)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AcquireLockFailure(f"{self.leases} is locked by another process") from None
        return fd

    async def acquire_spm(self, host_id: int, timeout_s: float) -> int | None:
        if self._fd is None:
            self._fd = await self.io.run(self._lock_blocking)
        return None

    async def release_spm(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock

    async def holds_spm(self) -> bool:
        return self._fd is not None

    async def spm_owner(self) -> tuple[int, int] | None:
        return None

    async def init_volume_lease(self, path: Path, vol_uuid: str) -> None:
        return None
