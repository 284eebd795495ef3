"""vdsm's storage vocabulary as the engine sends it: type ids, volume format
and allocation numbers, error codes, and connection parameters built from
the database rows. Pure."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["BLANK_UUID", "STORAGE_TYPE_IDS", "DATA_CLASS", "COW", "RAW", "PREALLOCATED",
           "SPARSE", "SHARED", "LEAF", "DOMAIN_VERSION", "VOLUME_FORMATS", "VOLUME_TYPES",
           "ERR_NO_TASK", "ERR_SPM_LEASE_HELD", "ERR_NOT_SPM", "ERR_IMAGE_NOT_IN_SD",
           "ERR_VOLUME_NOT_EXIST", "ERR_SPM_STOP_TASKS", "ERR_POOL_UNKNOWN",
           "connection_params", "connection_path", "volume_format_id", "volume_type_id"]

BLANK_UUID = "00000000-0000-0000-0000-000000000000"
DOMAIN_VERSION = 5

# StorageDomainTypeId (engine <-> vdsm).
STORAGE_TYPE_IDS = {"nfs": 1, "localfs": 4, "posixfs": 6}
DATA_CLASS = 1  # domainClass Data
# volFormat, preallocate, volType numbers.
COW, RAW = 4, 5
PREALLOCATED, SPARSE = 1, 2
SHARED, LEAF = 6, 8
VOLUME_FORMATS = {"cow": COW, "raw": RAW}
VOLUME_TYPES = {"preallocated": PREALLOCATED, "sparse": SPARSE}

# vdsm error codes the engine acts on.
ERR_VOLUME_NOT_EXIST = 201
ERR_IMAGE_NOT_IN_SD = 268
ERR_POOL_UNKNOWN = 309
ERR_NO_TASK = 401
ERR_SPM_LEASE_HELD = 651
ERR_SPM_STOP_TASKS = 653
ERR_NOT_SPM = 654


def volume_format_id(fmt: str) -> int:
    return VOLUME_FORMATS[fmt]


def volume_type_id(sparse: bool) -> int:
    return SPARSE if sparse else PREALLOCATED


def connection_path(storage_type: str, address: str, path: str) -> str:
    """What the agent mounts or links: nfs "server:/export", posixfs the spec
    ("server:/path", or a path when there is no address), localfs the path."""
    if storage_type == "nfs" or (storage_type == "posixfs" and address):
        return f"{address}:{path}"
    return path


def connection_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """A storage_server_connections row as one StorageConnectionParams entry."""
    out: dict[str, Any] = {"id": str(row["id"]), "connection": row["connection"]}
    if row["storage_type"] == "posixfs":
        out["vfs_type"] = row["vfs_type"] or ""
    if row["mount_options"]:
        out["mnt_options"] = row["mount_options"]
    if row["storage_type"] == "nfs":
        if row["nfs_version"]:
            out["protocol_version"] = row["nfs_version"]
        if row["nfs_retrans"] is not None:
            out["retrans"] = row["nfs_retrans"]
        if row["nfs_timeo"] is not None:
            out["timeout"] = row["nfs_timeo"]
    return out
