"""VmManager: the agent's VMs, their lifecycle, and what the hypervisor tells us.

State changes come from two directions and meet here: verbs (create,
destroy, shutdown, ...) and hypervisor events (started, stopped, paused, ...).
Every status change publishes a `|virt|VM_status|<vmId>` event. A VM that
stops stays listed as Down, with exit info, until the engine destroys it
(vdsm's contract: the engine must see why a VM went down).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid as uuidlib
from typing import Any, Awaitable, Callable

import orjson

from protocol.jsonrpc import JsonRpcError

from .domxml import DomainXmlError, graphics_ticket_xml, prepare_for_launch, read_metadata
from .errors import (
    create_error,
    destroy_error,
    general_error,
    invalid_parameter,
    no_vm,
    resource_unavailable,
    snapshot_error,
    vm_down,
    vm_exists,
)
from .drivestorage import DriveStorage
from .hooks import HookError, HookRunner
from .hypervisor import (
    DomainEvent,
    DomainEventKind,
    DomainInfo,
    DomainState,
    Hypervisor,
    HypervisorError,
    HypervisorTimeoutError,
    NoSuchDomainError,
    UnsupportedError,
)
from .jobs import HostJob, HostJobs
from .merges import LiveMerges
from .snapshots import parse_snap_drives, take_snapshot
from .vm import ERROR, NORMAL, ExitInfo, ExitReason, Vm, VmStatus, vdsm_time_ms

__all__ = ["VmManager", "Publisher"]

log = logging.getLogger(__name__)

Publisher = Callable[[str, dict[str, Any]], Any]

ADMIN_SHUTDOWN = ExitInfo(NORMAL, "Admin shut down from the engine", ExitReason.ADMIN_SHUTDOWN)
USER_SHUTDOWN = ExitInfo(NORMAL, "User shut down from within the guest",
                         ExitReason.USER_SHUTDOWN)
_PAUSE_CODES = {"ioerror": "EIO", "user": "NOERR", "watchdog": "NOERR", "api_error": "NOERR"}


def _exit_for_stop(vm: Vm, detail: str) -> ExitInfo:
    if detail == "shutdown":
        return ADMIN_SHUTDOWN if vm.shutdown_requested else USER_SHUTDOWN
    if detail == "destroyed":
        if vm.shutdown_requested:  # forced after the shutdown timeout
            return ADMIN_SHUTDOWN
        return ExitInfo(ERROR, "Lost connection with qemu process",
                        ExitReason.LOST_QEMU_CONNECTION)
    if detail == "crashed":
        return ExitInfo(ERROR, "VM crashed", ExitReason.GENERIC_ERROR)
    if detail == "migrated":
        return ExitInfo(NORMAL, "Migration succeeded", ExitReason.MIGRATION_SUCCEEDED)
    if detail == "saved":
        return ExitInfo(NORMAL, "SaveState succeeded", ExitReason.SAVE_STATE_SUCCEEDED)
    if detail == "failed":
        return ExitInfo(ERROR, "VM failed to start or run", ExitReason.GENERIC_ERROR)
    return ExitInfo(ERROR, "Lost connection with qemu process",
                    ExitReason.LOST_QEMU_CONNECTION)


def _status_from_domain(d: DomainInfo) -> VmStatus | None:
    if d.state in (DomainState.RUNNING, DomainState.UNKNOWN):
        return VmStatus.UP
    if d.state in (DomainState.PAUSED, DomainState.SUSPENDED_PM):
        return VmStatus.PAUSED
    if d.state is DomainState.SHUTTING_DOWN:
        return VmStatus.POWERING_DOWN
    return None  # shut off or crashed: not a running VM


class VmManager:
    def __init__(self, hypervisor: Hypervisor, hooks: HookRunner, publish: Publisher, *,
                 powering_up_s: float = 10.0, shutdown_timeout_s: float = 120.0,
                 owner: str = "", storage: DriveStorage | None = None,
                 block_job_poll_s: float = 2.0) -> None:
        self.hypervisor = hypervisor
        # Volumes of VM disks (snapshots, merges); None: an agent without storage.
        self.storage = storage
        self.jobs = HostJobs()
        self.merges = LiveMerges(hypervisor, storage, self._spawn, self._chain_changed,
                                 self._vm_jobs_changed, poll_interval_s=block_job_poll_s)
        # Who this agent is (its certificate's name). Domains it starts carry it
        # in their metadata, so agents sharing one libvirtd (the lab, the demo
        # with QEMU) each manage only their own VMs.
        self.owner = owner
        self.hooks = hooks
        self.publish = publish
        self.powering_up_s = powering_up_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.vms: dict[str, Vm] = {}
        self.recovering = True
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._down_waiters: dict[str, asyncio.Event] = {}
        self._resync_pending = False

    # --------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Connect to the hypervisor and recover the VMs it runs."""
        await self.hypervisor.connect(self._on_domain_event, self._on_hypervisor_reconnect)
        await self.recover()

    async def recover(self) -> None:
        domains = await self.hypervisor.list_domains()
        for d in domains:
            if d.uuid not in self.vms:
                self._adopt(d, publish=False)
        self.recovering = False
        log.info("recovery done: %d VMs", len(self.vms))

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.hypervisor.close()

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    def _adopt(self, d: DomainInfo, publish: bool = True) -> Vm | None:
        status = _status_from_domain(d)
        if status is None:
            return None
        meta = read_metadata(d.xml)
        if meta is not None and self.owner and meta.get("owner", self.owner) != self.owner:
            return None  # another agent's VM on a shared libvirtd
        params: dict[str, Any] = {}
        start_time = time.time()
        if meta is not None:
            try:
                params = orjson.loads(meta.get("params") or "{}")
            except orjson.JSONDecodeError:
                params = {}
            try:
                start_time = float(meta.get("startTime") or start_time)
            except ValueError:
                pass
        vm = Vm(d.uuid, params, d.xml, status=status, start_time_s=start_time,
                external=meta is None)
        if status is VmStatus.PAUSED:
            vm.pause_code = _PAUSE_CODES.get(d.reason, "NOERR")
        self.vms[vm.id] = vm
        log.info("adopted %s VM %s (%s): %s", "external" if vm.external else "our", vm.id,
                 vm.name, status.value)
        if publish:
            self._publish_status(vm)
        return vm

    # ------------------------------------------------------------ events
    def _publish_status(self, vm: Vm) -> None:
        params = {vm.id: vm.status_event(), "notify_time": vdsm_time_ms()}
        self.publish(f"|virt|VM_status|{vm.id}", params)
        if vm.status is VmStatus.DOWN:
            self.merges.vm_gone(vm.id)
            waiter = self._down_waiters.get(vm.id)
            if waiter is not None:
                waiter.set()

    def _set_status(self, vm: Vm, status: VmStatus, exit_info: ExitInfo | None = None) -> None:
        if vm.set_status(status, exit_info):
            log.info("VM %s (%s) is now %s%s", vm.id, vm.name, status.value,
                     f" ({vm.exit_info.message})" if status is VmStatus.DOWN and vm.exit_info
                     else "")
            self._publish_status(vm)

    def _on_domain_event(self, ev: DomainEvent) -> None:
        if ev.kind is DomainEventKind.BLOCK_JOB:
            self.merges.on_event(ev)
            return
        vm = self.vms.get(ev.uuid)
        if vm is None:
            if ev.kind in (DomainEventKind.STARTED, DomainEventKind.RESUMED):
                self._schedule_resync()  # a VM we did not start: adopt it
            return
        kind = ev.kind
        if kind is DomainEventKind.STARTED:
            # While launching, _launch reports Powering up itself once it has
            # the live XML (ports, hash): the event may come before that.
            if vm.status is VmStatus.WAIT_FOR_LAUNCH and not vm.launching:
                self._powering_up(vm)
        elif kind is DomainEventKind.SUSPENDED:
            if ev.detail == "migration":
                return
            if not (ev.detail == "ioerror" and vm.pause_code in ("EIO", "ENOSPC", "EPERM")):
                # (after an I/O error its event already said which: keep ENOSPC,
                # the engine extends thin disks on it)
                vm.pause_code = _PAUSE_CODES.get(ev.detail, "NOERR")
            self._set_status(vm, VmStatus.PAUSED)
            self._check_pause_state(vm)
        elif kind is DomainEventKind.RESUMED:
            if vm.status is VmStatus.PAUSED:
                vm.pause_code = "NOERR"
                self._set_status(vm, VmStatus.UP)
            self._check_pause_state(vm)
        elif kind is DomainEventKind.IO_ERROR:
            reason = ev.detail.lower()  # libvirt: "enospc", "eio", "eperm", ...
            vm.pause_code = "ENOSPC" if "enospc" in reason or "no space" in reason else \
                "EPERM" if "eperm" in reason else "EIO"
        elif kind is DomainEventKind.STOPPED:
            self._domain_gone(vm, ev.detail)

    def _check_pause_state(self, vm: Vm) -> None:
        """Pause and resume events of a starting domain can arrive late or out
        of order (seen with two agents on one libvirtd: Up, then a stale
        SUSPENDED): after each one the domain's real state has the last word,
        unless another such event came meanwhile."""
        vm.pause_events += 1
        self._spawn(self._apply_pause_state(vm, vm.pause_events), "vm-pause-state")

    async def _apply_pause_state(self, vm: Vm, seen: int) -> None:
        try:
            domains = {d.uuid: d for d in await self.hypervisor.list_domains()}
        except HypervisorError as exc:
            log.warning("state check of VM %s failed: %s", vm.id, exc)
            return
        d = domains.get(vm.id)
        if d is None or vm.pause_events != seen or self.vms.get(vm.id) is not vm:
            return  # gone (the stopped event tells) or overtaken by a newer event
        status = _status_from_domain(d)
        if status is VmStatus.UP and vm.status is VmStatus.PAUSED:
            vm.pause_code = "NOERR"
            self._set_status(vm, VmStatus.UP)
        elif status is VmStatus.PAUSED and vm.status is VmStatus.UP:
            vm.pause_code = _PAUSE_CODES.get(d.reason, "NOERR")
            self._set_status(vm, VmStatus.PAUSED)

    def _domain_gone(self, vm: Vm, detail: str) -> None:
        if vm.destroy_requested or vm.status is VmStatus.DOWN:
            return  # destroy() reports the Down itself
        self._cancel_timer(vm.id)
        self._set_status(vm, VmStatus.DOWN, _exit_for_stop(vm, detail))

    def _on_hypervisor_reconnect(self) -> None:
        self._schedule_resync()

    def _schedule_resync(self) -> None:
        if not self._resync_pending:
            self._resync_pending = True
            self._spawn(self._resync(), "vm-resync")

    async def _resync(self) -> None:
        """Bring our VM list in line with the hypervisor after events may be lost."""
        self._resync_pending = False
        try:
            domains = {d.uuid: d for d in await self.hypervisor.list_domains()}
        except HypervisorError as exc:
            log.warning("resync failed: %s", exc)
            return
        for vm in list(self.vms.values()):
            d = domains.get(vm.id)
            if d is None or _status_from_domain(d) is None:
                if vm.status not in (VmStatus.DOWN, VmStatus.WAIT_FOR_LAUNCH) \
                        and not vm.destroy_requested:
                    self._set_status(vm, VmStatus.DOWN, ExitInfo(
                        ERROR, "VM is gone from the hypervisor",
                        ExitReason.LIBVIRT_DOMAIN_MISSING if d is None
                        else ExitReason.LOST_QEMU_CONNECTION))
                continue
            status = _status_from_domain(d)
            if status is VmStatus.PAUSED and vm.status is not VmStatus.PAUSED:
                vm.pause_code = _PAUSE_CODES.get(d.reason, "NOERR")
                self._set_status(vm, VmStatus.PAUSED)
            elif status is VmStatus.UP and vm.status is VmStatus.PAUSED:
                self._set_status(vm, VmStatus.UP)
        for uuid, d in domains.items():
            if uuid not in self.vms:
                self._adopt(d)

    # ------------------------------------------------------------ lookup
    def get(self, vm_id: str) -> Vm:
        vm = self.vms.get(vm_id)
        if vm is None:
            raise no_vm(vm_id)
        return vm

    def _running(self, vm_id: str) -> Vm:
        vm = self.get(vm_id)
        if vm.status in (VmStatus.DOWN, VmStatus.WAIT_FOR_LAUNCH):
            raise vm_down(vm_id)
        return vm

    # ------------------------------------------------------------ create
    async def create(self, vm_params: dict[str, Any]) -> dict[str, Any]:
        vm_id = str(vm_params["vmId"])
        if vm_id in self.vms:
            raise vm_exists(vm_id)
        xml = vm_params.get("xml")
        if not xml:
            raise invalid_parameter("vmParams.xml (the libvirt domain XML) is required")
        params = {k: v for k, v in vm_params.items() if k != "xml"}
        try:
            xml = prepare_for_launch(xml, vm_id, {
                "startTime": f"{time.time():.3f}", "owner": self.owner,
                "params": orjson.dumps(params).decode()})
            vm = Vm(vm_id, params, xml)
        except DomainXmlError as exc:
            raise create_error(str(exc)) from None
        self.vms[vm_id] = vm
        vm.launching = True
        log.info("creating VM %s (%s)", vm_id, vm.name)
        self._spawn(self._launch(vm, start_paused=str(params.get("launchPaused", "")).lower()
                                 == "true"), f"launch {vm_id}")
        return vm.short_status()

    async def _launch(self, vm: Vm, start_paused: bool) -> None:
        try:
            await self._launch_locked(vm, start_paused)
        finally:
            vm.launching = False
        if vm.status.running:
            try:
                await self.hooks.run("after_vm_start", vm.xml, self._hook_env(vm))
            except HookError as exc:
                log.warning("after_vm_start hook failed for %s: %s", vm.id, exc)

    async def _launch_locked(self, vm: Vm, start_paused: bool) -> None:
        async with vm.lock:
            try:
                xml = await self.hooks.run("before_vm_start", vm.xml, self._hook_env(vm))
                if xml is not None and xml != vm.xml:
                    vm.set_xml(xml)
                if vm.destroy_requested:
                    return
                info = await self.hypervisor.create(vm.xml, start_paused=start_paused)
            except HookError as exc:
                log.warning("VM %s not started: %s", vm.id, exc)
                self._set_status(vm, VmStatus.DOWN, ExitInfo(
                    ERROR, f"VM start aborted by hook: {exc}", ExitReason.LIBVIRT_START_FAILED))
                return
            except (HypervisorError, DomainXmlError) as exc:
                log.warning("VM %s failed to start: %s", vm.id, exc)
                self._set_status(vm, VmStatus.DOWN, ExitInfo(
                    ERROR, f"VM failed to start: {exc}", ExitReason.LIBVIRT_START_FAILED))
                return
            if vm.status is VmStatus.DOWN:
                return  # it died at once (the stopped event came first)
            vm.set_xml(info.xml)  # now with the real display ports
            vm.start_time_s = time.time()
            if info.state is DomainState.PAUSED:
                self._set_status(vm, VmStatus.PAUSED)
            elif vm.status is VmStatus.WAIT_FOR_LAUNCH:
                self._powering_up(vm)

    @staticmethod
    def _hook_env(vm: Vm) -> dict[str, str]:
        env = {"vmId": vm.id, "vmName": vm.name}
        custom = vm.params.get("custom")
        if isinstance(custom, dict):
            env.update({str(k): str(v) for k, v in custom.items()})
        return env

    def _powering_up(self, vm: Vm) -> None:
        self._set_status(vm, VmStatus.POWERING_UP)
        self._cancel_timer(vm.id)
        loop = asyncio.get_running_loop()
        self._timers[vm.id] = loop.call_later(self.powering_up_s, self._powered_up, vm)

    def _powered_up(self, vm: Vm) -> None:
        self._timers.pop(vm.id, None)
        if vm.status is VmStatus.POWERING_UP and self.vms.get(vm.id) is vm:
            self._set_status(vm, VmStatus.UP)

    def _cancel_timer(self, vm_id: str) -> None:
        handle = self._timers.pop(vm_id, None)
        if handle is not None:
            handle.cancel()

    # ----------------------------------------------------------- destroy
    async def destroy(self, vm_id: str, graceful_attempts: int = 1) -> None:
        vm = self.get(vm_id)
        if vm.destroy_requested:
            return  # a destroy is already under way
        if vm.status is not VmStatus.DOWN:
            try:
                await self.hooks.run("before_vm_destroy", vm.xml, self._hook_env(vm))
            except HookError as exc:
                raise destroy_error(str(exc)) from None
        vm.destroy_requested = True
        self._cancel_timer(vm_id)
        # A launch under way finishes first (it skips starting the domain when
        # it has not got that far): else the domain would start after the kill.
        async with vm.lock:
            if vm.status is not VmStatus.DOWN:
                try:
                    await self._kill_domain(vm, graceful_attempts)
                except HypervisorError as exc:
                    vm.destroy_requested = False
                    raise destroy_error(str(exc)) from None
                vm.set_status(VmStatus.DOWN, ADMIN_SHUTDOWN)
                self._publish_status(vm)
        self.vms.pop(vm_id, None)
        self._down_waiters.pop(vm_id, None)
        log.info("VM %s (%s) destroyed", vm_id, vm.name)
        try:
            await self.hooks.run("after_vm_destroy", vm.xml, self._hook_env(vm))
        except HookError as exc:
            log.warning("after_vm_destroy hook failed for %s: %s", vm_id, exc)

    async def _kill_domain(self, vm: Vm, graceful_attempts: int) -> None:
        for attempt in range(max(0, graceful_attempts)):
            try:
                await self.hypervisor.destroy(vm.id, graceful=True)
                return
            except NoSuchDomainError:
                return
            except HypervisorError as exc:
                log.info("graceful destroy %d of %s failed: %s", attempt + 1, vm.id, exc)
        try:
            await self.hypervisor.destroy(vm.id, graceful=False)
        except NoSuchDomainError:
            pass

    # ---------------------------------------------------------- shutdown
    async def shutdown(self, vm_id: str, *, delay_s: int = 30, message: str = "",
                       reboot: bool = False, timeout_s: float | None = None,
                       force: bool = False) -> str:
        vm = self._running(vm_id)
        if reboot:
            await self._hypervisor_op(vm, self.hypervisor.reboot)
            return "Machine rebooting"
        vm.shutdown_requested = True
        self._set_status(vm, VmStatus.POWERING_DOWN)
        try:
            await self._hypervisor_op(vm, self.hypervisor.shutdown)
        except Exception:
            vm.shutdown_requested = False
            if vm.status is VmStatus.POWERING_DOWN:
                self._set_status(vm, VmStatus.UP)
            raise
        timeout = self.shutdown_timeout_s if timeout_s is None else timeout_s
        self._spawn(self._watch_shutdown(vm, timeout, force), f"shutdown {vm_id}")
        return "Machine shutting down"

    async def _watch_shutdown(self, vm: Vm, timeout_s: float, force: bool) -> None:
        waiter = self._down_waiters.setdefault(vm.id, asyncio.Event())
        if vm.status is VmStatus.DOWN:
            return
        try:
            await asyncio.wait_for(waiter.wait(), timeout_s)
            return
        except asyncio.TimeoutError:
            pass
        if self.vms.get(vm.id) is not vm or not vm.status.running:  # (gone meanwhile)
            return
        if force:
            log.info("VM %s ignored shutdown for %.0f s: powering it off", vm.id, timeout_s)
            try:
                await self.hypervisor.destroy(vm.id, graceful=False)
            except NoSuchDomainError:
                pass
            except HypervisorError as exc:
                log.warning("forced power off of %s failed: %s", vm.id, exc)
        else:
            log.info("VM %s ignored shutdown for %.0f s; it stays up", vm.id, timeout_s)
            vm.shutdown_requested = False
            if vm.status is VmStatus.POWERING_DOWN:
                self._set_status(vm, VmStatus.UP)

    # ------------------------------------------------------- simple ops
    async def _hypervisor_op(self, vm: Vm, op: Callable[[str], Awaitable[None]]) -> None:
        try:
            await op(vm.id)
        except NoSuchDomainError:
            raise vm_down(vm.id) from None
        except HypervisorTimeoutError as exc:
            vm.mark_not_responding()
            raise resource_unavailable(str(exc)) from None
        except UnsupportedError as exc:
            raise general_error(str(exc)) from None
        except HypervisorError as exc:
            raise general_error(str(exc)) from None

    async def reset(self, vm_id: str) -> None:
        await self._hypervisor_op(self._running(vm_id), self.hypervisor.reset)

    async def pause(self, vm_id: str) -> None:
        vm = self._running(vm_id)
        await self._hypervisor_op(vm, self.hypervisor.suspend)
        vm.pause_code = "NOERR"
        self._set_status(vm, VmStatus.PAUSED)

    async def cont(self, vm_id: str) -> None:
        vm = self._running(vm_id)
        await self._hypervisor_op(vm, self.hypervisor.resume)
        if vm.status is VmStatus.PAUSED:
            self._set_status(vm, VmStatus.UP)

    async def set_ticket(self, vm_id: str, password: str, ttl_s: int,
                         existing_conn_action: str, params: dict[str, Any]) -> None:
        vm = self._running(vm_id)
        valid_to = None
        if ttl_s > 0:
            valid_to = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl_s)) \
                .strftime("%Y-%m-%dT%H:%M:%S")
        gtype = params.get("graphicsType") if isinstance(params, dict) else None
        try:
            device = graphics_ticket_xml(vm.xml, gtype, password, valid_to)
        except DomainXmlError as exc:
            raise invalid_parameter(str(exc)) from None
        if existing_conn_action in ("disconnect", "keep", "fail"):
            device = device.replace("<graphics ", f"<graphics connected='{existing_conn_action}' ",
                                    1)

        async def apply(uuid: str) -> None:
            await self.hypervisor.set_graphics_password(uuid, device)
        await self._hypervisor_op(vm, apply)

    async def set_balloon_target(self, vm_id: str, target_kib: int) -> None:
        vm = self._running(vm_id)
        if target_kib <= 0 or target_kib > vm.memory_kib:
            raise invalid_parameter(
                f"balloon target {target_kib} KiB must be within 1..{vm.memory_kib} KiB")

        async def apply(uuid: str) -> None:
            await self.hypervisor.set_balloon(uuid, target_kib)
        await self._hypervisor_op(vm, apply)
        vm.set_balloon_target(target_kib)

    # ------------------------------------------------------------ disks
    async def snapshot(self, vm_id: str, snap_drives: list[dict[str, Any]],
                       snap_memory: str | None, frozen: bool, job_uuid: str | None,
                       timeout_min: int) -> None:
        """Live disk-only snapshot (see snapshots.py). With a job id it runs as a
        host job (Host.getJobs, as vdsm 4.4+), else the call returns when done."""
        vm = self._running(vm_id)
        if snap_memory:
            raise snapshot_error("memory snapshots are not supported by this agent")
        storage = self.storage
        if storage is None:
            raise snapshot_error("this agent has no storage")
        wanted = parse_snap_drives(snap_drives)
        timeout_s = max(1, timeout_min) * 60.0

        async def run() -> None:
            async with vm.lock:
                try:
                    moved = await asyncio.wait_for(take_snapshot(
                        self.hypervisor, storage, vm.id, wanted,
                        busy_drives=self.merges.busy_drives(vm.id)), timeout_s)
                except asyncio.TimeoutError:
                    raise snapshot_error(f"not done within {timeout_min} minutes") from None
            if moved:
                await self._chain_changed(vm.id)

        if job_uuid is None:
            await run()
            return
        job = self.jobs.add(HostJob(job_uuid, "virt", "snapshot_vm"))
        self.jobs.running(job)

        async def as_job() -> None:
            try:
                await run()
            except JsonRpcError as exc:
                log.warning("snapshot job %s of VM %s failed: %s", job.id, vm_id, exc.message)
                self.jobs.finish(job, exc)
            except Exception as exc:
                log.exception("snapshot job %s of VM %s failed", job.id, vm_id)
                self.jobs.finish(job, snapshot_error(str(exc)))
            else:
                self.jobs.finish(job)
        self._spawn(as_job(), f"snapshot {vm_id}")

    async def merge(self, vm_id: str, drive: dict[str, Any], base: str, top: str,
                    bandwidth_mib_s: int, job_uuid: str | None) -> None:
        """Start a live merge (see merges.py); its progress shows in vmJobs."""
        vm = self._running(vm_id)
        try:
            sd, img, vol = str(drive["domainID"]), str(drive["imageID"]), str(drive["volumeID"])
        except KeyError as exc:
            raise invalid_parameter(f"drive lacks {exc}") from None
        await self.merges.start(vm.id, sd, img, vol, base, top, bandwidth_mib_s,
                                job_uuid or str(uuidlib.uuid4()))

    def _vm_jobs_changed(self, vm_id: str) -> None:
        vm = self.vms.get(vm_id)
        if vm is not None:
            vm.vm_jobs = self.merges.vm_jobs(vm_id)

    async def _chain_changed(self, vm_id: str) -> None:
        """A drive's chain changed: take the new XML (and hash) and tell the engine."""
        vm = self.vms.get(vm_id)
        if vm is None or not vm.status.running:
            return
        await self.refresh_xml(vm)
        self._publish_status(vm)

    # -------------------------------------------------------------- xml
    async def refresh_xml(self, vm: Vm) -> str:
        """The live domain XML (ports, devices as libvirt sees them now)."""
        if vm.status in (VmStatus.DOWN, VmStatus.WAIT_FOR_LAUNCH):
            return vm.xml
        try:
            xml = await self.hypervisor.get_xml(vm.id)
        except HypervisorTimeoutError:
            vm.mark_not_responding()
            return vm.xml
        except HypervisorError:
            return vm.xml
        vm.set_xml(xml)
        return xml
