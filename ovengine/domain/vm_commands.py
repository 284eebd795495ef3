"""VM lifecycle commands: add, update, run, shutdown, stop, reboot, pause/suspend,
resume, remove; plus configuration snapshots.

Status changes go through the VmStateStore (the same write path monitoring
uses). Commands return once the host accepted the request; the VM's progress
(powering_up -> up, powering_down -> down) arrives through monitoring.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol.jsonrpc import JsonRpcError

from ..audit import AuditType
from ..errors import Conflict, NotFound, OperationFailed, ValidationFailed
from ..monitoring.reconcile import VmView
from ..monitoring.report import RUNNING_STATUSES
from ..monitoring.store import ExitInfo
from .commands import Command, Principal, SYSTEM
from .domxml import VmSpec, build_domain_xml
from .locks import LockSpec
from .placement import HostCandidate, pick_host

__all__ = ["AddVm", "UpdateVm", "RunVm", "ShutdownVm", "StopVm", "RebootVm", "PauseVm",
           "ResumeVm", "RemoveVm", "CreateSnapshot", "RemoveSnapshot", "BLANK_TEMPLATE_ID",
           "USER_VM_MANAGER_ROLE_ID", "load_vm"]

log = logging.getLogger(__name__)

BLANK_TEMPLATE_ID = "00000000-0000-0000-0000-000000000000"
# oVirt's predefined UserVmManager role: given to a non-admin on the VM they create.
USER_VM_MANAGER_ROLE_ID = "def00006-0000-0000-0000-def000000006"
_NAME = re.compile(r"^[\w.\-]{1,255}$")
_STATIC_FIELDS = ("memory_mib", "memory_guaranteed_mib", "memory_max_mib", "cpu_sockets",
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


def _check_name(name: str) -> None:
    if not name or not _NAME.match(name):
        raise ValidationFailed(
            f"Invalid VM name {name!r}: use 1-255 letters, digits, '_', '-' or '.'", "name")


def _check_memory(mem: int, guaranteed: int, maximum: int) -> None:
    if mem <= 0:
        raise ValidationFailed("memory must be a positive number of bytes", "memory")
    if guaranteed > mem:
        raise ValidationFailed("memory_policy.guaranteed cannot exceed memory",
                               "memory_policy.guaranteed")
    if maximum < mem:
        raise ValidationFailed("memory_policy.max cannot be less than memory",
                               "memory_policy.max")


# ---------------------------------------------------------------------- add
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


class AddVm(Command):
    action_type = "AddVm"

    def __init__(self, services: Any, principal: Principal, cluster_id: str,
                 template_id: str = BLANK_TEMPLATE_ID, config: VmConfig | None = None,
                 vm_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.cluster_id = cluster_id
        self.template_id = template_id
        self.config = config or VmConfig()
        self.vm_id = vm_id or str(uuid.uuid4())
        self.values: dict[str, Any] = {}

    def description(self) -> str:
        return f"Adding VM {self.config.name}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("template", self.template_id, exclusive=False, reason="a VM creation"),
                LockSpec("vm_name", str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                   f"vm:{self.config.name}")),
                         reason=f"the creation of VM {self.config.name}")]

    async def validate(self) -> None:
        name = self.config.name or ""
        _check_name(name)
        pool = self.s.pool
        if await pool.fetchval("SELECT 1 FROM vm_static WHERE entity_type='vm' AND name=$1",
                               name):
            raise Conflict(f"Cannot add VM. The name {name} is already in use.")
        try:
            cluster = await pool.fetchrow("SELECT id, compat_major, compat_minor FROM clusters "
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
        values = {f: template[f] for f in _STATIC_FIELDS}
        for f in _STATIC_FIELDS:
            v = getattr(self.config, f)
            if v is not None:
                values[f] = v
        if self.config.memory_mib is not None and self.config.memory_guaranteed_mib is None:
            values["memory_guaranteed_mib"] = min(values["memory_guaranteed_mib"],
                                                  values["memory_mib"])
        if self.config.memory_mib is not None and self.config.memory_max_mib is None:
            values["memory_max_mib"] = max(values["memory_max_mib"], values["memory_mib"])
        _check_memory(values["memory_mib"], values["memory_guaranteed_mib"],
                      values["memory_max_mib"])
        for f in ("cpu_sockets", "cpu_cores", "cpu_threads"):
            if values[f] < 1:
                raise ValidationFailed(f"cpu topology values must be at least 1", "cpu.topology")
        self.values = values

    async def execute(self) -> str:
        v = self.values
        c = self.config
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"""
                INSERT INTO vm_static (id, entity_type, name, description, comment, cluster_id,
                    template_id, original_template_id, created_by_user_id,
                    {", ".join(_STATIC_FIELDS)})
                VALUES ($1, 'vm', $2, $3, $4, $5, $6, $6, $7,
                    {", ".join(f"${i}" for i in range(8, 8 + len(_STATIC_FIELDS)))})""",
                uuid.UUID(self.vm_id), c.name, c.description or "", c.comment or "",
                uuid.UUID(self.cluster_id), uuid.UUID(self.template_id),
                uuid.UUID(self.principal.user_id) if self.principal.user_id else None,
                *[v[f] for f in _STATIC_FIELDS])
            await conn.execute("INSERT INTO vm_dynamic (vm_id) VALUES ($1)",
                               uuid.UUID(self.vm_id))
            await conn.execute("INSERT INTO vm_statistics (vm_id) VALUES ($1)",
                               uuid.UUID(self.vm_id))
            await conn.execute(
                "INSERT INTO snapshots (id, vm_id, snapshot_type, description) "
                "VALUES ($1, $2, 'active', 'Active VM')", uuid.uuid4(), uuid.UUID(self.vm_id))
            if self.principal.user_id and not self.principal.is_admin:
                await conn.execute(
                    "INSERT INTO permissions (id, role_id, user_id, object_type, object_id) "
                    "SELECT $1, $2, $3, 'vm', $4 WHERE EXISTS "
                    "(SELECT 1 FROM roles WHERE id = $2)",
                    uuid.uuid4(), uuid.UUID(USER_VM_MANAGER_ROLE_ID),
                    uuid.UUID(self.principal.user_id), uuid.UUID(self.vm_id))
        self.s.store.add(self.vm_id, c.name or "")
        await self.s.audit.log(AuditType.USER_ADD_VM,
                               f"VM {c.name} was created by {self.principal.name}.",
                               self.audit_refs(vm_id=uuid.UUID(self.vm_id), vm_name=c.name,
                                               cluster_id=uuid.UUID(self.cluster_id)))
        return self.vm_id


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
            _check_name(c.name)
            if await self.s.pool.fetchval(
                    "SELECT 1 FROM vm_static WHERE entity_type='vm' AND name=$1", c.name):
                raise Conflict(f"Cannot edit VM. The name {c.name} is already in use.")
        mem = c.memory_mib if c.memory_mib is not None else row["memory_mib"]
        gua = c.memory_guaranteed_mib if c.memory_guaranteed_mib is not None else \
            min(row["memory_guaranteed_mib"], mem)
        mx = c.memory_max_mib if c.memory_max_mib is not None else max(row["memory_max_mib"],
                                                                      mem)
        _check_memory(mem, gua, mx)
        self.config.memory_guaranteed_mib = gua
        self.config.memory_max_mib = mx

    async def execute(self) -> str:
        fields = {f: getattr(self.config, f) for f in ("name", "description", "comment",
                                                        *_STATIC_FIELDS)}
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


# --------------------------------------------------------------- run/stop
class _VmCommand(Command):
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


class RunVm(_VmCommand):
    action_type = "RunVm"
    lock_reason = "a VM start"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 host_id: str | None = None) -> None:
        super().__init__(services, principal, vm_id)
        self.wanted_host = host_id
        self.chosen: HostCandidate | None = None

    def description(self) -> str:
        return f"Launching VM {self.name}"

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        if self.row["status"] != "down":
            raise Conflict(f"Cannot run VM. VM {self.name} is {self.row['status']}.")
        hosts = self.s.hosts.up_hosts(str(self.row["cluster_id"]))
        if self.wanted_host:
            hosts = [h for h in hosts if h.id == self.wanted_host]
            if not hosts:
                raise Conflict(f"Cannot run VM: host {self.wanted_host} is not up in the "
                               f"VM's cluster")
        candidates = []
        for h in hosts:
            if h.stats is not None:
                free = h.stats.mem_available_mib
                cpu = h.stats.cpu_user + h.stats.cpu_sys
                count = h.stats.vm_count
            else:
                free = h.facts.mem_size_mib if h.facts else 0
                cpu, count = 0.0, 0
            candidates.append(HostCandidate(h.id, h.name, free - h.pending_mib, cpu, count))
        self.chosen = pick_host(candidates, self.row["memory_mib"])

    async def execute(self) -> str:
        assert self.row is not None and self.chosen is not None
        r = self.row
        host = self.s.hosts.get(self.chosen.id)
        kvm = bool(host.facts and host.facts.kvm_enabled)
        cluster = await self.s.pool.fetchrow("SELECT compat_major, compat_minor FROM clusters "
                                             "WHERE id=$1", r["cluster_id"])
        spec = VmSpec(
            id=self.vm_id, name=r["name"], memory_mib=r["memory_mib"],
            memory_guaranteed_mib=r["memory_guaranteed_mib"], memory_max_mib=r["memory_max_mib"],
            sockets=r["cpu_sockets"], cores=r["cpu_cores"], threads=r["cpu_threads"],
            boot_devices=tuple(r["boot_devices"] or ("hd",)), display_type=r["display_type"],
            # All addresses: QEMU runs in libvirtd's network namespace, which may
            # not hold the address the engine uses for the agent (the lab).
            # Nobody gets in without a ticket (the password starts expired).
            display_address="0",
            ballooning=r["ballooning"], kvm=kvm,
            cluster_version=f"{cluster['compat_major']}.{cluster['compat_minor']}"
            if cluster else "4.7")
        xml = build_domain_xml(spec)
        host.pending_mib += r["memory_mib"]
        await self.s.store.set_status(self.vm_id, "wait_for_launch", host.id)
        await self.call_host(host.id, "VM.create", {"vmID": self.vm_id, "vmParams": {
            "vmId": self.vm_id, "vmName": r["name"], "xml": xml,
            "memSize": r["memory_mib"], "smp": str(r["cpu_sockets"] * r["cpu_cores"]
                                                  * r["cpu_threads"]),
            "vmType": "kvm", "kvmEnable": "true" if kvm else "false"}})
        await self.s.audit.log(AuditType.USER_STARTED_VM,
                               f"VM {self.name} was started by {self.principal.name} "
                               f"(Host: {host.name}).", self.refs(host.id))
        return host.id

    async def compensate(self) -> None:
        if self.chosen is not None:
            host = self.s.hosts.hosts.get(self.chosen.id)
            if host is not None and self.row is not None:
                host.pending_mib = max(0, host.pending_mib - self.row["memory_mib"])
        view = self.s.store.get(self.vm_id)
        if view is not None and view.status == "wait_for_launch":
            await self.s.store.set_status(self.vm_id, "down", None,
                                          exit_info=ExitInfo(1, "Failed to start", 3))
        await self.s.audit.log(AuditType.USER_FAILED_RUN_VM, f"Failed to run VM {self.name}.",
                               self.refs())

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        # The VM is wait_for_launch (or already running) on its host: the first
        # poll of that host tells which, and reconcile() records the truth.
        return "its VM's state will be taken from its host's next report"


class ShutdownVm(_VmCommand):
    action_type = "ShutdownVm"
    lock_reason = "a VM shutdown"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 reason: str = "") -> None:
        super().__init__(services, principal, vm_id)
        self.reason = reason

    def description(self) -> str:
        return f"Shutting down VM {self.name}"

    async def execute(self) -> None:
        host_id = self.require_running(frozenset({"up", "powering_up", "paused",
                                                  "reboot_in_progress", "powering_down"}))
        timeout = int(self.s.config.vms.shutdown_timeout_s)
        await self.mark("powering_down", host_id)
        await self.call_host(host_id, "VM.shutdown", {
            "vmID": self.vm_id, "delay": "30", "message": self.reason or "System going down",
            "reboot": False, "timeout": timeout, "force": True})
        await self.s.audit.log(AuditType.USER_INITIATED_SHUTDOWN_VM,
                               f"VM shutdown initiated by {self.principal.name} on VM "
                               f"{self.name} (Host: {self.s.hosts.get(host_id).name})"
                               + (f" [Reason: {self.reason}]" if self.reason else "") + ".",
                               self.refs(host_id))


    async def compensate(self) -> None:
        await self.unmark()
        await self.s.audit.log(AuditType.USER_FAILED_SHUTDOWN_VM,
                               f"Failed to initiate shutdown on VM {self.name}.", self.refs())


class StopVm(_VmCommand):
    action_type = "StopVm"
    lock_reason = "a VM power off"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 reason: str = "") -> None:
        super().__init__(services, principal, vm_id)
        self.reason = reason

    def description(self) -> str:
        return f"Powering off VM {self.name}"

    async def execute(self) -> None:
        host_id = self.require_running()
        try:
            await self.s.hosts.call(host_id, "VM.destroy", {"vmID": self.vm_id})
        except JsonRpcError as exc:
            if exc.code != 1:  # noVM: it is already gone, which is what we want
                raise OperationFailed(f"Host refused to power off VM {self.name}: "
                                      f"{exc.message}") from None
        await self.s.store.set_status(self.vm_id, "down", None, exit_info=ExitInfo(
            0, "Admin shut down from the engine", 6), stop_reason=self.reason or None)
        self.s.bus.publish("vm", {"id": self.vm_id, "name": self.name, "status": "down",
                                  "host_id": None})
        await self.s.audit.log(AuditType.USER_STOP_VM,
                               f"VM {self.name} powered off by {self.principal.name} "
                               f"(Host: {self.s.hosts.get(host_id).name})"
                               + (f" [Reason: {self.reason}]" if self.reason else "") + ".",
                               self.refs(host_id))


class RebootVm(_VmCommand):
    action_type = "RebootVm"
    lock_reason = "a VM reboot"

    def description(self) -> str:
        return f"Rebooting VM {self.name}"

    async def execute(self) -> None:
        host_id = self.require_running(frozenset({"up"}))
        await self.mark("reboot_in_progress", host_id)
        await self.call_host(host_id, "VM.shutdown", {"vmID": self.vm_id, "reboot": True,
                                                      "delay": "0"})
        await self.s.audit.log(AuditType.USER_REBOOT_VM,
                               f"VM {self.name} was restarted by {self.principal.name}.",
                               self.refs(host_id))


    async def compensate(self) -> None:
        await self.unmark()


class PauseVm(_VmCommand):
    """REST `suspend`: ov pauses the VM in memory (hibernation to a storage
    domain comes with storage support)."""

    action_type = "PauseVm"
    lock_reason = "a VM pause"

    def description(self) -> str:
        return f"Pausing VM {self.name}"

    async def execute(self) -> None:
        host_id = self.require_running(frozenset({"up", "powering_up"}))
        before = self.s.store.get(self.vm_id)
        await self.call_host(host_id, "VM.pause", {"vmID": self.vm_id})
        await self.s.store.set_status(self.vm_id, "paused", host_id, pause_code="NOERR",
                                      expect=before)
        await self.s.audit.log(AuditType.USER_PAUSE_VM,
                               f"VM {self.name} was paused by {self.principal.name} "
                               f"(Host: {self.s.hosts.get(host_id).name}).", self.refs(host_id))


class ResumeVm(_VmCommand):
    action_type = "ResumeVm"
    lock_reason = "a VM resume"

    def description(self) -> str:
        return f"Resuming VM {self.name}"

    async def execute(self) -> None:
        host_id = self.require_running(frozenset({"paused"}))
        before = self.s.store.get(self.vm_id)
        await self.call_host(host_id, "VM.cont", {"vmID": self.vm_id})
        await self.s.store.set_status(self.vm_id, "up", host_id, expect=before)
        await self.s.audit.log(AuditType.USER_RESUME_VM,
                               f"VM {self.name} was resumed by {self.principal.name} "
                               f"(Host: {self.s.hosts.get(host_id).name}).", self.refs(host_id))


class RemoveVm(_VmCommand):
    action_type = "RemoveVm"
    lock_reason = "a VM removal"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 force: bool = False) -> None:
        super().__init__(services, principal, vm_id)
        self.force = force

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

    async def execute(self) -> None:
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM permissions WHERE object_type='vm' AND object_id=$1",
                               uuid.UUID(self.vm_id))
            await conn.execute("DELETE FROM vm_static WHERE id=$1", uuid.UUID(self.vm_id))
        self.s.store.remove(self.vm_id)
        await self.s.audit.log(AuditType.USER_REMOVE_VM,
                               f"VM {self.name} was removed by {self.principal.name}.",
                               self.refs())


# -------------------------------------------------------------- snapshots
class CreateSnapshot(_VmCommand):
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


class RemoveSnapshot(_VmCommand):
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


__all__ += ["VmConfig", "SYSTEM"]
