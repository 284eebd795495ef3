"""What commands with storage tasks share: starting a task on the SPM and
recording it (async_tasks) for crash recovery, waiting for all of them,
deleting images, and turning what a crash left locked into illegal."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Iterable

from protocol.jsonrpc import JsonRpcError

from ..errors import Conflict, OperationFailed
from ..hosts.manager import HostUnavailable
from ..storage.tasks import SpmTask, TaskFailed
from ..storage.vdsm import ERR_IMAGE_NOT_IN_SD
from .commands import Command
from .images import set_disks_status

__all__ = ["StorageCommand", "illegal_if_locked", "storage_error"]

log = logging.getLogger(__name__)


def storage_error(what: str, exc: JsonRpcError) -> OperationFailed:
    return OperationFailed(f"{what}: {exc.message} (code {exc.code})")


async def illegal_if_locked(services: Any, disk_ids: Iterable[str]) -> int:
    """Crash recovery: disks a dead command left locked become illegal."""
    async with services.pool.acquire() as conn, conn.transaction():
        return await set_disks_status(conn, disk_ids, "illegal", only_if="locked")


class StorageCommand(Command):
    """A command whose work is (partly) storage tasks on its data center's SPM."""

    def __init__(self, services: Any, principal: Any) -> None:
        super().__init__(services, principal)
        self.tasks: list[SpmTask] = []

    async def start_task(self, dc_id: str, method: str, params: dict[str, Any],
                         on_success: dict[str, Any]) -> SpmTask:
        try:
            task = await self.s.storage.start_task(dc_id, method, params)
        except JsonRpcError as exc:
            raise storage_error(f"{method} refused by the SPM", exc) from None
        except HostUnavailable as exc:
            raise Conflict(f"{method}: the SPM is not reachable ({exc.detail})") from None
        await self.s.pool.execute(
            "INSERT INTO async_tasks (id, host_id, data_center_id, command_id, command_type, "
            "verb, on_success) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            uuid.UUID(task.task_id), uuid.UUID(task.host_id), uuid.UUID(dc_id),
            uuid.UUID(self.command_id), self.action_type, method, on_success)
        self.tasks.append(task)
        return task

    async def wait_tasks(self) -> list[TaskFailed]:
        """Wait for every task started (so none is left unobserved); the failures."""
        failures: list[TaskFailed] = []
        for task in self.tasks:
            try:
                await self.s.storage.waiter.wait(task.host_id, task.task_id,
                                                 what=f"{task.verb} ({self.description()})")
            except TaskFailed as exc:
                failures.append(exc)
            await self.s.pool.execute("DELETE FROM async_tasks WHERE id=$1",
                                      uuid.UUID(task.task_id))
        return failures

    async def delete_image(self, dc_id: str, sd_id: str, disk_id: str,
                           wipe: bool = False) -> SpmTask | None:
        """Image.delete on the SPM; None when the image is not on storage at all."""
        try:
            return await self.start_task(dc_id, "Image.delete", {
                "imageID": disk_id, "storagepoolID": dc_id, "storagedomainID": sd_id,
                "postZero": "true" if wipe else "false", "force": "false"},
                on_success={"removed_disks": [disk_id]})
        except OperationFailed as exc:
            if f"(code {ERR_IMAGE_NOT_IN_SD})" in exc.detail:
                return None
            raise

    async def remove_images_now(self, dc_id: str, disks: list[tuple[str, str]]) -> bool:
        """Best effort, for compensation: delete images and wait; True if all went."""
        self.tasks = []
        try:
            for sd_id, disk_id in disks:
                await self.delete_image(dc_id, sd_id, disk_id)
        except (OperationFailed, Conflict) as exc:
            log.warning("cleaning up after %s: %s", self.description(), exc)
            await self.wait_tasks()
            return False
        return not await self.wait_tasks()

    async def undo_new_vm(self, dc_id: str, vm_id: str, disks: list[tuple[str, str]],
                          volumes_started: bool, template: bool = False) -> str:
        """Compensation of a command that made a VM or template with new disks
        (add from a template, template from a VM, OVA imports): delete the
        disks' images and the entity; if the images cannot be deleted, keep it
        with illegal disks (a VM down, a template illegal). Returns what
        happened, for the audit message."""
        what = "the template" if template else "the VM"
        if not volumes_started or await self.remove_images_now(dc_id, disks):
            async with self.s.pool.acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM disks WHERE id = ANY($1::uuid[])",
                                   [uuid.UUID(d) for _, d in disks])
                await conn.execute("DELETE FROM permissions WHERE object_type=$2 AND "
                                   "object_id=$1", uuid.UUID(vm_id),
                                   "template" if template else "vm")
                await conn.execute("DELETE FROM vm_static WHERE id=$1", uuid.UUID(vm_id))
            if not template:
                self.s.store.remove(vm_id)
            return f"{what} was removed"
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [d for _, d in disks], "illegal")
            if template:
                await conn.execute("UPDATE vm_static SET template_status='illegal' "
                                   "WHERE id=$1", uuid.UUID(vm_id))
        if template:
            return "it is illegal"
        await self.s.store.set_status(vm_id, "down", None)
        return "its disks are illegal"
