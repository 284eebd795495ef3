"""The audit log (REST /events): oVirt event codes, severities, and the writer."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol.flow import flow_id

from .bus import EventBus

__all__ = ["AuditType", "AuditLog", "AuditRefs", "SEVERITY"]

log = logging.getLogger(__name__)


class AuditType(enum.IntEnum):
    """oVirt AuditLogType codes used by ov (same numbers, so tools that filter
    on them keep working)."""

    VDC_START = 1
    VDC_STOP = 2
    VDS_FAILURE = 12
    VDS_DETECTED = 13
    VDS_RECOVER = 14
    VDS_MAINTENANCE = 15
    VDS_ACTIVATE = 16
    USER_VDC_LOGIN = 30
    USER_VDC_LOGOUT = 31
    USER_RUN_VM = 32
    USER_STOP_VM = 33
    USER_ADD_VM = 34
    USER_UPDATE_VM = 35
    USER_REMOVE_VM = 36
    USER_PAUSE_VM = 39
    USER_RESUME_VM = 40
    USER_ADD_VDS = 42
    USER_UPDATE_VDS = 43
    USER_REMOVE_VDS = 44
    USER_CREATE_SNAPSHOT = 45
    USER_ADD_VM_TEMPLATE = 48
    USER_REMOVE_VM_TEMPLATE = 50
    USER_FAILED_RUN_VM = 54
    USER_FAILED_STOP_VM = 56
    USER_FAILED_REMOVE_VM = 59
    VM_DOWN = 61
    VM_MIGRATION_START = 62
    VM_MIGRATION_DONE = 63
    VM_MIGRATION_FAILED = 65
    VM_FAILURE = 66
    USER_CREATE_SNAPSHOT_FINISHED_SUCCESS = 68
    USER_CREATE_SNAPSHOT_FINISHED_FAILURE = 69
    USER_INITIATED_SHUTDOWN_VM = 73
    USER_FAILED_SHUTDOWN_VM = 74
    USER_REMOVE_VM_FINISHED = 113
    USER_VDC_LOGIN_FAILED = 114
    VM_DOWN_ERROR = 119
    VM_NOT_RESPONDING = 126
    VM_PAUSED_ENOSPC = 138
    VM_PAUSED_ERROR = 139
    VM_SET_TO_UNKNOWN_STATUS = 142
    VM_PAUSED_EIO = 145
    USER_STARTED_VM = 153
    USER_REBOOT_VM = 157
    USER_REMOVE_SNAPSHOT = 342
    USER_SUSPEND_VM = 501
    VDS_INITIALIZING = 514
    VDS_SET_NONOPERATIONAL = 517
    USER_VDS_MAINTENANCE = 600
    USER_ADD_PERMISSION = 850
    USER_REMOVE_PERMISSION = 852
    USER_ADD_ROLE = 854
    USER_REMOVE_ROLE = 858
    NETWORK_REMOVE_VM_INTERFACE = 930
    NETWORK_REMOVE_VM_INTERFACE_FAILED = 931
    NETWORK_ADD_VM_INTERFACE = 932
    NETWORK_ADD_VM_INTERFACE_FAILED = 933
    NETWORK_UPDATE_VM_INTERFACE = 934
    NETWORK_UPDATE_VM_INTERFACE_FAILED = 935
    HA_VM_FAILED = 9602
    HA_VM_RESTART_FAILED = 9603
    # oVirt's code for its unlock-entity script; we log it when an engine
    # start releases what a crashed engine left locked.
    USER_RUN_UNLOCK_ENTITY_SCRIPT = 2024
    # ov's own codes (99xx) for changes oVirt has no dedicated event for.
    VM_STATUS_CHANGED = 9900
    HOST_STATUS_CHANGED = 9901
    VM_EXTERNAL_DISCOVERED = 9902


SEVERITY: dict[int, str] = {
    AuditType.VDS_FAILURE: "error",
    AuditType.VM_DOWN_ERROR: "error",
    AuditType.VM_FAILURE: "error",
    AuditType.USER_FAILED_RUN_VM: "error",
    AuditType.USER_FAILED_STOP_VM: "error",
    AuditType.USER_FAILED_REMOVE_VM: "error",
    AuditType.USER_FAILED_SHUTDOWN_VM: "error",
    AuditType.USER_VDC_LOGIN_FAILED: "error",
    AuditType.VM_MIGRATION_FAILED: "error",
    AuditType.USER_CREATE_SNAPSHOT_FINISHED_FAILURE: "error",
    AuditType.VM_NOT_RESPONDING: "warning",
    AuditType.VM_SET_TO_UNKNOWN_STATUS: "warning",
    AuditType.VM_PAUSED_EIO: "error",
    AuditType.VM_PAUSED_ENOSPC: "error",
    AuditType.VM_PAUSED_ERROR: "error",
    AuditType.VDS_SET_NONOPERATIONAL: "error",
    AuditType.USER_RUN_UNLOCK_ENTITY_SCRIPT: "warning",
    AuditType.HA_VM_FAILED: "error",
    AuditType.NETWORK_REMOVE_VM_INTERFACE_FAILED: "error",
    AuditType.NETWORK_ADD_VM_INTERFACE_FAILED: "error",
    AuditType.NETWORK_UPDATE_VM_INTERFACE_FAILED: "error",
    AuditType.HA_VM_RESTART_FAILED: "error",
}


@dataclass(frozen=True, slots=True)
class AuditRefs:
    """Entities an audit entry is about (ids and names, as oVirt stores them)."""

    vm_id: Any = None
    vm_name: str | None = None
    host_id: Any = None
    host_name: str | None = None
    cluster_id: Any = None
    data_center_id: Any = None
    storage_domain_id: Any = None
    template_id: Any = None
    user_id: Any = None
    user_name: str | None = None
    job_id: Any = None


class AuditLog:
    def __init__(self, pool: asyncpg.Pool, bus: EventBus) -> None:
        self.pool = pool
        self.bus = bus

    async def log(self, kind: AuditType, message: str, refs: AuditRefs = AuditRefs(),
                  severity: str | None = None, conn: asyncpg.Connection | None = None) -> int:
        sev = severity or SEVERITY.get(kind, "normal")
        correlation = flow_id.get()
        sql = """INSERT INTO audit_log (log_type, severity, message, user_id, user_name, vm_id,
                     vm_name, host_id, host_name, cluster_id, data_center_id, storage_domain_id,
                     template_id, correlation_id, job_id)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)
                 RETURNING id, log_time"""
        args = (int(kind), sev, message, refs.user_id, refs.user_name, refs.vm_id, refs.vm_name,
                refs.host_id, refs.host_name, refs.cluster_id, refs.data_center_id,
                refs.storage_domain_id, refs.template_id, correlation, refs.job_id)
        row = await (conn or self.pool).fetchrow(sql, *args)
        assert row is not None
        log.info("audit %d [%s] %s", int(kind), sev, message)
        self.bus.publish("audit", {
            "id": row["id"], "code": int(kind), "severity": sev, "description": message,
            "time": row["log_time"].isoformat(), "correlation_id": correlation,
            "vm_id": str(refs.vm_id) if refs.vm_id else None,
            "host_id": str(refs.host_id) if refs.host_id else None})
        return int(row["id"])
