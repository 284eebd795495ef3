"""One table of JSON-RPC error codes: the JSON-RPC 2.0 standard ones and vdsm's.

Codes and meanings follow what vdsm clients (vdsm-jsonrpc-java, vdsm's python
client) expect on the wire; the message texts are ours.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorCode", "default_message"]


class ErrorCode(enum.IntEnum):
    # JSON-RPC 2.0
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # vdsm (virt)
    NO_VM = 1
    TIMEOUT = 3
    VM_EXISTS = 4
    VM_DOWN = 6
    CREATE_ERROR = 9
    NO_CONNECTION_TO_PEER = 10
    MISSING_PARAM = 11
    MIGRATE_ERROR = 12
    IMAGE_NOT_FOUND = 13
    OUT_OF_MEMORY = 14
    UNEXPECTED = 16
    RESOURCE_UNAVAILABLE = 40
    DESTROY_ERROR = 42
    HOTPLUG_DISK = 45
    HOTUNPLUG_DISK = 46
    SNAPSHOT_ERROR = 48
    NO_SUCH_JOB = 66
    MIGRATION_NOT_IN_PROGRESS = 81
    MIGRATION_LIMIT_EXCEEDED = 82
    INVALID_PARAMETER = 91
    RECOVERY_IN_PROGRESS = 99
    GENERAL = 100
    # vdsm (storage)
    VOLUME_DOES_NOT_EXIST = 201
    VOLUME_EXISTS = 212
    POOL_UNKNOWN = 309
    DOMAIN_DOES_NOT_EXIST = 358
    DOMAIN_EXISTS = 365
    UNKNOWN_TASK = 401
    ACQUIRE_LOCK_FAILURE = 651
    HOST_ID_FAILURE = 661


_MESSAGES: dict[int, str] = {
    ErrorCode.PARSE_ERROR: "Parse error",
    ErrorCode.INVALID_REQUEST: "Invalid request",
    ErrorCode.METHOD_NOT_FOUND: "Method not found",
    ErrorCode.INVALID_PARAMS: "Invalid params",
    ErrorCode.INTERNAL_ERROR: "Internal error",
    ErrorCode.NO_VM: "Virtual machine does not exist",
    ErrorCode.TIMEOUT: "Operation timed out",
    ErrorCode.VM_EXISTS: "Virtual machine already exists",
    ErrorCode.VM_DOWN: "Virtual machine is down",
    ErrorCode.CREATE_ERROR: "Error creating the requested VM",
    ErrorCode.NO_CONNECTION_TO_PEER: "No connection to peer",
    ErrorCode.MISSING_PARAM: "Missing required parameter",
    ErrorCode.MIGRATE_ERROR: "Fatal error during migration",
    ErrorCode.IMAGE_NOT_FOUND: "Drive image file could not be found",
    ErrorCode.OUT_OF_MEMORY: "Not enough free memory to create VM",
    ErrorCode.UNEXPECTED: "Unexpected exception",
    ErrorCode.RESOURCE_UNAVAILABLE: "Resource unavailable",
    ErrorCode.DESTROY_ERROR: "Failed to destroy VM",
    ErrorCode.HOTPLUG_DISK: "Failed to hotplug disk",
    ErrorCode.HOTUNPLUG_DISK: "Failed to hotunplug disk",
    ErrorCode.SNAPSHOT_ERROR: "Snapshot failed",
    ErrorCode.NO_SUCH_JOB: "Job does not exist",
    ErrorCode.MIGRATION_NOT_IN_PROGRESS: "Migration not in progress",
    ErrorCode.MIGRATION_LIMIT_EXCEEDED: "Incoming migration limit exceeded",
    ErrorCode.INVALID_PARAMETER: "Invalid parameter",
    ErrorCode.RECOVERY_IN_PROGRESS: "Recovering from crash or initializing",
    ErrorCode.GENERAL: "General exception",
    ErrorCode.VOLUME_DOES_NOT_EXIST: "Volume does not exist",
    ErrorCode.VOLUME_EXISTS: "Volume already exists",
    ErrorCode.POOL_UNKNOWN: "Unknown pool id, pool not connected",
    ErrorCode.DOMAIN_DOES_NOT_EXIST: "Storage domain does not exist",
    ErrorCode.DOMAIN_EXISTS: "Storage domain already exists",
    ErrorCode.UNKNOWN_TASK: "Task id unknown",
    ErrorCode.ACQUIRE_LOCK_FAILURE: "Could not acquire resource lock",
    ErrorCode.HOST_ID_FAILURE: "Cannot acquire host id",
}


def default_message(code: int) -> str:
    return _MESSAGES.get(code, "Error")
