"""VM configuration commands: add (from a template), update, remove.

A VM made from a template with disks gets its own disks: thin copies by
default (a qcow2 volume on top of the template's volume, which stays
shared), or full copies (`clone`: Volume.copy of the template volume, as
oVirt's clone=true). It is `image_locked` while they are made (an
asynchronous phase). Removing a VM removes its disks (unless detach_only),
also asynchronously: the VM is gone at once, its disks when their images are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..audit import AuditType
from ..errors import Conflict, ValidationFailed
from ..storage.spm import StorageAudit, _audit
from ..storage.vdsm import LEAF, volume_format_id, volume_type_id
from .commands import Command, Principal
from .disk_commands import volume_create_params
from .images import (NewDisk, attach_disk_row, insert_disk, load_domain,
                     require_active_domain, set_disks_status, vm_disks, volume_description)
from .locks import LockSpec
from .nic_commands import create_nics_from_template, mac_pool, template_nics
from .storage_base import StorageCommand, illegal_if_locked
from .vm_base import (BLANK_TEMPLATE_ID, STATIC_FIELDS, USER_VM_MANAGER_ROLE_ID, VmCommand,
                      VmConfig, check_memory, check_name, load_vm)

__all__ = ["AddVm", "UpdateVm", "RemoveVm", "VmConfig", "DiskOverride", "BLANK_TEMPLATE_ID",
           "USER_VM_MANAGER_ROLE_ID"]


@dataclass(frozen=True)
class DiskOverride:
    """How the VM's copy of one template disk differs from it (oVirt's
    disk_attachments in an add-VM request)."""

    fmt: str | None = None
    sparse: bool | None = None
    sd_id: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class _DiskPlan:
    source: Any          # the template's disk row
    disk: NewDisk        # the VM's new disk


class AddVm(StorageCommand):
    action_type = "AddVm"

    def __init__(self, services: Any, principal: Principal, cluster_id: str,
                 template_id: str = BLANK_TEMPLATE_ID, config: VmConfig | None = None,
                 vm_id: str | None = None, clone: bool = False,
                 disks: dict[str, DiskOverride] | None = None) -> None:
        super().__init__(services, principal)
        self.cluster_id = cluster_id
        self.template_id = template_id
        self.config = config or VmConfig()
        self.vm_id = vm_id or str(uuid.uuid4())
        self.values: dict[str, Any] = {}
        self.clone = clone
        self.overrides = disks or {}
        self.plans: list[_DiskPlan] = []
        self.dc_id = ""
        self.nics: list[Any] = []
        self.vm_dc: Any = None

    def description(self) -> str:
        return f"Adding VM {self.config.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("template", self.template_id, exclusive=False, reason="a VM creation"),
                LockSpec("vm_name", str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                   f"vm:{self.config.name}")),
                         reason=f"the creation of VM {self.config.name}"),
                LockSpec("vm", self.vm_id, reason=f"the creation of VM {self.config.name}")]

    async def validate(self) -> None:
        name = self.config.name or ""
        check_name(name)
        pool = self.s.pool
        if await pool.fetchval("SELECT 1 FROM vm_static WHERE entity_type='vm' AND name=$1",
                               name):
            raise Conflict(f"Cannot add VM. The name {name} is already in use.")
        try:
            cluster = await pool.fetchrow("SELECT id, compat_major, compat_minor, "
                                          "data_center_id FROM clusters "
                                          "WHERE id=$1", uuid.UUID(self.cluster_id))
        except ValueError:
            cluster = None
        if cluster is None:
            raise ValidationFailed(f"Cluster {self.cluster_id} does not exist", "cluster")
        try:
            template = await pool.fetchrow(
                "SELECT * FROM vm_static WHERE id=$1 AND entity_type='template'",
                uuid.UUID(self.template_id))
        except ValueError:
            template = None
        if template is None:
            raise ValidationFailed(f"Template {self.template_id} does not exist", "template")
        if template["template_status"] != "ok":
            raise Conflict(f"Cannot add VM: template {template['name']} is "
                           f"{template['template_status']}")
        values = {f: template[f] for f in STATIC_FIELDS}
        for f in STATIC_FIELDS:
            v = getattr(self.config, f)
            if v is not None:
                values[f] = v
        if self.config.memory_mib is not None and self.config.memory_guaranteed_mib is None:
            values["memory_guaranteed_mib"] = min(values["memory_guaranteed_mib"],
                                                  values["memory_mib"])
        if self.config.memory_mib is not None and self.config.memory_max_mib is None:
            values["memory_max_mib"] = max(values["memory_max_mib"], values["memory_mib"])
        check_memory(values["memory_mib"], values["memory_guaranteed_mib"],
                      values["memory_max_mib"])
        for f in ("cpu_sockets", "cpu_cores", "cpu_threads"):
            if values[f] < 1:
                raise ValidationFailed("cpu topology values must be at least 1", "cpu.topology")
        self.values = values
        self.vm_dc = cluster["data_center_id"]
        self.nics = await template_nics(pool, self.template_id)
        await self._plan_disks(cluster["id"])

    async def _plan_disks(self, cluster_id: uuid.UUID) -> None:
        sources = await vm_disks(self.s.pool, self.template_id)
        unknown = set(self.overrides) - {str(d["id"]) for d in sources}
        if unknown:
            raise ValidationFailed(f"disk {sorted(unknown)[0]} is not a disk of the template",
                                   "disk_attachments")
        if not sources:
            return
        dc = await self.s.pool.fetchval("SELECT data_center_id FROM clusters WHERE id=$1",
                                        cluster_id)
        self.dc_id = str(dc)
        for src in sources:
            if src["status"] != "ok":
                raise Conflict(f"Cannot add VM: disk {src['alias']} of the template is "
                               f"{src['status']}.")
            o = self.overrides.get(str(src["id"]), DiskOverride())
            sd_id = o.sd_id or str(src["storage_domain_id"])
            sd = await load_domain(self.s.pool, sd_id, "disk_attachments.disk.storage_domains")
            if require_active_domain(sd, "add the VM") != self.dc_id:
                raise Conflict(f"Cannot add VM: the storage domain {sd['name']} is not in "
                               f"the data center of cluster {self.cluster_id}.")
            fmt = o.fmt or ("cow" if not self.clone else src["format"])
            sparse = o.sparse if o.sparse is not None else \
                (True if not self.clone else src["sparse"])
            if not self.clone:
                if fmt != "cow":
                    raise ValidationFailed("a thin copy of a template disk is qcow2 (cow); use "
                                           "clone=true for another format",
                                           "disk_attachments.disk.format")
                if sd_id != str(src["storage_domain_id"]):
                    raise ValidationFailed("a thin copy of a template disk is on the "
                                           "template disk's storage domain; use clone=true",
                                           "disk_attachments.disk.storage_domains")
            if fmt not in ("cow", "raw"):
                raise ValidationFailed(f"unknown disk format {fmt!r}",
                                       "disk_attachments.disk.format")
            template_volume = str(src["image_id"])
            self.plans.append(_DiskPlan(src, NewDisk(
                disk_id=str(uuid.uuid4()), volume_id=str(uuid.uuid4()),
                alias=o.alias or f"{self.config.name}_{src['alias']}",
                size=src["provisioned_size"], fmt=fmt, sparse=sparse, sd_id=sd_id,
                description=src["description"],
                parent_id=template_volume if not self.clone else
                "00000000-0000-0000-0000-000000000000",
                template_volume_id=template_volume if not self.clone else
                "00000000-0000-0000-0000-000000000000",
                wipe_after_delete=src["wipe_after_delete"])))
        await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "disk_ids": [p.disk.disk_id for p in self.plans]}

    def has_async_phase(self) -> bool:
        return bool(self.plans)

    async def execute(self) -> str:
        v = self.values
        c = self.config
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"""
                INSERT INTO vm_static (id, entity_type, name, description, comment, cluster_id,
                    template_id, original_template_id, created_by_user_id,
                    {", ".join(STATIC_FIELDS)})
                VALUES ($1, 'vm', $2, $3, $4, $5, $6, $6, $7,
                    {", ".join(f"${i}" for i in range(8, 8 + len(STATIC_FIELDS)))})""",
                uuid.UUID(self.vm_id), c.name, c.description or "", c.comment or "",
                uuid.UUID(self.cluster_id), uuid.UUID(self.template_id),
                uuid.UUID(self.principal.user_id) if self.principal.user_id else None,
                *[v[f] for f in STATIC_FIELDS])
            await conn.execute("INSERT INTO vm_dynamic (vm_id) VALUES ($1)",
                               uuid.UUID(self.vm_id))
            await conn.execute("INSERT INTO vm_statistics (vm_id) VALUES ($1)",
                               uuid.UUID(self.vm_id))
            await conn.execute(
                "INSERT INTO snapshots (id, vm_id, snapshot_type, description) "
                "VALUES ($1, $2, 'active', 'Active VM')", uuid.uuid4(), uuid.UUID(self.vm_id))
            await create_nics_from_template(conn, mac_pool(self.s), self.vm_id, self.nics,
                                            self.vm_dc)
            if self.principal.user_id and not self.principal.is_admin:
                await conn.execute(
                    "INSERT INTO permissions (id, role_id, user_id, object_type, object_id) "
                    "SELECT $1, $2, $3, 'vm', $4 WHERE EXISTS "
                    "(SELECT 1 FROM roles WHERE id = $2)",
                    uuid.uuid4(), uuid.UUID(USER_VM_MANAGER_ROLE_ID),
                    uuid.UUID(self.principal.user_id), uuid.UUID(self.vm_id))
            for p in self.plans:
                await insert_disk(conn, p.disk)
                await attach_disk_row(conn, self.vm_id, p.disk.disk_id, p.source["interface"],
                                      p.source["bootable"], p.source["active"],
                                      p.source["read_only"], p.source["pass_discard"])
        self.s.store.add(self.vm_id, c.name or "")
        if self.plans:
            await self.s.store.set_status(self.vm_id, "image_locked", None)
            await self._start_copies()
        await self.s.audit.log(AuditType.USER_ADD_VM,
                               f"VM {c.name} was created by {self.principal.name}.",
                               self.refs())
        return self.vm_id

    def refs(self) -> Any:
        return self.audit_refs(vm_id=uuid.UUID(self.vm_id), vm_name=self.config.name,
                               cluster_id=uuid.UUID(self.cluster_id))

    async def _start_copies(self) -> None:
        for p in self.plans:
            d, src = p.disk, p.source
            ok = {"ok_disks": [d.disk_id]}
            if not self.clone:  # thin: a qcow2 layer on the template's volume
                await self.start_task(self.dc_id, "Volume.create",
                                      volume_create_params(self.dc_id, d, str(src["id"])),
                                      on_success=ok)
                continue
            await self.start_task(self.dc_id, "Volume.copy", {
                "volumeID": str(src["image_id"]), "storagepoolID": self.dc_id,
                "storagedomainID": str(src["storage_domain_id"]), "imageID": str(src["id"]),
                "dstSdUUID": d.sd_id, "dstImgUUID": d.disk_id, "dstVolUUID": d.volume_id,
                "desc": volume_description(d.alias, d.description), "volType": LEAF,
                "volFormat": volume_format_id(d.fmt), "preallocate": volume_type_id(d.sparse),
                "postZero": "false", "force": "false"}, on_success=ok)

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        if failures:
            raise failures[0]
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [p.disk.disk_id for p in self.plans], "ok")
        await self.s.store.set_status(self.vm_id, "down", None)
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_VM_FINISHED_SUCCESS),
                               f"VM {self.config.name} creation has been completed.",
                               self.refs())

    async def compensate(self) -> None:
        if not self.plans:
            return
        disks = [(p.disk.sd_id, p.disk.disk_id) for p in self.plans]
        outcome = await self.undo_new_vm(self.dc_id, self.vm_id, disks, bool(self.tasks))
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_VM_FINISHED_FAILURE),
                               f"Failed to complete VM {self.config.name} creation "
                               f"({outcome}).", self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        vm_id, disks = params.get("vm_id"), params.get("disk_ids") or []
        if not disks:
            return "nothing to undo"
        n = await illegal_if_locked(services, disks)
        view = services.store.get(vm_id) if vm_id else None
        if view is not None and view.status == "image_locked":
            await services.store.set_status(vm_id, "down", None)
        return (f"{n} disk(s) of the VM are illegal until their creation is known to have "
                f"finished")


class UpdateVm(Command):
    action_type = "UpdateVm"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 config: VmConfig) -> None:
        super().__init__(services, principal)
        self.vm_id = vm_id
        self.config = config
        self.row: asyncpg.Record | None = None

    def description(self) -> str:
        return f"Updating VM {self.vm_id}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, reason="a VM update")]

    async def validate(self) -> None:
        self.row = row = await load_vm(self.s.pool, self.vm_id)
        c = self.config
        if c.name is not None and c.name != row["name"]:
            check_name(c.name)
            if await self.s.pool.fetchval(
                    "SELECT 1 FROM vm_static WHERE entity_type='vm' AND name=$1", c.name):
                raise Conflict(f"Cannot edit VM. The name {c.name} is already in use.")
        mem = c.memory_mib if c.memory_mib is not None else row["memory_mib"]
        gua = c.memory_guaranteed_mib if c.memory_guaranteed_mib is not None else \
            min(row["memory_guaranteed_mib"], mem)
        mx = c.memory_max_mib if c.memory_max_mib is not None else max(row["memory_max_mib"],
                                                                      mem)
        check_memory(mem, gua, mx)
        self.config.memory_guaranteed_mib = gua
        self.config.memory_max_mib = mx

    async def execute(self) -> str:
        fields = {f: getattr(self.config, f) for f in ("name", "description", "comment",
                                                        *STATIC_FIELDS)}
        fields = {k: v for k, v in fields.items() if v is not None}
        if fields:
            sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
            await self.s.pool.execute(f"UPDATE vm_static SET {sets} WHERE id = $1",
                                      uuid.UUID(self.vm_id), *fields.values())
        if "name" in fields:
            self.s.store.rename(self.vm_id, fields["name"])
        assert self.row is not None
        name = fields.get("name", self.row["name"])
        await self.s.audit.log(AuditType.USER_UPDATE_VM,
                               f"VM {name} configuration was updated by {self.principal.name}.",
                               self.audit_refs(vm_id=uuid.UUID(self.vm_id), vm_name=name))
        return self.vm_id


class RemoveVm(VmCommand, StorageCommand):
    action_type = "RemoveVm"
    lock_reason = "a VM removal"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 force: bool = False, remove_disks: bool = True) -> None:
        super().__init__(services, principal, vm_id)
        self.tasks = []
        self.force = force
        self.remove_disks = remove_disks
        self.disks: list[Any] = []     # removed with the VM
        self.deleting: list[str] = []  # their Image.delete tasks started
        self.dc_id = ""

    def description(self) -> str:
        return f"Removing VM {self.name}"

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        if self.row["status"] != "down":
            raise Conflict(f"Cannot remove VM. VM {self.name} is {self.row['status']}: "
                           f"stop it first.")
        if self.row["delete_protected"]:
            raise Conflict(f"Cannot remove VM {self.name}: it is delete protected.")
        if not self.remove_disks:
            return
        for d in await vm_disks(self.s.pool, self.vm_id):
            others = await self.s.pool.fetchval(
                "SELECT count(*) FROM disk_attachments WHERE disk_id=$1 AND vm_id <> $2",
                d["id"], uuid.UUID(self.vm_id))
            if others:
                continue  # a shared disk still used elsewhere is only detached
            if d["status"] == "locked":
                raise Conflict(f"Cannot remove VM {self.name}: disk {d['alias']} is locked.")
            if d["sd_status"] != "active":
                raise Conflict(f"Cannot remove VM {self.name}: the storage domain of disk "
                               f"{d['alias']} is not active (detach_only=true keeps the "
                               f"disks).")
            self.disks.append(d)
            self.dc_id = str(d["data_center_id"])
        if self.disks:
            await self.s.locks.acquire(self.command_id, [
                LockSpec("disk", str(d["id"]), reason="a VM removal") for d in self.disks])
            await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "disk_ids": [str(d["id"]) for d in self.disks]}

    def has_async_phase(self) -> bool:
        return bool(self.tasks)

    async def execute(self) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [str(d["id"]) for d in self.disks], "locked")
        gone: list[str] = []
        try:
            for d in self.disks:
                disk_id = str(d["id"])
                if await self.delete_image(self.dc_id, str(d["storage_domain_id"]), disk_id,
                                           d["wipe_after_delete"]) is None:
                    gone.append(disk_id)
                else:
                    self.deleting.append(disk_id)
        except BaseException:
            # Disks whose deletion did not start keep their status.
            async with self.s.pool.acquire() as conn, conn.transaction():
                for d in self.disks:
                    if str(d["id"]) not in self.deleting and str(d["id"]) not in gone:
                        await set_disks_status(conn, [str(d["id"])], d["status"])
            if not self.tasks:  # nothing started: the VM stays as it was
                raise
            # Some images are being deleted already: the VM goes; the others stay
            # as floating disks.
        async with self.s.pool.acquire() as conn, conn.transaction():
            if gone:
                await conn.execute("DELETE FROM disks WHERE id = ANY($1::uuid[])",
                                   [uuid.UUID(i) for i in gone])
            await conn.execute("DELETE FROM permissions WHERE object_type='vm' AND object_id=$1",
                               uuid.UUID(self.vm_id))
            await conn.execute("DELETE FROM vm_static WHERE id=$1", uuid.UUID(self.vm_id))
        self.s.store.remove(self.vm_id)
        await self.s.audit.log(AuditType.USER_REMOVE_VM,
                               f"VM {self.name} was removed by {self.principal.name}.",
                               self.refs())

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        if failures:
            raise failures[0]
        await self.s.pool.execute("DELETE FROM disks WHERE id = ANY($1::uuid[])",
                                  [uuid.UUID(i) for i in self.deleting])
        await self.s.audit.log(AuditType.USER_REMOVE_VM_FINISHED,
                               f"VM {self.name} was successfully removed.", self.refs())

    async def compensate(self) -> None:
        if self.tasks:
            await illegal_if_locked(self.s, self.deleting)

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        disks = params.get("disk_ids") or []
        n = await illegal_if_locked(services, disks)
        return (f"{n} disk(s) of the removed VM are illegal until their deletion is known to "
                f"have finished" if n else "nothing to undo")
