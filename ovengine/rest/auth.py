"""Who is calling: `Authorization: Bearer <SSO token>` (what the SDK sends) or
`Basic` (curl -u; checked against the same domains, cached briefly)."""

from __future__ import annotations

import base64
import hashlib
import time

from aiohttp import web

from ..aaa.authz import Identity
from ..errors import NotFound, Unauthorized
from .context import ApiContext

__all__ = ["authenticate", "bearer_token"]

_BASIC_TTL_S = 30.0
_basic_key = web.AppKey("ov_basic_cache", dict)


def bearer_token(request: web.Request) -> str | None:
    h = request.headers.get("Authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip() or None
    return None


async def authenticate(request: web.Request, c: ApiContext) -> Identity:
    h = request.headers.get("Authorization", "")
    filtered = request.headers.get("Filter", "").strip().lower() == "true"
    token = bearer_token(request)
    token_digest = None
    if token is not None:
        user_id = await c.tokens.resolve(token)
        if user_id is None:
            raise Unauthorized("The token is not valid (expired, revoked, or unknown): log in "
                               "again.")
        token_digest = hashlib.sha256(token.encode()).hexdigest()
    elif h[:6].lower() == "basic ":
        user_id = await _basic(request, c, h[6:].strip())
    else:
        raise Unauthorized("Authentication required: get a token from "
                           "/ovirt-engine/sso/oauth/token and send it as "
                           "'Authorization: Bearer <token>'.")
    try:
        return await c.authz.identity(user_id, filter_header=filtered, token_hash=token_digest)
    except NotFound:
        raise Unauthorized("The user of this token no longer exists.") from None


async def _basic(request: web.Request, c: ApiContext, value: str) -> str:
    cache = _cache(request.app)
    key = hashlib.sha256(value.encode()).hexdigest()
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    try:
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials") from None
    user_id = await c.auth.login(user, password)
    if len(cache) > 1000:
        cache.clear()
    cache[key] = (user_id, now + _BASIC_TTL_S)
    return user_id


def _cache(app: web.Application) -> dict[str, tuple[str, float]]:
    # Created in build_app (the app is frozen once it runs).
    value: dict[str, tuple[str, float]] = app[_basic_key]
    return value


def install(app: web.Application) -> None:
    app[_basic_key] = {}


__all__ += ["install"]
