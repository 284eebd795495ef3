"""What every REST handler reaches through the request: the engine's
services, the authorizer, the authenticator, the token store, the identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..aaa.authz import Authorizer, Identity
from ..aaa.login import Authenticator
from ..aaa.permits import ActionGroup
from ..aaa.tokens import TokenStore
from ..domain.commands import Command, CommandResult

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["ApiContext", "CTX", "ctx", "ident", "require", "run", "IDENT", "AUTHZ_DONE"]


def _request_key(name: str, kind: type) -> Any:
    maker = getattr(web, "RequestKey", None)  # aiohttp >= 3.12
    return maker(name, kind) if maker is not None else name


IDENT = _request_key("ov_ident", Identity)
AUTHZ_DONE = _request_key("ov_authz_done", bool)


@dataclass(eq=False)
class ApiContext:
    s: "Services"
    authz: Authorizer
    auth: Authenticator
    tokens: TokenStore
    # Open event streams, ended when the server stops.
    streams: set[Any] = field(default_factory=set)


CTX = web.AppKey("ov_ctx", ApiContext)


def ctx(request: web.Request) -> ApiContext:
    return request.app[CTX]


def ident(request: web.Request) -> Identity:
    value: Identity = request[IDENT]
    return value


async def require(request: web.Request, permit: ActionGroup | None, kind: str,
                  obj_id: str | None = None) -> None:
    """The authorization check for what a route's policy could not name in
    advance (an object named in the body): the same Authorizer.authorize()."""
    await ctx(request).authz.authorize(ident(request), permit, kind, obj_id)
    request[AUTHZ_DONE] = True


async def run(request: web.Request, cmd: Command) -> CommandResult:
    return await ctx(request).s.runner.run(cmd)
