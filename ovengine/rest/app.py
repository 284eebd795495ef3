"""The aiohttp application of the REST API: oVirt API v4 paths under
/ovirt-engine/api (XML by default, JSON on request), SSO under
/ovirt-engine/sso and /ovirt-engine/services, and the event stream.

Middlewares, outermost first: faults (every error becomes a <fault>, with
the request's Correlation-Id as the flow id) -> policy (authentication and
the route's authorization, see policy.py) -> the handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..aaa.authz import Authorizer
from ..aaa.login import Authenticator
from ..aaa.tokens import TokenStore
from . import auth, sso
from .context import CTX, ApiContext
from .faults import fault_middleware
from .policy import Routes, policy_middleware
from .resources import (aaa, events, hosts, nics, openapi, root, storage, stream, templates,
                        topology, transfers, vms)

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["build_app"]


def build_app(services: "Services") -> web.Application:
    cfg = services.config
    app = web.Application(client_max_size=cfg.api.max_body_mib * 1024 * 1024,
                          middlewares=[fault_middleware, policy_middleware])
    c = ApiContext(services, Authorizer(services.pool),
                   Authenticator(services.pool, cfg.auth.ldap),
                   TokenStore(services.pool, cfg.api.token_lifetime_s))
    app[CTX] = c
    auth.install(app)
    r = Routes(app)
    sso.add_routes(r)
    root.add_routes(r)
    openapi.add_routes(r)
    stream.add_routes(r)   # before /events/{id}
    for module in (vms, nics, hosts, topology, templates, storage, events, aaa, transfers):
        module.add_routes(r)

    async def on_shutdown(_app: web.Application) -> None:
        stream.close_streams(c)

    app.on_shutdown.append(on_shutdown)
    return app
