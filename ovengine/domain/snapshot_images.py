"""The volumes of VM snapshots in the database, and the audit codes of
snapshot commands.

As oVirt: when a snapshot is taken, each disk's leaf volume stops being
written and is recorded as the disk's state as of that snapshot
(images.vm_snapshot_id), and a new qcow2 leaf on top of it becomes the
active volume (disks.image_id; its vm_snapshot_id is NULL). While a
snapshot is previewed, the chain the VM ran on before belongs to the VM's
'preview' snapshot and a new leaf on top of the previewed volume is active.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Iterable

import asyncpg

from ..errors import Conflict, NotFound
from ..storage.spm import _audit

__all__ = ["STATIC_CONFIG", "SnapVolume", "SnapshotAudit", "apply_merge", "chain_down_to",
           "drive_chain", "load_snapshot", "require_no_preview", "set_images_status",
           "snapshot_volumes"]

# What a snapshot's configuration restores (vm_static columns).
STATIC_CONFIG = ("memory_mib", "memory_guaranteed_mib", "memory_max_mib", "cpu_sockets",
                 "cpu_cores", "cpu_threads", "os_type", "vm_type", "display_type",
                 "boot_devices", "stateless", "ballooning", "ha_enabled", "ha_priority",
                 "description", "comment")


class SnapshotAudit:
    """oVirt's AuditLogType codes of snapshot events (verified against
    AuditLogType.java; oVirt's separate commit/undo codes are not used)."""

    USER_CREATE_SNAPSHOT = _audit(45)
    USER_CREATE_SNAPSHOT_FINISHED_SUCCESS = _audit(68)
    USER_CREATE_SNAPSHOT_FINISHED_FAILURE = _audit(69)
    USER_REMOVE_SNAPSHOT = _audit(342)
    USER_REMOVE_SNAPSHOT_FINISHED_SUCCESS = _audit(356)
    USER_REMOVE_SNAPSHOT_FINISHED_FAILURE = _audit(357)
    USER_TRY_BACK_TO_SNAPSHOT = _audit(46)
    USER_TRY_BACK_TO_SNAPSHOT_FINISH_SUCCESS = _audit(71)
    USER_TRY_BACK_TO_SNAPSHOT_FINISH_FAILURE = _audit(99)
    USER_RESTORE_FROM_SNAPSHOT = _audit(47)
    USER_RESTORE_FROM_SNAPSHOT_FINISH_SUCCESS = _audit(100)
    USER_RESTORE_FROM_SNAPSHOT_FINISH_FAILURE = _audit(101)


@dataclass(frozen=True)
class SnapVolume:
    """One volume of a snapshot with what a command needs to act on it."""

    disk_id: str
    volume_id: str
    parent_id: str
    sd_id: str
    dc_id: str
    alias: str
    size: int
    leaf_id: str          # the disk's active volume now
    fmt: str


async def load_snapshot(pool: asyncpg.Pool | asyncpg.Connection, vm_id: str,
                        snapshot_id: str) -> asyncpg.Record:
    try:
        key = uuid.UUID(snapshot_id)
    except ValueError:
        raise NotFound(f"snapshot {snapshot_id} does not exist") from None
    row = await pool.fetchrow("SELECT * FROM snapshots WHERE id=$1 AND vm_id=$2", key,
                              uuid.UUID(vm_id))
    if row is None:
        raise NotFound(f"snapshot {snapshot_id} does not exist")
    return row


async def snapshot_volumes(pool: asyncpg.Pool | asyncpg.Connection,
                           snapshot_id: str) -> list[SnapVolume]:
    rows = await pool.fetch("""
        SELECT i.id, i.disk_id, i.parent_id, i.storage_domain_id, i.volume_format, d.alias,
               d.provisioned_size, d.image_id, sd.data_center_id
        FROM images i JOIN disks d ON d.id = i.disk_id
        JOIN storage_domains sd ON sd.id = i.storage_domain_id
        WHERE i.vm_snapshot_id = $1 ORDER BY d.created_at, d.id""", uuid.UUID(snapshot_id))
    return [SnapVolume(str(r["disk_id"]), str(r["id"]), str(r["parent_id"]),
                       str(r["storage_domain_id"]), str(r["data_center_id"]), r["alias"],
                       r["provisioned_size"], str(r["image_id"]), r["volume_format"])
            for r in rows]


async def require_no_preview(pool: asyncpg.Pool | asyncpg.Connection, vm_id: str,
                             what: str) -> None:
    if await pool.fetchval("SELECT 1 FROM snapshots WHERE vm_id=$1 AND status='in_preview'",
                           uuid.UUID(vm_id)):
        raise Conflict(f"Cannot {what}: the VM is previewing a snapshot; commit or undo the "
                       f"preview first.")


async def chain_down_to(pool: asyncpg.Pool | asyncpg.Connection, leaf: str,
                        stop: str) -> list[str]:
    """The volumes from `leaf` down its parents, `stop` excluded (leaf first)."""
    rows = await pool.fetch("""
        WITH RECURSIVE chain(id, parent_id, depth) AS (
            SELECT id, parent_id, 0 FROM images WHERE id = $1
            UNION ALL
            SELECT i.id, i.parent_id, c.depth + 1 FROM images i JOIN chain c
                ON i.id = c.parent_id WHERE c.id <> $2)
        SELECT id FROM chain WHERE id <> $2 ORDER BY depth""", uuid.UUID(leaf), uuid.UUID(stop))
    return [str(r["id"]) for r in rows]


async def apply_merge(conn: asyncpg.Connection, disk_id: str, base: str, top: str) -> None:
    """After `top` was committed into its parent `base` (cold or live): base
    takes top's place in the chain and its snapshot; top's row goes."""
    t = await conn.fetchrow("SELECT * FROM images WHERE id=$1", uuid.UUID(top))
    if t is None:
        return
    await conn.execute(
        "UPDATE images SET vm_snapshot_id=$2, active=$3, volume_role=$4, status='ok', "
        "size=GREATEST(size, $5) WHERE id=$1",
        uuid.UUID(base), t["vm_snapshot_id"], t["active"],
        "internal" if t["volume_role"] == "internal" else "leaf", t["size"])
    await conn.execute("UPDATE images SET parent_id=$2 WHERE parent_id=$1 AND disk_id=$3",
                       uuid.UUID(top), uuid.UUID(base), uuid.UUID(disk_id))
    await conn.execute("UPDATE disks SET image_id=$2 WHERE id=$3 AND image_id=$1",
                       uuid.UUID(top), uuid.UUID(base), uuid.UUID(disk_id))
    await conn.execute("DELETE FROM images WHERE id=$1", uuid.UUID(top))


async def set_images_status(conn: asyncpg.Pool | asyncpg.Connection, volume_ids: Iterable[str],
                            status: str) -> None:
    await conn.execute("UPDATE images SET status=$2 WHERE id = ANY($1::uuid[])",
                       [uuid.UUID(v) for v in volume_ids], status)


def drive_chain(xml: str, disk_id: str) -> list[str]:
    """The volumes of a running VM's drive for image `disk_id` (leaf first),
    from the domain XML's <source> and <backingStore> elements."""
    root = ET.fromstring(xml)
    for disk in root.iterfind("devices/disk"):
        src = disk.find("source")
        path = (src.get("file") or src.get("dev") or "") if src is not None else ""
        if f"/{disk_id}/" not in path:
            continue
        out: list[str] = []
        node: Any = disk
        while node is not None and node.find("source") is not None:
            p = node.find("source").get("file") or node.find("source").get("dev") or ""
            out.append(p.rstrip("/").rsplit("/", 1)[-1])
            node = node.find("backingStore")
        return out
    return []

