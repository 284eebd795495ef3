"""Errors become `<fault><reason/><detail/></fault>` (or JSON) here, at the
edge, with the engine error's status; aiohttp's own error pages (404 no
route, 405, 413, an unhandled exception's 500) become faults too, so a
client never gets HTML or a response without a Content-Type."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from protocol.flow import new_flow_id, using_flow_id

from ..errors import EngineError, ValidationFailed
from .render import respond

__all__ = ["fault_middleware", "fault_response"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fault_response(request: web.Request, status: int, reason: str, detail: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    resp = respond(request, "fault", {"reason": reason, "detail": detail}, status=status)
    if headers:
        resp.headers.update(headers)
    return resp


def _detail(exc: EngineError) -> str:
    d = exc.detail
    if isinstance(exc, ValidationFailed) and exc.field and exc.field not in d:
        d = f"{d} (field: {exc.field})"
    return f"[{d}]"


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    correlation = request.headers.get("Correlation-Id", "")[:100] or new_flow_id()
    with using_flow_id(correlation):
        try:
            return await handler(request)
        except EngineError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="ovirt-engine"'} \
                if exc.http_status == 401 else None
            if exc.http_status >= 500:
                log.warning("%s %s failed: %s", request.method, request.path, exc.detail)
            return fault_response(request, exc.http_status, exc.reason, _detail(exc), headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            detail = exc.text if exc.text and exc.content_type == "text/plain" else exc.reason
            if exc.status == 404:
                detail = f"No resource at {request.method} {request.path}"
            elif exc.status == 405:
                allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
                detail = f"Method {request.method} is not allowed here (allowed: {allowed})"
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            return fault_response(request, exc.status, exc.reason, f"[{detail}]", headers)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("%s %s: unhandled error", request.method, request.path)
            return fault_response(request, 500, "Internal Server Error",
                                  "[The engine failed to process the request; see its log.]")
