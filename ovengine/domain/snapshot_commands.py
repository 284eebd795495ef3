"""VM snapshots. Without disks a snapshot stores the VM's configuration; it is
`locked` while it is taken and `ok` when done (an asynchronous phase)."""

from __future__ import annotations

import uuid
from typing import Any

from ..audit import AuditType
from ..errors import Conflict, NotFound, ValidationFailed
from .commands import Principal
from .locks import LockSpec
from .vm_base import VmCommand

__all__ = ["CreateSnapshot", "RemoveSnapshot"]


class CreateSnapshot(VmCommand):
    """A configuration snapshot (disk snapshots come with storage support).

    The snapshot is `locked` while it is taken and `ok` when done.
    """

    action_type = "CreateSnapshot"
    lock_reason = "a snapshot"

    def __init__(self, services: Any, principal: Principal, vm_id: str, description: str,
                 persist_memorystate: bool = False) -> None:
        super().__init__(services, principal, vm_id)
        self.snapshot_description = description
        self.persist_memorystate = persist_memorystate
        self.snapshot_id = str(uuid.uuid4())

    def description(self) -> str:
        return f"Creating snapshot {self.snapshot_description!r} of VM {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, exclusive=False, reason=self.lock_reason),
                LockSpec("snapshot", self.snapshot_id, reason=self.lock_reason)]

    async def validate(self) -> None:
        await super().validate()
        if not self.snapshot_description:
            raise ValidationFailed("snapshot description is required", "description")

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "snapshot_id": self.snapshot_id}

    def has_async_phase(self) -> bool:
        return True

    async def execute(self) -> str:
        assert self.row is not None
        config = {k: (v if not isinstance(v, uuid.UUID) else str(v))
                  for k, v in dict(self.row).items()
                  if k not in ("creation_time",) and not hasattr(v, "isoformat")}
        await self.s.pool.execute(
            "INSERT INTO snapshots (id, vm_id, snapshot_type, status, description, "
            "persist_memorystate, vm_configuration) VALUES ($1, $2, 'regular', 'locked', $3, "
            "$4, $5)", uuid.UUID(self.snapshot_id), uuid.UUID(self.vm_id),
            self.snapshot_description, self.persist_memorystate, config)
        await self.s.audit.log(AuditType.USER_CREATE_SNAPSHOT,
                               f"Snapshot '{self.snapshot_description}' creation for VM "
                               f"'{self.name}' was initiated by {self.principal.name}.",
                               self.refs())
        return self.snapshot_id

    async def finish(self) -> None:
        await self.s.pool.execute("UPDATE snapshots SET status='ok' WHERE id=$1",
                                  uuid.UUID(self.snapshot_id))
        await self.s.audit.log(AuditType.USER_CREATE_SNAPSHOT_FINISHED_SUCCESS,
                               f"Snapshot '{self.snapshot_description}' creation for VM "
                               f"'{self.name}' has been completed.", self.refs())

    async def compensate(self) -> None:
        await self.s.pool.execute("DELETE FROM snapshots WHERE id=$1",
                                  uuid.UUID(self.snapshot_id))

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        sid = params.get("snapshot_id")
        if not sid:
            return "nothing to undo"
        row = await services.pool.fetchrow(
            "SELECT status, vm_configuration IS NOT NULL AS complete FROM snapshots "
            "WHERE id=$1", uuid.UUID(sid))
        if row is None:
            return "the snapshot was never recorded"
        if row["complete"]:
            await services.pool.execute("UPDATE snapshots SET status='ok' WHERE id=$1",
                                        uuid.UUID(sid))
            return "the configuration snapshot was complete and is now ok"
        await services.pool.execute("DELETE FROM snapshots WHERE id=$1", uuid.UUID(sid))
        return "the incomplete snapshot was removed"


class RemoveSnapshot(VmCommand):
    action_type = "RemoveSnapshot"
    lock_reason = "a snapshot removal"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 snapshot_id: str) -> None:
        super().__init__(services, principal, vm_id)
        self.snapshot_id = snapshot_id

    def description(self) -> str:
        return f"Removing snapshot {self.snapshot_id} of VM {self.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, exclusive=False, reason=self.lock_reason),
                LockSpec("snapshot", self.snapshot_id, reason=self.lock_reason)]

    async def validate(self) -> None:
        await super().validate()
        try:
            row = await self.s.pool.fetchrow(
                "SELECT snapshot_type, status, description FROM snapshots "
                "WHERE id=$1 AND vm_id=$2", uuid.UUID(self.snapshot_id), uuid.UUID(self.vm_id))
        except ValueError:
            row = None
        if row is None:
            raise NotFound(f"snapshot {self.snapshot_id} does not exist")
        if row["snapshot_type"] == "active":
            raise Conflict("The active snapshot (the VM itself) cannot be removed")
        if row["status"] != "ok":
            raise Conflict(f"Cannot remove a snapshot that is {row['status']}")
        self.snapshot_description = row["description"]

    async def execute(self) -> None:
        await self.s.pool.execute("DELETE FROM snapshots WHERE id=$1",
                                  uuid.UUID(self.snapshot_id))
        await self.s.audit.log(AuditType.USER_REMOVE_SNAPSHOT,
                               f"Snapshot '{self.snapshot_description}' deletion for VM "
                               f"'{self.name}' was initiated by {self.principal.name}.",
                               self.refs())
