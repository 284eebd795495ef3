"""VMs to and from OVA files on a host (oVirt's export to path on host and
OVA import).

Export: the VM must be down; the engine measures each disk on the chosen
host (OVA.measure), writes the OVF from its database with those member
sizes, and the host packs the OVA as a task (OVA.export). Import: the host
reads the OVA's OVF (OVA.query), the engine parses it, creates the VM and
empty volumes on the SPM (Volume.create), then the host copies each disk out
of its tar member into its volume (OVA.importDisk). The VM is image_locked
and its disks locked meanwhile.
"""

from __future__ import annotations

import posixpath
import uuid
from typing import Any, ClassVar

from protocol.jsonrpc import JsonRpcError

from ..audit import AuditType
from ..errors import Conflict, NotFound, ValidationFailed
from ..hosts.manager import HostUnavailable
from ..ovf.model import OvfDisk, OvfError, OvfVm
from ..ovf.reader import read_ovf
from ..ovf.writer import write_ovf
from ..storage.spm import StorageAudit, _audit
from ..storage.tasks import SpmTask
from .commands import Principal
from .disk_commands import volume_create_params
from .images import (INTERFACES, NewDisk, attach_disk_row, check_disk_format, insert_disk,
                     load_domain, require_active_domain, set_disks_status, vm_disks)
from .locks import LockSpec
from .nic_commands import mac_pool
from .ova_nics import import_nics, ovf_nics
from .storage_base import StorageCommand, illegal_if_locked, storage_error
from .vm_base import check_memory, check_name, load_vm

__all__ = ["ExportVmToOva", "ExportTemplateToOva", "ImportVmFromOva", "ImportTemplateFromOva",
           "load_template", "ova_path_of_url"]

IMAGE_FORMATS = ("qcow2", "raw", "vmdk")
BLANK_ID = "00000000-0000-0000-0000-000000000000"


def ova_path_of_url(url: str) -> str:
    """`ova:///dir/file.ova` (oVirt's external import URL) or a plain path."""
    path = url[len("ova://"):] if url.startswith("ova://") else url
    if not path.startswith("/"):
        raise ValidationFailed(f"the OVA url {url!r} must name an absolute path "
                               f"(ova:///dir/file.ova)", "url")
    return posixpath.normpath(path)


async def _up_host(s: Any, host_id: str, dc_id: str, what: str) -> str:
    rt = s.hosts.get(host_id)
    if rt.status != "up" or not rt.connected:
        raise Conflict(f"Cannot {what}: host {rt.name} is {rt.status}.")
    host_dc = await s.pool.fetchval("SELECT data_center_id FROM clusters WHERE id=$1",
                                    uuid.UUID(rt.cluster_id))
    if str(host_dc) != dc_id:
        raise Conflict(f"Cannot {what}: host {rt.name} is not in the data center of the "
                       f"storage.")
    return str(rt.name)


class _HostTasks(StorageCommand):
    """Tasks on a chosen host (not the SPM), recorded like SPM tasks."""

    async def host_call(self, host_id: str, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self.s.storage.host_call(host_id, method, params)
        except JsonRpcError as exc:
            raise storage_error(f"{method} failed", exc) from None
        except HostUnavailable as exc:
            raise Conflict(f"{method}: {exc.detail}") from None

    async def start_host_task(self, host_id: str, dc_id: str, method: str,
                              params: dict[str, Any], on_success: dict[str, Any]) -> SpmTask:
        task_id = str(await self.host_call(host_id, method, params))
        await self.s.pool.execute(
            "INSERT INTO async_tasks (id, host_id, data_center_id, command_id, command_type, "
            "verb, on_success) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            uuid.UUID(task_id), uuid.UUID(host_id), uuid.UUID(dc_id),
            uuid.UUID(self.command_id), self.action_type, method, on_success)
        task = SpmTask(host_id, task_id, dc_id, method)
        self.tasks.append(task)
        return task


class _ExportToOva(_HostTasks):
    """Export of a VM or a template (`entity`): they differ in how the row is
    loaded and checked, the lock, the OVF's general data and the messages."""

    entity = "vm"
    what = "VM"
    audit_type: ClassVar[Any]

    def __init__(self, services: Any, principal: Principal, entity_id: str, host_id: str,
                 directory: str, filename: str | None = None) -> None:
        super().__init__(services, principal)
        self.entity_id = entity_id
        self.host_id = host_id
        self.directory = directory
        self.filename = filename
        self.row: Any = None
        self.disks: list[Any] = []
        self.dc_id = ""
        self.prepared: list[Any] = []

    @property
    def path(self) -> str:
        return posixpath.join(self.directory, self.filename or "")

    @property
    def name(self) -> str:
        return str(self.row["name"]) if self.row is not None else self.entity_id

    def description(self) -> str:
        return f"Exporting {self.what} {self.name} as an OVA"

    def locks(self) -> list[LockSpec]:
        return [LockSpec(self.entity, self.entity_id, reason="an export to OVA")]

    async def load(self) -> Any:
        """The row to export, checked for an export (raises if it cannot be)."""
        raise NotImplementedError

    def refs(self) -> Any:
        raise NotImplementedError

    async def validate(self) -> None:
        self.row = row = await self.load()
        self.filename = self.filename or f"{row['name']}.ova"
        if not self.directory.startswith("/"):
            raise ValidationFailed("directory must be an absolute path", "directory")
        if "/" in self.filename or self.filename in (".", ".."):
            raise ValidationFailed(f"invalid file name {self.filename!r}", "filename")
        self.disks = await vm_disks(self.s.pool, self.entity_id)
        for d in self.disks:
            if d["status"] != "ok":
                raise Conflict(f"Cannot export {self.what} {self.name}: disk {d['alias']} is "
                               f"{d['status']}.")
        self.dc_id = str(await self.s.pool.fetchval(
            "SELECT data_center_id FROM clusters WHERE id=$1", row["cluster_id"]))
        await _up_host(self.s, self.host_id, self.dc_id, f"export {self.what} {self.name}")

    def recovery_params(self) -> dict[str, Any]:
        return {f"{self.entity}_id": self.entity_id, "path": self.path}

    def has_async_phase(self) -> bool:
        return True

    async def _ovf(self, sizes: list[int]) -> OvfVm:
        row = self.row
        nics = await ovf_nics(self.s.pool, self.entity_id)
        disks = [OvfDisk(disk_id=str(d["id"]), file_id=str(d["image_id"]),
                         href=str(d["image_id"]), capacity=d["provisioned_size"],
                         file_size=size, populated_size=size, fmt=d["format"],
                         sparse=d["sparse"], interface=d["interface"], bootable=d["bootable"],
                         alias=d["alias"], description=d["description"],
                         pass_discard=d["pass_discard"],
                         wipe_after_delete=d["wipe_after_delete"], read_only=d["read_only"])
                 for d, size in zip(self.disks, sizes)]
        ovf = OvfVm(vm_id=self.entity_id, name=row["name"], description=row["description"],
                    comment=row["comment"], creation_date=row["creation_time"],
                    memory_mib=row["memory_mib"], min_allocated_mib=row["memory_guaranteed_mib"],
                    max_memory_mib=row["memory_max_mib"], cpu_sockets=row["cpu_sockets"],
                    cpu_cores=row["cpu_cores"], cpu_threads=row["cpu_threads"],
                    os_type=row["os_type"], vm_type=row["vm_type"], stateless=row["stateless"],
                    delete_protected=row["delete_protected"],
                    template_id=str(row["template_id"] or BLANK_ID),
                    disks=disks, nics=nics, entity=self.entity)
        if self.entity == "template":
            ovf.base_template_id = str(row["base_template_id"] or self.entity_id)
            ovf.version_number = row["template_version_number"] or 1
            ovf.version_name = row["template_version_name"] or ""
        return ovf

    async def execute(self) -> str:
        sizes = []
        for d in self.disks:
            sd, disk, vol = str(d["storage_domain_id"]), str(d["id"]), str(d["image_id"])
            await self.s.storage.prepare_image(self.host_id, self.dc_id, sd, disk, vol)
            self.prepared.append(d)
            m = await self.host_call(self.host_id, "OVA.measure", {
                "storagedomainID": sd, "imageID": disk, "volumeID": vol})
            sizes.append(int(m["required"]))
        ovf = write_ovf(await self._ovf(sizes))
        await self.start_host_task(self.host_id, self.dc_id, "OVA.export", {
            "ovaPath": self.path, "ovf": ovf, "entity": self.entity,
            "disks": [{"storagedomainID": str(d["storage_domain_id"]), "imageID": str(d["id"]),
                       "volumeID": str(d["image_id"]), "name": str(d["image_id"]), "size": size}
                      for d, size in zip(self.disks, sizes)]}, on_success={})
        await self.s.audit.log(self.audit_type,
                               f"Starting to export {self.what} {self.name} as an OVA to "
                               f"{self.path} on host {self.host_id}.", self.refs())
        return self.path

    async def _teardown(self) -> None:
        for d in self.prepared:
            await self.s.storage.teardown_image(self.host_id, self.dc_id,
                                                str(d["storage_domain_id"]), str(d["id"]),
                                                str(d["image_id"]))
        self.prepared = []

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        await self._teardown()
        if failures:
            raise failures[0]
        await self.s.audit.log(self.audit_type,
                               f"{self.what} {self.name} was exported successfully as an OVA "
                               f"to {self.path}.", self.refs())

    async def compensate(self) -> None:
        await self._teardown()
        await self.s.audit.log(self.audit_type,
                               f"Failed to export {self.what} {self.name} as an OVA to "
                               f"{self.path}.", self.refs())


class ExportVmToOva(_ExportToOva):
    action_type = "ExportVmToOva"
    audit_type = AuditType.USER_UPDATE_VM

    @property
    def vm_id(self) -> str:
        return self.entity_id

    async def load(self) -> Any:
        vm = await load_vm(self.s.pool, self.entity_id)
        if vm["status"] != "down":
            raise Conflict(f"Cannot export VM {vm['name']}: it is {vm['status']}; it must be "
                           f"down.")
        return vm

    def refs(self) -> Any:
        return self.audit_refs(vm_id=uuid.UUID(self.entity_id), vm_name=self.name)


class ExportTemplateToOva(_ExportToOva):
    """oVirt's ExportVmTemplateToOva: the OVA's OVF member is template.ovf."""

    action_type = "ExportVmTemplateToOva"
    audit_type = AuditType.USER_ADD_VM_TEMPLATE
    entity = "template"
    what = "Template"

    async def load(self) -> Any:
        row = await load_template(self.s.pool, self.entity_id)
        if row["template_status"] != "ok":
            raise Conflict(f"Cannot export Template {row['name']}: it is "
                           f"{row['template_status']}.")
        return row

    def refs(self) -> Any:
        return self.audit_refs(template_id=uuid.UUID(self.entity_id),
                               cluster_id=self.row["cluster_id"])


async def load_template(pool: Any, template_id: str) -> Any:
    try:
        key = uuid.UUID(template_id)
    except ValueError:
        raise NotFound(f"template {template_id} does not exist") from None
    row = await pool.fetchrow("SELECT * FROM vm_static WHERE id=$1 AND entity_type='template'",
                              key)
    if row is None:
        raise NotFound(f"template {template_id} does not exist")
    return row


class _ImportFromOva(_HostTasks):
    """Import of a VM or a template (`entity`) from an OVA: the same checks,
    empty volumes made on the SPM and filled from the OVA's members; they
    differ in the rows made and how success and failure end."""

    entity = "vm"
    what = "VM"
    role = "leaf"     # the role of the new volumes
    audit_type: ClassVar[Any]
    done_audit: ClassVar[Any]

    def __init__(self, services: Any, principal: Principal, ova_path: str, host_id: str,
                 cluster_id: str, sd_id: str, name: str | None = None,
                 sparse: bool | None = None, entity_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.ova_path = ova_path
        self.host_id = host_id
        self.cluster_id = cluster_id
        self.sd_id = sd_id
        self.name = name
        self.sparse = sparse
        self.entity_id = entity_id or str(uuid.uuid4())
        self.ovf: OvfVm | None = None
        self.plans: list[tuple[OvfDisk, NewDisk]] = []
        self.dc_id = ""

    def description(self) -> str:
        return f"Importing {self.what} {self.name or self.ova_path} from an OVA"

    def locks(self) -> list[LockSpec]:
        locks = [LockSpec(self.entity, self.entity_id, reason="an import from OVA")]
        if self.name:
            locks.append(LockSpec(f"{self.entity}_name",
                                  str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                 f"{self.entity}:{self.name}")),
                                  reason=f"the creation of {self.what} {self.name}"))
        return locks

    async def validate(self) -> None:
        pool = self.s.pool
        try:
            cluster = await pool.fetchrow("SELECT * FROM clusters WHERE id=$1",
                                          uuid.UUID(self.cluster_id))
        except ValueError:
            cluster = None
        if cluster is None:
            raise ValidationFailed(f"Cluster {self.cluster_id} does not exist", "cluster")
        sd = await load_domain(pool, self.sd_id)
        self.dc_id = require_active_domain(sd, f"import the {self.what}")
        if str(cluster["data_center_id"]) != self.dc_id:
            raise Conflict(f"Cannot import the {self.what}: storage domain {sd['name']} is "
                           f"not in the data center of the cluster.")
        await _up_host(self.s, self.host_id, self.dc_id, f"import the {self.what}")
        try:
            info = await self.s.storage.host_call(self.host_id, "OVA.query",
                                                  {"ovaPath": self.ova_path})
        except JsonRpcError as exc:
            raise ValidationFailed(f"Cannot read the OVA: {exc.message}", "url") from None
        try:
            self.ovf = ovf = read_ovf(info["ovf"])
        except OvfError as exc:
            raise ValidationFailed(f"Cannot import {self.ova_path}: {exc}", "url") from None
        self.name = self.name or ovf.name
        check_name(self.name)
        if await pool.fetchval("SELECT 1 FROM vm_static WHERE entity_type=$1 AND name=$2",
                               self.entity, self.name):
            raise Conflict(f"Cannot import {self.what}. The name {self.name} is already in "
                           f"use.")
        check_memory(ovf.memory_mib, ovf.min_allocated_mib or ovf.memory_mib,
                     ovf.max_memory_mib or ovf.memory_mib)
        files = {f["name"]: f for f in info["files"]}
        for d in ovf.disks:
            f = files.get(d.href)
            if f is None:
                raise ValidationFailed(f"Cannot import {self.ova_path}: disk {d.disk_id} is "
                                       f"in member {d.href!r}, which the OVA does not hold",
                                       "url")
            if f["format"] not in IMAGE_FORMATS:
                raise ValidationFailed(f"Cannot import {self.ova_path}: member {d.href} is "
                                       f"not a disk image", "url")
            # The member's real virtual size: the OVF rounds capacity up to GiB.
            size = int(f["virtualSize"]) or d.capacity
            sparse = self.sparse if self.sparse is not None else d.sparse
            check_disk_format(d.fmt, sparse, size)
            self.plans.append((d, NewDisk(
                disk_id=str(uuid.uuid4()), volume_id=str(uuid.uuid4()),
                alias=d.alias or f"{self.name}_Disk{len(self.plans) + 1}", size=size,
                fmt=d.fmt, sparse=sparse, sd_id=self.sd_id, description=d.description,
                role=self.role, wipe_after_delete=d.wipe_after_delete)))
        if self.plans:
            await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {f"{self.entity}_id": self.entity_id,
                "disk_ids": [n.disk_id for _, n in self.plans]}

    def has_async_phase(self) -> bool:
        return bool(self.plans)

    def refs(self) -> Any:
        raise NotImplementedError

    async def insert_entity(self, conn: Any, ovf: OvfVm) -> None:
        """The entity's rows, without its disks (in the transaction)."""
        raise NotImplementedError

    async def set_done(self, conn: Any | None) -> None:
        """Mark the entity usable: with conn in the disks' transaction, then
        with None after it."""
        raise NotImplementedError

    async def execute(self) -> str:
        ovf = self.ovf
        assert ovf is not None
        async with self.s.pool.acquire() as conn, conn.transaction():
            await self.insert_entity(conn, ovf)
            boot_taken = False
            for d, n in self.plans:
                # ov attaches virtio and virtio-scsi disks only; IDE/SATA become virtio.
                iface = d.interface if d.interface in INTERFACES else "virtio"
                bootable = d.bootable and not boot_taken
                boot_taken = boot_taken or bootable
                await insert_disk(conn, n)
                await attach_disk_row(conn, self.entity_id, n.disk_id, iface, bootable,
                                      read_only=d.read_only, pass_discard=d.pass_discard)
        await self.after_insert()
        for _, n in self.plans:
            await self.start_task(self.dc_id, "Volume.create",
                                  volume_create_params(self.dc_id, n), on_success={})
        await self.s.audit.log(self.audit_type,
                               f"Import of {self.what} {self.name} from OVA {self.ova_path} "
                               f"was initiated by {self.principal.name}.", self.refs())
        return self.entity_id

    async def after_insert(self) -> None:
        pass

    async def finish(self) -> None:
        failures = await self.wait_tasks()
        if failures:
            raise failures[0]
        for d, n in self.plans:  # one at a time: each reads the whole OVA member
            self.tasks = []
            await self.start_host_task(self.host_id, self.dc_id, "OVA.importDisk", {
                "ovaPath": self.ova_path, "member": d.href, "storagedomainID": n.sd_id,
                "imageID": n.disk_id, "volumeID": n.volume_id},
                on_success={"ok_disks": [n.disk_id]})
            failures = await self.wait_tasks()
            if failures:
                raise failures[0]
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [n.disk_id for _, n in self.plans], "ok")
            await self.set_done(conn)
        await self.set_done(None)
        await self.s.audit.log(self.done_audit,
                               f"{self.what} {self.name} was imported from OVA "
                               f"{self.ova_path}.", self.refs())


class ImportVmFromOva(_ImportFromOva):
    action_type = "ImportVmFromOva"
    audit_type = AuditType.USER_ADD_VM
    done_audit = _audit(StorageAudit.USER_ADD_VM_FINISHED_SUCCESS)

    def __init__(self, services: Any, principal: Principal, ova_path: str, host_id: str,
                 cluster_id: str, sd_id: str, name: str | None = None,
                 sparse: bool | None = None, vm_id: str | None = None) -> None:
        super().__init__(services, principal, ova_path, host_id, cluster_id, sd_id, name,
                         sparse, vm_id)

    @property
    def vm_id(self) -> str:
        return self.entity_id

    def refs(self) -> Any:
        return self.audit_refs(vm_id=uuid.UUID(self.vm_id), vm_name=self.name,
                               cluster_id=uuid.UUID(self.cluster_id))

    async def insert_entity(self, conn: Any, ovf: OvfVm) -> None:
        await conn.execute("""
            INSERT INTO vm_static (id, entity_type, name, description, comment, cluster_id,
                template_id, original_template_id, origin, created_by_user_id,
                memory_mib, memory_guaranteed_mib, memory_max_mib, cpu_sockets,
                cpu_cores, cpu_threads, os_type, vm_type, stateless, delete_protected)
            VALUES ($1, 'vm', $2, $3, $4, $5, $6, $6, 'ovirt', $7, $8, $9, $10, $11, $12,
                    $13, $14, $15, $16, $17)""",
            uuid.UUID(self.vm_id), self.name, ovf.description, ovf.comment,
            uuid.UUID(self.cluster_id), uuid.UUID("00000000-0000-0000-0000-000000000000"),
            uuid.UUID(self.principal.user_id) if self.principal.user_id else None,
            ovf.memory_mib, ovf.min_allocated_mib or ovf.memory_mib,
            ovf.max_memory_mib or ovf.memory_mib, ovf.cpu_sockets, ovf.cpu_cores,
            ovf.cpu_threads, ovf.os_type, ovf.vm_type, ovf.stateless,
            ovf.delete_protected)
        await conn.execute("INSERT INTO vm_dynamic (vm_id) VALUES ($1)",
                           uuid.UUID(self.vm_id))
        await conn.execute("INSERT INTO vm_statistics (vm_id) VALUES ($1)",
                           uuid.UUID(self.vm_id))
        await conn.execute(
            "INSERT INTO snapshots (id, vm_id, snapshot_type, description) "
            "VALUES ($1, $2, 'active', 'Active VM')", uuid.uuid4(), uuid.UUID(self.vm_id))
        await import_nics(conn, mac_pool(self.s), self.vm_id, self.dc_id, ovf.nics)

    async def after_insert(self) -> None:
        self.s.store.add(self.vm_id, self.name or "")
        if self.plans:
            await self.s.store.set_status(self.vm_id, "image_locked", None)

    async def set_done(self, conn: Any | None) -> None:
        if conn is None:
            await self.s.store.set_status(self.vm_id, "down", None)

    async def compensate(self) -> None:
        disks = [(n.sd_id, n.disk_id) for _, n in self.plans]
        outcome = await self.undo_new_vm(self.dc_id, self.vm_id, disks, bool(disks))
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_VM_FINISHED_FAILURE),
                               f"Failed to import VM {self.name} from OVA {self.ova_path} "
                               f"({outcome}).", self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        vm_id, disks = params.get("vm_id"), params.get("disk_ids") or []
        n = await illegal_if_locked(services, disks)
        view = services.store.get(vm_id) if vm_id else None
        if view is not None and view.status == "image_locked":
            await services.store.set_status(vm_id, "down", None)
        return f"{n} disk(s) of the imported VM are illegal; remove the VM and import again"


class ImportTemplateFromOva(_ImportFromOva):
    """oVirt's ImportVmTemplateFromOva: a template whose disks are template
    (SHARED) volumes, made empty and filled from the OVA's members. Locked
    meanwhile, as AddTemplate's are."""

    action_type = "ImportVmTemplateFromOva"
    audit_type = AuditType.USER_ADD_VM_TEMPLATE
    done_audit = _audit(StorageAudit.USER_ADD_VM_TEMPLATE_FINISHED_SUCCESS)
    entity = "template"
    what = "Template"
    role = "shared"

    def refs(self) -> Any:
        return self.audit_refs(template_id=uuid.UUID(self.entity_id),
                               cluster_id=uuid.UUID(self.cluster_id))

    async def insert_entity(self, conn: Any, ovf: OvfVm) -> None:
        await conn.execute("""
            INSERT INTO vm_static (id, entity_type, name, description, comment, cluster_id,
                template_status, template_version_number, template_version_name,
                base_template_id, created_by_user_id, original_template_id, origin,
                memory_mib, memory_guaranteed_mib, memory_max_mib, cpu_sockets,
                cpu_cores, cpu_threads, os_type, vm_type, stateless, delete_protected)
            VALUES ($1, 'template', $2, $3, $4, $5, $6, 1, 'base version', $1, $7, $8,
                    'ovirt', $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)""",
            uuid.UUID(self.entity_id), self.name, ovf.description, ovf.comment,
            uuid.UUID(self.cluster_id), "locked" if self.plans else "ok",
            uuid.UUID(self.principal.user_id) if self.principal.user_id else None,
            uuid.UUID(BLANK_ID), ovf.memory_mib, ovf.min_allocated_mib or ovf.memory_mib,
            ovf.max_memory_mib or ovf.memory_mib, ovf.cpu_sockets, ovf.cpu_cores,
            ovf.cpu_threads, ovf.os_type, ovf.vm_type, ovf.stateless, ovf.delete_protected)

    async def set_done(self, conn: Any | None) -> None:
        if conn is not None:
            await conn.execute("UPDATE vm_static SET template_status='ok' WHERE id=$1",
                               uuid.UUID(self.entity_id))

    async def compensate(self) -> None:
        disks = [(n.sd_id, n.disk_id) for _, n in self.plans]
        outcome = await self.undo_new_vm(self.dc_id, self.entity_id, disks,
                                         bool(self.tasks and disks), template=True)
        await self.s.audit.log(_audit(StorageAudit.USER_ADD_VM_TEMPLATE_FINISHED_FAILURE),
                               f"Failed to import Template {self.name} from OVA "
                               f"{self.ova_path} ({outcome}).", self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        template_id = params.get("template_id")
        n = await illegal_if_locked(services, params.get("disk_ids") or [])
        if template_id and await services.pool.execute(
                "UPDATE vm_static SET template_status='illegal' WHERE id=$1 AND "
                "template_status='locked'", uuid.UUID(template_id)) == "UPDATE 1":
            return (f"the imported template and {n} disk(s) are illegal; remove it and "
                    f"import again")
        return f"{n} disk(s) of the imported template are illegal"
