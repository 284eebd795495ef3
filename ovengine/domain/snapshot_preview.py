"""Preview a snapshot, then commit to it or undo the preview (oVirt's
TryBackToAllSnapshotsOfVm and RestoreAllSnapshots); the VM is down.

Preview: each disk of the snapshot gets a new qcow2 leaf on top of the
snapshot's volume and runs from it; the chain the VM used before is kept,
owned by a 'preview' snapshot ("Active VM before the preview") that also
keeps the configuration, and the snapshot's configuration is applied. The
snapshot is `in_preview`.

Commit: the volumes newer than the snapshot (the kept chain down to the
snapshot's volume) are deleted on the SPM, newer snapshots and the preview
snapshot go; the preview leaves stay active. Undo: the preview leaves are
deleted, the kept chain is active again with its configuration.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..errors import Conflict, OperationFailed
from ..storage.vdsm import volume_format_id, volume_type_id
from .commands import Principal
from .images import vm_disks, volume_description
from .locks import LockSpec
from .snapshot_commands import SnapshotCommand, _never_made, set_params, vm_config_of
from .snapshot_images import (STATIC_CONFIG, SnapshotAudit, SnapVolume, chain_down_to,
                              load_snapshot, require_no_preview, set_images_status,
                              snapshot_volumes)

__all__ = ["PreviewSnapshot", "CommitSnapshot", "UndoSnapshot"]


async def restore_config(conn: Any, vm_id: str, config: dict[str, Any] | None) -> None:
    values = {k: config[k] for k in STATIC_CONFIG if config and k in config}
    if values:
        sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=2))
        await conn.execute(f"UPDATE vm_static SET {sets} WHERE id=$1", uuid.UUID(vm_id),
                           *values.values())


class _DownVmSnapshotCommand(SnapshotCommand):
    """Holds the VM's exclusive lock: it stays down throughout."""

    async def check_down(self, what: str) -> None:
        await super().validate()
        assert self.row is not None
        if self.row["status"] != "down":
            raise Conflict(f"Cannot {what}: VM {self.name} is {self.row['status']}; it must be "
                           f"down.")

    async def lock_disks(self, disk_ids: list[str]) -> None:
        attached = {str(d["id"]): d for d in await vm_disks(self.s.pool, self.vm_id)}
        for disk in disk_ids:
            d = attached.get(disk)
            if d is None or d["status"] != "ok" or d["sd_status"] != "active":
                alias = d["alias"] if d is not None else disk
                raise Conflict(f"Cannot proceed: disk {alias} is not an ok disk of the VM on an "
                               f"active storage domain.")
            self.dc_id = str(d["data_center_id"])
        if disk_ids:
            await self.s.locks.acquire(self.command_id, [
                LockSpec("disk", d, reason=self.lock_reason) for d in disk_ids])
            await self.s.storage.spm.require_spm(self.dc_id)

    async def preview_pair(self) -> tuple[Any, Any]:
        """(the snapshot in preview, the VM's preview snapshot)."""
        rows = await self.s.pool.fetch(
            "SELECT * FROM snapshots WHERE vm_id=$1 AND (status='in_preview' OR "
            "snapshot_type='preview')", uuid.UUID(self.vm_id))
        shown = next((r for r in rows if r["status"] == "in_preview"), None)
        kept = next((r for r in rows if r["snapshot_type"] == "preview"), None)
        if shown is None or kept is None:
            raise Conflict(f"VM {self.name} is not previewing a snapshot.")
        return shown, kept

    async def delete_volumes(self, items: list[tuple[str, str, str]]) -> None:
        """Volume.delete of (domain, disk, volume) in order, forgetting each row."""
        for sd, disk, vol in items:
            try:
                await self.delete_volume(sd, disk, vol)
            except (OperationFailed, Conflict) as exc:
                if not _never_made(exc):
                    raise
            await self.s.pool.execute("DELETE FROM images WHERE id=$1", uuid.UUID(vol))


class PreviewSnapshot(_DownVmSnapshotCommand):
    action_type = "TryBackToAllSnapshotsOfVm"
    lock_reason = "a snapshot preview"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 snapshot_id: str) -> None:
        super().__init__(services, principal, vm_id)
        self.snapshot_id = snapshot_id
        self.preview_id = str(uuid.uuid4())
        self.snap: Any = None
        self.volumes: list[SnapVolume] = []
        self.new: dict[str, str] = {}  # disk -> preview leaf

    def description(self) -> str:
        return f"Previewing snapshot {self.snapshot_id} of VM {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, reason=self.lock_reason),
                LockSpec("snapshot", self.snapshot_id, reason=self.lock_reason)]

    async def validate(self) -> None:
        await self.check_down("preview a snapshot")
        self.snap = await load_snapshot(self.s.pool, self.vm_id, self.snapshot_id)
        if self.snap["snapshot_type"] != "regular" or self.snap["status"] != "ok":
            raise Conflict(f"Cannot preview a {self.snap['snapshot_type']} snapshot that is "
                           f"{self.snap['status']}.")
        await require_no_preview(self.s.pool, self.vm_id, "preview a snapshot")
        self.volumes = await snapshot_volumes(self.s.pool, self.snapshot_id)
        await self.lock_disks([v.disk_id for v in self.volumes])
        self.new = {v.disk_id: str(uuid.uuid4()) for v in self.volumes}

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "snapshot_id": self.snapshot_id,
                "preview_id": self.preview_id,
                "switch": [[v.disk_id, v.leaf_id, self.new[v.disk_id]] for v in self.volumes]}

    def has_async_phase(self) -> bool:
        return True

    async def execute(self) -> None:
        assert self.row is not None
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO snapshots (id, vm_id, snapshot_type, status, description, "
                "vm_configuration) VALUES ($1, $2, 'preview', 'ok', 'Active VM before the "
                "preview', $3)", uuid.UUID(self.preview_id), uuid.UUID(self.vm_id),
                vm_config_of(self.row))
            await conn.execute("UPDATE snapshots SET status='locked' WHERE id=$1",
                               uuid.UUID(self.snapshot_id))
            for v in self.volumes:
                await conn.execute("""
                    INSERT INTO images (id, disk_id, storage_domain_id, parent_id,
                        template_volume_id, volume_format, volume_type, volume_role, active,
                        status, size)
                    SELECT $1, disk_id, storage_domain_id, id, template_volume_id, 'cow',
                           'sparse', 'leaf', false, 'locked', $3
                    FROM images WHERE id=$2""",
                    uuid.UUID(self.new[v.disk_id]), uuid.UUID(v.volume_id), v.size)
        await self.s.audit.log(SnapshotAudit.USER_TRY_BACK_TO_SNAPSHOT,
                               f"Snapshot-Preview {self.snap['description']} for VM "
                               f"{self.name} was initiated by {self.principal.name}.",
                               self.refs())
        for v in self.volumes:
            await self.start_task(self.dc_id, "Volume.create", {
                "volumeID": self.new[v.disk_id], "storagepoolID": self.dc_id,
                "storagedomainID": v.sd_id, "imageID": v.disk_id, "size": str(v.size),
                "volFormat": volume_format_id("cow"), "preallocate": volume_type_id(True),
                "diskType": "DATA", "desc": volume_description(v.alias, ""),
                "srcImgUUID": v.disk_id, "srcVolUUID": v.volume_id}, on_success={})

    async def finish(self) -> None:
        await self.wait_all()
        await set_params(self.s, self.command_id, {"leaves_made": True})
        async with self.s.pool.acquire() as conn, conn.transaction():
            await _switch_to_preview(conn, self.recovery_params())
        await self.s.audit.log(SnapshotAudit.USER_TRY_BACK_TO_SNAPSHOT_FINISH_SUCCESS,
                               f"VM {self.name} restoring from Snapshot has been completed.",
                               self.refs())

    async def compensate(self) -> None:
        if self.tasks:
            await self.wait_tasks()
            self.tasks = []
        items = [(v.sd_id, v.disk_id, self.new[v.disk_id]) for v in self.volumes]
        try:
            await self.delete_volumes(items)
        except (OperationFailed, Conflict):
            await set_images_status(self.s.pool, [i[2] for i in items], "illegal")
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM snapshots WHERE id=$1", uuid.UUID(self.preview_id))
            await conn.execute("UPDATE snapshots SET status='ok' WHERE id=$1",
                               uuid.UUID(self.snapshot_id))
        await self.s.audit.log(SnapshotAudit.USER_TRY_BACK_TO_SNAPSHOT_FINISH_FAILURE,
                               f"Failed to complete Snapshot-Preview "
                               f"{self.snap['description']} for VM {self.name}.",
                               self.refs(), severity="error")

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        sid, pid = params.get("snapshot_id"), params.get("preview_id")
        if not sid or not pid:
            return "nothing to undo"
        if not await services.pool.fetchval("SELECT 1 FROM snapshots WHERE id=$1 AND "
                                            "status='locked'", uuid.UUID(sid)):
            return "nothing to undo"
        if params.get("leaves_made"):
            async with services.pool.acquire() as conn, conn.transaction():
                await _switch_to_preview(conn, params)
            return "the preview leaves existed: the VM is previewing the snapshot"
        async with services.pool.acquire() as conn, conn.transaction():
            await set_images_status(conn, [s[2] for s in params.get("switch") or []],
                                    "illegal")
            await conn.execute("DELETE FROM snapshots WHERE id=$1", uuid.UUID(pid))
            await conn.execute("UPDATE snapshots SET status='ok' WHERE id=$1", uuid.UUID(sid))
        return "the preview was abandoned; its unfinished volumes are illegal"


async def _switch_to_preview(conn: Any, params: dict[str, Any]) -> None:
    pid, sid, vm_id = params["preview_id"], params["snapshot_id"], params["vm_id"]
    for disk, old, new in params["switch"]:
        await conn.execute("UPDATE images SET vm_snapshot_id=$2, active=false WHERE id=$1",
                           uuid.UUID(old), uuid.UUID(pid))
        await conn.execute("UPDATE images SET status='ok', active=true WHERE id=$1",
                           uuid.UUID(new))
        await conn.execute("UPDATE disks SET image_id=$2 WHERE id=$1", uuid.UUID(disk),
                           uuid.UUID(new))
    config = await conn.fetchval("SELECT vm_configuration FROM snapshots WHERE id=$1",
                                 uuid.UUID(sid))
    await restore_config(conn, vm_id, config)
    await conn.execute("UPDATE snapshots SET status='in_preview' WHERE id=$1", uuid.UUID(sid))


class CommitSnapshot(_DownVmSnapshotCommand):
    """Keep the previewed state: drop everything newer than the snapshot."""

    action_type = "RestoreAllSnapshots"
    lock_reason = "a snapshot commit"

    def __init__(self, services: Any, principal: Principal, vm_id: str) -> None:
        super().__init__(services, principal, vm_id)
        self.shown: Any = None
        self.kept: Any = None
        self.doomed: list[tuple[str, str, str]] = []  # (domain, disk, volume), leaf first

    def description(self) -> str:
        return f"Committing the snapshot preview of VM {self.name}"

    async def validate(self) -> None:
        await self.check_down("commit a snapshot")
        self.shown, self.kept = await self.preview_pair()
        bases = {v.disk_id: v for v in await snapshot_volumes(self.s.pool,
                                                              str(self.shown["id"]))}
        for old in await snapshot_volumes(self.s.pool, str(self.kept["id"])):
            base = bases.get(old.disk_id)
            if base is None:
                continue
            for vol in await chain_down_to(self.s.pool, old.volume_id, base.volume_id):
                self.doomed.append((old.sd_id, old.disk_id, vol))
        await self.lock_disks(sorted({d for _, d, _ in self.doomed}))

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id,
                "snapshot_id": str(self.shown["id"]) if self.shown else None}

    def has_async_phase(self) -> bool:
        return True

    async def execute(self) -> None:
        await self.s.pool.execute("UPDATE snapshots SET status='locked' WHERE id=$1",
                                  self.shown["id"])
        await self.s.audit.log(SnapshotAudit.USER_RESTORE_FROM_SNAPSHOT,
                               f"VM {self.name} restored from Snapshot "
                               f"{self.shown['description']} by {self.principal.name}.",
                               self.refs())

    async def finish(self) -> None:
        await self.delete_volumes(self.doomed)
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM snapshots WHERE vm_id=$1 AND ((snapshot_type="
                               "'regular' AND creation_date > $2) OR id=$3)",
                               uuid.UUID(self.vm_id), self.shown["creation_date"],
                               self.kept["id"])
            await conn.execute("UPDATE snapshots SET status='ok' WHERE id=$1", self.shown["id"])
        await self.s.audit.log(SnapshotAudit.USER_RESTORE_FROM_SNAPSHOT_FINISH_SUCCESS,
                               f"VM {self.name} restoring from Snapshot has been completed.",
                               self.refs())

    async def compensate(self) -> None:
        if self.tasks:
            await self.wait_tasks()
            self.tasks = []
        # Volumes deleted so far are gone from the rows; committing again finishes.
        await self.s.pool.execute("UPDATE snapshots SET status='in_preview' WHERE id=$1",
                                  self.shown["id"])
        await self.s.audit.log(SnapshotAudit.USER_RESTORE_FROM_SNAPSHOT_FINISH_FAILURE,
                               f"Failed to complete VM {self.name} restoring from Snapshot.",
                               self.refs(), severity="error")

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        sid = params.get("snapshot_id")
        if sid and await services.pool.execute(
                "UPDATE snapshots SET status='in_preview' WHERE id=$1 AND status='locked'",
                uuid.UUID(sid)) == "UPDATE 1":
            return "the snapshot is in preview again: commit again to finish"
        return "nothing to undo"


class UndoSnapshot(_DownVmSnapshotCommand):
    """Leave the preview: back to the chain and configuration kept for it."""

    action_type = "RestoreAllSnapshotsUndo"
    lock_reason = "a snapshot preview undo"

    def __init__(self, services: Any, principal: Principal, vm_id: str) -> None:
        super().__init__(services, principal, vm_id)
        self.shown: Any = None
        self.kept: Any = None
        self.back: list[SnapVolume] = []  # the kept leaves (leaf_id: the preview leaf)

    def description(self) -> str:
        return f"Undoing the snapshot preview of VM {self.name}"

    async def validate(self) -> None:
        await self.check_down("undo a snapshot preview")
        self.shown, self.kept = await self.preview_pair()
        self.back = await snapshot_volumes(self.s.pool, str(self.kept["id"]))
        await self.lock_disks([v.disk_id for v in self.back])

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id,
                "snapshot_id": str(self.shown["id"]) if self.shown else None}

    def has_async_phase(self) -> bool:
        return True

    async def execute(self) -> None:
        # The rows first: from now on the VM would start on the kept chain
        # whatever happens to the preview leaves.
        async with self.s.pool.acquire() as conn, conn.transaction():
            for v in self.back:
                await conn.execute("UPDATE images SET vm_snapshot_id=NULL, active=true "
                                   "WHERE id=$1", uuid.UUID(v.volume_id))
                await conn.execute("UPDATE images SET status='illegal', active=false "
                                   "WHERE id=$1", uuid.UUID(v.leaf_id))
                await conn.execute("UPDATE disks SET image_id=$2 WHERE id=$1",
                                   uuid.UUID(v.disk_id), uuid.UUID(v.volume_id))
            await restore_config(conn, self.vm_id, self.kept["vm_configuration"])
            await conn.execute("DELETE FROM snapshots WHERE id=$1", self.kept["id"])
            await conn.execute("UPDATE snapshots SET status='ok' WHERE id=$1",
                               self.shown["id"])
        await self.s.audit.log(SnapshotAudit.USER_RESTORE_FROM_SNAPSHOT,
                               f"Undoing the preview of Snapshot {self.shown['description']} "
                               f"of VM {self.name} by {self.principal.name}.", self.refs())

    async def finish(self) -> None:
        await self.delete_volumes([(v.sd_id, v.disk_id, v.leaf_id) for v in self.back])
        await self.s.audit.log(SnapshotAudit.USER_RESTORE_FROM_SNAPSHOT_FINISH_SUCCESS,
                               f"VM {self.name} preview of Snapshot "
                               f"{self.shown['description']} was undone.", self.refs())

    async def compensate(self) -> None:
        if self.tasks:
            await self.wait_tasks()
            self.tasks = []
        # The VM is back on its kept chain; a preview leaf not deleted stays
        # illegal, out of use.
        await self.s.audit.log(SnapshotAudit.USER_RESTORE_FROM_SNAPSHOT_FINISH_FAILURE,
                               f"The preview of VM {self.name} was undone but not every "
                               f"preview volume could be deleted.", self.refs(),
                               severity="warning")
