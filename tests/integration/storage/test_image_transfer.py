"""Disk uploads and downloads through the agent's image server, with the ov-image CLI.

The engine's part is played by the test: a volume is created and prepared,
Host.add_image_ticket gives its path a ticket, and the transfer URL
https://127.0.0.1:<port>/images/<ticket> goes to `ov-image` (run as a
process: real TLS against the agent's certificate, verified with the CA).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol import pki
from tests.fixtures.agent import REPO, AgentPki, wait_until
from tests.fixtures.storage import RAW, SPARSE, MiB, new_uuid

from .conftest import LocalPool

SIZE = 8 * MiB + 4096  # not a multiple of the CLI's buffer


@dataclass
class Cli:
    code: int
    out: str
    err: str


async def ov_image(*args: str) -> Cli:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ovagent.image_cli", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Cli(proc.returncode, out.decode(), err.decode())


async def prepared_raw_volume(pool: LocalPool, size: int = SIZE) -> tuple[str, str, str]:
    img, vol = new_uuid(), new_uuid()
    await pool.driver.create_volume(pool.sd, img, vol, size, fmt=RAW, prealloc=SPARSE)
    prepared = await pool.driver.call("Image.prepare", {
        "storagepoolID": pool.driver.pool_id, "storagedomainID": pool.sd, "imageID": img,
        "volumeID": vol})
    return img, vol, prepared["path"]


async def add_ticket(pool: LocalPool, path: str, ops: list[str], *, timeout: int = 300,
                     size: int = SIZE) -> str:
    ticket = str(uuid.uuid4())
    assert await pool.driver.call("Host.add_image_ticket", {"ticket": {
        "uuid": ticket, "size": size, "url": f"file://{path}", "timeout": timeout,
        "ops": ops, "transfer_id": "t-" + ticket[:8], "filename": "disk.raw"}}) is True
    return ticket


def url(pool: LocalPool, ticket: str) -> str:
    return f"https://127.0.0.1:{pool.agent.agent.images.port}/images/{ticket}"


async def test_upload_then_download_is_byte_identical(local_pool: LocalPool,
                                                      agent_pki: AgentPki,
                                                      tmp_path: Path) -> None:
    pool = local_pool
    assert pool.agent.agent.images.port > 0
    _img, _vol, path = await prepared_raw_volume(pool)
    source = tmp_path / "disk.raw"
    data = bytearray(os.urandom(SIZE))
    data[MiB:3 * MiB] = bytes(2 * MiB)  # some zeros too
    source.write_bytes(bytes(data))

    up = await add_ticket(pool, path, ["write"])
    run = await ov_image("--ca", str(agent_pki.ca), "--buffer-mib", "1", "upload",
                         str(source), url(pool, up))
    assert run.code == 0, run.err
    assert "100.0%" in run.err and f"uploaded {SIZE} bytes" in run.err  # the progress bar
    info: dict[str, Any] = await pool.driver.call("Host.get_image_ticket", {"uuid": up})
    assert info["transferred"] == SIZE and info["active"] is False
    assert info["ops"] == ["write"] and info["size"] == SIZE and info["url"] == f"file://{path}"
    assert Path(path).read_bytes() == bytes(data)
    # a write-only ticket does not let anyone read
    refused = await ov_image("--ca", str(agent_pki.ca), "download", url(pool, up),
                             str(tmp_path / "nope"))
    assert refused.code == 1 and "does not allow reading" in refused.err
    await pool.driver.call("Host.remove_image_ticket", {"uuid": up})
    await pool.driver.call("Host.remove_image_ticket", {"uuid": up})  # again: fine

    down = await add_ticket(pool, path, ["read"])
    copy = tmp_path / "copy.raw"
    run = await ov_image("--ca", str(agent_pki.ca), "download", url(pool, down), str(copy))
    assert run.code == 0, run.err
    assert copy.read_bytes() == bytes(data)
    assert (await pool.driver.call("Host.get_image_ticket", {"uuid": down}))[
        "transferred"] == SIZE
    await pool.driver.call("Host.remove_image_ticket", {"uuid": down})
    # the removed ticket's URL is refused from now on
    gone = await ov_image("--ca", str(agent_pki.ca), "download", url(pool, down), str(copy))
    assert gone.code == 1 and f"No such ticket {down}" in gone.err, gone.err


async def test_bad_and_expired_tickets_are_refused(local_pool: LocalPool,
                                                   agent_pki: AgentPki,
                                                   tmp_path: Path) -> None:
    pool = local_pool
    _img, _vol, path = await prepared_raw_volume(pool, MiB)
    source = tmp_path / "small.raw"
    source.write_bytes(os.urandom(MiB))

    unknown = str(uuid.uuid4())
    run = await ov_image("--ca", str(agent_pki.ca), "upload", str(source), url(pool, unknown))
    assert run.code == 1
    assert (f"upload refused (403 Forbidden): You are not allowed to access this resource: "
            f"No such ticket {unknown}") in run.err, run.err
    assert await pool.driver.error("Host.get_image_ticket", {"uuid": unknown}) == 482

    # A ticket for a file outside the storage repository is not accepted.
    assert await pool.driver.error("Host.add_image_ticket", {"ticket": {
        "uuid": str(uuid.uuid4()), "size": MiB, "url": "file:///etc/passwd", "timeout": 60,
        "ops": ["read"]}}) == 482

    short = await add_ticket(pool, path, ["read", "write"], timeout=1, size=MiB)
    ctx = ssl.create_default_context(cafile=str(agent_pki.ca))
    ctx.check_hostname = False

    async def expired() -> bool:
        async with aiohttp.ClientSession() as session:
            async with session.options(url(pool, short), ssl=ctx) as response:
                return response.status == 403 and "expired" in await response.text()
    await wait_until(expired, 10, "the ticket to expire")
    run = await ov_image("--ca", str(agent_pki.ca), "upload", str(source), url(pool, short))
    assert run.code == 1 and f"Ticket {short} expired" in run.err, run.err
    # extending it makes it usable again
    await pool.driver.call("Host.extend_image_ticket", {"uuid": short, "timeout": 300})
    run = await ov_image("--ca", str(agent_pki.ca), "--quiet", "upload", str(source),
                         url(pool, short))
    assert run.code == 0 and run.err == "", run.err
    assert Path(path).read_bytes() == source.read_bytes()

    # a server the CA did not sign is not trusted
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(pki.cert_to_pem(pki.CertificateAuthority.create("not the engine").cert))
    run = await ov_image("--ca", str(other_ca), "upload", str(source), url(pool, short))
    assert run.code == 1 and "TLS" in run.err, run.err


async def test_http_api_details(local_pool: LocalPool, agent_pki: AgentPki) -> None:
    """OPTIONS, ranged GET, Content-Range PUT and PATCH zero/flush as imageio's."""
    pool = local_pool
    _img, _vol, path = await prepared_raw_volume(pool, MiB)
    ticket = await add_ticket(pool, path, ["read", "write"], size=MiB)
    ctx = ssl.create_default_context(cafile=str(agent_pki.ca))
    ctx.check_hostname = False
    u = url(pool, ticket)
    async with aiohttp.ClientSession() as s:
        async with s.options(u, ssl=ctx) as r:
            assert r.status == 200 and set(r.headers["Allow"].split(",")) == {
                "OPTIONS", "GET", "PUT", "PATCH"}
            assert set((await r.json())["features"]) == {"zero", "flush"}
        async with s.put(u + "?flush=n", data=b"x" * 4096,
                         headers={"Content-Range": "bytes 8192-12287/*"}, ssl=ctx) as r:
            assert r.status == 200
        async with s.get(u, headers={"Range": "bytes=8190-8193"}, ssl=ctx) as r:
            assert r.status == 206 and await r.read() == b"\0\0xx"
            assert r.headers["Content-Range"] == f"bytes 8190-8193/{MiB}"
        async with s.patch(u, json={"op": "zero", "offset": 8192, "size": 2048,
                                    "flush": True}, ssl=ctx) as r:
            assert r.status == 200
        async with s.get(u, headers={"Range": "bytes=10239-10240"}, ssl=ctx) as r:
            assert await r.read() == b"\0x"
        async with s.patch(u, json={"op": "flush"}, ssl=ctx) as r:
            assert r.status == 200
        async with s.get(u, headers={"Range": f"bytes={MiB - 1}-{MiB}"}, ssl=ctx) as r:
            assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{MiB}"
        async with s.put(u, data=b"y" * 10, headers={"Content-Range": "bytes=0-9"},
                         ssl=ctx) as r:
            assert r.status == 400 and "Content-Range" in await r.text()
        async with s.put(u, data=b"y" * 10,
                         headers={"Content-Range": f"bytes {MiB - 5}-{MiB + 4}/*"},
                         ssl=ctx) as r:
            assert r.status == 416
        async with s.patch(u, json={"op": "zero", "offset": 0}, ssl=ctx) as r:
            assert r.status == 400 and "size" in await r.text()
        async with s.options(u.rsplit("/", 1)[0] + "/*", ssl=ctx) as r:
            assert r.status == 200
    info = await pool.driver.call("Host.get_image_ticket", {"uuid": ticket})
    assert info["transferred"] == 4096 + 4 + 2048 + 2
