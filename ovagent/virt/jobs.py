"""Host jobs (Host.getJobs): long operations the engine follows by id, as vdsm.

A job is registered under the id the engine chose (e.g. VM.snapshot's
jobUUID), runs in the background, and ends done, failed (with the error) or
aborted. Finished jobs are reported for `keep_finished_s` so a poll that
comes late still sees how they ended, then forgotten. (Live merges are not
host jobs: they show in the VM's stats as vmJobs, as in vdsm.)
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from protocol.jsonrpc import ErrorCode, JsonRpcError

__all__ = ["JobStatus", "HostJob", "HostJobs", "JobExistsError"]


class JobStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.ABORTED)


class JobExistsError(JsonRpcError):
    def __init__(self, job_id: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMETER, f"Invalid parameter: job {job_id} "
                                                      "already exists")


@dataclass
class HostJob:
    id: str
    job_type: str  # virt, storage
    description: str  # snapshot_vm, ...
    status: JobStatus = JobStatus.PENDING
    error: JsonRpcError | None = None
    progress: int | None = None
    finished_at: float | None = field(default=None, repr=False)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "job_type": self.job_type,
                               "description": self.description,
                               "status": self.status.value}
        if self.error is not None:
            out["error"] = {"code": int(self.error.code), "message": self.error.message}
        if self.progress is not None:
            out["progress"] = self.progress
        return out


class HostJobs:
    def __init__(self, keep_finished_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_finished_s = keep_finished_s
        self.clock = clock
        self._jobs: dict[str, HostJob] = {}

    def add(self, job: HostJob) -> HostJob:
        self._purge()
        if job.id in self._jobs:
            raise JobExistsError(job.id)
        self._jobs[job.id] = job
        return job

    def running(self, job: HostJob) -> None:
        job.status = JobStatus.RUNNING

    def finish(self, job: HostJob, error: JsonRpcError | None = None,
               aborted: bool = False) -> None:
        job.status = JobStatus.ABORTED if aborted else \
            JobStatus.FAILED if error is not None else JobStatus.DONE
        job.error = error
        job.finished_at = self.clock()

    def get(self, job_id: str) -> HostJob | None:
        return self._jobs.get(job_id)

    def report(self, job_type: str | None = None,
               job_ids: list[str] | None = None) -> dict[str, Any]:
        self._purge()
        return {job.id: job.info() for job in self._jobs.values()
                if (job_type is None or job.job_type == job_type)
                and (not job_ids or job.id in job_ids)}

    def _purge(self) -> None:
        now = self.clock()
        for job_id in [j.id for j in self._jobs.values()
                       if j.finished_at is not None
                       and now - j.finished_at > self.keep_finished_s]:
            del self._jobs[job_id]
