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
    MERGE_FAILED = 52
    NO_SUCH_JOB = 66
    MIGRATION_NOT_IN_PROGRESS = 81
    MIGRATION_LIMIT_EXCEEDED = 82
    INVALID_PARAMETER = 91
    RECOVERY_IN_PROGRESS = 99
    GENERAL = 100
    # vdsm (storage)
    STORAGE_EXCEPTION = 200
    VOLUME_DOES_NOT_EXIST = 201
    INCORRECT_FORMAT = 202
    VOLUME_HAS_CHILDREN = 204
    VOLUME_CREATION_ERROR = 205
    VOLUME_EXTENDING_ERROR = 206
    VOLUME_METADATA_READ_ERROR = 207
    VOLUME_METADATA_WRITE_ERROR = 208
    VOLUME_EXISTS = 212
    CANNOT_DELETE_VOLUME = 222
    CANNOT_DELETE_SHARED_VOLUME = 223
    VOLUME_COPY_ERROR = 225
    PREPARE_ILLEGAL_VOLUME = 227
    CREATE_VOLUME_SIZE_ERROR = 229
    INCORRECT_TYPE = 231
    VOLUME_RESIZE_VALUE_ERROR = 232
    MERGE_SNAPSHOTS_ERROR = 250
    IMAGE_DELETE_ERROR = 256
    COPY_IMAGE_ERROR = 261
    IMAGE_DOES_NOT_EXIST_IN_SD = 268
    POOL_ACTION_ERROR = 300
    POOL_CREATION_ERROR = 301
    POOL_MASTER_NOT_FOUND = 304
    POOL_UNKNOWN = 309
    POOL_ALREADY_EXISTS = 316
    CANNOT_CONNECT_MULTIPLE_POOLS = 323
    POOL_WRONG_MASTER = 324
    DOMAIN_ACTION_ERROR = 350
    DOMAIN_CREATION_ERROR = 351
    DOMAIN_NOT_IN_POOL = 353
    DOMAIN_MASTER_ERROR = 355
    DOMAIN_DOES_NOT_EXIST = 358
    DOMAIN_FS_NOT_MOUNTED = 360
    DOMAIN_METADATA_NOT_FOUND = 364
    DOMAIN_EXISTS = 365
    DOMAIN_NOT_ACTIVE = 369
    DOMAIN_TYPE_ERROR = 372
    DOMAIN_STATUS_ERROR = 376
    DOMAIN_ALREADY_ATTACHED = 380
    DOMAIN_ACTIVE = 382
    CANNOT_DETACH_MASTER_DOMAIN = 383
    DOMAIN_CLASS_ERROR = 386
    UNSUPPORTED_DOMAIN_VERSION = 394
    UNKNOWN_TASK = 401
    TASK_STATE_ERROR = 410
    TASK_ABORTED = 411
    STORAGE_SERVER_CONNECTION_ERROR = 451
    STORAGE_SERVER_DISCONNECTION_ERROR = 452
    STORAGE_SERVER_VALIDATION_ERROR = 453
    STORAGE_SERVER_ACCESS_PERMISSION_ERROR = 469
    MOUNT_ERROR = 477
    IMAGE_DAEMON_ERROR = 482
    SPM_START_ERROR = 650
    ACQUIRE_LOCK_FAILURE = 651
    SPM_STOP_ERROR = 653
    SPM_STATUS_ERROR = 654
    HOST_ID_FAILURE = 661
    RELEASE_HOST_ID_FAILURE = 662
    METADATA_KEY_NOT_FOUND = 751
    METADATA_SEAL_IS_BROKEN = 752
    STORAGE_INVALID_PARAMETER = 1000
    OPERATION_IN_PROGRESS = 2005


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
    ErrorCode.MERGE_FAILED: "Merge failed",
    ErrorCode.NO_SUCH_JOB: "Job does not exist",
    ErrorCode.MIGRATION_NOT_IN_PROGRESS: "Migration not in progress",
    ErrorCode.MIGRATION_LIMIT_EXCEEDED: "Incoming migration limit exceeded",
    ErrorCode.INVALID_PARAMETER: "Invalid parameter",
    ErrorCode.RECOVERY_IN_PROGRESS: "Recovering from crash or initializing",
    ErrorCode.GENERAL: "General exception",
    ErrorCode.STORAGE_EXCEPTION: "General storage exception",
    ErrorCode.VOLUME_DOES_NOT_EXIST: "Volume does not exist",
    ErrorCode.INCORRECT_FORMAT: "Incorrect volume format",
    ErrorCode.VOLUME_HAS_CHILDREN: "Cannot delete a volume that has children",
    ErrorCode.VOLUME_CREATION_ERROR: "Error creating a new volume",
    ErrorCode.VOLUME_EXTENDING_ERROR: "Error extending volume",
    ErrorCode.VOLUME_METADATA_READ_ERROR: "Error reading volume metadata",
    ErrorCode.VOLUME_METADATA_WRITE_ERROR: "Error writing volume metadata",
    ErrorCode.VOLUME_EXISTS: "Volume already exists",
    ErrorCode.CANNOT_DELETE_VOLUME: "Volume deletion error",
    ErrorCode.CANNOT_DELETE_SHARED_VOLUME: "Shared volume cannot be deleted",
    ErrorCode.VOLUME_COPY_ERROR: "Volume copy failed",
    ErrorCode.PREPARE_ILLEGAL_VOLUME: "Cannot prepare illegal volume",
    ErrorCode.CREATE_VOLUME_SIZE_ERROR: "Requested size is too small",
    ErrorCode.INCORRECT_TYPE: "Incorrect volume preallocation type",
    ErrorCode.VOLUME_RESIZE_VALUE_ERROR: "Incorrect size value for volume resize",
    ErrorCode.MERGE_SNAPSHOTS_ERROR: "Error merging snapshots",
    ErrorCode.IMAGE_DELETE_ERROR: "Could not remove all volumes of the image",
    ErrorCode.COPY_IMAGE_ERROR: "Image copy failed",
    ErrorCode.IMAGE_DOES_NOT_EXIST_IN_SD: "Image does not exist in domain",
    ErrorCode.POOL_ACTION_ERROR: "Error in storage pool action",
    ErrorCode.POOL_CREATION_ERROR: "Error creating a storage pool",
    ErrorCode.POOL_MASTER_NOT_FOUND: "Cannot find master domain",
    ErrorCode.POOL_UNKNOWN: "Unknown pool id, pool not connected",
    ErrorCode.POOL_ALREADY_EXISTS: "Storage pool already exists",
    ErrorCode.CANNOT_CONNECT_MULTIPLE_POOLS: "Already connected to another pool",
    ErrorCode.POOL_WRONG_MASTER: "Wrong master domain or its version",
    ErrorCode.DOMAIN_ACTION_ERROR: "Error in storage domain action",
    ErrorCode.DOMAIN_CREATION_ERROR: "Error creating a storage domain",
    ErrorCode.DOMAIN_NOT_IN_POOL: "Storage domain not in pool",
    ErrorCode.DOMAIN_MASTER_ERROR: "Error validating master storage domain",
    ErrorCode.DOMAIN_DOES_NOT_EXIST: "Storage domain does not exist",
    ErrorCode.DOMAIN_FS_NOT_MOUNTED: "Storage domain remote path not mounted",
    ErrorCode.DOMAIN_METADATA_NOT_FOUND: "Storage domain invalid, metadata not found",
    ErrorCode.DOMAIN_EXISTS: "Storage domain already exists",
    ErrorCode.DOMAIN_NOT_ACTIVE: "Storage domain not active",
    ErrorCode.DOMAIN_TYPE_ERROR: "Unsupported storage domain type",
    ErrorCode.DOMAIN_STATUS_ERROR: "Unsupported storage domain status",
    ErrorCode.DOMAIN_ALREADY_ATTACHED: "Storage domain already attached to a pool",
    ErrorCode.DOMAIN_ACTIVE: "Illegal action, domain active",
    ErrorCode.CANNOT_DETACH_MASTER_DOMAIN: "Cannot detach the master domain",
    ErrorCode.DOMAIN_CLASS_ERROR: "Invalid domain class value",
    ErrorCode.UNSUPPORTED_DOMAIN_VERSION: "Unsupported domain version",
    ErrorCode.UNKNOWN_TASK: "Task id unknown",
    ErrorCode.TASK_STATE_ERROR: "Operation is not allowed in this task state",
    ErrorCode.TASK_ABORTED: "Task is aborted",
    ErrorCode.STORAGE_SERVER_CONNECTION_ERROR: "Error connecting to storage server",
    ErrorCode.STORAGE_SERVER_DISCONNECTION_ERROR: "Error disconnecting from storage server",
    ErrorCode.STORAGE_SERVER_VALIDATION_ERROR: "The path does not exist or cannot be reached",
    ErrorCode.STORAGE_SERVER_ACCESS_PERMISSION_ERROR: "Permissions deny access to the storage",
    ErrorCode.MOUNT_ERROR: "Problem while trying to mount target",
    ErrorCode.IMAGE_DAEMON_ERROR: "Image daemon request failed",
    ErrorCode.SPM_START_ERROR: "Error starting SPM",
    ErrorCode.ACQUIRE_LOCK_FAILURE: "Cannot obtain lock",
    ErrorCode.SPM_STOP_ERROR: "Error stopping SPM, SPM has unfinished tasks",
    ErrorCode.SPM_STATUS_ERROR: "Not SPM",
    ErrorCode.HOST_ID_FAILURE: "Cannot acquire host id",
    ErrorCode.RELEASE_HOST_ID_FAILURE: "Cannot release host id",
    ErrorCode.METADATA_KEY_NOT_FOUND: "Metadata key not found",
    ErrorCode.METADATA_SEAL_IS_BROKEN: "Metadata seal is broken (checksum mismatch)",
    ErrorCode.STORAGE_INVALID_PARAMETER: "Invalid parameter",
    ErrorCode.OPERATION_IN_PROGRESS: "Operation is already in progress",
}


def default_message(code: int) -> str:
    return _MESSAGES.get(code, "Error")
