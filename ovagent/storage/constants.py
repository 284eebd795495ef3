"""Names and numbers of vdsm's storage model, and their wire spellings.

The engine sends many of these as numbers (vdsm's type ids) and older
clients as names; `*_name()` accept both and return the name stored in
metadata. Unknown values raise StorageInvalidParameter.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import (
    DomainClassError,
    DomainTypeError,
    IncorrectFormat,
    IncorrectType,
    StorageInvalidParameter,
)

__all__ = [
    "BLANK_UUID", "DOMAIN_VERSION", "SUPPORTED_DOMAIN_VERSIONS", "ALIGNMENT", "BLOCK_SIZE",
    "SDM_LEASE_NAME", "SDM_LEASE_OFFSET", "RESERVED_HOST_ID", "MAX_HOST_ID",
    "DOMAIN_TYPES", "FILE_DOMAIN_TYPES", "domain_type_name", "domain_type_id",
    "DOMAIN_CLASSES", "domain_class_name",
    "COW", "RAW", "SPARSE", "PREALLOCATED", "LEAF", "INTERNAL", "SHARED",
    "LEGAL", "ILLEGAL", "FAKE", "volume_format_name", "allocation_name", "volume_role_name",
    "legality_name", "qemu_format", "DISK_TYPES", "disk_type_name",
    "ACTIVE", "ATTACHED", "domain_status_name",
    "DOMAIN_MD_DIR", "IMAGES_DIR", "METADATA", "IDS", "LEASES", "INBOX", "OUTBOX",
    "META_EXT", "LEASE_EXT", "REMOVED_IMAGE_PREFIX", "MAILBOX_SIZE",
    "SPM_ID_FREE", "LVER_INVALID", "DESCRIPTION_SIZE", "is_uuid", "size_bytes",
]

BLANK_UUID = "00000000-0000-0000-0000-000000000000"

# Domain format: version 5 (vdsm 4.3.6+) keeps capacities in bytes (CAP) and
# records the block size and sanlock alignment in the domain metadata.
DOMAIN_VERSION = 5
SUPPORTED_DOMAIN_VERSIONS = (5,)
BLOCK_SIZE = 512
ALIGNMENT = 1024 * 1024

# The SPM ("SDM") lease lives in dom_md/leases one alignment unit in.
SDM_LEASE_NAME = "SDM"
SDM_LEASE_OFFSET = ALIGNMENT
# Host id used to lock a domain briefly when no host id is known yet
# (StoragePool.create), as vdsm does; engine host ids are 1..MAX_HOST_ID.
MAX_HOST_ID = 250
RESERVED_HOST_ID = 250
SPM_ID_FREE = -1
LVER_INVALID = -1

DESCRIPTION_SIZE = 210

# Storage domain types: vdsm's StorageDomainTypeId numbers -> names.
DOMAIN_TYPES = {0: "UNKNOWN", 1: "NFS", 2: "FCP", 3: "ISCSI", 4: "LOCALFS", 5: "CIFS",
                6: "POSIXFS", 7: "GLUSTERFS"}
FILE_DOMAIN_TYPES = ("NFS", "LOCALFS", "POSIXFS")

DOMAIN_CLASSES = {1: "Data", 2: "Iso", 3: "Backup"}

# Volume vocabulary (vdsm's numbers: 1 PREALLOCATED, 2 SPARSE, 4 COW, 5 RAW,
# 6 SHARED, 7 INTERNAL, 8 LEAF).
COW, RAW = "COW", "RAW"
SPARSE, PREALLOCATED = "SPARSE", "PREALLOCATED"
LEAF, INTERNAL, SHARED = "LEAF", "INTERNAL", "SHARED"
LEGAL, ILLEGAL, FAKE = "LEGAL", "ILLEGAL", "FAKE"
_FORMATS = {4: COW, 5: RAW}
_ALLOCATIONS = {1: PREALLOCATED, 2: SPARSE}
_ROLES = {6: SHARED, 7: INTERNAL, 8: LEAF}
DISK_TYPES = ("DATA", "OVFS", "MEMD", "MEMM", "ISOF", "2")

# Pool domain statuses (kept capitalized, as vdsm writes them).
ACTIVE, ATTACHED = "Active", "Attached"

# On-disk layout of a file domain.
DOMAIN_MD_DIR = "dom_md"
IMAGES_DIR = "images"
METADATA, IDS, LEASES, INBOX, OUTBOX = "metadata", "ids", "leases", "inbox", "outbox"
META_EXT, LEASE_EXT = ".meta", ".lease"
REMOVED_IMAGE_PREFIX = "_remove_me_"
MAILBOX_SIZE = 16 * 1024 * 1024

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value))


def _lookup(value: Any, by_number: dict[int, str], error: type[Exception], what: str) -> str:
    if isinstance(value, bool):
        raise error(f"{what}={value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return by_number[int(value)]
        except KeyError:
            raise error(f"{what}={value!r}") from None
    if isinstance(value, str):
        for name in by_number.values():
            if name.upper() == value.strip().upper():
                return name
    raise error(f"{what}={value!r}")


def domain_type_name(value: Any) -> str:
    return _lookup(value, DOMAIN_TYPES, DomainTypeError, "domainType")


def domain_type_id(name: str) -> int:
    return next(k for k, v in DOMAIN_TYPES.items() if v == name)


def domain_class_name(value: Any) -> str:
    return _lookup(value, DOMAIN_CLASSES, DomainClassError, "domainClass")


def volume_format_name(value: Any) -> str:
    return _lookup(value, _FORMATS, IncorrectFormat, "volFormat")


def allocation_name(value: Any) -> str:
    return _lookup(value, _ALLOCATIONS, IncorrectType, "preallocate")


def volume_role_name(value: Any) -> str:
    return _lookup(value, _ROLES, StorageInvalidParameter, "volType")


def legality_name(value: Any) -> str:
    if isinstance(value, str) and value.upper() in (LEGAL, ILLEGAL, FAKE):
        return value.upper()
    raise StorageInvalidParameter(f"legality={value!r}")


def disk_type_name(value: Any) -> str:
    text = str(value).strip().upper()
    if text in DISK_TYPES:
        return text
    raise StorageInvalidParameter(f"diskType={value!r}")


def domain_status_name(value: str) -> str:
    text = value.strip().capitalize()
    if text in (ACTIVE, ATTACHED):
        return text
    if text == "Inactive":  # vdsm's deprecated spelling of Attached
        return ATTACHED
    raise StorageInvalidParameter(f"domain status={value!r}")


def qemu_format(volume_format: str) -> str:
    return "qcow2" if volume_format == COW else "raw"


def size_bytes(value: Any, what: str) -> int:
    """A size param: bytes as a JSON number or a string of digits."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise StorageInvalidParameter(f"{what}={value!r}") from None
    if size < 0:
        raise StorageInvalidParameter(f"{what}={value!r}")
    return size
