"""libvirt's numeric states, reasons and event codes, mapped to our vocabulary."""

from __future__ import annotations

import libvirt

from ..hypervisor import BlockJobStatus, DomainEventKind, DomainState

__all__ = ["domain_state", "state_reason", "event_kind", "event_detail", "block_job_kind",
           "block_job_status"]

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: DomainState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.SUSPENDED_PM,
}

_PAUSED_REASONS = {
    libvirt.VIR_DOMAIN_PAUSED_USER: "user",
    libvirt.VIR_DOMAIN_PAUSED_MIGRATION: "migration",
    libvirt.VIR_DOMAIN_PAUSED_SAVE: "save",
    libvirt.VIR_DOMAIN_PAUSED_DUMP: "dump",
    libvirt.VIR_DOMAIN_PAUSED_IOERROR: "ioerror",
    libvirt.VIR_DOMAIN_PAUSED_WATCHDOG: "watchdog",
    libvirt.VIR_DOMAIN_PAUSED_SHUTTING_DOWN: "shutting_down",
    libvirt.VIR_DOMAIN_PAUSED_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PAUSED_STARTING_UP: "starting_up",
}

_SHUTOFF_REASONS = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "destroyed",
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: "migrated",
    libvirt.VIR_DOMAIN_SHUTOFF_SAVED: "saved",
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "failed",
}

_EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: DomainEventKind.STARTED,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: DomainEventKind.SUSPENDED,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: DomainEventKind.RESUMED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: DomainEventKind.STOPPED,
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: DomainEventKind.SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: DomainEventKind.CRASHED,
}

_DETAILS: dict[int, dict[int, str]] = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: {
        libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED: "booted",
        libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED: "migrated",
        libvirt.VIR_DOMAIN_EVENT_STARTED_RESTORED: "restored",
    },
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: {
        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED: "user",
        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED: "migration",
        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR: "ioerror",
        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG: "watchdog",
        libvirt.VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR: "api_error",
    },
    libvirt.VIR_DOMAIN_EVENT_RESUMED: {
        libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED: "user",
        libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED: "migration",
    },
    libvirt.VIR_DOMAIN_EVENT_STOPPED: {
        libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: "shutdown",
        libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED: "destroyed",
        libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED: "crashed",
        libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED: "migrated",
        libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED: "saved",
        libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED: "failed",
    },
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: {
        libvirt.VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED: "finished",
        libvirt.VIR_DOMAIN_EVENT_SHUTDOWN_GUEST: "guest",
        libvirt.VIR_DOMAIN_EVENT_SHUTDOWN_HOST: "host",
    },
}


def domain_state(code: int) -> DomainState:
    return _STATES.get(code, DomainState.UNKNOWN)


def state_reason(state_code: int, reason_code: int) -> str:
    if state_code == libvirt.VIR_DOMAIN_PAUSED:
        return _PAUSED_REASONS.get(reason_code, "unknown")
    if state_code == libvirt.VIR_DOMAIN_SHUTOFF:
        return _SHUTOFF_REASONS.get(reason_code, "unknown")
    return ""


def event_kind(event: int) -> DomainEventKind:
    return _EVENTS.get(event, DomainEventKind.OTHER)


def event_detail(event: int, detail: int) -> str:
    return _DETAILS.get(event, {}).get(detail, str(detail))


_BLOCK_JOB_KINDS = {
    libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_PULL: "pull",
    libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_COPY: "copy",
    libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT: "commit",
    libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT: "active_commit",
}

_BLOCK_JOB_STATUSES = {
    libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED: BlockJobStatus.COMPLETED,
    libvirt.VIR_DOMAIN_BLOCK_JOB_FAILED: BlockJobStatus.FAILED,
    libvirt.VIR_DOMAIN_BLOCK_JOB_CANCELED: BlockJobStatus.CANCELED,
    libvirt.VIR_DOMAIN_BLOCK_JOB_READY: BlockJobStatus.READY,
}


def block_job_kind(code: int) -> str:
    return _BLOCK_JOB_KINDS.get(code, "unknown")


def block_job_status(code: int) -> BlockJobStatus:
    return _BLOCK_JOB_STATUSES.get(code, BlockJobStatus.FAILED)
