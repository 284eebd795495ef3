"""aiohttp's own errors become faults: an unhandled exception (500), no route
(404), a wrong method (405), a body too large (413), over real HTTP on
127.0.0.1."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ovengine.errors import Locked, ValidationFailed
from ovengine.rest.faults import fault_middleware


async def test_errors_become_faults() -> None:
    async def boom(_request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def locked(_request: web.Request) -> web.Response:
        raise Locked("VM vm1 is locked by a snapshot")

    async def bad(_request: web.Request) -> web.Response:
        raise ValidationFailed("must be positive", "memory")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/xml")

    app = web.Application(middlewares=[fault_middleware], client_max_size=1024)
    app.router.add_get("/boom", boom)
    app.router.add_get("/locked", locked)
    app.router.add_get("/bad", bad)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            cases = [("GET", "/boom", 500, "Internal Server Error"),
                     ("GET", "/locked", 409, "Operation Failed"),
                     ("GET", "/bad", 400, "field: memory"),
                     ("GET", "/nowhere", 404, "No resource"),
                     ("DELETE", "/boom", 405, "not allowed"),
                     ("POST", "/echo", 413, "Request Entity Too Large")]
            for method, path, status, text in cases:
                async with http.request(method, path, data=b"x" * 4096) as r:
                    body = await r.text()
                    assert r.status == status, (path, body)
                    assert r.content_type == "application/xml" and body.startswith("<fault>")
                    assert text in body, body
            async with http.get("/boom", headers={"Accept": "application/json"}) as r:
                assert r.content_type == "application/json"
                assert (await r.json())["reason"] == "Internal Server Error"
    finally:
        await runner.cleanup()
