"""Templates: add from a VM, remove.

A template made from a VM copies the VM's configuration and, for each of
its disks, collapses the disk's whole chain into one new volume with
Volume.copy volType SHARED (a template volume, never written again). VMs
made from it later get thin copies on top of those volumes or full copies
of them (see AddVm). The template is `locked` while its disks are copied
(an asynchronous phase), then `ok`; `illegal` if a copy failed and could not
be cleaned up, or until the storage manager learns how the copies of an
interrupted command ended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..audit import AuditType
from ..errors import Conflict, NotFound, ValidationFailed
from ..storage.spm import StorageAudit, _audit
from ..storage.vdsm import SHARED, volume_format_id, volume_type_id
from .commands import Principal
from .images import (NewDisk, attach_disk_row, insert_disk, load_domain,
                     require_active_domain, set_disks_status, vm_disks, volume_description)
from .locks import LockSpec
from .nic_commands import copy_nics_to_template
from .storage_base import StorageCommand, illegal_if_locked
from .vm_base import BLANK_TEMPLATE_ID, STATIC_FIELDS, load_vm

__all__ = ["AddTemplate", "RemoveTemplate", "TemplateDisk"]


@dataclass(frozen=True)
class TemplateDisk:
    """How the template's copy of one VM disk differs from it."""

    fmt: str | None = None
    sd_id: str | None = None
    alias: str | None = None


async def _template_illegal(services: Any, template_id: str) -> bool:
    res = await services.pool.execute(
        "UPDATE vm_static SET template_status='illegal' WHERE id=$1 AND "
        "entity_type='template' AND template_status='locked'", uuid.UUID(template_id))
    return bool(res.endswith(" 1"))


class AddTemplate(StorageCommand):
    action_type = "AddVmTemplate"

    def __init__(self, services: Any, principal: Principal, vm_id: str, name: str,
                 description: str = "", comment: str = "",
                 disks: dict[str, TemplateDisk] | None = None,
                 template_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.vm_id = vm_id
        self.name = name
        self.template_description = description
        self.comment = comment
        self.overrides = disks or {}
        self.template_id = template_id or str(uuid.uuid4())
        self.vm: Any = None
        self.plans: list[tuple[Any, NewDisk]] = []
        self.dc_id = ""

    def description(self) -> str:
        return f"Creating template {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, reason="a template creation"),
                LockSpec("template", self.template_id, reason="a template creation"),
                LockSpec("template_name", str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                         f"template:{self.name}")),
                         reason=f"the creation of template {self.name}")]

    async def validate(self) -> None:
        import re
        if not re.match(r"^[\w.\-]{1,255}$", self.name or ""):
            raise ValidationFailed(f"Invalid template name {self.name!r}", "name")
        if await self.s.pool.fetchval("SELECT 1 FROM vm_static WHERE entity_type='template' "
                                      "AND name=$1", self.name):
            raise Conflict(f"Cannot add Template. The name {self.name} is already in use.")
        self.vm = vm = await load_vm(self.s.pool, self.vm_id)
        if vm["status"] != "down":
            raise Conflict(f"Cannot add Template: VM {vm['name']} is {vm['status']}; it must "
                           f"be down.")
        sources = await vm_disks(self.s.pool, self.vm_id)
        unknown = set(self.overrides) - {str(d["id"]) for d in sources}
        if unknown:
            raise ValidationFailed(f"disk {sorted(unknown)[0]} is not a disk of the VM",
                                   "vm.disk_attachments")
        for src in sources:
            if src["status"] != "ok":
                raise Conflict(f"Cannot add Template: disk {src['alias']} of VM {vm['name']} "
                               f"is {src['status']}.")
            o = self.overrides.get(str(src["id"]), TemplateDisk())
            sd_id = o.sd_id or str(src["storage_domain_id"])
            sd = await load_domain(self.s.pool, sd_id, "vm.disk_attachments.disk.storage_domains")
            self.dc_id = require_active_domain(sd, "add the template")
            if str(src["data_center_id"]) != self.dc_id:
                raise Conflict("Cannot add Template: its disks must stay in the VM's data "
                               "center.")
            fmt = o.fmt or src["format"]
            if fmt not in ("cow", "raw"):
                raise ValidationFailed(f"unknown disk format {fmt!r}",
                                       "vm.disk_attachments.disk.format")
            self.plans.append((src, NewDisk(
                disk_id=str(uuid.uuid4()), volume_id=str(uuid.uuid4()),
                alias=o.alias or src["alias"], size=src["provisioned_size"], fmt=fmt,
                sparse=src["sparse"], sd_id=sd_id, description=src["description"],
                role="shared", wipe_after_delete=src["wipe_after_delete"])))
        if self.plans:
            await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"template_id": self.template_id, "disk_ids": [d.disk_id for _, d in self.plans]}

    def has_async_phase(self) -> bool:
        return bool(self.plans)

    def refs(self) -> Any:
        return self.audit_refs(template_id=uuid.UUID(self.template_id),
                               vm_id=uuid.UUID(self.vm_id), vm_name=self.vm["name"],
                               cluster_id=self.vm["cluster_id"])

    async def execute(self) -> str:
        vm = self.vm
        status = "locked" if self.plans else "ok"
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"""
                INSERT INTO vm_static (id, entity_type, name, description, comment, cluster_id,
                    template_status, template_version_number, template_version_name,
                    base_template_id, created_by_user_id, original_template_id,
                    {", ".join(STATIC_FIELDS)})
                VALUES ($1, 'template', $2, $3, $4, $5, $6, 1, 'base version', $1, $7, $8,
                    {", ".join(f"${i}" for i in range(9, 9 + len(STATIC_FIELDS)))})""",
                uuid.UUID(self.template_id), self.name, self.template_description,
                self.comment, vm["cluster_id"], status,
                uuid.UUID(self.principal.user_id) if self.principal.user_id else None,
                vm["template_id"], *[vm[f] for f in STATIC_FIELDS])
            await copy_nics_to_template(conn, self.vm_id, self.template_id)
            for src, d in self.plans:
                await insert_disk(conn, d)
                await attach_disk_row(conn, self.template_id, d.disk_id, src["interface"],
                                      src["bootable"], src["active"], src["read_only"],
                                      src["pass_discard"])
        for src, d in self.plans:
            await self.start_task(self.dc_id, "Volume.copy", {
                "volumeID": str(src["image_id"]), "storagepoolID": self.dc_id,
                "storagedomainID": str(src["storage_domain_id"]), "imageID": str(src["id"]),
                "dstSdUUID": d.sd_id, "dstImgUUID": d.disk_id, "dstVolUUID": d.volume_id,
                "desc": volume_description(d.alias, d.description), "volType": SHARED,
                "volFormat": volume_format_id(d.fmt), "preallocate": volume_type_id(d.sparse),
                "postZero": "false", "force": "false"},
                on_success={"ok_disks": [d.disk_id], "ok_template": self.template_id})
        await self.s.audit.log(AuditType.USER_ADD_VM_TEMPLATE,
                               f"Creation of Template {self.name} from VM {vm['name']} was "
                               f"initiated by {self.principal.name}.", self.refs())
        return self.template_id

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        if failures:
            raise failures[0]
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [d.disk_id for _, d in self.plans], "ok")
            await conn.execute("UPDATE vm_static SET template_status='ok' WHERE id=$1",
                               uuid.UUID(self.template_id))
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_VM_TEMPLATE_FINISHED_SUCCESS),
                               f"Creation of Template {self.name} from VM {self.vm['name']} "
                               f"has been completed.", self.refs())

    async def compensate(self) -> None:
        if not self.plans:
            return
        disks = [(d.sd_id, d.disk_id) for _, d in self.plans]
        outcome = await self.undo_new_vm(self.dc_id, self.template_id, disks,
                                         bool(self.tasks), template=True)
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_VM_TEMPLATE_FINISHED_FAILURE),
                               f"Failed to complete creation of Template {self.name} from VM "
                               f"{self.vm['name']} ({outcome}).", self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        template_id = params.get("template_id")
        if not template_id:
            return "nothing to undo"
        n = await illegal_if_locked(services, params.get("disk_ids") or [])
        if await _template_illegal(services, template_id):
            return (f"the template is illegal until the copies of its {n} disk(s) are known "
                    f"to have finished")
        return "the template was not locked"


class RemoveTemplate(StorageCommand):
    action_type = "RemoveVmTemplate"

    def __init__(self, services: Any, principal: Principal, template_id: str) -> None:
        super().__init__(services, principal)
        self.template_id = template_id
        self.row: Any = None
        self.disks: list[Any] = []
        self.dc_id = ""

    @property
    def name(self) -> str:
        return self.row["name"] if self.row is not None else self.template_id

    def description(self) -> str:
        return f"Removing template {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("template", self.template_id, reason="a template removal")]

    async def validate(self) -> None:
        if self.template_id == BLANK_TEMPLATE_ID:
            raise Conflict("The Blank template cannot be removed.")
        try:
            key = uuid.UUID(self.template_id)
        except ValueError:
            raise NotFound(f"template {self.template_id} does not exist") from None
        self.row = await self.s.pool.fetchrow(
            "SELECT * FROM vm_static WHERE id=$1 AND entity_type='template'", key)
        if self.row is None:
            raise NotFound(f"template {self.template_id} does not exist")
        if self.row["template_status"] == "locked":
            raise Conflict(f"Cannot remove Template {self.name}: it is locked.")
        users = [r["name"] for r in await self.s.pool.fetch(
            "SELECT name FROM vm_static WHERE template_id=$1 AND entity_type='vm' "
            "ORDER BY name", key)]
        if users:
            raise Conflict(f"Cannot delete Template. Template is being used by the following "
                           f"VMs: {', '.join(users)}.")
        self.disks = await vm_disks(self.s.pool, self.template_id)
        for d in self.disks:
            if d["sd_status"] != "active":
                raise Conflict(f"Cannot remove Template {self.name}: the storage domain of "
                               f"disk {d['alias']} is not active.")
            self.dc_id = str(d["data_center_id"])
        if self.disks:
            await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"template_id": self.template_id, "disk_ids": [str(d["id"]) for d in self.disks]}

    def has_async_phase(self) -> bool:
        return bool(self.tasks)

    def refs(self) -> Any:
        return self.audit_refs(template_id=uuid.UUID(self.template_id))

    async def execute(self) -> None:
        ids = [str(d["id"]) for d in self.disks]
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, ids, "locked")
            await conn.execute("UPDATE vm_static SET template_status='locked' WHERE id=$1",
                               uuid.UUID(self.template_id))
        gone = []
        try:
            for d in self.disks:
                if await self.delete_image(self.dc_id, str(d["storage_domain_id"]),
                                           str(d["id"])) is None:
                    gone.append(str(d["id"]))
        except BaseException:
            if not self.tasks:
                async with self.s.pool.acquire() as conn, conn.transaction():
                    for d in self.disks:
                        await set_disks_status(conn, [str(d["id"])], d["status"])
                    await conn.execute("UPDATE vm_static SET template_status=$2 WHERE id=$1",
                                       uuid.UUID(self.template_id),
                                       self.row["template_status"])
            raise
        await self.s.audit.log(AuditType.USER_REMOVE_VM_TEMPLATE,
                               f"Removal of Template {self.name} was initiated by "
                               f"{self.principal.name}.", self.refs())
        if gone:
            await self.s.pool.execute("DELETE FROM disks WHERE id = ANY($1::uuid[])",
                                      [uuid.UUID(i) for i in gone])
        if not self.tasks:
            await self._delete_row()

    async def _delete_row(self) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM disks WHERE id IN (SELECT disk_id FROM "
                               "disk_attachments WHERE vm_id=$1)", uuid.UUID(self.template_id))
            await conn.execute("DELETE FROM permissions WHERE object_type='template' AND "
                               "object_id=$1", uuid.UUID(self.template_id))
            await conn.execute("DELETE FROM vm_static WHERE id=$1", uuid.UUID(self.template_id))
        await self.s.audit.log(_audit(StorageAudit.USER_REMOVE_VM_TEMPLATE_FINISHED),
                               f"Removal of Template {self.name} has been completed.",
                               self.refs())

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        if failures:
            raise failures[0]
        await self._delete_row()

    async def compensate(self) -> None:
        if self.tasks:
            await illegal_if_locked(self.s, [str(d["id"]) for d in self.disks])
            await _template_illegal(self.s, self.template_id)

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        template_id = params.get("template_id")
        if not template_id:
            return "nothing to undo"
        await illegal_if_locked(services, params.get("disk_ids") or [])
        if await _template_illegal(services, template_id):
            return "the template is illegal: remove it again"
        return "nothing to undo"
