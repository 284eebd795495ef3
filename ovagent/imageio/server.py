"""The image server: ovirt-imageio's /images API over HTTPS (aiohttp).

    OPTIONS /images/<ticket>|*   Allow header; {"features": [...], ...}
    GET     /images/<ticket>     download; Range: bytes=start-end -> 206
    PUT     /images/<ticket>     upload Content-Length bytes at the start of
                                 Content-Range (bytes start-end/*), ?flush=y|n
    PATCH   /images/<ticket>     {"op": "zero", "offset", "size", "flush"} or
                                 {"op": "flush"}

Errors as imageio's: 403 for a missing, expired or removed ticket or an
operation it does not allow, 416 for a range past the ticket's size, 400 for
a malformed request; the body says why. Every request is authorized by its
ticket (the id in the URL is the credential); bytes moved are added to the
ticket's `transferred`.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from typing import Any

from aiohttp import web

from ..config import ImageioConfig
from ..storage.boundary import StorageIO
from .backend import FileBackend
from .tickets import Forbidden, Ticket, TicketStore

__all__ = ["ImageServer"]

log = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+|\*)/(\d+|\*)$")
_FEATURES = ["zero", "flush"]


class _HttpError(Exception):
    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


def _forbidden(reason: str) -> _HttpError:
    return _HttpError(403, f"You are not allowed to access this resource: {reason}")


class ImageServer:
    def __init__(self, tickets: TicketStore, config: ImageioConfig,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.tickets = tickets
        self.config = config
        self.ssl_context = ssl_context
        self.io = StorageIO(config.io_threads, config.io_timeout_s, config.io_timeout_s)
        self.backend = FileBackend(self.io)
        self.buffer = max(4096, config.buffer_kib * 1024)
        self.port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_route("OPTIONS", "/images/{ticket}", self._options)
        app.router.add_route("GET", "/images/{ticket}", self._get)
        app.router.add_route("PUT", "/images/{ticket}", self._put)
        app.router.add_route("PATCH", "/images/{ticket}", self._patch)
        self.app = app

    async def start(self, host: str, port: int) -> int:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                               shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=self.ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # the bound asyncio server (port 0: the kernel's pick)
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        log.info("image server listening on %s:%d", host, self.port)
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.io.shutdown()

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _error_response(exc: _HttpError) -> web.Response:
        return web.Response(status=exc.status, text=exc.text + "\n", headers=exc.headers)

    def _authorize(self, request: web.Request, op: str | None) -> Ticket:
        try:
            return self.tickets.authorize(request.match_info["ticket"], op)
        except Forbidden as exc:
            raise _forbidden(str(exc)) from None

    @staticmethod
    def _check_range(ticket: Ticket, start: int, length: int) -> None:
        if start < 0 or length < 0 or start + length > ticket.size:
            raise _HttpError(416, f"Requested range {start}-{start + length - 1} is beyond "
                             f"the image size {ticket.size}",
                             {"Content-Range": f"bytes */{ticket.size}"})

    # ----------------------------------------------------------- handlers
    async def _options(self, request: web.Request) -> web.Response:
        name = request.match_info["ticket"]
        if name == "*":
            allow, features = ["GET", "PUT", "PATCH", "OPTIONS"], list(_FEATURES)
        else:
            try:
                ticket = self._authorize(request, None)
            except _HttpError as exc:
                return self._error_response(exc)
            allow = ["OPTIONS"]
            features = []
            if "read" in ticket.ops:
                allow.append("GET")
            if "write" in ticket.ops:
                allow += ["PUT", "PATCH"]
                features = list(_FEATURES)
        body = {"features": features, "max_readers": 1, "max_writers": 1}
        return web.json_response(body, headers={"Allow": ",".join(allow)})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        try:
            ticket = self._authorize(request, "read")
            header = request.headers.get("Range")
            if header is None:
                start, length, status = 0, ticket.size, 200
            else:
                m = _RANGE.match(header.strip())
                if m is None:
                    raise _HttpError(416, f"Unsupported range {header!r} (one range "
                                     "bytes=start-end only)",
                                     {"Content-Range": f"bytes */{ticket.size}"})
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else ticket.size - 1
                if end < start:
                    raise _HttpError(416, f"Invalid range {header!r}",
                                     {"Content-Range": f"bytes */{ticket.size}"})
                length, status = end - start + 1, 206
            self._check_range(ticket, start, length)
        except _HttpError as exc:
            return self._error_response(exc)
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Length": str(length)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{ticket.size}"
        if ticket.filename:
            headers["Content-Disposition"] = f'attachment; filename="{ticket.filename}"'
        self.tickets.begin(ticket)
        try:
            fd = await self.backend.open(ticket.path, writable=False)
            try:
                response = web.StreamResponse(status=status, headers=headers)
                await response.prepare(request)
                offset, end_at = start, start + length
                while offset < end_at:
                    if ticket.canceled:
                        raise ConnectionAbortedError(f"ticket {ticket.uuid} removed")
                    step = min(self.buffer, end_at - offset)
                    data = await self.backend.read(fd, offset, step)
                    await response.write(data)
                    offset += step
                    ticket.transferred += step
                await response.write_eof()
                return response
            finally:
                await self.backend.close(fd)
        finally:
            self.tickets.end(ticket)

    async def _put(self, request: web.Request) -> web.Response:
        try:
            ticket = self._authorize(request, "write")
            if request.content_length is None:
                raise _HttpError(400, "Content-Length is required")
            length = request.content_length
            start = 0
            header = request.headers.get("Content-Range")
            if header is not None:
                m = _CONTENT_RANGE.match(header.strip())
                if m is None:
                    raise _HttpError(400, f"Invalid Content-Range {header!r} (bytes "
                                     "start-end/size)")
                start = int(m.group(1))
            self._check_range(ticket, start, length)
            flush = request.query.get("flush", "y") != "n"
        except _HttpError as exc:
            return self._error_response(exc)
        self.tickets.begin(ticket)
        try:
            fd = await self.backend.open(ticket.path, writable=True)
            try:
                offset, end_at = start, start + length
                while offset < end_at:
                    if ticket.canceled:
                        return self._error_response(_forbidden(
                            f"Ticket {ticket.uuid} was removed"))
                    data = await request.content.read(min(self.buffer, end_at - offset))
                    if not data:
                        return self._error_response(_HttpError(
                            400, f"Body ended after {offset - start} of {length} bytes"))
                    await self.backend.write(fd, offset, data)
                    offset += len(data)
                    ticket.transferred += len(data)
                if flush:
                    await self.backend.flush(fd)
            finally:
                await self.backend.close(fd)
        finally:
            self.tickets.end(ticket)
        return web.Response(status=200)

    async def _patch(self, request: web.Request) -> web.Response:
        try:
            ticket = self._authorize(request, "write")
            try:
                body: Any = json.loads(await request.read())
            except ValueError as exc:
                raise _HttpError(400, f"Invalid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise _HttpError(400, "The body must be a JSON object")
            op = body.get("op")
            if op not in ("zero", "flush"):
                raise _HttpError(400, f"Unsupported op {op!r} (zero, flush)")
            offset = size = 0
            if op == "zero":
                if "size" not in body:
                    raise _HttpError(400, "Missing required value for 'size'")
                try:
                    offset, size = int(body.get("offset", 0)), int(body["size"])
                except (TypeError, ValueError):
                    raise _HttpError(400, "offset and size must be numbers") from None
                self._check_range(ticket, offset, size)
        except _HttpError as exc:
            return self._error_response(exc)
        self.tickets.begin(ticket)
        try:
            fd = await self.backend.open(ticket.path, writable=True)
            try:
                if op == "zero":
                    await self.backend.zero(fd, offset, size, punch=ticket.sparse)
                    ticket.transferred += size
                if op == "flush" or body.get("flush"):
                    await self.backend.flush(fd)
            finally:
                await self.backend.close(fd)
        finally:
            self.tickets.end(ticket)
        return web.Response(status=200)
