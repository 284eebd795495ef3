"""The aiohttp application of the REST API (placeholder until the API lands:
only the API root answers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["build_app"]


def build_app(services: "Services") -> web.Application:
    app = web.Application(client_max_size=services.config.api.max_body_mib * 1024 * 1024)

    async def root(_request: web.Request) -> web.Response:
        return web.Response(text="<api/>", content_type="application/xml")

    app.router.add_get("/ovirt-engine/api", root)
    return app
