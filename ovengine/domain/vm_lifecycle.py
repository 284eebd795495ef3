"""VM lifecycle commands: run, shutdown, stop (power off), reboot, pause, resume.

They return once the host accepted the request; the VM's progress
(powering_up -> up, powering_down -> down) arrives through monitoring.
Transitional statuses are recorded before the host call (VmCommand.mark), so
the host's own reports, which may arrive before the call returns, win.
"""

from __future__ import annotations

from typing import Any

from protocol.jsonrpc import JsonRpcError

from ..audit import AuditType
from ..errors import Conflict, OperationFailed
from ..hosts.manager import HostUnavailable
from ..monitoring.store import ExitInfo
from .commands import Principal
from .domxml import DiskSpec, VmSpec, build_domain_xml, disk_targets
from .images import vm_disks
from .nic_commands import vm_nic_specs
from .placement import HostCandidate, pick_host
from .vm_base import VmCommand

__all__ = ["RunVm", "ShutdownVm", "StopVm", "RebootVm", "PauseVm", "ResumeVm"]


class RunVm(VmCommand):
    action_type = "RunVm"
    lock_reason = "a VM start"

    def __init__(self, services: Any, principal: Principal, vm_id: str,
                 host_id: str | None = None) -> None:
        super().__init__(services, principal, vm_id)
        self.wanted_host = host_id
        self.chosen: HostCandidate | None = None
        self.disks: list[Any] = []
        self.dc_id: str | None = None
        self.prepared: list[Any] = []

    def description(self) -> str:
        return f"Launching VM {self.name}"

    async def validate(self) -> None:
        await super().validate()
        assert self.row is not None
        if self.row["status"] != "down":
            raise Conflict(f"Cannot run VM. VM {self.name} is {self.row['status']}.")
        hosts = self.s.hosts.up_hosts(str(self.row["cluster_id"]))
        await self._check_disks()
        if self.dc_id is not None:
            # A VM with disks runs only where its data center's storage is connected.
            hosts = [h for h in hosts if self.s.storage.connector.is_connected(self.dc_id, h.id)]
            if not hosts:
                raise Conflict(f"Cannot run VM {self.name}: no host of its cluster is "
                               f"connected to the storage of its data center.")
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

    async def _check_disks(self) -> None:
        self.disks = [d for d in await vm_disks(self.s.pool, self.vm_id) if d["active"]]
        for d in self.disks:
            if d["status"] != "ok":
                raise Conflict(f"Cannot run VM {self.name}: disk {d['alias']} is "
                               f"{d['status']}.")
            if d["sd_status"] != "active":
                raise Conflict(f"Cannot run VM {self.name}: the storage domain "
                               f"{d['sd_name']} of disk {d['alias']} is "
                               f"{d['sd_status'] or 'not attached'}.")
            self.dc_id = str(d["data_center_id"])

    async def _prepare_disks(self, host_id: str) -> tuple[DiskSpec, ...]:
        """Image.prepare of each disk on the chosen host: the paths the VM opens."""
        buses = ["scsi" if d["interface"] == "virtio_scsi" else "virtio" for d in self.disks]
        specs = []
        for d, bus, target in zip(self.disks, buses, disk_targets(buses)):
            sd, img, vol = str(d["storage_domain_id"]), str(d["id"]), str(d["image_id"])
            assert self.dc_id is not None
            try:
                path = await self.s.storage.prepare_image(host_id, self.dc_id, sd, img, vol)
            except JsonRpcError as exc:
                raise OperationFailed(f"Cannot run VM {self.name}: the host could not "
                                      f"prepare disk {d['alias']}: {exc.message} "
                                      f"(code {exc.code})") from None
            self.prepared.append((host_id, sd, img, vol))
            specs.append(DiskSpec(path=path, target=target, bus=bus,
                                  fmt="qcow2" if (d["volume_format"] or d["format"]) == "cow"
                                  else "raw",  # the leaf's: a snapshot's is qcow2
                                  bootable=d["bootable"], read_only=d["read_only"],
                                  serial=img[:20], pool_id=self.dc_id, domain_id=sd,
                                  image_id=img, volume_id=vol))
        return tuple(specs)

    async def execute(self) -> str:
        assert self.row is not None and self.chosen is not None
        r = self.row
        host = self.s.hosts.get(self.chosen.id)
        kvm = bool(host.facts and host.facts.kvm_enabled)
        cluster = await self.s.pool.fetchrow("SELECT compat_major, compat_minor FROM clusters "
                                             "WHERE id=$1", r["cluster_id"])
        disks = await self._prepare_disks(host.id)
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
            if cluster else "4.7", disks=disks,
            nics=await vm_nic_specs(self.s.pool, self.vm_id))
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
        for host_id, sd, img, vol in self.prepared:
            assert self.dc_id is not None
            try:
                await self.s.storage.teardown_image(host_id, self.dc_id, sd, img, vol)
            except HostUnavailable:
                pass
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


class ShutdownVm(VmCommand):
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


class StopVm(VmCommand):
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


class RebootVm(VmCommand):
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


class PauseVm(VmCommand):
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


class ResumeVm(VmCommand):
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
