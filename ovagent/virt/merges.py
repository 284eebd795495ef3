"""Live merge (VM.merge): commit a snapshot layer of a running VM's drive.

`top` (a volume of the drive's chain) and what lies between it and `base`
are committed into `base` by a libvirt blockCommit (backing links kept
relative). When `top` is the active layer (the leaf) it is an active commit:
once everything is copied the job is READY, the leaf is marked ILLEGAL in
its metadata (from then on the VM must only ever run on `base`: the state a
crash may leave is safe), and the drive pivots to `base`. Then the volume
metadata is synchronised with the chain libvirt reports (vdsm's
syncVolumeChain). The removed volume stays, ILLEGAL and unlinked, for the
engine to delete (Volume.delete on the SPM).

Progress is reported as vdsm does, in the VM's stats: vmJobs {jobUUID: {id,
jobType: block, blockJobType: commit, drive, imgUUID, bandwidth, cur, end}}
while the job runs; the job is gone from vmJobs when the merge is over, and
the domain XML (hash) tells what the chain became. Job state changes come
from libvirt's block job events; the job's figures are refreshed every
`poll_interval_s` (which also catches an event that was lost).

Not done: merges are not persisted, so an agent restart in the middle of one
stops tracking it (QEMU finishes the copy; an active commit then stays
READY until the engine merges again, which pivots it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from protocol.jsonrpc import JsonRpcError

from .disks import Drive, find_drive
from .drivestorage import DriveStorage
from .errors import image_not_found, merge_failed
from .hypervisor import BlockJobStatus, DomainEvent, Hypervisor, HypervisorError

__all__ = ["MergeJob", "LiveMerges"]

log = logging.getLogger(__name__)

Spawn = Callable[[Awaitable[Any], str], None]
ChainChanged = Callable[[str], Awaitable[None]]


@dataclass(eq=False)
class MergeJob:
    id: str
    vm_id: str
    drive: str
    sd: str
    img: str
    base: str
    top: str
    bandwidth_mib_s: int
    active: bool
    cur: int = 0
    end: int = 0
    events: asyncio.Queue[BlockJobStatus] = field(default_factory=asyncio.Queue)

    def info(self) -> dict[str, Any]:
        # cur and end are strings, as vdsm sends them (an xmlrpc-era leftover
        # the engine expects).
        return {"id": self.id, "jobType": "block", "blockJobType": "commit",
                "drive": self.drive, "imgUUID": self.img, "bandwidth": self.bandwidth_mib_s,
                "cur": str(self.cur), "end": str(self.end)}


class LiveMerges:
    def __init__(self, hypervisor: Hypervisor, storage: DriveStorage | None, spawn: Spawn,
                 chain_changed: ChainChanged, jobs_changed: Callable[[str], None], *,
                 poll_interval_s: float = 2.0, pivot_timeout_s: float = 60.0) -> None:
        self.hypervisor = hypervisor
        self.storage = storage
        self._spawn = spawn
        self._chain_changed = chain_changed
        self._jobs_changed = jobs_changed
        self.poll_interval_s = poll_interval_s
        self.pivot_timeout_s = pivot_timeout_s
        self.jobs: dict[str, MergeJob] = {}

    # ------------------------------------------------------------ queries
    def vm_jobs(self, vm_id: str) -> dict[str, dict[str, Any]]:
        return {j.id: j.info() for j in self.jobs.values() if j.vm_id == vm_id}

    def busy_drives(self, vm_id: str) -> set[str]:
        return {j.drive for j in self.jobs.values() if j.vm_id == vm_id}

    # ------------------------------------------------------------- events
    def on_event(self, ev: DomainEvent) -> None:
        for job in self.jobs.values():
            if job.vm_id == ev.uuid and job.drive == ev.disk:
                try:
                    job.events.put_nowait(BlockJobStatus(ev.detail))
                except ValueError:
                    log.warning("unknown block job status %r for %s", ev.detail, job.id)

    def vm_gone(self, vm_id: str) -> None:
        """The VM stopped: its merges end (as failed; the chain is unchanged or
        the metadata already says what is safe)."""
        for job in self.jobs.values():
            if job.vm_id == vm_id:
                job.events.put_nowait(BlockJobStatus.CANCELED)

    # -------------------------------------------------------------- start
    async def start(self, vm_id: str, sd: str, img: str, vol: str, base: str, top: str,
                    bandwidth_mib_s: int, job_id: str) -> None:
        if self.storage is None:
            raise merge_failed("this agent has no storage to merge volumes on")
        if job_id in self.jobs:
            raise merge_failed(f"job {job_id} already exists")
        try:
            xml = await self.hypervisor.get_xml(vm_id)
        except HypervisorError as exc:
            raise merge_failed(str(exc)) from None
        drive = find_drive(xml, sd, img)
        if drive is None or vol not in drive.volumes:
            raise image_not_found(f"Cannot find drive (domainID={sd}, imageID={img}, "
                                  f"volumeID={vol}), job={job_id}")
        self._check_chain(drive, base, top, job_id)
        if drive.name in self.busy_drives(vm_id):
            raise merge_failed(f"drive {drive.name} already has a merge job, job={job_id}")
        try:
            base_info = await self.storage.volume_info(sd, img, base)
        except JsonRpcError as exc:
            raise merge_failed(f"{exc.message}, job={job_id}") from None
        if base_info.get("voltype") == "SHARED":
            raise merge_failed(f"base volume {base} is shared (a template), job={job_id}")
        active = top == drive.volumes[0]
        job = MergeJob(job_id, vm_id, drive.name, sd, img, base, top, bandwidth_mib_s, active)
        self.jobs[job.id] = job  # before the commit: its events must find the job
        self._jobs_changed(vm_id)
        log.info("VM %s: merge job %s on %s: %s into %s (%s commit), chain %s", vm_id, job.id,
                 drive.name, top, base, "active" if active else "internal", drive.volumes)
        try:
            await self.hypervisor.block_commit(vm_id, drive.name, drive.target(base),
                                               drive.target(top), bandwidth_mib_s, active)
        except HypervisorError as exc:
            self._untrack(job)
            raise merge_failed(f"{exc}, job={job_id}") from None
        self._spawn(self._run(job), f"merge {job.id}")

    @staticmethod
    def _check_chain(drive: Drive, base: str, top: str, job_id: str) -> None:
        chain = drive.volumes  # leaf first
        for vol, what in ((top, "top"), (base, "base")):
            if vol not in chain:
                raise merge_failed(f"{what} volume {vol} is not in the chain {chain} of "
                                   f"drive {drive.name}, job={job_id}")
        if chain.index(base) <= chain.index(top):
            raise merge_failed(f"base {base} is not below top {top} in {chain}, "
                               f"job={job_id}")

    def _untrack(self, job: MergeJob) -> None:
        self.jobs.pop(job.id, None)
        self._jobs_changed(job.vm_id)

    # ---------------------------------------------------------------- run
    async def _run(self, job: MergeJob) -> None:
        try:
            status = await self._wait(job, (BlockJobStatus.READY,) if job.active
                                      else (BlockJobStatus.COMPLETED,), None)
            if job.active and status is BlockJobStatus.READY:
                status = await self._pivot(job)
            if status is BlockJobStatus.COMPLETED:
                await self._sync(job)
                log.info("VM %s: merge job %s done", job.vm_id, job.id)
            else:
                log.warning("VM %s: merge job %s ended %s", job.vm_id, job.id, status.value)
        except asyncio.CancelledError:
            self._untrack(job)  # the agent is stopping
            raise
        except Exception:
            log.exception("VM %s: merge job %s failed", job.vm_id, job.id)
        # The new XML (hash) first: when the engine sees the job gone, the
        # chain it then reads is the final one.
        try:
            await self._chain_changed(job.vm_id)
        except Exception as exc:
            log.warning("VM %s: refreshing the XML after merge %s: %s", job.vm_id, job.id, exc)
        self._untrack(job)

    async def _wait(self, job: MergeJob, wanted: tuple[BlockJobStatus, ...],
                    timeout_s: float | None) -> BlockJobStatus:
        """Until the job reaches a wanted state or ends; figures refreshed meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            wait_s = self.poll_interval_s
            if deadline is not None:
                wait_s = min(wait_s, deadline - loop.time())
                if wait_s <= 0:
                    raise TimeoutError(f"merge job {job.id}: no {wanted[0].value} within "
                                       f"{timeout_s} s")
            status: BlockJobStatus | None
            try:
                status = await asyncio.wait_for(job.events.get(), wait_s)
            except asyncio.TimeoutError:
                status = await self._poll(job)
            if status is None:
                continue
            if status in wanted or status in (BlockJobStatus.FAILED,
                                              BlockJobStatus.CANCELED,
                                              BlockJobStatus.COMPLETED):
                return status

    async def _poll(self, job: MergeJob) -> BlockJobStatus | None:
        """Refresh cur/end; a state an event may have missed, or None."""
        try:
            info = await self.hypervisor.block_job_info(job.vm_id, job.drive)
        except HypervisorError as exc:
            log.debug("block job info of %s: %s", job.id, exc)
            return None
        if info is None:
            # The job is gone (its event lost): did the chain change?
            xml = await self.hypervisor.get_xml(job.vm_id)
            drive = find_drive(xml, job.sd, job.img)
            if drive is not None and job.top not in drive.volumes:
                return BlockJobStatus.COMPLETED
            return BlockJobStatus.FAILED
        if (job.cur, job.end) != (info.cur, info.end):
            job.cur, job.end = info.cur, info.end
            self._jobs_changed(job.vm_id)
        if job.active and info.ready:
            xml = await self.hypervisor.get_xml(job.vm_id)
            drive = find_drive(xml, job.sd, job.img)
            if drive is not None and drive.mirror_ready:
                return BlockJobStatus.READY
        return None

    async def _pivot(self, job: MergeJob) -> BlockJobStatus:
        assert self.storage is not None
        info = await self.hypervisor.block_job_info(job.vm_id, job.drive)
        if info is not None:
            job.cur, job.end = info.cur, info.end
            self._jobs_changed(job.vm_id)
        xml = await self.hypervisor.get_xml(job.vm_id)
        drive = find_drive(xml, job.sd, job.img)
        if drive is None:
            raise RuntimeError(f"drive of image {job.img} is gone")
        # Before the pivot: the leaf leaves the chain in the metadata (ILLEGAL).
        await self.storage.sync_volume_chain(job.sd, job.img, job.top,
                                             [v for v in drive.volumes if v != job.top])
        log.info("VM %s: merge job %s ready, pivoting %s to %s", job.vm_id, job.id,
                 job.drive, job.base)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.pivot_timeout_s
        while True:
            try:
                await self.hypervisor.block_job_abort(job.vm_id, job.drive, pivot=True)
                break
            except HypervisorError as exc:
                # libvirt may say "not ready" right after the READY event.
                if loop.time() + self.poll_interval_s > deadline:
                    raise
                log.info("VM %s: pivot of %s refused (%s), trying again", job.vm_id,
                         job.id, exc)
                await asyncio.sleep(self.poll_interval_s)
        return await self._wait(job, (BlockJobStatus.COMPLETED,), self.pivot_timeout_s)

    async def _sync(self, job: MergeJob) -> None:
        assert self.storage is not None
        xml = await self.hypervisor.get_xml(job.vm_id)
        drive = find_drive(xml, job.sd, job.img)
        if drive is None or not drive.volumes:
            raise RuntimeError(f"drive of image {job.img} is gone")
        actual = drive.volumes
        if job.top in actual:
            raise RuntimeError(f"{job.top} is still in the chain {actual}")
        removed = await self.storage.sync_volume_chain(job.sd, job.img, actual[0], actual)
        log.info("VM %s: chain of %s is now %s (unlinked %s)", job.vm_id, job.drive, actual,
                 removed or [job.top])
