"""Disks and their volumes in the database (disks, images, disk_attachments),
and the checks storage commands share.

A disk is an image group on one storage domain (disks.id is vdsm's
imageID); its volumes are `images` rows, the active one (the leaf, whose
path a VM opens) in disks.image_id. A thin clone's volume has a template's
volume as parent (template_volume_id), which the agent hard-links into the
clone's image directory.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

import asyncpg

from ..errors import Conflict, NotFound, ValidationFailed

__all__ = ["BLANK_UUID", "NewDisk", "insert_disk", "set_disks_status", "load_disk",
           "vm_disks", "load_domain", "check_disk_format", "volume_description",
           "INTERFACES", "check_interface", "attach_disk_row", "MIN_DISK_SIZE"]

BLANK_UUID = "00000000-0000-0000-0000-000000000000"
INTERFACES = ("virtio", "virtio_scsi")
MIN_DISK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class NewDisk:
    disk_id: str
    volume_id: str
    alias: str
    size: int
    fmt: str                 # cow | raw
    sparse: bool
    sd_id: str
    description: str = ""
    parent_id: str = BLANK_UUID
    template_volume_id: str = BLANK_UUID
    role: str = "leaf"       # leaf | shared (a template's volume)
    shareable: bool = False
    wipe_after_delete: bool = False
    content_type: str = "data"


def check_disk_format(fmt: str, sparse: bool, size: int) -> None:
    if fmt not in ("cow", "raw"):
        raise ValidationFailed(f"unknown disk format {fmt!r} (cow, raw)", "format")
    if size < MIN_DISK_SIZE:
        raise ValidationFailed(f"provisioned_size must be at least {MIN_DISK_SIZE} bytes",
                               "provisioned_size")
    if size > 2**50:
        raise ValidationFailed("provisioned_size is too large", "provisioned_size")


def check_interface(interface: str) -> None:
    if interface not in INTERFACES:
        raise ValidationFailed(f"unsupported disk interface {interface!r} "
                               f"({', '.join(INTERFACES)})", "interface")


def volume_description(alias: str, description: str) -> str:
    """The volume description oVirt writes: a small JSON document."""
    return json.dumps({"DiskAlias": alias, "DiskDescription": description})[:210]


async def insert_disk(conn: asyncpg.Connection, d: NewDisk, status: str = "locked") -> None:
    await conn.execute("""
        INSERT INTO disks (id, alias, description, provisioned_size, format, sparse, status,
                           content_type, storage_domain_id, image_id, shareable,
                           wipe_after_delete)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        uuid.UUID(d.disk_id), d.alias, d.description, d.size, d.fmt, d.sparse, status,
        d.content_type, uuid.UUID(d.sd_id), uuid.UUID(d.volume_id), d.shareable,
        d.wipe_after_delete)
    await conn.execute("""
        INSERT INTO images (id, disk_id, storage_domain_id, parent_id, template_volume_id,
                            volume_format, volume_type, volume_role, active, status, size)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10)""",
        uuid.UUID(d.volume_id), uuid.UUID(d.disk_id), uuid.UUID(d.sd_id),
        uuid.UUID(d.parent_id), uuid.UUID(d.template_volume_id), d.fmt,
        "sparse" if d.sparse else "preallocated", d.role, status, d.size)


async def set_disks_status(conn: asyncpg.Pool | asyncpg.Connection, disk_ids: Iterable[str],
                           status: str, only_if: str | None = None) -> int:
    """Set disks (and their volumes) to a status; returns how many disks changed."""
    ids = [uuid.UUID(d) for d in disk_ids]
    if not ids:
        return 0
    cond = "" if only_if is None else " AND status = $3"
    args: list[Any] = [ids, status] + ([only_if] if only_if is not None else [])
    await conn.execute(f"UPDATE images SET status=$2 WHERE disk_id = ANY($1::uuid[]){cond}",
                       *args)
    res = await conn.execute(f"UPDATE disks SET status=$2 WHERE id = ANY($1::uuid[]){cond}",
                             *args)
    return int(res.split()[-1])


async def load_disk(pool: asyncpg.Pool | asyncpg.Connection, disk_id: str) -> asyncpg.Record:
    """The disk with its active volume, domain, data center and attachments."""
    try:
        key = uuid.UUID(disk_id)
    except ValueError:
        raise NotFound(f"disk {disk_id} does not exist") from None
    row = await pool.fetchrow("""
        SELECT d.*, i.parent_id, i.template_volume_id, i.volume_format, i.volume_type,
               i.volume_role, sd.name AS sd_name, sd.data_center_id,
               m.status AS sd_status,
               ARRAY(SELECT a.vm_id FROM disk_attachments a JOIN vm_static s ON s.id = a.vm_id
                     WHERE a.disk_id = d.id AND s.entity_type = 'vm') AS vm_ids,
               ARRAY(SELECT a.vm_id FROM disk_attachments a JOIN vm_static s ON s.id = a.vm_id
                     WHERE a.disk_id = d.id AND s.entity_type = 'template') AS template_ids
        FROM disks d LEFT JOIN images i ON i.id = d.image_id
        LEFT JOIN storage_domains sd ON sd.id = d.storage_domain_id
        LEFT JOIN storage_pool_iso_map m ON m.storage_domain_id = sd.id
                                         AND m.data_center_id = sd.data_center_id
        WHERE d.id = $1""", key)
    if row is None:
        raise NotFound(f"disk {disk_id} does not exist")
    return row


async def vm_disks(pool: asyncpg.Pool | asyncpg.Connection, vm_id: str) -> list[asyncpg.Record]:
    """The disks attached to a VM or template, bootable first, with their volume."""
    return list(await pool.fetch("""
        SELECT d.*, a.interface, a.bootable, a.active, a.read_only, a.pass_discard,
               i.parent_id, i.template_volume_id, i.volume_format, i.volume_type,
               sd.data_center_id, m.status AS sd_status, sd.name AS sd_name
        FROM disk_attachments a JOIN disks d ON d.id = a.disk_id
        LEFT JOIN images i ON i.id = d.image_id
        LEFT JOIN storage_domains sd ON sd.id = d.storage_domain_id
        LEFT JOIN storage_pool_iso_map m ON m.storage_domain_id = sd.id
                                         AND m.data_center_id = sd.data_center_id
        WHERE a.vm_id = $1
        ORDER BY a.bootable DESC, d.created_at, d.id""", uuid.UUID(vm_id)))


async def load_domain(pool: asyncpg.Pool | asyncpg.Connection, sd_id: str,
                      field: str = "storage_domain") -> asyncpg.Record:
    """A storage domain with its status in its data center (ValidationFailed
    if it does not exist: it is named in a request body)."""
    try:
        key = uuid.UUID(sd_id)
    except ValueError:
        raise ValidationFailed(f"storage domain {sd_id!r} does not exist", field) from None
    row = await pool.fetchrow("""
        SELECT sd.*, m.status AS dc_status FROM storage_domains sd
        LEFT JOIN storage_pool_iso_map m ON m.storage_domain_id = sd.id
                                         AND m.data_center_id = sd.data_center_id
        WHERE sd.id = $1""", key)
    if row is None:
        raise ValidationFailed(f"storage domain {sd_id} does not exist", field)
    return row


def require_active_domain(sd: asyncpg.Record, what: str) -> str:
    """The domain's data center, if the domain is an active data domain there."""
    if sd["data_center_id"] is None or sd["dc_status"] is None:
        raise Conflict(f"Cannot {what}: storage domain {sd['name']} is not attached to a "
                       f"data center.")
    if sd["dc_status"] != "active":
        raise Conflict(f"Cannot {what}: storage domain {sd['name']} is {sd['dc_status']}.")
    if sd["domain_type"] != "data":
        raise Conflict(f"Cannot {what}: storage domain {sd['name']} is not a data domain.")
    return str(sd["data_center_id"])


async def attach_disk_row(conn: asyncpg.Connection, vm_id: str, disk_id: str, interface: str,
                          bootable: bool, active: bool = True, read_only: bool = False,
                          pass_discard: bool = False) -> None:
    await conn.execute("""
        INSERT INTO disk_attachments (vm_id, disk_id, interface, bootable, active, read_only,
                                      pass_discard)
        VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        uuid.UUID(vm_id), uuid.UUID(disk_id), interface, bootable, active, read_only,
        pass_discard)


__all__ += ["require_active_domain"]
