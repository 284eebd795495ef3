"""(ov) OVA.* verbs: thin handlers from wire params to OvaService."""

from __future__ import annotations

from typing import Any

from protocol.schema import verb

from ..storage.ova import OvaService

__all__ = ["OvaApi"]


class OvaApi:
    def __init__(self, ova: OvaService) -> None:
        self.ova = ova

    @verb("OVA.query")
    async def query(self, ova_path: str) -> dict[str, Any]:
        return await self.ova.query(ova_path)

    @verb("OVA.measure")
    async def measure(self, storagedomain_id: str, image_id: str,
                      volume_id: str) -> dict[str, int]:
        return await self.ova.measure(storagedomain_id, image_id, volume_id)

    @verb("OVA.export")
    async def export(self, ova_path: str, ovf: str, disks: list[dict[str, Any]],
                     entity: str) -> str:
        return await self.ova.export(ova_path, ovf, disks, entity)

    @verb("OVA.importDisk")
    async def import_disk(self, ova_path: str, member: str, storagedomain_id: str,
                          image_id: str, volume_id: str) -> str:
        return await self.ova.import_disk(ova_path, member, storagedomain_id, image_id,
                                          volume_id)
