"""Disks: add (a new volume on a domain, floating or attached to a VM),
remove, attach to a VM, detach.

A new disk is `locked` while its volume is made (Volume.create on the SPM,
an asynchronous phase), then `ok`; `illegal` if it failed and could not be
cleaned up, or if the engine died meanwhile and the task's outcome is not
known yet (the storage manager makes it ok when the task's host reports
success).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..audit import AuditRefs
from ..errors import Conflict, NotFound, ValidationFailed
from ..storage.spm import StorageAudit, _audit
from ..storage.vdsm import BLANK_UUID, SHARED, volume_format_id, volume_type_id
from .commands import Principal
from .images import (NewDisk, attach_disk_row, check_disk_format, check_interface,
                     insert_disk, load_disk, load_domain, require_active_domain,
                     set_disks_status, volume_description)
from .locks import LockSpec
from .storage_base import StorageCommand, illegal_if_locked
from .vm_base import load_vm

__all__ = ["AddDisk", "RemoveDisk", "AttachDisk", "DetachDisk", "DiskAttach",
           "volume_create_params"]


@dataclass(frozen=True)
class DiskAttach:
    """Where a disk goes when it is attached to a VM."""

    vm_id: str
    interface: str = "virtio"
    bootable: bool = False
    active: bool = True
    read_only: bool = False
    pass_discard: bool = False


def volume_create_params(dc_id: str, d: NewDisk, parent_disk: str = BLANK_UUID
                         ) -> dict[str, Any]:
    return {"volumeID": d.volume_id, "storagepoolID": dc_id, "storagedomainID": d.sd_id,
            "imageID": d.disk_id, "size": str(d.size), "volFormat": volume_format_id(d.fmt),
            "preallocate": volume_type_id(d.sparse), "diskType": "DATA",
            "desc": volume_description(d.alias, d.description),
            "srcImgUUID": parent_disk, "srcVolUUID": d.parent_id,
            # A template volume made empty (OVA import) is SHARED from the start.
            **({"volType": SHARED} if d.role == "shared" else {})}


async def check_vm_for_disk(s: Any, vm_id: str, dc_id: str, attach: DiskAttach,
                            disk_id: str | None = None) -> Any:
    vm = await load_vm(s.pool, vm_id)
    if vm["status"] != "down":
        raise Conflict(f"Cannot attach a disk to VM {vm['name']} while it is {vm['status']}: "
                       f"disk hot-plug is not supported; stop the VM first.")
    vm_dc = await s.pool.fetchval("SELECT data_center_id FROM clusters WHERE id=$1",
                                  vm["cluster_id"])
    if str(vm_dc) != dc_id:
        raise Conflict(f"Cannot attach the disk to VM {vm['name']}: the disk's storage "
                       f"domain is in another data center.")
    check_interface(attach.interface)
    if attach.bootable and await s.pool.fetchval(
            "SELECT 1 FROM disk_attachments WHERE vm_id=$1 AND bootable AND disk_id <> $2",
            uuid.UUID(vm_id), uuid.UUID(disk_id or BLANK_UUID)):
        raise Conflict(f"Cannot attach a bootable disk to VM {vm['name']}: it has a bootable "
                       f"disk already.")
    return vm


class AddDisk(StorageCommand):
    action_type = "AddDisk"

    def __init__(self, services: Any, principal: Principal, sd_id: str, size: int,
                 fmt: str = "cow", sparse: bool = True, alias: str | None = None,
                 description: str = "", shareable: bool = False,
                 wipe_after_delete: bool = False, attach: DiskAttach | None = None,
                 disk_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.disk_id = disk_id or str(uuid.uuid4())
        self.volume_id = str(uuid.uuid4())
        self.sd_id = sd_id
        self.size = size
        self.fmt = fmt
        self.sparse = sparse
        self.alias = alias or f"disk_{self.disk_id[:8]}"
        self.disk_description = description
        self.shareable = shareable
        self.wipe_after_delete = wipe_after_delete
        self.attach = attach
        self.dc_id = ""
        self.vm_name: str | None = None

    def description(self) -> str:
        return f"Adding disk {self.alias}"

    def locks(self) -> list[LockSpec]:
        locks = [LockSpec("disk", self.disk_id, reason="a disk creation"),
                 LockSpec("storage_domain", self.sd_id, exclusive=False,
                          reason="a disk creation")]
        if self.attach is not None:
            locks.append(LockSpec("vm", self.attach.vm_id, reason="a disk creation"))
        return locks

    async def validate(self) -> None:
        check_disk_format(self.fmt, self.sparse, self.size)
        if not 1 <= len(self.alias) <= 255:
            raise ValidationFailed("the disk alias must be 1-255 characters", "alias")
        sd = await load_domain(self.s.pool, self.sd_id)
        self.dc_id = require_active_domain(sd, "add the disk")
        await self.s.storage.spm.require_spm(self.dc_id)
        if self.attach is not None:
            vm = await check_vm_for_disk(self.s, self.attach.vm_id, self.dc_id, self.attach)
            self.vm_name = vm["name"]

    def new_disk(self) -> NewDisk:
        return NewDisk(self.disk_id, self.volume_id, self.alias, self.size, self.fmt,
                       self.sparse, self.sd_id, self.disk_description,
                       shareable=self.shareable, wipe_after_delete=self.wipe_after_delete)

    def recovery_params(self) -> dict[str, Any]:
        return {"disk_id": self.disk_id}

    def has_async_phase(self) -> bool:
        return True

    def refs(self) -> AuditRefs:
        return self.audit_refs(storage_domain_id=uuid.UUID(self.sd_id),
                               data_center_id=uuid.UUID(self.dc_id) if self.dc_id else None,
                               vm_id=uuid.UUID(self.attach.vm_id) if self.attach else None,
                               vm_name=self.vm_name)

    async def execute(self) -> str:
        d = self.new_disk()
        async with self.s.pool.acquire() as conn, conn.transaction():
            await insert_disk(conn, d)
            if self.attach is not None:
                a = self.attach
                await attach_disk_row(conn, a.vm_id, d.disk_id, a.interface, a.bootable,
                                      a.active, a.read_only, a.pass_discard)
        await self.start_task(self.dc_id, "Volume.create", volume_create_params(self.dc_id, d),
                              on_success={"ok_disks": [self.disk_id]})
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_DISK),
                               f"Add-Disk operation of {self.alias} was initiated by "
                               f"{self.principal.name}.", self.refs())
        return self.disk_id

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        if failures:
            raise failures[0]
        await self._record_size()
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [self.disk_id], "ok")
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_DISK_FINISHED_SUCCESS),
                               f"The disk {self.alias} was successfully added.", self.refs())

    async def _record_size(self) -> None:
        try:
            size = await self.s.storage.spm_call(self.dc_id, "Volume.getSize", {
                "volumeID": self.volume_id, "storagepoolID": self.dc_id,
                "storagedomainID": self.sd_id, "imageID": self.disk_id})
        except Exception:  # sizes are informative; the disk is made
            return
        await self.s.pool.execute("UPDATE images SET actual_size=$2 WHERE id=$1",
                                  uuid.UUID(self.volume_id), int(size["truesize"]))
        await self.s.pool.execute("UPDATE disks SET actual_size=$2 WHERE id=$1",
                                  uuid.UUID(self.disk_id), int(size["truesize"]))

    async def compensate(self) -> None:
        if not self.tasks:  # Volume.create was refused: nothing on storage
            await self.s.pool.execute("DELETE FROM disks WHERE id=$1", uuid.UUID(self.disk_id))
            return
        # The task failed: remove what it left (an ILLEGAL volume), else keep it illegal.
        if await self.remove_images_now(self.dc_id, [(self.sd_id, self.disk_id)]):
            await self.s.pool.execute("DELETE FROM disks WHERE id=$1", uuid.UUID(self.disk_id))
            outcome = "it was removed"
        else:
            async with self.s.pool.acquire() as conn, conn.transaction():
                await set_disks_status(conn, [self.disk_id], "illegal")
            outcome = "it is illegal"
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_DISK_FINISHED_FAILURE),
                               f"Add-Disk operation failed to complete: {self.alias} "
                               f"({outcome}).", self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        disk_id = params.get("disk_id")
        if not disk_id:
            return "nothing to undo"
        if await illegal_if_locked(services, [disk_id]):
            return (f"disk {disk_id} is illegal until its volume creation is known to have "
                    f"finished")
        return "the disk was not locked"


class RemoveDisk(StorageCommand):
    action_type = "RemoveDisk"

    def __init__(self, services: Any, principal: Principal, disk_id: str) -> None:
        super().__init__(services, principal)
        self.disk_id = disk_id
        self.row: Any = None
        self.dc_id = ""
        self.vm_ids: list[str] = []
        self.gone_now = False

    @property
    def alias(self) -> str:
        return self.row["alias"] if self.row is not None else self.disk_id

    def description(self) -> str:
        return f"Removing disk {self.alias}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("disk", self.disk_id, reason="a disk removal")]

    async def validate(self) -> None:
        self.row = row = await load_disk(self.s.pool, self.disk_id)
        if row["template_ids"]:
            raise Conflict(f"Cannot remove disk {self.alias}: it belongs to a template; "
                           f"remove the template.")
        if row["status"] == "locked":
            raise Conflict(f"Cannot remove disk {self.alias}: it is locked.")
        self.vm_ids = [str(v) for v in row["vm_ids"]]
        for vm_id in self.vm_ids:
            if self.s.locks.is_locked("vm", vm_id):
                raise Conflict(f"Cannot remove disk {self.alias}: its VM is locked.")
            vm = await load_vm(self.s.pool, vm_id)
            if vm["status"] != "down":
                raise Conflict(f"Cannot remove disk {self.alias}: VM {vm['name']} using it "
                               f"is {vm['status']}.")
        if row["data_center_id"] is None or row["sd_status"] != "active":
            raise Conflict(f"Cannot remove disk {self.alias}: its storage domain "
                           f"{row['sd_name']} is not active.")
        self.dc_id = str(row["data_center_id"])
        await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"disk_id": self.disk_id}

    def has_async_phase(self) -> bool:
        return not self.gone_now

    def refs(self) -> AuditRefs:
        return self.audit_refs(storage_domain_id=self.row["storage_domain_id"],
                               data_center_id=uuid.UUID(self.dc_id))

    async def execute(self) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [self.disk_id], "locked")
        try:
            task = await self.delete_image(self.dc_id, str(self.row["storage_domain_id"]),
                                           self.disk_id, self.row["wipe_after_delete"])
        except BaseException:
            async with self.s.pool.acquire() as conn, conn.transaction():
                await set_disks_status(conn, [self.disk_id], self.row["status"])
            raise
        await self.s.audit.log(_audit(StorageAudit.USER_REMOVE_DISK),
                               f"Disk {self.alias} was removed by {self.principal.name}.",
                               self.refs())
        if task is None:  # nothing on storage any more
            self.gone_now = True
            await self.s.pool.execute("DELETE FROM disks WHERE id=$1", uuid.UUID(self.disk_id))

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        if failures:
            raise failures[0]
        await self.s.pool.execute("DELETE FROM disks WHERE id=$1", uuid.UUID(self.disk_id))
        await self.s.audit.log(_audit(StorageAudit.USER_FINISHED_REMOVE_DISK),
                               f"Disk {self.alias} was successfully removed from domain "
                               f"{self.row['sd_name']}.", self.refs())

    async def compensate(self) -> None:
        if self.tasks:
            async with self.s.pool.acquire() as conn, conn.transaction():
                await set_disks_status(conn, [self.disk_id], "illegal")
            await self.s.audit.log(_audit(StorageAudit.USER_FINISHED_FAILED_REMOVE_DISK),
                                   f"Failed to remove disk {self.alias} from storage domain "
                                   f"{self.row['sd_name']}; it is illegal.", self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        disk_id = params.get("disk_id")
        if disk_id and await illegal_if_locked(services, [disk_id]):
            return f"disk {disk_id} is illegal until its removal is known to have finished"
        return "nothing to undo"


class AttachDisk(StorageCommand):
    action_type = "AttachDiskToVm"

    def __init__(self, services: Any, principal: Principal, disk_id: str,
                 attach: DiskAttach) -> None:
        super().__init__(services, principal)
        self.disk_id = disk_id
        self.attach = attach
        self.row: Any = None
        self.vm_name = attach.vm_id

    def description(self) -> str:
        return f"Attaching disk {self.disk_id} to VM {self.vm_name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.attach.vm_id, reason="a disk attachment"),
                LockSpec("disk", self.disk_id, reason="a disk attachment")]

    async def validate(self) -> None:
        self.row = row = await load_disk(self.s.pool, self.disk_id)
        if row["template_ids"]:
            raise Conflict("A template's disk cannot be attached to a VM.")
        if row["status"] != "ok":
            raise Conflict(f"Cannot attach disk {row['alias']}: it is {row['status']}.")
        vm_ids = [str(v) for v in row["vm_ids"]]
        if self.attach.vm_id in vm_ids:
            raise Conflict(f"Disk {row['alias']} is attached to this VM already.")
        if vm_ids and not row["shareable"]:
            raise Conflict(f"Cannot attach disk {row['alias']}: it is attached to another VM "
                           f"and is not shareable.")
        if row["data_center_id"] is None:
            raise Conflict(f"Cannot attach disk {row['alias']}: its storage domain is not "
                           f"attached to a data center.")
        vm = await check_vm_for_disk(self.s, self.attach.vm_id, str(row["data_center_id"]),
                                     self.attach, self.disk_id)
        self.vm_name = vm["name"]

    async def execute(self) -> None:
        a = self.attach
        async with self.s.pool.acquire() as conn, conn.transaction():
            await attach_disk_row(conn, a.vm_id, self.disk_id, a.interface, a.bootable,
                                  a.active, a.read_only, a.pass_discard)
        await self.s.audit.log(_audit(StorageAudit.USER_ATTACH_DISK_TO_VM),
                               f"Disk {self.row['alias']} was successfully attached to VM "
                               f"{self.vm_name} by {self.principal.name}.",
                               self.audit_refs(vm_id=uuid.UUID(a.vm_id), vm_name=self.vm_name))


class DetachDisk(StorageCommand):
    action_type = "DetachDiskFromVm"

    def __init__(self, services: Any, principal: Principal, vm_id: str, disk_id: str) -> None:
        super().__init__(services, principal)
        self.vm_id = vm_id
        self.disk_id = disk_id
        self.vm_name = vm_id
        self.alias = disk_id

    def description(self) -> str:
        return f"Detaching disk {self.alias} from VM {self.vm_name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, reason="a disk detachment"),
                LockSpec("disk", self.disk_id, reason="a disk detachment")]

    async def validate(self) -> None:
        vm = await load_vm(self.s.pool, self.vm_id)
        self.vm_name = vm["name"]
        try:
            row = await self.s.pool.fetchrow(
                "SELECT a.active, d.alias FROM disk_attachments a JOIN disks d "
                "ON d.id = a.disk_id WHERE a.vm_id=$1 AND a.disk_id=$2",
                uuid.UUID(self.vm_id), uuid.UUID(self.disk_id))
        except ValueError:
            row = None
        if row is None:
            raise NotFound(f"disk attachment {self.disk_id} does not exist")
        self.alias = row["alias"]
        if vm["status"] != "down" and row["active"]:
            raise Conflict(f"Cannot detach disk {self.alias} from VM {self.vm_name} while it "
                           f"is {vm['status']}: disk hot-unplug is not supported.")

    async def execute(self) -> None:
        await self.s.pool.execute("DELETE FROM disk_attachments WHERE vm_id=$1 AND disk_id=$2",
                                  uuid.UUID(self.vm_id), uuid.UUID(self.disk_id))
        await self.s.audit.log(_audit(StorageAudit.USER_DETACH_DISK_FROM_VM),
                               f"Disk {self.alias} was successfully detached from VM "
                               f"{self.vm_name} by {self.principal.name}.",
                               self.audit_refs(vm_id=uuid.UUID(self.vm_id),
                                               vm_name=self.vm_name))
