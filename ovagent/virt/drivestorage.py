"""What the virt layer needs from storage for VM disks (a role, like Hypervisor).

Implemented by ovagent.storage.StorageService; the composition root hands it
to the VM manager. Errors are JsonRpcErrors with vdsm's storage codes.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["DriveStorage"]


class DriveStorage(Protocol):
    async def prepare_volume(self, sd_uuid: str, img: str, vol: str) -> str:
        """Make a volume (and its chain) usable by a VM here; its path."""

    async def teardown_image(self, sd_uuid: str, img: str, vol: str | None) -> None:
        """Undo prepare_volume."""

    async def volume_info(self, sd_uuid: str, img: str, vol: str) -> dict[str, Any]:
        """Volume.getInfo: format, voltype, parent, legality, capacity, ..."""

    async def sync_volume_chain(self, sd_uuid: str, img: str, leaf: str,
                                actual: list[str]) -> list[str]:
        """Make the metadata chain of `leaf` the `actual` one (after a merge)."""
