"""VM snapshots: create (configuration and disks) and remove (merge).

Create: the snapshot is `locked` while it is taken and `ok` when done (an
asynchronous phase). For each chosen disk a qcow2 leaf is made on the SPM
(Volume.create, parent = the disk's leaf); a running VM then switches its
drives to the new leaves in one VM.snapshot on its host; the old leaves
become the snapshot's volumes (see snapshot_images). Memory is never saved:
the agent refuses memory snapshots, so persist_memorystate is recorded false.

Remove: as oVirt, the snapshot's volume of each disk and its child (the next
snapshot's volume or the active one) become one: the child (top) is
committed into the snapshot's volume (base), which takes the child's place
and snapshot; the child's volume is then deleted. A running VM merges live
(VM.merge, the job followed in the VM's vmJobs); a stopped one cold
(Image.coldMerge on the SPM).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from protocol.jsonrpc import JsonRpcError

from ..errors import Conflict, OperationFailed, ValidationFailed
from ..hosts.manager import HostUnavailable
from ..storage.vdsm import volume_format_id, volume_type_id
from .commands import Principal
from .images import vm_disks, volume_description
from .locks import LockSpec
from .snapshot_images import (SnapshotAudit, SnapVolume, apply_merge, drive_chain,
                              load_snapshot, require_no_preview, set_images_status,
                              snapshot_volumes)
from .storage_base import StorageCommand
from .vm_base import VmCommand

__all__ = ["CreateSnapshot", "RemoveSnapshot", "vm_config_of"]

log = logging.getLogger(__name__)

# A VM in these states may have its disks snapshotted or merged (not while
# it starts, stops or migrates).
_STABLE = frozenset({"down", "up", "paused"})


def vm_config_of(row: Any) -> dict[str, Any]:
    """The VM's configuration as a snapshot stores it (JSON-safe)."""
    return {k: (v if not isinstance(v, uuid.UUID) else str(v))
            for k, v in dict(row).items()
            if k not in ("creation_time",) and not hasattr(v, "isoformat")}


async def set_params(s: Any, command_id: str, extra: dict[str, Any]) -> None:
    """Record progress in the command's recovery params (for crash recovery)."""
    await s.pool.execute("UPDATE command_entities SET params = params || $2::jsonb "
                         "WHERE id=$1", uuid.UUID(command_id), extra)


class SnapshotCommand(VmCommand, StorageCommand):
    """A VM command that starts storage tasks (both bases' state)."""

    def __init__(self, services: Any, principal: Principal, vm_id: str) -> None:
        super().__init__(services, principal, vm_id)
        self.tasks = []
        self.dc_id = ""

    async def wait_all(self) -> None:
        failures = await self.wait_tasks()
        self.tasks = []
        if failures:
            raise failures[0]

    async def delete_volume(self, sd: str, disk: str, vol: str) -> None:
        """Volume.delete on the SPM and wait (one at a time: a parent only
        goes once its children did)."""
        await self.start_task(self.dc_id, "Volume.delete", {
            "volumeID": vol, "storagepoolID": self.dc_id, "storagedomainID": sd,
            "imageID": disk, "postZero": "false", "force": "false"}, on_success={})
        await self.wait_all()


class CreateSnapshot(SnapshotCommand):
    action_type = "CreateSnapshot"
    lock_reason = "a snapshot"

    def __init__(self, services: Any, principal: Principal, vm_id: str, description: str,
                 persist_memorystate: bool = False, disk_ids: list[str] | None = None) -> None:
        super().__init__(services, principal, vm_id)
        self.snapshot_description = description
        # The agent refuses memory snapshots: only disks and configuration are saved.
        self.persist_memorystate = False
        self.disk_ids = disk_ids
        self.snapshot_id = str(uuid.uuid4())
        # (disk, domain, new leaf, current leaf)
        self.plans: list[tuple[str, str, str, str]] = []
        self.disk_rows: list[Any] = []

    def description(self) -> str:
        return f"Creating snapshot {self.snapshot_description!r} of VM {self.name}"

    def locks(self) -> list[LockSpec]:
        # Shared on the VM (others may read it), exclusive on the snapshot;
        # the disks are locked once known (validate).
        return [LockSpec("vm", self.vm_id, exclusive=False, reason=self.lock_reason),
                LockSpec("snapshot", self.snapshot_id, reason=self.lock_reason)]

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        if not self.snapshot_description:
            raise ValidationFailed("snapshot description is required", "description")
        disks = [d for d in await vm_disks(self.s.pool, self.vm_id) if not d["shareable"]
                 and d["storage_domain_id"] is not None]
        if self.disk_ids is not None:
            known = {str(d["id"]) for d in disks}
            for d in self.disk_ids:
                if d not in known:
                    raise ValidationFailed(f"disk {d} is not a disk of the VM that can be "
                                           f"snapshotted", "disk_attachments")
            disks = [d for d in disks if str(d["id"]) in self.disk_ids]
        await require_no_preview(self.s.pool, self.vm_id, "create a snapshot")
        if not disks:
            return  # a configuration snapshot
        if self.row["status"] not in _STABLE:
            raise Conflict(f"Cannot create a snapshot of VM {self.name} while it is "
                           f"{self.row['status']}.")
        for d in disks:
            if d["status"] != "ok":
                raise Conflict(f"Cannot create a snapshot: disk {d['alias']} is {d['status']}.")
            if d["sd_status"] != "active":
                raise Conflict(f"Cannot create a snapshot: the storage domain of disk "
                               f"{d['alias']} is not active.")
            self.dc_id = str(d["data_center_id"])
        await self.s.locks.acquire(self.command_id, [
            LockSpec("disk", str(d["id"]), reason=self.lock_reason) for d in disks])
        await self.s.storage.spm.require_spm(self.dc_id)
        self.disk_rows = disks
        self.plans = [(str(d["id"]), str(d["storage_domain_id"]), str(uuid.uuid4()),
                       str(d["image_id"])) for d in disks]

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "snapshot_id": self.snapshot_id,
                "plans": [list(p) for p in self.plans]}

    def has_async_phase(self) -> bool:
        return True

    async def execute(self) -> str:
        assert self.row is not None
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO snapshots (id, vm_id, snapshot_type, status, description, "
                "persist_memorystate, vm_configuration) VALUES ($1, $2, 'regular', 'locked', "
                "$3, $4, $5)", uuid.UUID(self.snapshot_id), uuid.UUID(self.vm_id),
                self.snapshot_description, self.persist_memorystate, vm_config_of(self.row))
            for (disk, sd, new, old), d in zip(self.plans, self.disk_rows):
                await conn.execute("""
                    INSERT INTO images (id, disk_id, storage_domain_id, parent_id,
                        template_volume_id, volume_format, volume_type, volume_role, active,
                        status, size)
                    VALUES ($1, $2, $3, $4, $5, 'cow', 'sparse', 'leaf', false, 'locked', $6)""",
                    uuid.UUID(new), uuid.UUID(disk), uuid.UUID(sd), uuid.UUID(old),
                    d["template_volume_id"], d["provisioned_size"])
        await self.s.audit.log(SnapshotAudit.USER_CREATE_SNAPSHOT,
                               f"Snapshot '{self.snapshot_description}' creation for VM "
                               f"'{self.name}' was initiated by {self.principal.name}.",
                               self.refs())
        for (disk, sd, new, old), d in zip(self.plans, self.disk_rows):
            await self.start_task(self.dc_id, "Volume.create", {
                "volumeID": new, "storagepoolID": self.dc_id, "storagedomainID": sd,
                "imageID": disk, "size": str(d["provisioned_size"]),
                "volFormat": volume_format_id("cow"), "preallocate": volume_type_id(True),
                "diskType": "DATA", "desc": volume_description(d["alias"], d["description"]),
                "srcImgUUID": disk, "srcVolUUID": old}, on_success={})
        return self.snapshot_id

    async def finish(self) -> None:
        await self.wait_all()
        # From here on the new leaves exist: moving the disks onto them is
        # safe even if the running VM did not switch (they read through).
        await set_params(self.s, self.command_id, {"leaves_made": True})
        if self.plans:
            view = self.s.store.get(self.vm_id)
            if view is not None and view.run_on_host_id and view.status != "down":
                await self._live(str(view.run_on_host_id))
        async with self.s.pool.acquire() as conn, conn.transaction():
            await _switch_leaves(conn, self.snapshot_id, self.plans)
        await self.s.audit.log(SnapshotAudit.USER_CREATE_SNAPSHOT_FINISHED_SUCCESS,
                               f"Snapshot '{self.snapshot_description}' creation for VM "
                               f"'{self.name}' has been completed.", self.refs())

    async def _live(self, host_id: str) -> None:
        await self.call_host(host_id, "VM.snapshot", {"vmID": self.vm_id, "snapDrives": [
            {"domainID": sd, "imageID": disk, "volumeID": new, "baseVolumeID": old}
            for disk, sd, new, old in self.plans]})

    async def compensate(self) -> None:
        removed = True
        if self.tasks:  # some creation failed: wait for the others first
            await self.wait_tasks()
            self.tasks = []
        if self.plans:
            for disk, sd, new, _ in self.plans:
                try:
                    await self.delete_volume(sd, disk, new)
                except (OperationFailed, Conflict) as exc:
                    if not _never_made(exc):
                        log.warning("removing new leaf %s: %s", new, exc)
                        removed = False
        async with self.s.pool.acquire() as conn, conn.transaction():
            if removed:
                await conn.execute("DELETE FROM images WHERE id = ANY($1::uuid[])",
                                   [uuid.UUID(p[2]) for p in self.plans])
            else:
                await set_images_status(conn, [p[2] for p in self.plans], "illegal")
                await conn.execute("UPDATE images SET vm_snapshot_id=NULL "
                                   "WHERE id = ANY($1::uuid[])", [uuid.UUID(p[2])
                                                                 for p in self.plans])
            await conn.execute("DELETE FROM snapshots WHERE id=$1", uuid.UUID(self.snapshot_id))
        await self.s.audit.log(SnapshotAudit.USER_CREATE_SNAPSHOT_FINISHED_FAILURE,
                               f"Failed to complete snapshot '{self.snapshot_description}' "
                               f"creation for VM '{self.name}'.", self.refs(),
                               severity="error")

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        sid = params.get("snapshot_id")
        if not sid:
            return "nothing to undo"
        row = await services.pool.fetchrow("SELECT status FROM snapshots WHERE id=$1",
                                           uuid.UUID(sid))
        if row is None:
            return "the snapshot was never recorded"
        if row["status"] == "ok":
            return "the snapshot was complete"
        plans = [tuple(p) for p in params.get("plans") or []]
        if not plans:
            await services.pool.execute("UPDATE snapshots SET status='ok' WHERE id=$1",
                                        uuid.UUID(sid))
            return "the configuration snapshot was complete and is now ok"
        if params.get("leaves_made"):
            async with services.pool.acquire() as conn, conn.transaction():
                await _switch_leaves(conn, sid, plans)
            return "its new leaves existed: the snapshot is complete"
        async with services.pool.acquire() as conn, conn.transaction():
            await set_images_status(conn, [p[2] for p in plans], "illegal")
            await conn.execute("DELETE FROM snapshots WHERE id=$1", uuid.UUID(sid))
        return ("the snapshot was removed; its unfinished new volumes are illegal (the disks "
                "still use their previous leaves)")


def _never_made(exc: OperationFailed | Conflict) -> bool:
    # VolumeDoesNotExist (201) / ImageDoesNotExistInSD (268): nothing to remove.
    return "(code 201)" in exc.detail or "(code 268)" in exc.detail


async def _switch_leaves(conn: Any, snapshot_id: str, plans: list[Any]) -> None:
    """The old leaves become the snapshot's volumes; the new ones are active."""
    for disk, _sd, new, old in plans:
        await conn.execute("UPDATE images SET vm_snapshot_id=$2, active=false, "
                           "volume_role='internal' WHERE id=$1", uuid.UUID(old),
                           uuid.UUID(snapshot_id))
        await conn.execute("UPDATE images SET status='ok', active=true WHERE id=$1",
                           uuid.UUID(new))
        await conn.execute("UPDATE disks SET image_id=$2 WHERE id=$1", uuid.UUID(disk),
                           uuid.UUID(new))
    await conn.execute("UPDATE snapshots SET status='ok' WHERE id=$1", uuid.UUID(snapshot_id))


class RemoveSnapshot(SnapshotCommand):
    action_type = "RemoveSnapshot"
    lock_reason = "a snapshot removal"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 snapshot_id: str) -> None:
        super().__init__(services, principal, vm_id)
        self.snapshot_id = snapshot_id
        self.snapshot_description = snapshot_id
        self.volumes: list[SnapVolume] = []
        self.tops: dict[str, str] = {}  # snapshot volume -> its child

    def description(self) -> str:
        return f"Removing snapshot {self.snapshot_description} of VM {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, exclusive=False, reason=self.lock_reason),
                LockSpec("snapshot", self.snapshot_id, reason=self.lock_reason)]

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        row = await load_snapshot(self.s.pool, self.vm_id, self.snapshot_id)
        if row["snapshot_type"] != "regular":
            raise Conflict(f"The {row['snapshot_type']} snapshot cannot be removed")
        if row["status"] != "ok":
            raise Conflict(f"Cannot remove a snapshot that is {row['status']}")
        self.snapshot_description = row["description"]
        self.volumes = await snapshot_volumes(self.s.pool, self.snapshot_id)
        if not self.volumes:
            return
        await require_no_preview(self.s.pool, self.vm_id, "remove a snapshot")
        if self.row["status"] not in _STABLE:
            raise Conflict(f"Cannot remove a snapshot of VM {self.name} while it is "
                           f"{self.row['status']}.")
        attached = {str(d["id"]): d for d in await vm_disks(self.s.pool, self.vm_id)}
        for v in self.volumes:
            d = attached.get(v.disk_id)
            if d is None:
                raise Conflict(f"Cannot remove the snapshot: disk {v.alias} is not attached "
                               f"to VM {self.name} any more.")
            if d["status"] != "ok" or d["sd_status"] != "active":
                raise Conflict(f"Cannot remove the snapshot: disk {v.alias} is {d['status']} "
                               f"on a {d['sd_status']} storage domain.")
            children = await self.s.pool.fetch("SELECT id FROM images WHERE parent_id=$1 AND "
                                               "disk_id=$2", uuid.UUID(v.volume_id),
                                               uuid.UUID(v.disk_id))
            if len(children) != 1:
                raise Conflict(f"Cannot remove the snapshot: volume {v.volume_id} of disk "
                               f"{v.alias} has {len(children)} children.")
            self.tops[v.volume_id] = str(children[0]["id"])
            self.dc_id = v.dc_id
        await self.s.locks.acquire(self.command_id, [
            LockSpec("disk", v.disk_id, reason=self.lock_reason) for v in self.volumes])
        await self.s.storage.spm.require_spm(self.dc_id)

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "snapshot_id": self.snapshot_id,
                "merges": [[v.disk_id, v.volume_id, self.tops[v.volume_id]]
                           for v in self.volumes]}

    def has_async_phase(self) -> bool:
        return bool(self.volumes)

    async def execute(self) -> None:
        if self.volumes:
            await self.s.pool.execute("UPDATE snapshots SET status='locked' WHERE id=$1",
                                      uuid.UUID(self.snapshot_id))
        else:  # a configuration snapshot: nothing on storage
            await self.s.pool.execute("DELETE FROM snapshots WHERE id=$1",
                                      uuid.UUID(self.snapshot_id))
        await self.s.audit.log(SnapshotAudit.USER_REMOVE_SNAPSHOT,
                               f"Snapshot '{self.snapshot_description}' deletion for VM "
                               f"'{self.name}' was initiated by {self.principal.name}.",
                               self.refs())

    async def finish(self) -> None:
        for v in self.volumes:
            top = self.tops[v.volume_id]
            view = self.s.store.get(self.vm_id)
            if view is not None and view.run_on_host_id and view.status != "down":
                await self._live_merge(str(view.run_on_host_id), v, top)
            else:
                await self.start_task(self.dc_id, "Image.coldMerge", {
                    "storagepoolID": self.dc_id, "storagedomainID": v.sd_id,
                    "imageID": v.disk_id, "baseVolUUID": v.volume_id, "topVolUUID": top},
                    on_success={})
                await self.wait_all()
            # The chain on storage no longer has top: the rows follow at once.
            async with self.s.pool.acquire() as conn, conn.transaction():
                await apply_merge(conn, v.disk_id, v.volume_id, top)
            try:
                await self.delete_volume(v.sd_id, v.disk_id, top)
            except (OperationFailed, Conflict) as exc:
                # Out of every chain already: only space is lost.
                log.warning("deleting merged volume %s of disk %s: %s", top, v.alias, exc)
        await self.s.pool.execute("DELETE FROM snapshots WHERE id=$1",
                                  uuid.UUID(self.snapshot_id))
        await self.s.audit.log(SnapshotAudit.USER_REMOVE_SNAPSHOT_FINISHED_SUCCESS,
                               f"Snapshot '{self.snapshot_description}' deletion for VM "
                               f"'{self.name}' has been completed.", self.refs())

    async def _live_merge(self, host_id: str, v: SnapVolume, top: str) -> None:
        job = str(uuid.uuid4())
        leaf = await self.s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                          uuid.UUID(v.disk_id))
        await self.call_host(host_id, "VM.merge", {
            "vmID": self.vm_id, "drive": {"domainID": v.sd_id, "imageID": v.disk_id,
                                          "volumeID": str(leaf), "poolID": self.dc_id},
            "baseVolUUID": v.volume_id, "topVolUUID": top, "bandwidth": 0, "jobUUID": job})
        await self._wait_job(host_id, job)
        xml = (await self.call_host(host_id, "Host.dumpxmls", {"vmList": [self.vm_id]})
               )[self.vm_id]
        chain = drive_chain(xml, v.disk_id)
        if top in chain or v.volume_id not in chain:
            raise OperationFailed(f"Live merge of {top} into {v.volume_id} (disk {v.alias}) "
                                  f"did not complete: the drive's chain is {chain}")

    async def _wait_job(self, host_id: str, job: str) -> None:
        """Until the merge job left the VM's vmJobs (it is gone when done)."""
        deadline = time.monotonic() + self.s.storage.cfg.task_timeout_s
        interval = 0.1
        while True:
            try:
                stats = await self.s.hosts.call(host_id, "VM.getStats", {"vmID": self.vm_id})
                jobs = (stats[0] if isinstance(stats, list) else stats).get("vmJobs") or {}
                if job not in jobs:
                    return
            except HostUnavailable:
                pass  # the agent restarts: ask again
            except JsonRpcError as exc:
                raise OperationFailed(f"Live merge job {job}: {exc.message}") from None
            if time.monotonic() > deadline:
                raise OperationFailed(f"Live merge job {job} did not finish in time")
            await asyncio.sleep(interval)
            interval = min(interval * 2, 2.0)

    async def compensate(self) -> None:
        if self.tasks:
            await self.wait_tasks()
            self.tasks = []
        # Merges that completed were applied; the snapshot stays with what is left.
        left = await snapshot_volumes(self.s.pool, self.snapshot_id)
        if left:
            await self.s.pool.execute("UPDATE snapshots SET status='ok' WHERE id=$1",
                                      uuid.UUID(self.snapshot_id))
        else:
            await self.s.pool.execute("DELETE FROM snapshots WHERE id=$1",
                                      uuid.UUID(self.snapshot_id))
        await self.s.audit.log(SnapshotAudit.USER_REMOVE_SNAPSHOT_FINISHED_FAILURE,
                               f"Failed to delete snapshot '{self.snapshot_description}' for "
                               f"VM '{self.name}'.", self.refs(), severity="error")

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        sid = params.get("snapshot_id")
        if not sid or not params.get("merges"):
            return "nothing to undo"
        # Whether an interrupted merge finished is known only on storage; the
        # snapshot becomes ok again so that removing it again merges what is left
        # (a merge that completed on storage fails then and says so).
        await services.pool.execute("UPDATE snapshots SET status='ok' WHERE id=$1 AND "
                                    "status='locked'", uuid.UUID(sid))
        return "the snapshot is ok again: remove it again to finish the merge"
