"""oVirt SSO, as the SDK uses it: the password grant
(`POST /ovirt-engine/sso/oauth/token`), logout
(`POST /ovirt-engine/services/sso-logout`), and the CA certificate
(`GET /ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA`).
All three are public, as in oVirt. Replies are JSON (the SDK requires it,
whatever the status)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import orjson
from aiohttp import web

from ..audit import AuditRefs, AuditType
from ..errors import EngineError, NotFound, Unauthorized
from .auth import bearer_token
from .context import ctx
from .policy import PUBLIC, Routes

__all__ = ["add_routes"]

SCOPE = "ovirt-app-api"
log = logging.getLogger(__name__)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(code: str, message: str, status: int) -> web.Response:
    # The engine's own shape: the SDK raises AuthError("... <error_code> : <error>").
    return _json({"error_code": code, "error": message}, status)


async def _form(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {k: v for k, v in request.query.items()}
    if request.can_read_body:
        try:
            data = await request.post()
        except ValueError:
            data = None
        if data:
            out.update({k: v for k, v in data.items() if isinstance(v, str)})
    return out


async def token(request: web.Request) -> web.Response:
    c = ctx(request)
    form = await _form(request)
    grant = form.get("grant_type", "")
    if grant != "password":
        return _error("unsupported_grant_type", f"Grant type {grant!r} is not supported: use "
                      f"grant_type=password.", 400)
    username = form.get("username", "")
    password = form.get("password", "")
    if not username or not password:
        return _error("invalid_request", "Both username and password are required.", 400)
    scope = form.get("scope") or SCOPE
    peer = request.remote or "?"
    try:
        user_id = await c.auth.login(username, password)
    except Unauthorized as exc:
        await c.s.audit.log(AuditType.USER_VDC_LOGIN_FAILED,
                            f"User {username} connecting from '{peer}' failed to log in: "
                            f"{exc.detail}")
        return _error("access_denied", exc.detail, 401)
    except EngineError as exc:  # a directory that does not answer, ...
        return _error("server_error", exc.detail, 503)
    except Exception:  # the SDK needs JSON here, even for our bugs
        log.exception("login of %s failed", username)
        return _error("server_error", "The engine failed to log the user in; see its log.",
                      500)
    issued = await c.tokens.issue(user_id, scope)
    await c.s.audit.log(AuditType.USER_VDC_LOGIN,
                        f"User {username} connecting from '{peer}' logged in.",
                        AuditRefs(user_id=uuid.UUID(user_id), user_name=username))
    return _json({"access_token": issued.token, "token_type": "bearer", "scope": scope,
                  "exp": str(int(issued.expires_at.timestamp() * 1000))})


async def logout(request: web.Request) -> web.Response:
    c = ctx(request)
    form = await _form(request)
    value = form.get("token") or bearer_token(request)
    if value:
        user_id = await c.tokens.resolve(value)
        if await c.tokens.revoke(value) and user_id:
            name = await c.s.pool.fetchval(
                "SELECT principal || '@' || domain FROM users WHERE id = $1::uuid", user_id)
            await c.s.audit.log(AuditType.USER_VDC_LOGOUT, f"User {name} logged out.",
                                AuditRefs(user_id=uuid.UUID(user_id), user_name=name))
    return _json({})


async def pki_resource(request: web.Request) -> web.Response:
    resource = request.query.get("resource", "")
    fmt = request.query.get("format", "X509-PEM-CA")
    if resource not in ("ca-certificate", "engine-certificate") or \
            fmt not in ("X509-PEM-CA", "X509-PEM"):
        raise NotFound(f"no PKI resource {resource!r} in format {fmt!r} (try "
                       f"resource=ca-certificate&format=X509-PEM-CA)")
    files = ctx(request).s.ca.files
    path = files.ca_cert if resource == "ca-certificate" else files.https_cert
    pem = await asyncio.to_thread(path.read_bytes)
    return web.Response(body=pem, content_type="application/x-x509-ca-cert")


def add_routes(r: Routes) -> None:
    r.post("/ovirt-engine/sso/oauth/token", token, PUBLIC)
    r.post("/ovirt-engine/services/sso-logout", logout, PUBLIC)
    r.get("/ovirt-engine/services/pki-resource", pki_resource, PUBLIC)
