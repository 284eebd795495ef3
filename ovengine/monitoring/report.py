"""What hosts report about VMs, turned into plain values (vdsm -> engine terms).

vdsm status strings become oVirt REST VmStatus values; a negative
monitorResponse means QEMU is not answering ("not_responding").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["VDSM_TO_STATUS", "ReportedVm", "HostReport", "reported_vm_from_stats",
           "reported_vms_from_event", "RUNNING_STATUSES"]

VDSM_TO_STATUS = {
    "WaitForLaunch": "wait_for_launch",
    "Powering up": "powering_up",
    "Up": "up",
    "Paused": "paused",
    "Powering down": "powering_down",
    "RebootInProgress": "reboot_in_progress",
    "Migration Source": "migrating",
    "Migration Destination": "migrating",
    "Saving State": "saving_state",
    "Restoring state": "restoring_state",
    "Down": "down",
}

# Engine statuses of a VM that occupies a host.
RUNNING_STATUSES = frozenset({
    "wait_for_launch", "powering_up", "up", "paused", "powering_down", "reboot_in_progress",
    "migrating", "saving_state", "restoring_state", "not_responding", "unknown"})


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True, slots=True)
class ReportedVm:
    vm_id: str
    status: str                 # engine status (REST enum value)
    agent_time: int             # statusTime / notify_time (agent clock, ms)
    name: str | None = None
    exit_code: int | None = None
    exit_message: str | None = None
    exit_reason: int | None = None
    pause_code: str | None = None
    monitor_response: int = 0
    xml_hash: str | None = None
    display: tuple[dict[str, str], ...] = ()
    # Present in full stats only: cpu_user, cpu_sys, mem_usage, elapsed_s, network, disks
    stats: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class HostReport:
    host_id: str
    vms: tuple[ReportedVm, ...]
    # True for a full list (getAllVmStats): VMs missing from it are not on the host.
    complete: bool
    # Engine wall clock (epoch s) when the poll was sent; DB changes after it
    # are newer than the report.
    requested_at: float = 0.0


def _engine_status(vdsm_status: str, monitor_response: int) -> str:
    status = VDSM_TO_STATUS.get(vdsm_status, "unknown")
    if monitor_response < 0 and status in ("up", "powering_up", "powering_down", "paused"):
        return "not_responding"
    return status


def reported_vm_from_stats(s: dict[str, Any], sampled_at: int | None = None) -> ReportedVm:
    """One getAllVmStats entry."""
    monitor = _int(s.get("monitorResponse"), 0)
    status = _engine_status(str(s.get("status", "")), monitor)
    stats = None
    if status != "down":
        stats = {
            "cpu_user": _float(s.get("cpuUser")),
            "cpu_sys": _float(s.get("cpuSys")),
            "mem_usage": _int(s.get("memUsage")),
            "elapsed_s": _int(s.get("elapsedTime")),
            "network": s.get("network") or {},
            "disks": s.get("disks") or {},
        }
    return ReportedVm(
        vm_id=str(s["vmId"]).lower(), status=status,
        agent_time=_int(s.get("statusTime"), sampled_at or 0),
        name=s.get("vmName"),
        exit_code=s.get("exitCode"), exit_message=s.get("exitMessage"),
        exit_reason=s.get("exitReason"), pause_code=s.get("pauseCode"),
        monitor_response=monitor, xml_hash=s.get("hash"),
        display=tuple(s.get("displayInfo") or ()), stats=stats)


def reported_vms_from_event(params: dict[str, Any]) -> list[ReportedVm]:
    """The VMs of a |virt|VM_status| event (ordered by notify_time)."""
    notify_time = _int(params.get("notify_time"))
    out = []
    for key, body in params.items():
        if key == "notify_time" or not isinstance(body, dict) or "status" not in body:
            continue
        monitor = _int(body.get("monitorResponse"), 0)
        out.append(ReportedVm(
            vm_id=key.lower(), status=_engine_status(str(body["status"]), monitor),
            agent_time=notify_time, name=body.get("vmName"),
            exit_code=body.get("exitCode"), exit_message=body.get("exitMessage"),
            exit_reason=body.get("exitReason"), pause_code=body.get("pauseCode"),
            monitor_response=monitor, xml_hash=body.get("hash"),
            display=tuple(body.get("displayInfo") or ())))
    return out
