"""ApiServer: the HTTPS listener of the REST API (aiohttp).

`build_app(services)` assembles the aiohttp application; this module only
binds it to the configured address with the engine's HTTPS certificate.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

from .app import build_app

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["ApiServer"]

log = logging.getLogger(__name__)


class ApiServer:
    def __init__(self, services: "Services") -> None:
        self.s = services
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> str:
        cfg = self.s.config.api
        files = self.s.ca.files
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(files.https_cert, files.https_key)
        app = build_app(self.s)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, cfg.host, cfg.port, ssl_context=ctx,
                           reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else cfg.port
        host = cfg.server_names[0] if cfg.server_names else "localhost"
        url = f"https://{host}:{self.port}/ovirt-engine/api"
        log.info("REST API at %s", url)
        return url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
