"""The one place where host reports meet the engine's view of VMs. Pure.

`reconcile(view, report)` compares what the engine believes about the VMs of
one host with what that host reported (a VM_status event or a full
getAllVmStats poll) and returns the changes to apply. Both events and polls
go through it, so there is one rule set for "what is true".

Rules:
- A report older than the last applied one (agent clock) is ignored.
- A status that differs, or a VM now running on this host, is a status change.
- A VM the agent reports Down is recorded Down (with its exit info) and then
  released on the host (VM.destroy), as vdsm expects the engine to do.
- A VM the engine believes runs on this host but a full report does not list
  went down without telling us ("vanished"), unless the engine changed it
  after the poll was sent (a VM.create still in flight).
- A running VM the engine does not know is external (started outside ov).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .report import RUNNING_STATUSES, HostReport, ReportedVm

__all__ = ["VmView", "StatusChange", "StatsUpdate", "Vanished", "ExternalVm", "ReleaseVm",
           "Change", "reconcile"]


@dataclass(frozen=True, slots=True)
class VmView:
    """What the engine believes about one VM (a row of vm_dynamic, in memory)."""

    vm_id: str
    name: str
    status: str
    run_on_host_id: str | None
    agent_time: int
    status_changed_at: float  # engine epoch seconds


@dataclass(frozen=True, slots=True)
class StatusChange:
    vm_id: str
    host_id: str
    old_status: str
    new_status: str
    agent_time: int
    report: ReportedVm


@dataclass(frozen=True, slots=True)
class StatsUpdate:
    vm_id: str
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Vanished:
    vm_id: str
    host_id: str
    old_status: str


@dataclass(frozen=True, slots=True)
class ExternalVm:
    host_id: str
    report: ReportedVm


@dataclass(frozen=True, slots=True)
class ReleaseVm:
    """Tell the host to forget a Down VM (VM.destroy)."""

    vm_id: str
    host_id: str


Change = StatusChange | StatsUpdate | Vanished | ExternalVm | ReleaseVm


def reconcile(view: Mapping[str, VmView], on_host: Iterable[str],
              report: HostReport) -> list[Change]:
    """`view`: every VM the engine knows, by id; `on_host`: the ids the engine
    believes run on the reporting host (an index, so a poll costs O(its VMs))."""
    host = report.host_id
    changes: list[Change] = []
    seen: set[str] = set()
    for r in report.vms:
        seen.add(r.vm_id)
        v = view.get(r.vm_id)
        if v is None:
            if r.status == "down":
                changes.append(ReleaseVm(r.vm_id, host))
            else:
                changes.append(ExternalVm(host, r))
            continue
        if r.agent_time and r.agent_time < v.agent_time and v.run_on_host_id == host:
            continue  # stale: we already applied something newer from this host
        elsewhere = v.run_on_host_id is not None and v.run_on_host_id != host
        if r.status == "down":
            if not elsewhere and v.status != "down":
                changes.append(StatusChange(r.vm_id, host, v.status, "down", r.agent_time, r))
            changes.append(ReleaseVm(r.vm_id, host))
            continue
        if elsewhere and v.status in RUNNING_STATUSES and v.status not in ("unknown",
                                                                            "migrating"):
            # Another host owns it in our books; trust the agent that runs it only
            # when the owner lost it (unknown) or a migration moves it.
            continue
        if r.status != v.status or v.run_on_host_id != host:
            changes.append(StatusChange(r.vm_id, host, v.status, r.status, r.agent_time, r))
        if r.stats is not None:
            changes.append(StatsUpdate(r.vm_id, r.stats))
    if report.complete:
        for vm_id in on_host:
            v = view.get(vm_id)
            if v is None or v.run_on_host_id != host or vm_id in seen:
                continue
            if v.status not in RUNNING_STATUSES:
                continue
            if v.status_changed_at > report.requested_at:
                continue  # changed by us after the poll left: not evidence
            changes.append(Vanished(v.vm_id, host, v.status))
    return changes
