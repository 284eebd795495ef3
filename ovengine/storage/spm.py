"""The SPM (Storage Pool Manager) of each data center.

One host per data center holds the master domain's SDM lease (sanlock) and
is the only one that writes storage metadata. The engine:

- elects one among the up hosts connected to the pool: the first that
  getSpmStatus reports as SPM already, else spmStart on the best candidate
  (spm_priority, then the one that failed longest ago), Task.getStatus until
  the task ends, and only then getSpmStatus: a host is recorded as SPM when
  its own getSpmStatus says "SPM", never before;
- polls the SPM's getSpmStatus; the SPM is lost when the host says it is not
  SPM, or when the host is non_responsive, in maintenance or removed. A non
  responsive SPM cannot be asked to stop: the engine keeps calling spmStart
  on another host, and sanlock refuses (651) until the dead host's lease has
  expired, so two hosts are never SPM together;
- stops the SPM (spmStop) when its host goes to maintenance or becomes
  non_operational, then elects another;
- routes SPM verbs (spm_call / start_task) to the SPM; a 654 "Not SPM"
  answer makes it lost.

Data center status (REST DataCenterStatus): uninitialized (no pool yet), up
(master domain active and an SPM), contend (an spmStart running),
problematic (hosts but no SPM), not_operational (no host to be SPM),
maintenance (the master domain in maintenance).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from typing import Any, Callable

import asyncpg

from protocol.jsonrpc import JsonRpcError

from ..audit import AuditLog, AuditRefs, AuditType
from ..config import StorageConfig
from ..errors import Conflict, OperationFailed
from ..hosts.manager import HostManager, HostUnavailable
from .connector import PoolConnector
from .layout import PoolLayout
from .tasks import SpmTask, TaskFailed, TaskWaiter
from .vdsm import ERR_NOT_SPM, ERR_SPM_STOP_TASKS

__all__ = ["SpmManager", "StorageAudit"]

log = logging.getLogger(__name__)

_GONE = frozenset({"non_responsive", "maintenance", "preparing_for_maintenance", "installing",
                   "install_failed", "down"})


class StorageAudit:
    """oVirt's AuditLogType codes of storage events."""

    IRS_HOSTED_ON_VDS = 204
    USER_ADD_STORAGE_DOMAIN = 956
    USER_ADD_STORAGE_DOMAIN_FAILED = 957
    USER_REMOVE_STORAGE_DOMAIN = 960
    USER_ATTACH_STORAGE_DOMAIN_TO_POOL = 962
    USER_ATTACH_STORAGE_DOMAIN_TO_POOL_FAILED = 963
    USER_DETACH_STORAGE_DOMAIN_FROM_POOL = 964
    USER_ACTIVATED_STORAGE_DOMAIN = 966
    USER_DEACTIVATED_STORAGE_DOMAIN = 968
    SYSTEM_DEACTIVATED_STORAGE_DOMAIN = 970
    SYSTEM_CHANGE_STORAGE_POOL_STATUS_NO_HOST_FOR_SPM = 979
    SYSTEM_CHANGE_STORAGE_POOL_STATUS_PROBLEMATIC = 980
    SYSTEM_CHANGE_STORAGE_POOL_STATUS_PROBLEMATIC_SEARCHING_NEW_SPM = 986
    SYSTEM_CHANGE_STORAGE_POOL_STATUS_PROBLEMATIC_WITH_ERROR = 987
    STORAGE_DOMAIN_ERROR = 996
    VDS_SET_NONOPERATIONAL_DOMAIN = 522
    VDS_ACTIVATE_ASYNC = 9502
    USER_ADD_DISK = 2020
    USER_ADD_DISK_FINISHED_SUCCESS = 2021
    USER_ADD_DISK_FINISHED_FAILURE = 2022
    USER_REMOVE_DISK = 2012
    USER_FINISHED_REMOVE_DISK = 2014
    USER_FINISHED_FAILED_REMOVE_DISK = 2015
    USER_ATTACH_DISK_TO_VM = 2016
    USER_DETACH_DISK_FROM_VM = 2018
    USER_ADD_VM_FINISHED_SUCCESS = 53
    USER_ADD_VM_FINISHED_FAILURE = 60
    USER_ADD_VM_TEMPLATE_FINISHED_SUCCESS = 51
    USER_ADD_VM_TEMPLATE_FINISHED_FAILURE = 52
    USER_REMOVE_VM_TEMPLATE_FINISHED = 251


def _audit(code: int) -> AuditType:
    # AuditLog.log takes the code as int(kind): oVirt's numbers pass through.
    return code  # type: ignore[return-value]


class SpmManager:
    def __init__(self, pool: asyncpg.Pool, hosts: HostManager, connector: PoolConnector,
                 waiter: TaskWaiter, audit: AuditLog, cfg: StorageConfig) -> None:
        self.pool = pool
        self.hosts = hosts
        self.connector = connector
        self.waiter = waiter
        self.audit = audit
        self.cfg = cfg
        # data center -> host whose getSpmStatus said SPM (the only routing source)
        self.spm: dict[str, str] = {}
        self.elections: dict[str, asyncio.Task[None]] = {}
        self._failed: dict[str, dict[str, float]] = defaultdict(dict)
        self._next_try: dict[str, float] = {}
        self._changed = asyncio.Condition()
        self.on_change: list[Callable[[], None]] = []  # e.g. wake the storage manager
        # Hosts on their way to maintenance: never SPM candidates.
        self.leaving: set[str] = set()

    # ------------------------------------------------------------- queries
    def spm_of(self, dc_id: str) -> str | None:
        host = self.spm.get(dc_id)
        if host is None:
            return None
        rt = self.hosts.hosts.get(host)
        if rt is None or not rt.connected or rt.status != "up":
            return None
        return host

    def candidates(self, dc_id: str) -> list[str]:
        return [h for h in self.connector.pool_hosts(dc_id) if h not in self.leaving]

    async def wait_for_spm(self, dc_id: str, timeout_s: float) -> str:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(
                    lambda: self.spm_of(dc_id) is not None), timeout_s)
            except asyncio.TimeoutError:
                raise OperationFailed(f"no SPM was elected within {timeout_s:.0f} s") from None
        host = self.spm_of(dc_id)
        assert host is not None
        return host

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        for cb in self.on_change:
            cb()

    # ------------------------------------------------------------- routing
    async def require_spm(self, dc_id: str) -> str:
        host = self.spm_of(dc_id)
        if host is None:
            name = await self.pool.fetchval("SELECT name FROM data_centers WHERE id=$1",
                                            uuid.UUID(dc_id))
            raise Conflict(f"Data Center {name or dc_id} has no Storage Pool Manager (SPM) "
                           f"at the moment; try again when it is up.")
        return host

    async def spm_call(self, dc_id: str, method: str, params: dict[str, Any],
                       timeout_s: float | None = None) -> Any:
        host = await self.require_spm(dc_id)
        try:
            return await self.hosts.call(host, method, params,
                                         timeout_s=timeout_s or self.cfg.call_timeout_s)
        except JsonRpcError as exc:
            if exc.code == ERR_NOT_SPM:
                await self._lost(dc_id, host, "the host answered Not SPM")
                raise Conflict(f"{method}: the SPM changed; try again") from None
            raise

    async def start_task(self, dc_id: str, method: str, params: dict[str, Any]) -> SpmTask:
        host = await self.require_spm(dc_id)
        task_id = await self.spm_call(dc_id, method, params)
        return SpmTask(host, str(task_id), dc_id, method)

    # ---------------------------------------------------------- the checks
    async def check(self, layout: PoolLayout) -> None:
        """One round for one data center: verify the SPM, elect when there is none."""
        dc_id = layout.dc_id
        host = self.spm.get(dc_id)
        if host is not None:
            await self._verify(dc_id, host)
        if dc_id in self.spm or dc_id in self.elections:
            return
        if not layout.initialized or layout.master is None or \
                layout.master.status == "maintenance":
            return
        if time.monotonic() < self._next_try.get(dc_id, 0.0):
            return
        if not self.candidates(dc_id):
            return
        task = asyncio.get_running_loop().create_task(self._elect(layout),
                                                      name=f"spm election {layout.name}")
        self.elections[dc_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self.elections.get(dc_id) is t:
                del self.elections[dc_id]
            if not t.cancelled() and t.exception() is not None:
                log.error("SPM election in %s failed", layout.name, exc_info=t.exception())
            for cb in self.on_change:
                cb()
        task.add_done_callback(done)

    async def _verify(self, dc_id: str, host: str) -> None:
        rt = self.hosts.hosts.get(host)
        if rt is None:
            await self._lost(dc_id, host, "the host was removed")
            return
        if rt.status in _GONE:
            await self._lost(dc_id, host, f"the host is {rt.status}")
            return
        if rt.status == "non_operational":
            if rt.connected:
                await self._stop(dc_id, host, check_tasks=False)
            await self._lost(dc_id, host, "the host is non operational")
            return
        if not rt.connected or rt.status != "up":
            return  # connecting / initializing: wait for it
        try:
            st = await self.hosts.call(host, "StoragePool.getSpmStatus",
                                       {"storagepoolID": dc_id},
                                       timeout_s=self.cfg.call_timeout_s)
        except (HostUnavailable, JsonRpcError) as exc:
            log.info("getSpmStatus on SPM %s: %s", rt.name, exc)
            return
        if st.get("spmStatus") != "SPM":
            await self._lost(dc_id, host, f"the host reports {st.get('spmStatus')}")

    async def _lost(self, dc_id: str, host: str, reason: str) -> None:
        if self.spm.get(dc_id) != host:
            return
        del self.spm[dc_id]
        await self.pool.execute("UPDATE data_centers SET spm_host_id=NULL, spm_changed_at=now() "
                                "WHERE id=$1 AND spm_host_id=$2", uuid.UUID(dc_id),
                                uuid.UUID(host))
        rt = self.hosts.hosts.get(host)
        name = await self.pool.fetchval("SELECT name FROM data_centers WHERE id=$1",
                                        uuid.UUID(dc_id))
        log.warning("data center %s lost its SPM %s: %s", name, rt.name if rt else host, reason)
        await self.audit.log(
            _audit(StorageAudit.SYSTEM_CHANGE_STORAGE_POOL_STATUS_PROBLEMATIC_SEARCHING_NEW_SPM),
            f"Data Center {name} lost its Storage Pool Manager "
            f"{rt.name if rt else host} ({reason}). Trying to elect a new one.",
            AuditRefs(data_center_id=uuid.UUID(dc_id), host_id=uuid.UUID(host),
                      host_name=rt.name if rt else None), severity="warning")
        await self._notify()

    async def _spm_status(self, host: str, dc_id: str) -> dict[str, Any] | None:
        try:
            st: dict[str, Any] = await self.hosts.call(
                host, "StoragePool.getSpmStatus", {"storagepoolID": dc_id},
                timeout_s=self.cfg.call_timeout_s)
            return st
        except (HostUnavailable, JsonRpcError) as exc:
            log.info("getSpmStatus on %s: %s", host, exc)
            return None

    def _pick(self, dc_id: str, candidates: list[str], priorities: dict[str, int]) -> str:
        failed = self._failed[dc_id]
        return sorted(candidates, key=lambda h: (failed.get(h, 0.0), -priorities.get(h, 5),
                                                 self.hosts.hosts[h].name))[0]

    async def _elect(self, layout: PoolLayout) -> None:
        dc_id = layout.dc_id
        candidates = self.candidates(dc_id)
        rows = await self.pool.fetch("SELECT id, spm_priority FROM hosts WHERE id = "
                                     "ANY($1::uuid[])", [uuid.UUID(h) for h in candidates])
        priorities = {str(r["id"]): r["spm_priority"] for r in rows}
        candidates = [h for h in candidates if priorities.get(h, 5) >= 0]
        if not candidates:
            return
        # Is one of them SPM already (an engine restart, a late spmStart)?
        for host in candidates:
            st = await self._spm_status(host, dc_id)
            if st is None:
                continue
            if st.get("spmStatus") == "SPM":
                await self._adopt(layout, host, st)
                return
            if st.get("spmStatus") == "Contend":
                self._next_try[dc_id] = time.monotonic() + self.cfg.spm_retry_s
                return  # someone's spmStart is running: see how it ends
        host = self._pick(dc_id, candidates, priorities)
        rt = self.hosts.hosts[host]
        started = time.monotonic()
        try:
            task_id = await self.hosts.call(host, "StoragePool.spmStart", {
                "storagepoolID": dc_id, "prevID": -1, "prevLver": "-1",
                "enableScsiFencing": "false", "maxHostID": 250, "domVersion": "5"},
                timeout_s=self.cfg.call_timeout_s)
            await self.waiter.wait(host, str(task_id), self.cfg.spm_start_timeout_s,
                                   what=f"spmStart on {rt.name}", give_up_if_gone=True)
            st = await self._spm_status(host, dc_id)
            if st is None or st.get("spmStatus") != "SPM":
                raise OperationFailed(f"{rt.name} is not SPM after spmStart: {st}")
        except (TaskFailed, JsonRpcError, HostUnavailable, OperationFailed) as exc:
            detail = exc.detail if isinstance(exc, OperationFailed) else str(exc)
            self._failed[dc_id][host] = time.monotonic()
            self._next_try[dc_id] = time.monotonic() + self.cfg.spm_retry_s
            log.info("spmStart on %s for %s failed after %.1f s: %s", rt.name, layout.name,
                     time.monotonic() - started, detail)
            await self.audit.log(
                _audit(StorageAudit.SYSTEM_CHANGE_STORAGE_POOL_STATUS_PROBLEMATIC_WITH_ERROR),
                f"Invalid status on Data Center {layout.name}. Setting Data Center status to "
                f"Non Responsive (On host {rt.name}, Error: {detail}).",
                AuditRefs(data_center_id=uuid.UUID(dc_id), host_id=uuid.UUID(host),
                          host_name=rt.name))
            return
        self._failed[dc_id].pop(host, None)
        await self._adopt(layout, host, st)

    async def _adopt(self, layout: PoolLayout, host: str, st: dict[str, Any]) -> None:
        dc_id = layout.dc_id
        # The database first: whoever sees the SPM in memory finds it recorded.
        await self.pool.execute("UPDATE data_centers SET spm_host_id=$2, spm_lver=$3, "
                                "spm_changed_at=now() WHERE id=$1", uuid.UUID(dc_id),
                                uuid.UUID(host), int(st.get("spmLver", -1)))
        self.spm[dc_id] = host
        rt = self.hosts.hosts[host]
        log.info("%s is the SPM of data center %s (lver %s)", rt.name, layout.name,
                 st.get("spmLver"))
        await self.audit.log(_audit(StorageAudit.IRS_HOSTED_ON_VDS),
                             f"Storage Pool Manager runs on Host {rt.name} (Address: "
                             f"{rt.address}), Data Center {layout.name}.",
                             AuditRefs(data_center_id=uuid.UUID(dc_id),
                                       host_id=uuid.UUID(host), host_name=rt.name))
        await self._notify()

    # ------------------------------------------------------------- stopping
    async def _stop(self, dc_id: str, host: str, check_tasks: bool) -> None:
        if check_tasks:
            statuses = await self.hosts.call(host, "Host.getAllTasksStatuses", {},
                                             timeout_s=self.cfg.call_timeout_s)
            running = [t for t, st in (statuses or {}).items()
                       if st.get("taskState") != "finished"]
            if running:
                raise Conflict(f"Cannot stop the SPM: {len(running)} storage task(s) are "
                               f"running on it; try again when they finished.")
        try:
            await self.hosts.call(host, "StoragePool.spmStop", {"storagepoolID": dc_id},
                                  timeout_s=self.cfg.call_timeout_s)
        except JsonRpcError as exc:
            if exc.code == ERR_SPM_STOP_TASKS:
                raise Conflict(f"Cannot stop the SPM: {exc.message}") from None
            log.info("spmStop on %s: %s", host, exc)
        except HostUnavailable as exc:
            log.info("spmStop on %s: %s", host, exc)

    async def release(self, host: str) -> None:
        """The host leaves (maintenance): stop it being SPM wherever it is."""
        rt = self.hosts.hosts.get(host)
        for dc_id, spm in list(self.spm.items()):
            if spm == host:
                if rt is not None and rt.connected:
                    await self._stop(dc_id, host, check_tasks=True)
                await self._lost(dc_id, host, "it was moved to maintenance")
        # Never elect it again while it is away.
        for failed in self._failed.values():
            failed.pop(host, None)

    async def stop_pool(self, dc_id: str) -> None:
        """The pool goes down (master to maintenance): stop its SPM."""
        host = self.spm.get(dc_id)
        if host is not None:
            await self._stop(dc_id, host, check_tasks=True)
            await self._lost(dc_id, host, "the data center went to maintenance")

    async def close(self) -> None:
        for task in list(self.elections.values()):
            task.cancel()
        if self.elections:
            await asyncio.gather(*self.elections.values(), return_exceptions=True)
