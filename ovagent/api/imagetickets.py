"""Host.*_image_ticket verbs: tickets of the agent's image server (vdsm's names)."""

from __future__ import annotations

from typing import Any

from protocol.schema import verb

from ..imageio.service import ImageService

__all__ = ["ImageTicketApi"]


class ImageTicketApi:
    def __init__(self, images: ImageService) -> None:
        self.images = images

    @verb("Host.add_image_ticket")
    async def add_image_ticket(self, ticket: dict[str, Any]) -> None:
        self.images.require()
        self.images.tickets.add(ticket)

    @verb("Host.get_image_ticket")
    async def get_image_ticket(self, uuid: str) -> dict[str, Any]:
        return self.images.tickets.info(uuid)

    @verb("Host.remove_image_ticket")
    async def remove_image_ticket(self, uuid: str) -> None:
        self.images.tickets.remove(uuid)

    @verb("Host.extend_image_ticket")
    async def extend_image_ticket(self, uuid: str, timeout: int) -> None:
        self.images.tickets.extend(uuid, timeout)
