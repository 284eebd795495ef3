"""Storage errors with vdsm's codes (they travel as JSON-RPC errors).

Each class carries its vdsm code; the wire message is vdsm's text for the
code followed by the detail, e.g. "Volume does not exist: (vol-uuid,)".
Task failures keep the same code and message in Task.getStatus.
"""

from __future__ import annotations

from protocol.jsonrpc import ErrorCode, JsonRpcError, default_message

__all__ = [
    "StorageError", "StorageTimeout", "StorageInvalidParameter",
    "VolumeDoesNotExist", "IncorrectFormat", "VolumeHasChildren", "VolumeCreationError",
    "VolumeExtendingError", "VolumeMetadataReadError", "VolumeMetadataWriteError",
    "VolumeAlreadyExists", "CannotDeleteVolume", "CannotDeleteSharedVolume",
    "VolumeCopyError", "PrepareIllegalVolume", "CreateVolumeSizeError", "IncorrectType",
    "VolumeResizeValueError", "ImageDeleteError", "CopyImageError", "ImageDoesNotExistInSD",
    "PoolActionError", "PoolCreationError", "PoolMasterNotFound", "PoolUnknown",
    "PoolAlreadyExists", "CannotConnectMultiplePools", "PoolWrongMaster",
    "DomainActionError", "DomainCreationError", "DomainNotInPool", "DomainMasterError",
    "DomainDoesNotExist", "DomainFSNotMounted", "DomainMetadataNotFound", "DomainExists",
    "DomainNotActive", "DomainTypeError", "DomainStatusError", "DomainAlreadyAttached",
    "DomainActive", "CannotDetachMasterDomain", "DomainClassError",
    "UnsupportedDomainVersion", "UnknownTask", "TaskStateError", "TaskAborted",
    "StorageServerConnectionError", "StorageServerDisconnectionError",
    "StorageServerValidationError", "StorageServerAccessPermissionError", "MountError",
    "SpmStartError", "AcquireLockFailure", "SpmStopError", "NotSpm", "AcquireHostIdFailure",
    "ReleaseHostIdFailure", "MetadataKeyNotFound", "MetadataSealIsBroken",
    "OperationInProgress", "MergeSnapshotsError",
]


class StorageError(JsonRpcError):
    """Base of storage errors; subclasses set `code_`."""

    code_: int = ErrorCode.STORAGE_EXCEPTION

    def __init__(self, detail: str = "") -> None:
        text = default_message(self.code_)
        super().__init__(self.code_, f"{text}: {detail}" if detail else text)
        self.detail = detail


class StorageTimeout(StorageError):
    """A blocking storage call (file I/O, sanlock, a command) did not return in time."""

    code_ = ErrorCode.STORAGE_EXCEPTION


def _make(name: str, code: int) -> type[StorageError]:
    return type(name, (StorageError,), {"code_": code, "__module__": __name__})


StorageInvalidParameter = _make("StorageInvalidParameter", ErrorCode.STORAGE_INVALID_PARAMETER)
VolumeDoesNotExist = _make("VolumeDoesNotExist", ErrorCode.VOLUME_DOES_NOT_EXIST)
IncorrectFormat = _make("IncorrectFormat", ErrorCode.INCORRECT_FORMAT)
VolumeHasChildren = _make("VolumeHasChildren", ErrorCode.VOLUME_HAS_CHILDREN)
VolumeCreationError = _make("VolumeCreationError", ErrorCode.VOLUME_CREATION_ERROR)
VolumeExtendingError = _make("VolumeExtendingError", ErrorCode.VOLUME_EXTENDING_ERROR)
VolumeMetadataReadError = _make("VolumeMetadataReadError",
                                ErrorCode.VOLUME_METADATA_READ_ERROR)
VolumeMetadataWriteError = _make("VolumeMetadataWriteError",
                                 ErrorCode.VOLUME_METADATA_WRITE_ERROR)
VolumeAlreadyExists = _make("VolumeAlreadyExists", ErrorCode.VOLUME_EXISTS)
CannotDeleteVolume = _make("CannotDeleteVolume", ErrorCode.CANNOT_DELETE_VOLUME)
CannotDeleteSharedVolume = _make("CannotDeleteSharedVolume",
                                 ErrorCode.CANNOT_DELETE_SHARED_VOLUME)
VolumeCopyError = _make("VolumeCopyError", ErrorCode.VOLUME_COPY_ERROR)
PrepareIllegalVolume = _make("PrepareIllegalVolume", ErrorCode.PREPARE_ILLEGAL_VOLUME)
CreateVolumeSizeError = _make("CreateVolumeSizeError", ErrorCode.CREATE_VOLUME_SIZE_ERROR)
IncorrectType = _make("IncorrectType", ErrorCode.INCORRECT_TYPE)
VolumeResizeValueError = _make("VolumeResizeValueError", ErrorCode.VOLUME_RESIZE_VALUE_ERROR)
ImageDeleteError = _make("ImageDeleteError", ErrorCode.IMAGE_DELETE_ERROR)
CopyImageError = _make("CopyImageError", ErrorCode.COPY_IMAGE_ERROR)
ImageDoesNotExistInSD = _make("ImageDoesNotExistInSD", ErrorCode.IMAGE_DOES_NOT_EXIST_IN_SD)
PoolActionError = _make("PoolActionError", ErrorCode.POOL_ACTION_ERROR)
PoolCreationError = _make("PoolCreationError", ErrorCode.POOL_CREATION_ERROR)
PoolMasterNotFound = _make("PoolMasterNotFound", ErrorCode.POOL_MASTER_NOT_FOUND)
PoolUnknown = _make("PoolUnknown", ErrorCode.POOL_UNKNOWN)
PoolAlreadyExists = _make("PoolAlreadyExists", ErrorCode.POOL_ALREADY_EXISTS)
CannotConnectMultiplePools = _make("CannotConnectMultiplePools",
                                   ErrorCode.CANNOT_CONNECT_MULTIPLE_POOLS)
PoolWrongMaster = _make("PoolWrongMaster", ErrorCode.POOL_WRONG_MASTER)
DomainActionError = _make("DomainActionError", ErrorCode.DOMAIN_ACTION_ERROR)
DomainCreationError = _make("DomainCreationError", ErrorCode.DOMAIN_CREATION_ERROR)
DomainNotInPool = _make("DomainNotInPool", ErrorCode.DOMAIN_NOT_IN_POOL)
DomainMasterError = _make("DomainMasterError", ErrorCode.DOMAIN_MASTER_ERROR)
DomainDoesNotExist = _make("DomainDoesNotExist", ErrorCode.DOMAIN_DOES_NOT_EXIST)
DomainFSNotMounted = _make("DomainFSNotMounted", ErrorCode.DOMAIN_FS_NOT_MOUNTED)
DomainMetadataNotFound = _make("DomainMetadataNotFound", ErrorCode.DOMAIN_METADATA_NOT_FOUND)
DomainExists = _make("DomainExists", ErrorCode.DOMAIN_EXISTS)
DomainNotActive = _make("DomainNotActive", ErrorCode.DOMAIN_NOT_ACTIVE)
DomainTypeError = _make("DomainTypeError", ErrorCode.DOMAIN_TYPE_ERROR)
DomainStatusError = _make("DomainStatusError", ErrorCode.DOMAIN_STATUS_ERROR)
DomainAlreadyAttached = _make("DomainAlreadyAttached", ErrorCode.DOMAIN_ALREADY_ATTACHED)
DomainActive = _make("DomainActive", ErrorCode.DOMAIN_ACTIVE)
CannotDetachMasterDomain = _make("CannotDetachMasterDomain",
                                 ErrorCode.CANNOT_DETACH_MASTER_DOMAIN)
DomainClassError = _make("DomainClassError", ErrorCode.DOMAIN_CLASS_ERROR)
UnsupportedDomainVersion = _make("UnsupportedDomainVersion",
                                 ErrorCode.UNSUPPORTED_DOMAIN_VERSION)
UnknownTask = _make("UnknownTask", ErrorCode.UNKNOWN_TASK)
TaskStateError = _make("TaskStateError", ErrorCode.TASK_STATE_ERROR)
TaskAborted = _make("TaskAborted", ErrorCode.TASK_ABORTED)
StorageServerConnectionError = _make("StorageServerConnectionError",
                                     ErrorCode.STORAGE_SERVER_CONNECTION_ERROR)
StorageServerDisconnectionError = _make("StorageServerDisconnectionError",
                                        ErrorCode.STORAGE_SERVER_DISCONNECTION_ERROR)
StorageServerValidationError = _make("StorageServerValidationError",
                                     ErrorCode.STORAGE_SERVER_VALIDATION_ERROR)
StorageServerAccessPermissionError = _make("StorageServerAccessPermissionError",
                                           ErrorCode.STORAGE_SERVER_ACCESS_PERMISSION_ERROR)
MountError = _make("MountError", ErrorCode.MOUNT_ERROR)
SpmStartError = _make("SpmStartError", ErrorCode.SPM_START_ERROR)
AcquireLockFailure = _make("AcquireLockFailure", ErrorCode.ACQUIRE_LOCK_FAILURE)
SpmStopError = _make("SpmStopError", ErrorCode.SPM_STOP_ERROR)
NotSpm = _make("NotSpm", ErrorCode.SPM_STATUS_ERROR)
AcquireHostIdFailure = _make("AcquireHostIdFailure", ErrorCode.HOST_ID_FAILURE)
ReleaseHostIdFailure = _make("ReleaseHostIdFailure", ErrorCode.RELEASE_HOST_ID_FAILURE)
MetadataKeyNotFound = _make("MetadataKeyNotFound", ErrorCode.METADATA_KEY_NOT_FOUND)
MetadataSealIsBroken = _make("MetadataSealIsBroken", ErrorCode.METADATA_SEAL_IS_BROKEN)
OperationInProgress = _make("OperationInProgress", ErrorCode.OPERATION_IN_PROGRESS)
MergeSnapshotsError = _make("MergeSnapshotsError", ErrorCode.MERGE_SNAPSHOTS_ERROR)
