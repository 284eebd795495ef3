"""Route policies: every route declares who may call it, and one middleware
enforces the declaration through Authorizer.authorize() before the handler
runs. A route without a policy cannot be registered; a route whose policy is
`deferred` (the object is named in the body) must call `require()` itself,
or the request fails instead of passing unchecked.

Paths tolerate repeated slashes (`/ovirt-engine/api//vms`, which the SDK
sends when its URL ends in `/`) and a trailing slash, without redirects
(the SDK does not follow them).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from ..aaa.authz import parse_uuid
from ..aaa.permits import ActionGroup
from ..errors import OperationFailed
from .context import AUTHZ_DONE, IDENT, ctx

__all__ = ["Policy", "PUBLIC", "LOGIN", "read", "act", "on_system", "deferred", "Routes",
           "policy_middleware", "policy_of"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Policy:
    kind: str                       # public | login | object | deferred
    permit: ActionGroup | None = None
    object_type: str | None = None
    id_param: str | None = None

    def describe(self) -> str:
        if self.kind in ("public", "login"):
            return self.kind
        what = self.permit.rest_name if self.permit else "view"
        return f"{what} on {self.object_type}" + (" (checked in the handler)"
                                                  if self.kind == "deferred" else "")


PUBLIC = Policy("public")
LOGIN = Policy("login")


def read(kind: str, id_param: str = "id") -> Policy:
    return Policy("object", None, kind, id_param)


def act(permit: ActionGroup, kind: str, id_param: str = "id") -> Policy:
    return Policy("object", permit, kind, id_param)


def on_system(permit: ActionGroup) -> Policy:
    return Policy("object", permit, "system", None)


def deferred(permit: ActionGroup | None, kind: str) -> Policy:
    return Policy("deferred", permit, kind, None)


def policy_of(handler: object) -> Policy | None:
    return getattr(handler, "ov_policy", None)


def _tolerant(path: str) -> str:
    """`/ovirt-engine/api/vms/{id}` -> a pattern that accepts `//` and a trailing `/`."""
    prefix = "/ovirt-engine/api"
    if not path.startswith(prefix):
        return path
    rest = path[len(prefix):]
    parts = [p for p in rest.split("/") if p]
    out = prefix
    for i, p in enumerate(parts):
        out += f"{{_s{i}:/+}}{p}"
    return out + "{_st:/*}"


class Routes:
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def add(self, method: str, path: str, handler: Handler, policy: Policy,
            name: str | None = None) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(f"route {method} {path} needs a Policy")

        async def bound(request: web.Request) -> web.StreamResponse:
            return await handler(request)

        bound.ov_policy = policy  # type: ignore[attr-defined]
        bound.ov_path = path  # type: ignore[attr-defined]
        # Plain {name} parameters are object ids (uuids); {name:regex} ones are not.
        bound.ov_id_params = tuple(  # type: ignore[attr-defined]
            m.group(1) for m in re.finditer(r"\{(\w+)\}", path))
        bound.__name__ = getattr(handler, "__name__", "handler")
        self.app.router.add_route(method, _tolerant(path), bound, name=name)

    def get(self, path: str, handler: Handler, policy: Policy) -> None:
        self.add("GET", path, handler, policy)

    def post(self, path: str, handler: Handler, policy: Policy) -> None:
        self.add("POST", path, handler, policy)

    def put(self, path: str, handler: Handler, policy: Policy) -> None:
        self.add("PUT", path, handler, policy)

    def delete(self, path: str, handler: Handler, policy: Policy) -> None:
        self.add("DELETE", path, handler, policy)


@web.middleware
async def policy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = request.match_info
    if match.http_exception is not None:  # no route: aiohttp's 404/405, made a fault outside
        raise match.http_exception
    policy = policy_of(match.handler)
    if policy is None:
        log.error("route without a policy: %s %s", request.method, request.path)
        raise OperationFailed("this route has no authorization policy")
    for name in getattr(match.handler, "ov_id_params", ()):
        parse_uuid(match[name], name)  # a malformed id names nothing: 404
    if policy.kind == "public":
        return await handler(request)
    c = ctx(request)
    from .auth import authenticate  # noqa: PLC0415 (auth imports context too)
    request[IDENT] = ident = await authenticate(request, c)
    if policy.kind == "object":
        obj_id = match.get(policy.id_param) if policy.id_param else None
        assert policy.object_type is not None
        await c.authz.authorize(ident, policy.permit, policy.object_type, obj_id)
    elif policy.kind == "deferred":
        request[AUTHZ_DONE] = False
    response = await handler(request)
    if policy.kind == "deferred" and not request.get(AUTHZ_DONE):
        log.error("handler of %s %s did not authorize", request.method, request.path)
        raise OperationFailed("internal error: the request was not authorized")
    return response

