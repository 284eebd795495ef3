"""Host.* verbs: capabilities, statistics and VM lists."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from protocol.schema import verb

from ..host.capabilities import build_capabilities, hardware_info, host_facts_blocking
from ..host.stats import HostStatsSampler
from ..virt.errors import no_vm
from ..virt.hooks import HookRunner
from ..virt.manager import VmManager
from ..virt.vm import Vm

__all__ = ["HostApi"]


class HostApi:
    def __init__(self, manager: VmManager, host_stats: HostStatsSampler,
                 hooks: HookRunner, imageio_port: Callable[[], int] | None = None) -> None:
        self.vms = manager
        self.host_stats = host_stats
        self.hooks = hooks
        # The image server's port (0: not running), for the engine's transfer URLs.
        self.imageio_port = imageio_port
        self._facts: dict[str, Any] | None = None

    @verb("Host.ping2")
    async def ping2(self) -> None:
        return None

    @verb("Host.getCapabilities")
    async def get_capabilities(self) -> dict[str, Any]:
        if self._facts is None:
            self._facts = await asyncio.to_thread(host_facts_blocking)
        node = await self.vms.hypervisor.node_info()
        hooks = await asyncio.to_thread(self.hooks.inventory_blocking)
        caps = build_capabilities(node, self._facts, hooks)
        if self.imageio_port is not None:
            caps["imageioPort"] = self.imageio_port()
        return caps

    @verb("Host.getHardwareInfo")
    async def get_hardware_info(self) -> dict[str, Any]:
        return hardware_info(await self.vms.hypervisor.node_info())

    @verb("Host.getStats")
    async def get_stats(self) -> dict[str, Any]:
        return self.host_stats.stats()

    @verb("Host.getAllVmStats")
    async def get_all_vm_stats(self) -> list[dict[str, Any]]:
        return [vm.stats() for vm in self.vms.vms.values()]

    def _selected(self, vm_list: list[str]) -> list[Vm]:
        if not vm_list:
            return list(self.vms.vms.values())
        return [vm for vm_id in vm_list if (vm := self.vms.vms.get(vm_id)) is not None]

    @verb("Host.getVMList")
    async def get_vm_list(self, full_status: bool, vm_list: list[str],
                          only_uuid: bool) -> list[Any]:
        selected = self._selected(vm_list)
        if only_uuid:
            return [vm.id for vm in selected]
        return [vm.short_status() for vm in selected]

    @verb("Host.getVMFullList")
    async def get_vm_full_list(self, vm_list: list[str]) -> list[dict[str, Any]]:
        return [vm.definition() for vm in self._selected(vm_list)]

    @verb("Host.dumpxmls")
    async def dumpxmls(self, vm_list: list[str]) -> dict[str, str]:
        result = {}
        for vm_id in vm_list or list(self.vms.vms):
            vm = self.vms.vms.get(vm_id)
            if vm is None:
                raise no_vm(vm_id)
            result[vm_id] = await self.vms.refresh_xml(vm)
        return result

    @verb("Host.getJobs")
    async def get_jobs(self, job_type: str | None, job_ids: list[str]) -> dict[str, Any]:
        return self.vms.jobs.report(job_type, job_ids)
