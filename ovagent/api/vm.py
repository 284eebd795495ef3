"""VM.* verbs: thin handlers from wire params to VmManager calls."""

from __future__ import annotations

from typing import Any

from protocol.schema import verb

from ..virt.errors import invalid_parameter
from ..virt.manager import VmManager

__all__ = ["VmApi"]


def _int(value: Any, name: str) -> int:
    """IntOrString params: the engine sends some numbers as strings."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_parameter(f"{name} must be a whole number, got {value!r}") from None


class VmApi:
    def __init__(self, manager: VmManager) -> None:
        self.vms = manager

    @verb("VM.create")
    async def create(self, vm_id: str, vm_params: dict[str, Any]) -> dict[str, Any]:
        inner = vm_params.get("vmId")
        if inner is not None and str(inner).lower() != vm_id.lower():
            raise invalid_parameter(f"vmParams.vmId {inner} does not match vmID {vm_id}")
        return await self.vms.create({**vm_params, "vmId": vm_id})

    @verb("VM.destroy")
    async def destroy(self, vm_id: str, graceful_attempts: int) -> None:
        await self.vms.destroy(vm_id, graceful_attempts)

    @verb("VM.shutdown")
    async def shutdown(self, vm_id: str, delay: Any, message: str | None, reboot: bool,
                       timeout: int | None, force: bool) -> None:
        await self.vms.shutdown(
            vm_id, delay_s=_int(delay, "delay") if delay not in (None, "") else 30,
            message=message or "System going down", reboot=reboot,
            timeout_s=timeout, force=force)

    @verb("VM.reset")
    async def reset(self, vm_id: str) -> None:
        await self.vms.reset(vm_id)

    @verb("VM.pause")
    async def pause(self, vm_id: str) -> dict[str, Any]:
        await self.vms.pause(vm_id)
        return {"vmList": {}}

    @verb("VM.cont")
    async def cont(self, vm_id: str) -> dict[str, Any]:
        await self.vms.cont(vm_id)
        return {"vmList": {}}

    @verb("VM.getStats")
    async def get_stats(self, vm_id: str) -> list[dict[str, Any]]:
        return [self.vms.get(vm_id).stats()]

    @verb("VM.setTicket")
    async def set_ticket(self, vm_id: str, password: str, ttl: Any, existing_conn_action: str,
                         params: dict[str, Any]) -> None:
        await self.vms.set_ticket(vm_id, password, _int(ttl, "ttl"), existing_conn_action,
                                  params)

    @verb("VM.setBalloonTarget")
    async def set_balloon_target(self, vm_id: str, target: int) -> dict[str, Any]:
        await self.vms.set_balloon_target(vm_id, target)
        return {"code": 0, "message": "Done"}

    @verb("VM.snapshot")
    async def snapshot(self, vm_id: str, snap_drives: list[dict[str, Any]],
                       snap_memory: str | None, frozen: bool, job_uuid: str | None,
                       timeout: int, freeze_timeout: int) -> None:
        await self.vms.snapshot(vm_id, snap_drives, snap_memory, frozen, job_uuid, timeout)

    @verb("VM.merge")
    async def merge(self, vm_id: str, drive: dict[str, Any], base_vol_uuid: str,
                    top_vol_uuid: str, bandwidth: int, job_uuid: str | None) -> None:
        await self.vms.merge(vm_id, drive, base_vol_uuid, top_vol_uuid, bandwidth, job_uuid)
