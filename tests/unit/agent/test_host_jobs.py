"""Host jobs (Host.getJobs) bookkeeping."""

from __future__ import annotations

import pytest

from ovagent.virt.errors import snapshot_error
from ovagent.virt.jobs import HostJob, HostJobs, JobExistsError


def test_report_filter_and_forget() -> None:
    now = [0.0]
    jobs = HostJobs(keep_finished_s=10, clock=lambda: now[0])
    a = jobs.add(HostJob("a", "virt", "snapshot_vm"))
    b = jobs.add(HostJob("b", "storage", "copy"))
    with pytest.raises(JobExistsError):
        jobs.add(HostJob("a", "virt", "snapshot_vm"))
    jobs.running(a)
    assert jobs.report()["a"]["status"] == "running"
    assert set(jobs.report("virt")) == {"a"} and set(jobs.report(job_ids=["b"])) == {"b"}
    jobs.finish(a, snapshot_error("boom"))
    jobs.finish(b)
    report = jobs.report()
    assert report["a"]["error"] == {"code": 48, "message": "Snapshot failed: boom"}
    assert report["a"]["status"] == "failed" and report["b"]["status"] == "done"
    now[0] = 11
    assert jobs.report() == {}
