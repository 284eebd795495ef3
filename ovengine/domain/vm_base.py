"""What VM commands share: loading a VM, checks, the per-VM command base."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol.jsonrpc import JsonRpcError

from ..errors import Conflict, NotFound, OperationFailed, ValidationFailed
from ..monitoring.reconcile import VmView
from ..monitoring.report import RUNNING_STATUSES
from .commands import Command, Principal
from .locks import LockSpec

__all__ = ["BLANK_TEMPLATE_ID", "USER_VM_MANAGER_ROLE_ID", "STATIC_FIELDS", "VmConfig", "VmCommand",
           "load_vm", "check_name", "check_memory"]

BLANK_TEMPLATE_ID = "00000000-0000-0000-0000-000000000000"
# oVirt's predefined UserVmManager role: given to a non-admin on the VM they create.
USER_VM_MANAGER_ROLE_ID = "def00006-0000-0000-0000-def000000006"
_NAME = re.compile(r"^[\w.\-]{1,255}$")
STATIC_FIELDS = ("memory_mib", "memory_guaranteed_mib", "memory_max_mib", "cpu_sockets",
                  "cpu_cores", "cpu_threads", "os_type", "vm_type", "display_type",
                  "boot_devices", "stateless", "ballooning", "ha_enabled", "ha_priority",
                  "delete_protected")


async def load_vm(pool: asyncpg.Pool | asyncpg.Connection, vm_id: str) -> asyncpg.Record:
    try:
        key = uuid.UUID(vm_id)
    except ValueError:
        raise NotFound(f"VM {vm_id} does not exist") from None
    row = await pool.fetchrow("""
        SELECT s.*, d.status, d.run_on_host_id, d.display_address
        FROM vm_static s JOIN vm_dynamic d ON d.vm_id = s.id
        WHERE s.id = $1 AND s.entity_type = 'vm'""", key)
    if row is None:
        raise NotFound(f"VM {vm_id} does not exist")
    return row


def check_name(name: str) -> None:
    if not name or not _NAME.match(name):
        raise ValidationFailed(
            f"Invalid VM name {name!r}: use 1-255 letters, digits, '_', '-' or '.'", "name")


def check_memory(mem: int, guaranteed: int, maximum: int) -> None:
    if mem <= 0:
        raise ValidationFailed("memory must be a positive number of bytes", "memory")
    if guaranteed > mem:
        raise ValidationFailed("memory_policy.guaranteed cannot exceed memory",
                               "memory_policy.guaranteed")
    if maximum < mem:
        raise ValidationFailed("memory_policy.max cannot be less than memory",
                               "memory_policy.max")


@dataclass
class VmConfig:
    """Fields of vm_static a user may set (None: take the template's)."""

    name: str | None = None
    description: str | None = None
    comment: str | None = None
    memory_mib: int | None = None
    memory_guaranteed_mib: int | None = None
    memory_max_mib: int | None = None
    cpu_sockets: int | None = None
    cpu_cores: int | None = None
    cpu_threads: int | None = None
    os_type: str | None = None
    vm_type: str | None = None
    display_type: str | None = None
    boot_devices: list[str] | None = None
    stateless: bool | None = None
    ballooning: bool | None = None
    ha_enabled: bool | None = None
    ha_priority: int | None = None
    delete_protected: bool | None = None



class VmCommand(Command):
    """A command on one existing VM, holding its exclusive lock."""

    lock_reason = "an operation on the VM"

    def __init__(self, services: Any, principal: Principal, vm_id: str) -> None:
        super().__init__(services, principal)
        self.vm_id = vm_id
        self.row: asyncpg.Record | None = None
        self._before: VmView | None = None
        self._marked: VmView | None = None

    def locks(self) -> list[LockSpec]:
        return [LockSpec("vm", self.vm_id, reason=self.lock_reason)]

    async def mark(self, status: str, host_id: str) -> None:
        """Record the transitional status before asking the host, so that the
        host's own reports (which may arrive before the call returns) win."""
        self._before = self.s.store.get(self.vm_id)
        self._marked = await self.s.store.set_status(self.vm_id, status, host_id)

    async def unmark(self) -> None:
        """Undo mark() unless a report changed the VM since."""
        if self._marked is not None and self._before is not None:
            await self.s.store.set_status(self.vm_id, self._before.status,
                                          self._before.run_on_host_id, expect=self._marked)

    async def validate(self) -> None:
        self.row = await load_vm(self.s.pool, self.vm_id)

    @property
    def name(self) -> str:
        return self.row["name"] if self.row is not None else self.vm_id

    def recovery_params(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id}

    def refs(self, host_id: str | None = None) -> Any:
        host_name = self.s.hosts.hosts[host_id].name if host_id in self.s.hosts.hosts else None
        return self.audit_refs(vm_id=uuid.UUID(self.vm_id), vm_name=self.name,
                               host_id=uuid.UUID(host_id) if host_id else None,
                               host_name=host_name)

    def host_id(self) -> str:
        assert self.row is not None
        host = self.row["run_on_host_id"]
        if host is None:
            raise Conflict(f"VM {self.name} is not running")
        return str(host)

    def require_running(self, allowed: frozenset[str] = RUNNING_STATUSES) -> str:
        assert self.row is not None
        status = self.row["status"]
        if status not in allowed:
            raise Conflict(f"Cannot do this while VM {self.name} is {status}")
        return self.host_id()

    async def call_host(self, host_id: str, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self.s.hosts.call(host_id, method, params)
        except JsonRpcError as exc:
            raise OperationFailed(f"Host refused {method} for VM {self.name}: "
                                  f"{exc.message} (code {exc.code})") from None


