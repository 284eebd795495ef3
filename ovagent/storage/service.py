"""StorageService: the agent's storage, as the verb handlers see it.

Owns the storage boundary (threads, commands), the storage connections, the
domain cache, the connected pool and its SPM role, the task manager and the
domain monitor. Built by the composition root; `start()` recovers persisted
tasks, `close()` stops monitoring, interrupts running tasks (their records
stay for the next start) and gives the SPM lease back.

HSM verbs (any connected host): domain info/stats/images, volume info and
size, image volumes, prepare/teardown. SPM verbs (only the host holding the
master domain's SDM lease): everything that writes volume or pool metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from ..config import StorageConfig
from .boundary import StorageIO
from .chains import (
    ColdMergeRequest,
    check_cold_merge,
    cold_merge_body,
    cold_merge_done,
    cold_merge_recovery,
    sync_volume_chain,
)
from .clusterlock import ClusterLock, LocalLock, SanlockClient, SanlockLock
from .connections import Connection, ConnectionManager, parse_connection
from .constants import (
    ACTIVE,
    ATTACHED,
    BLANK_UUID,
    DOMAIN_VERSION,
    FILE_DOMAIN_TYPES,
    LEAF,
    LVER_INVALID,
    RESERVED_HOST_ID,
    SHARED,
    SPM_ID_FREE,
    allocation_name,
    disk_type_name,
    domain_class_name,
    domain_status_name,
    domain_type_name,
    legality_name,
    size_bytes,
    volume_format_name,
    volume_role_name,
)
from .domain import (
    FileDomain,
    create_layout_blocking,
    default_domain_metadata,
    find_domain_blocking,
    list_domains_blocking,
)
from .errors import (
    AcquireHostIdFailure,
    CannotConnectMultiplePools,
    CannotDetachMasterDomain,
    DomainActionError,
    DomainActive,
    DomainAlreadyAttached,
    DomainCreationError,
    DomainDoesNotExist,
    DomainExists,
    DomainFSNotMounted,
    DomainMasterError,
    DomainNotInPool,
    OperationInProgress,
    PoolAlreadyExists,
    PoolCreationError,
    PoolMasterNotFound,
    PoolUnknown,
    SpmStopError,
    StorageError,
    StorageInvalidParameter,
    UnsupportedDomainVersion,
)
from .fileio import remove_blocking
from .metadata import encode_pool_domains, normalize_spec, transform_path
from .monitor import DomainMonitor
from .pool import CONTEND, FREE, SPM, StoragePool
from .qemuimg import QemuImg
from .tasks import TaskContext, TaskManager
from .volumes import CopyRequest, CreateRequest, Volumes, read_metas_blocking

__all__ = ["StorageService"]

log = logging.getLogger(__name__)


def _bool(value: Any) -> bool:
    """BoolOrString params ("true"/"false" from the engine)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


class StorageService:
    def __init__(self, config: StorageConfig, state_dir: Path) -> None:
        self.config = config
        self.io = StorageIO(config.io_threads, config.io_timeout_s, config.command_timeout_s)
        self.qemu = QemuImg(self.io)
        self.volumes = Volumes(self.io, self.qemu, copy_timeout_s=config.copy_timeout_s,
                               copy_rate_limit_bytes_s=config.copy_rate_limit_bytes_s)
        self.repository = config.repository
        self.mnt_root = config.repository / "mnt"
        self.connections = ConnectionManager(self.io, self.mnt_root)
        self.sanlock = SanlockClient(self.io, config.sanlock_run_dir,
                                     config.sanlock_io_timeout_s)
        self.tasks = TaskManager(state_dir / "tasks", self.io)
        self.monitor = DomainMonitor(self.io, config.monitor_interval_s, self.domain)
        self.pool: StoragePool | None = None
        self._domains: dict[str, FileDomain] = {}
        self._image_locks: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pool_lock = asyncio.Lock()
        self._prepared: dict[tuple[str, str, str], int] = {}

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        recoverers = self.volumes.recoverers()

        async def never(_rec: dict[str, Any]) -> bool:
            return False  # an SPM lease does not survive the process

        async def merged(rec: dict[str, Any]) -> bool:
            metas = await self.io.run(read_metas_blocking, Path(rec["image_dir"]))
            return cold_merge_done(metas, str(rec["base"]), str(rec["top"]))
        recoverers["spm_start"] = never
        recoverers["cold_merge"] = merged
        await self.tasks.load(recoverers)

    async def close(self) -> None:
        await self.monitor.close()
        await self.tasks.close()
        if self.pool is not None and self.pool.spm_role == SPM:
            try:
                await self.pool.resign_spm()
            except Exception as exc:
                log.warning("releasing the SPM role at stop: %s", exc)
        self.io.shutdown()

    # ------------------------------------------------------------- domains
    def _lock_for(self, sd_uuid: str, path: Path, type_name: str) -> ClusterLock:
        md_dir = path / "dom_md"
        if type_name == "LOCALFS":
            return LocalLock(self.io, md_dir / "leases")
        return SanlockLock(self.sanlock, sd_uuid, md_dir / "ids", md_dir / "leases")

    async def domain(self, sd_uuid: str, refresh: bool = False) -> FileDomain:
        dom = self._domains.get(sd_uuid)
        if dom is None:
            path = await self.io.run(find_domain_blocking, self.mnt_root, sd_uuid)
            if path is None:
                raise DomainDoesNotExist(f"({sd_uuid},)")
            dom = FileDomain(sd_uuid, path, self.io, LocalLock(self.io, path), {})
            md = await dom.reload()
            dom.lock = self._lock_for(sd_uuid, path, md.get("TYPE", ""))
            self._domains[sd_uuid] = dom
        elif refresh:
            try:
                await dom.reload()
            except StorageError:
                self._domains.pop(sd_uuid, None)
                raise
        return dom

    def _forget_domains_under(self, mount_dir: Path) -> None:
        for sd_uuid, dom in list(self._domains.items()):
            if dom.mount_dir == mount_dir:
                del self._domains[sd_uuid]

    # --------------------------------------------------------- connections
    async def connect_storage_server(self, domain_type: Any,
                                     params: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await self._each_connection(domain_type, params, self.connections.connect)

    async def disconnect_storage_server(self, domain_type: Any,
                                        params: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def disconnect(con: Connection) -> None:
            await self.connections.disconnect(con)
            self._forget_domains_under(con.local_path(self.mnt_root))
        return await self._each_connection(domain_type, params, disconnect)

    async def _each_connection(self, domain_type: Any, params: list[dict[str, Any]],
                               action: Callable[[Connection], Awaitable[None]]
                               ) -> list[dict[str, Any]]:
        results = []
        for raw in params:
            con_id = str(raw.get("id", ""))
            try:
                await action(parse_connection(domain_type, raw))
                status = 0
            except StorageError as exc:
                log.warning("storage connection %s: %s", con_id, exc.message)
                status = exc.code
            except Exception:
                log.exception("storage connection %s failed", con_id)
                status = 100
            results.append({"id": con_id, "status": status})
        return results

    # ------------------------------------------------------- domain verbs
    async def create_domain(self, sd_uuid: str, domain_type: Any, type_args: Any, name: str,
                            domain_class: Any, version: Any, block_size: int) -> None:
        type_name = domain_type_name(domain_type)
        if type_name not in FILE_DOMAIN_TYPES:
            raise StorageInvalidParameter(f"domainType={type_name} (only file domains)")
        class_name = domain_class_name(domain_class)
        if version not in (None, "") and int(version) != DOMAIN_VERSION:
            raise UnsupportedDomainVersion(f"version {version} (supported: {DOMAIN_VERSION})")
        if block_size not in (0, 512):
            raise StorageInvalidParameter(f"blockSize={block_size} (supported: 512)")
        remote = type_args if isinstance(type_args, str) else \
            str((type_args or {}).get("remotePath", ""))
        if not remote:
            raise StorageInvalidParameter("typeArgs: no remote path")
        remote = normalize_spec(remote)
        mount_dir = self.mnt_root / transform_path(remote)
        if not await self.io.run(os.path.isdir, mount_dir):
            raise DomainFSNotMounted(f"{remote} is not connected ({mount_dir})")
        if await self.io.run(find_domain_blocking, self.mnt_root, sd_uuid) is not None:
            raise DomainExists(f"({sd_uuid},)")
        path = mount_dir / sd_uuid
        try:
            await self.io.run(create_layout_blocking, path)
            lock = self._lock_for(sd_uuid, path, type_name)
            await lock.format()
            dom = FileDomain(sd_uuid, path, self.io, lock, {})
            await dom.write_metadata(default_domain_metadata(sd_uuid, name, type_name,
                                                             class_name, remote))
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.io.run(remove_blocking, path)
            if isinstance(exc, StorageError) or not isinstance(exc, Exception):
                raise
            raise DomainCreationError(f"{sd_uuid}: {exc}") from None
        self._domains[sd_uuid] = dom
        log.info("created %s domain %s (%s) at %s", type_name, sd_uuid, name, path)

    async def domain_info(self, sd_uuid: str) -> dict[str, Any]:
        dom = await self.domain(sd_uuid, refresh=True)
        info = dom.info()
        if dom.role == "Master":
            info["master_ver"] = int(dom.md.get("MASTER_VERSION", "0") or 0)
            info["spm_id"] = int(dom.md.get("POOL_SPM_ID", SPM_ID_FREE) or SPM_ID_FREE)
            info["lver"] = int(dom.md.get("POOL_SPM_LVER", LVER_INVALID) or LVER_INVALID)
        return info

    async def domain_stats(self, sd_uuid: str) -> dict[str, Any]:
        dom = await self.domain(sd_uuid)
        total, free = await dom.space()
        return {"disktotal": str(total), "diskfree": str(free), "mdavalid": True,
                "mdathreshold": True, "mdasize": 0, "mdafree": 0}

    async def domain_images(self, sd_uuid: str) -> list[str]:
        return await (await self.domain(sd_uuid)).images()

    async def domain_volumes(self, sd_uuid: str, img: str) -> list[str]:
        dom = await self.domain(sd_uuid)
        images = await dom.images() if img in ("", BLANK_UUID) else [img]
        out: list[str] = []
        for image in images:
            out += [v for v in await dom.volumes(image) if v not in out]
        return out

    async def validate_domain(self, sd_uuid: str) -> None:
        await self.domain(sd_uuid, refresh=True)

    async def format_domain(self, sd_uuid: str, auto_detach: bool) -> None:
        dom = await self.domain(sd_uuid, refresh=True)
        if self.pool is not None and sd_uuid in self.pool.domains:
            raise DomainActionError(f"{sd_uuid} is in the connected pool {self.pool.sp_uuid}")
        if dom.pools and not auto_detach:
            raise DomainActionError(f"{sd_uuid} is attached to pool {dom.pools[0]}")
        await self.monitor.stop(sd_uuid)
        await self.io.run(remove_blocking, dom.path)
        self._domains.pop(sd_uuid, None)
        log.info("formatted (removed) domain %s", sd_uuid)

    async def storage_domains(self, sp_uuid: str | None, domain_class: Any,
                              storage_type: Any, remote_path: str | None) -> list[str]:
        found = await self.io.run(list_domains_blocking, self.mnt_root)
        out = []
        for sd_uuid in sorted(found):
            try:
                dom = await self.domain(sd_uuid, refresh=True)
            except StorageError:
                continue
            if sp_uuid and sp_uuid != BLANK_UUID and sp_uuid not in dom.pools:
                continue
            if domain_class not in (None, "") and \
                    dom.class_name != domain_class_name(domain_class):
                continue
            if storage_type not in (None, "") and \
                    dom.type_name != domain_type_name(storage_type):
                continue
            if remote_path and normalize_spec(remote_path) != dom.md.get("REMOTE_PATH"):
                continue
            out.append(sd_uuid)
        return out

    # -------------------------------------------------------------- pool
    def _pool(self, sp_uuid: str) -> StoragePool:
        if self.pool is None or self.pool.sp_uuid != sp_uuid:
            raise PoolUnknown(f"({sp_uuid},)")
        return self.pool

    async def _pool_domain(self, sp_uuid: str, sd_uuid: str) -> FileDomain:
        pool = self._pool(sp_uuid)
        if sd_uuid not in pool.domains:
            raise DomainNotInPool(f"domain={sd_uuid}, pool={sp_uuid}")
        return await self.domain(sd_uuid)

    @contextlib.asynccontextmanager
    async def _domain_lease(self, dom: FileDomain, host_id: int) -> AsyncIterator[None]:
        """Hold a domain's SDM lease for a metadata change outside the SPM role
        (pool create, attach, detach), joining its lockspace first."""
        await dom.lock.acquire_host_id(host_id)
        if isinstance(dom.lock, SanlockLock):
            await self._wait_host_id(dom, host_id)
        own_spm = self.pool is not None and self.pool.master is dom and \
            self.pool.spm_role == SPM
        if not own_spm:
            await dom.lock.acquire_spm(host_id, self.config.spm_acquire_timeout_s)
        try:
            yield
        finally:
            if not own_spm:
                await dom.lock.release_spm()

    async def _wait_host_id(self, dom: FileDomain, host_id: int) -> None:
        lock = dom.lock
        assert isinstance(lock, SanlockLock)

        def wait() -> bool:
            result = self.sanlock.module().inq_lockspace(
                lock.lockspace, host_id, str(lock.ids), wait=True)
            return bool(result)
        try:
            ok = await self.sanlock.run(wait, timeout_s=self.config.spm_acquire_timeout_s)
        except StorageError:
            raise
        except Exception as exc:
            raise AcquireHostIdFailure(f"{dom.sd_uuid}:{host_id}: {exc}") from None
        if not ok:
            raise AcquireHostIdFailure(f"{dom.sd_uuid}:{host_id}")

    async def create_pool(self, sp_uuid: str, name: str, msd_uuid: str, master_version: int,
                          domain_list: list[str], lease_params: dict[str, int]) -> None:
        if self.pool is not None and self.pool.sp_uuid == sp_uuid:
            raise PoolAlreadyExists(sp_uuid)
        if msd_uuid not in domain_list:
            raise StorageInvalidParameter(f"masterDomain={msd_uuid} is not in domainList")
        domains = {sd: await self.domain(sd, refresh=True) for sd in domain_list}
        for sd, dom in domains.items():
            if dom.pools and sp_uuid not in dom.pools:
                raise DomainAlreadyAttached(f"domain={sd}, pool={dom.pools[0]}")
        master = domains[msd_uuid]
        if master.class_name != "Data":
            raise DomainMasterError(f"{msd_uuid} is a {master.class_name} domain")
        keys = {"LOCKRENEWALINTERVALSEC": "lockRenewalIntervalSec",
                "LEASETIMESEC": "leaseTimeSec", "IOOPTIMEOUTSEC": "ioOpTimeoutSec",
                "LEASERETRIES": "leaseRetries"}
        pool_map = {sd: (ACTIVE if sd == msd_uuid else ATTACHED) for sd in domain_list}
        changes: dict[str, str | None] = {
            "POOL_UUID": sp_uuid, "ROLE": "Master", "MASTER_VERSION": str(master_version),
            "POOL_DESCRIPTION": name, "POOL_DOMAINS": encode_pool_domains(pool_map),
            "POOL_SPM_ID": str(SPM_ID_FREE), "POOL_SPM_LVER": str(LVER_INVALID)}
        for key, param in keys.items():
            if lease_params.get(param):
                changes[key] = str(lease_params[param])
        try:
            async with self._domain_lease(master, RESERVED_HOST_ID):
                await master.update_metadata(changes)
                for sd, dom in domains.items():
                    if sd != msd_uuid:
                        await dom.update_metadata({"POOL_UUID": sp_uuid})
        except StorageError:
            raise
        except Exception as exc:
            raise PoolCreationError(f"{sp_uuid}: {exc}") from None
        finally:
            if isinstance(master.lock, SanlockLock):
                with contextlib.suppress(Exception):
                    await master.lock.release_host_id(RESERVED_HOST_ID)
        log.info("created pool %s (%s) with master %s", sp_uuid, name, msd_uuid)

    async def connect_pool(self, sp_uuid: str, host_id: int, msd_uuid: str,
                           master_version: int, domain_dict: dict[str, str] | None) -> None:
        async with self._pool_lock:
            if self.pool is not None:
                if self.pool.sp_uuid != sp_uuid:
                    raise CannotConnectMultiplePools(
                        f"connected to {self.pool.sp_uuid}, asked for {sp_uuid}")
                await self._refresh(self.pool, msd_uuid, master_version, domain_dict)
                return
            try:
                master = await self.domain(msd_uuid, refresh=True)
            except StorageError:
                raise PoolMasterNotFound(f"spUUID={sp_uuid}, msdUUID={msd_uuid}") from None
            statuses = None if domain_dict is None else \
                {sd: domain_status_name(s) for sd, s in domain_dict.items()}
            pool = StoragePool(sp_uuid, host_id, master, master_version, statuses)
            await pool.refresh()
            self.pool = pool
            await self._sync_monitoring(pool)
            log.info("connected pool %s as host %d (master %s v%d)", sp_uuid, host_id,
                     msd_uuid, master_version)

    async def _refresh(self, pool: StoragePool, msd_uuid: str, master_version: int,
                       domain_dict: dict[str, str] | None) -> None:
        if msd_uuid != pool.master.sd_uuid:
            pool.master = await self.domain(msd_uuid, refresh=True)
        pool.master_version = master_version
        if domain_dict is not None:
            pool.memory_map = {sd: domain_status_name(s) for sd, s in domain_dict.items()}
            pool.domains = dict(pool.memory_map)
        await pool.refresh()
        await self._sync_monitoring(pool)

    async def refresh_pool(self, sp_uuid: str, msd_uuid: str, master_version: int) -> None:
        async with self._pool_lock:
            await self._refresh(self._pool(sp_uuid), msd_uuid, master_version, None)

    async def _sync_monitoring(self, pool: StoragePool) -> None:
        """Monitor the pool's active domains (with our host id), not the others."""
        active = set(pool.active_domains())
        for sd_uuid in active:
            self.monitor.start(sd_uuid, pool.host_id)
        for sd_uuid in self.monitor.monitored():
            if sd_uuid not in active:
                await self.monitor.stop(sd_uuid)
        await self.io.run(self._link_pool_blocking, pool.sp_uuid,
                          {sd: self._domains[sd].path for sd in pool.domains
                           if sd in self._domains}, pool.master.path)

    def _link_pool_blocking(self, sp_uuid: str, domains: dict[str, Path],
                            master: Path) -> None:
        """<repository>/<spUUID>/<sdUUID> and .../mastersd links, as vdsm keeps them."""
        pool_dir = self.repository / sp_uuid
        pool_dir.mkdir(parents=True, exist_ok=True)
        for name, target in list(domains.items()) + [("mastersd", master)]:
            link = pool_dir / name
            if link.is_symlink() and os.readlink(link) == str(target):
                continue
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(target, link)

    async def disconnect_pool(self, sp_uuid: str, host_id: int) -> None:
        async with self._pool_lock:
            pool = self._pool(sp_uuid)
            if pool.spm_role == CONTEND:
                # Leaving the lockspace while an spmStart may take the SDM
                # lease in it would make sanlock kill this process.
                raise OperationInProgress(f"spm start {sp_uuid}: stop it before disconnecting")
            if pool.spm_role == SPM:
                await self._stop_spm(pool)
            for sd_uuid in self.monitor.monitored():
                await self.monitor.stop(sd_uuid)
                dom = self._domains.get(sd_uuid)
                if dom is not None:
                    with contextlib.suppress(Exception):
                        await dom.lock.release_host_id(pool.host_id)
            await self.io.run(remove_blocking, self.repository / sp_uuid)
            self.pool = None
            log.info("disconnected pool %s", sp_uuid)

    async def pool_info(self, sp_uuid: str) -> dict[str, Any]:
        pool = self._pool(sp_uuid)
        md = await pool.refresh()
        spm = await pool.spm_status()
        info = {
            "name": md.get("POOL_DESCRIPTION", ""),
            "domains": encode_pool_domains(pool.domains),
            "master_uuid": pool.master.sd_uuid,
            "master_ver": pool.master_version,
            "lver": spm["spmLver"],
            "spm_id": spm["spmId"],
            "pool_status": "connected",
            "type": pool.master.type_name,
            "version": str(pool.master.version),
            "isoprefix": "",
        }
        dominfo: dict[str, Any] = {}
        for sd_uuid, status in pool.domains.items():
            entry: dict[str, Any] = {"status": status, "alerts": [], "isoprefix": "",
                                     "version": DOMAIN_VERSION}
            vitals = self.monitor.vitals.get(sd_uuid)
            if vitals is not None and vitals.valid:
                entry.update(diskfree=str(vitals.diskfree), disktotal=str(vitals.disktotal),
                             version=vitals.version)
            elif status == ACTIVE:
                try:
                    total, free = await (await self.domain(sd_uuid)).space()
                    entry.update(diskfree=str(free), disktotal=str(total))
                except StorageError as exc:
                    entry["alerts"] = [{"code": exc.code, "message": exc.message}]
            dominfo[sd_uuid] = entry
        return {"info": info, "dominfo": dominfo}

    async def spm_status(self, sp_uuid: str) -> dict[str, Any]:
        return await self._pool(sp_uuid).spm_status()

    async def spm_start(self, sp_uuid: str) -> str:
        pool = self._pool(sp_uuid)

        async def body(_ctx: TaskContext) -> None:
            if pool.spm_role == SPM and await pool.master.lock.holds_spm():
                return
            if pool.spm_role == CONTEND:
                raise OperationInProgress(f"spm start {sp_uuid}")
            pool.spm_role = CONTEND
            acquired = False
            try:
                master = pool.master
                self.monitor.start(master.sd_uuid, pool.host_id)
                await self.monitor.check(master.sd_uuid)
                if not await self.monitor.wait_acquired(master.sd_uuid,
                                                        self.config.spm_acquire_timeout_s):
                    raise AcquireHostIdFailure(f"{master.sd_uuid}:{pool.host_id} not "
                                               f"acquired in time")
                lver = await master.lock.acquire_spm(pool.host_id,
                                                     self.config.spm_acquire_timeout_s)
                acquired = True
                await pool.refresh()
                await pool.become_spm(lver)
                for sd_uuid in pool.active_domains():
                    with contextlib.suppress(StorageError):
                        await self.volumes.collect_garbage(await self.domain(sd_uuid))
            except BaseException:
                if pool.spm_role != SPM or acquired:
                    pool.spm_role = FREE
                    if acquired:
                        with contextlib.suppress(Exception):
                            await pool.master.lock.release_spm()
                raise

        return await self.tasks.start("spmStart", body, recovery={"kind": "spm_start"})

    async def spm_stop(self, sp_uuid: str) -> None:
        await self._stop_spm(self._pool(sp_uuid))

    async def _stop_spm(self, pool: StoragePool) -> None:
        running = self.tasks.running(tag="spm")
        if running:
            raise SpmStopError(f"spUUID={pool.sp_uuid}, task={running[0].id}")
        await pool.resign_spm()

    async def _spm_domain(self, sp_uuid: str, sd_uuid: str) -> FileDomain:
        pool = self._pool(sp_uuid)
        await pool.require_spm()
        return await self._pool_domain(sp_uuid, sd_uuid)

    # ---------------------------------------------- domain membership (SPM)
    async def attach_domain(self, sd_uuid: str, sp_uuid: str) -> None:
        pool = self._pool(sp_uuid)
        await pool.require_spm()
        dom = await self.domain(sd_uuid, refresh=True)
        if sd_uuid in pool.domains:
            return
        if dom.pools and sp_uuid not in dom.pools:
            raise DomainAlreadyAttached(f"domain={sd_uuid}, pool={dom.pools[0]}")
        async with self._domain_lease(dom, pool.host_id):
            await dom.update_metadata({"POOL_UUID": sp_uuid})
        await pool.set_domain_status(sd_uuid, ATTACHED)
        log.info("attached domain %s to pool %s", sd_uuid, sp_uuid)

    async def activate_domain(self, sd_uuid: str, sp_uuid: str) -> None:
        pool = self._pool(sp_uuid)
        await pool.require_spm()
        if sd_uuid not in pool.domains:
            raise DomainNotInPool(f"domain={sd_uuid}, pool={sp_uuid}")
        await self.domain(sd_uuid, refresh=True)
        if pool.domains[sd_uuid] != ACTIVE:
            await pool.set_domain_status(sd_uuid, ACTIVE)
        await self._sync_monitoring(pool)

    async def deactivate_domain(self, sd_uuid: str, sp_uuid: str, msd_uuid: str,
                                master_version: int) -> None:
        pool = self._pool(sp_uuid)
        await pool.require_spm()
        if sd_uuid not in pool.domains:
            raise DomainNotInPool(f"domain={sd_uuid}, pool={sp_uuid}")
        if sd_uuid == pool.master.sd_uuid and msd_uuid != sd_uuid:
            raise DomainMasterError("moving the master role to another domain "
                                    "is not supported")
        await pool.set_domain_status(sd_uuid, ATTACHED)
        if sd_uuid != pool.master.sd_uuid:
            await self._sync_monitoring(pool)

    async def detach_domain(self, sd_uuid: str, sp_uuid: str) -> None:
        pool = self._pool(sp_uuid)
        await pool.require_spm()
        if sd_uuid == pool.master.sd_uuid:
            raise CannotDetachMasterDomain(sd_uuid)
        if sd_uuid not in pool.domains:
            raise DomainNotInPool(f"domain={sd_uuid}, pool={sp_uuid}")
        if pool.domains[sd_uuid] == ACTIVE:
            raise DomainActive(sd_uuid)
        dom = await self.domain(sd_uuid, refresh=True)
        async with self._domain_lease(dom, pool.host_id):
            await dom.update_metadata({"POOL_UUID": ""})
        await pool.set_domain_status(sd_uuid, None)
        with contextlib.suppress(Exception):
            await dom.lock.release_host_id(pool.host_id)
        log.info("detached domain %s from pool %s", sd_uuid, sp_uuid)

    # ------------------------------------------------------- volume (HSM)
    async def volume_info(self, sd_uuid: str, img: str, vol: str) -> dict[str, Any]:
        return await self.volumes.info(await self.domain(sd_uuid), img, vol)

    async def volume_size(self, sd_uuid: str, img: str, vol: str) -> dict[str, str]:
        return await self.volumes.size(await self.domain(sd_uuid), img, vol)

    async def image_volumes(self, sd_uuid: str, img: str) -> list[str]:
        return await (await self.domain(sd_uuid)).volumes(img)

    async def prepare_image(self, sd_uuid: str, img: str, vol: str,
                            allow_illegal: bool) -> dict[str, Any]:
        dom = await self.domain(sd_uuid)
        result = await self.volumes.prepare(dom, img, vol, allow_illegal)
        key = (sd_uuid, img, vol)
        self._prepared[key] = self._prepared.get(key, 0) + 1
        return result

    async def prepare_volume(self, sd_uuid: str, img: str, vol: str) -> str:
        """Prepare a volume for a running VM (a new snapshot leaf): its path."""
        path: str = (await self.prepare_image(sd_uuid, img, vol, False))["path"]
        return path

    async def sync_volume_chain(self, sd_uuid: str, img: str, leaf: str,
                                actual: list[str]) -> list[str]:
        """Make volume metadata follow the chain a VM really uses after a live
        merge (HSM: the host running the VM owns the image meanwhile)."""
        dom = await self.domain(sd_uuid)
        async with self._images_locked((sd_uuid, img)):
            return await sync_volume_chain(self.volumes, dom, img, leaf, actual)

    async def teardown_image(self, sd_uuid: str, img: str, vol: str | None) -> None:
        await self.domain(sd_uuid)
        for key in list(self._prepared):
            if key[:2] == (sd_uuid, img) and (vol is None or key[2] == vol):
                self._prepared[key] -= 1
                if self._prepared[key] <= 0:
                    del self._prepared[key]

    # ------------------------------------------------------- volume (SPM)
    @contextlib.asynccontextmanager
    async def _images_locked(self, *keys: tuple[str, str]) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys)):  # one order: no deadlock between tasks
                await stack.enter_async_context(self._image_locks[key])
            yield

    async def create_volume(self, sp_uuid: str, sd_uuid: str, img: str, vol: str, size: Any,
                            vol_format: Any, preallocate: Any, disk_type: Any, desc: str,
                            src_img: str, src_vol: str, initial_size: Any,
                            legal: bool, vol_type: Any = None) -> str:
        dom = await self._spm_domain(sp_uuid, sd_uuid)
        req = CreateRequest(
            img=img, vol=vol, capacity=size_bytes(size, "size"),
            format=volume_format_name(vol_format), type=allocation_name(preallocate),
            disktype=disk_type_name(disk_type or "DATA"), description=desc or "",
            parent_img=src_img or BLANK_UUID, parent_vol=src_vol or BLANK_UUID,
            initial_size=None if initial_size in (None, "") else
            size_bytes(initial_size, "initialSize"),
            legal=_bool(legal),
            voltype=SHARED if vol_type not in (None, "") and
            volume_role_name(vol_type) == SHARED else LEAF)
        await self.volumes.check_create(dom, req)
        keys = [(sd_uuid, img)]
        if req.parent_img not in (BLANK_UUID, img):
            keys.append((sd_uuid, req.parent_img))

        async def body(ctx: TaskContext) -> None:
            async with self._images_locked(*keys):
                await self.volumes.create_body(dom, req, ctx)

        async def rollback() -> bool:
            return await self.volumes.create_rollback(dom, req)

        return await self.tasks.start("createVolume", body, tag="spm",
                                      recovery=self.volumes.create_recovery(dom, req),
                                      rollback=rollback)

    async def delete_volume(self, sp_uuid: str, sd_uuid: str, img: str, vol: str,
                            force: Any) -> str:
        dom = await self._spm_domain(sp_uuid, sd_uuid)
        await self.volumes.check_delete(dom, img, vol, _bool(force))

        async def body(_ctx: TaskContext) -> None:
            async with self._images_locked((sd_uuid, img)):
                await self.volumes.delete_body(dom, img, vol)

        return await self.tasks.start("deleteVolume", body, tag="spm",
                                      recovery=self.volumes.delete_recovery(dom, img, vol))

    async def extend_volume(self, sp_uuid: str, sd_uuid: str, img: str, vol: str,
                            new_size: Any) -> str:
        dom = await self._spm_domain(sp_uuid, sd_uuid)
        size = size_bytes(new_size, "newSize")
        await self.volumes.check_extend(dom, img, vol, size)

        async def body(_ctx: TaskContext) -> None:
            async with self._images_locked((sd_uuid, img)):
                await self.volumes.extend_body(dom, img, vol, size)

        return await self.tasks.start(
            "extendVolumeSize", body, tag="spm",
            recovery=self.volumes.extend_recovery(dom, img, vol, size))

    async def set_volume_legality(self, sp_uuid: str, sd_uuid: str, img: str, vol: str,
                                  legality: str) -> None:
        dom = await self._spm_domain(sp_uuid, sd_uuid)
        value = legality_name(legality)
        async with self._images_locked((sd_uuid, img)):
            md = await dom.read_volume(img, vol)
            await dom.write_volume(img, vol, replace(md, legality=value))

    async def set_volume_description(self, sp_uuid: str, sd_uuid: str, img: str, vol: str,
                                     description: str) -> None:
        dom = await self._spm_domain(sp_uuid, sd_uuid)
        async with self._images_locked((sd_uuid, img)):
            md = await dom.read_volume(img, vol)
            await dom.write_volume(img, vol, replace(md, description=description[:210]))

    async def copy_volume(self, sp_uuid: str, sd_uuid: str, img: str, vol: str,
                          dst_sd_uuid: str, dst_img: str, dst_vol: str, desc: str,
                          vol_type: Any, vol_format: Any, preallocate: Any) -> str:
        src = await self._spm_domain(sp_uuid, sd_uuid)
        dst = await self._pool_domain(sp_uuid, dst_sd_uuid or sd_uuid)
        role = volume_role_name(vol_type)
        req = CopyRequest(src_img=img, src_vol=vol, dst_img=dst_img, dst_vol=dst_vol,
                          description=desc or "", voltype=SHARED if role == SHARED else LEAF,
                          format=volume_format_name(vol_format),
                          type=allocation_name(preallocate))
        await self.volumes.check_copy(src, dst, req)

        async def body(ctx: TaskContext) -> None:
            async with self._images_locked((src.sd_uuid, img), (dst.sd_uuid, dst_img)):
                await self.volumes.copy_body(src, dst, req, ctx)

        async def rollback() -> bool:
            return await self.volumes.copy_rollback(dst, req)

        return await self.tasks.start("copyImage", body, tag="spm",
                                      recovery=self.volumes.copy_recovery(dst, req),
                                      rollback=rollback)

    async def cold_merge(self, sp_uuid: str, sd_uuid: str, img: str, base: str,
                         top: str) -> str:
        """Commit `top` into its parent `base` with qemu-img (the VM is down)."""
        dom = await self._spm_domain(sp_uuid, sd_uuid)
        req = ColdMergeRequest(img=img, base=base, top=top)
        await check_cold_merge(self.volumes, dom, req)

        async def body(_ctx: TaskContext) -> None:
            async with self._images_locked((sd_uuid, img)):
                await check_cold_merge(self.volumes, dom, req)
                await cold_merge_body(self.volumes, dom, req,
                                      rate_limit_bytes_s=self.config.copy_rate_limit_bytes_s,
                                      timeout_s=self.config.copy_timeout_s)

        return await self.tasks.start("coldMerge", body, tag="spm",
                                      recovery=cold_merge_recovery(dom, req))

    async def delete_image(self, sp_uuid: str, sd_uuid: str, img: str) -> str:
        dom = await self._spm_domain(sp_uuid, sd_uuid)
        await self.volumes.check_delete_image(dom, img)

        async def body(_ctx: TaskContext) -> None:
            async with self._images_locked((sd_uuid, img)):
                await self.volumes.delete_image_body(dom, img)

        return await self.tasks.start("deleteImage", body, tag="spm",
                                      recovery=self.volumes.delete_image_recovery(dom, img))

    # ----------------------------------------------------------- reports
    def connected_pools(self) -> list[str]:
        return [] if self.pool is None else [self.pool.sp_uuid]

    def domain_vitals(self, domains: list[str] | None = None) -> dict[str, Any]:
        return self.monitor.report(domains)
