"""The image service of the agent: its ticket store and its HTTPS server.

Like vdsm with ovirt-imageio, the agent keeps working when the image server
cannot run (disabled, or its port taken): the ticket verbs then fail with
the reason instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

from protocol import tls

from ..config import ImageioConfig, TlsConfig
from .server import ImageServer
from .tickets import TicketError, TicketStore

__all__ = ["ImageService"]

log = logging.getLogger(__name__)


class ImageService:
    def __init__(self, config: ImageioConfig, listen_host: str, tls_config: TlsConfig,
                 repository: Path) -> None:
        self.config = config
        self.host = config.host if config.host is not None else listen_host
        self.tickets = TicketStore([repository])
        self.server: ImageServer | None = None
        self.unavailable: str | None = None
        if config.enabled:
            ctx = tls.server_only_context(tls_config.cert, tls_config.key)
            self.server = ImageServer(self.tickets, config, ctx)
        else:
            self.unavailable = "it is disabled (imageio.enabled)"

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else 0

    async def start(self) -> None:
        if self.server is None:
            return
        try:
            await self.server.start(self.host, self.config.port)
        except OSError as exc:
            self.unavailable = f"cannot listen on {self.host}:{self.config.port}: {exc}"
            log.error("image server not started: %s", self.unavailable)

    def require(self) -> None:
        if self.unavailable is not None:
            raise TicketError(f"the image server is not running: {self.unavailable}")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
