"""Image transfers through the engine (/imagetransfers) to a storage host's
real image server: uploads and downloads with the official SDK and with
plain REST + HTTPS, cancel, and the faults for bad requests.

One agent on the libvirt test driver with its own sanlock daemon; its image
server listens on a port the kernel picks, which the engine learns from the
host's capabilities (imageioPort) and puts in transfer_url.
"""

from __future__ import annotations

import os
import ssl
import uuid
from typing import Any

import aiohttp
import ovirtsdk4 as sdk
import ovirtsdk4.types as types

from ovengine.daemon import Engine
from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk, DiskAttach
from ovengine.domain.transfer_commands import TransferAudit
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm
from tests.fixtures.engine import FAST_AGENT_CONFIG, EngineFactory, vm_status, wait_until
from tests.fixtures.engine_storage import (STORAGE_ENGINE, default_ids, disk_status, finished,
                                           posix_data_center, require_storage, storage_hosts,
                                           volume_path)
from tests.fixtures.rest import ApiClient, client_for
from tests.integration.rest.test_sdk import connect, in_thread, sdk_wait

MiB = 1024 * 1024
SIZE = 8 * MiB
# The image server on a port of the kernel's choosing (several agents, and
# other test runs, share this machine).
IMAGEIO_AGENT = {**FAST_AGENT_CONFIG, "imageio": {"port": 0}}


def _tls(engine: Engine) -> ssl.SSLContext:
    # The agent's certificate is signed by the engine's CA.
    return ssl.create_default_context(cafile=str(engine.s.ca.files.ca_cert))


async def _put(session: aiohttp.ClientSession, url: str, data: bytes, offset: int = 0,
               total: int = SIZE) -> int:
    headers = {"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{total}"}
    async with session.put(url, data=data, headers=headers) as r:
        await r.read()
        return r.status


async def _get(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as r:
        assert r.status in (200, 206), await r.text()
        return await r.read()


async def _transfer_row(engine: Engine, tid: str) -> dict[str, Any]:
    row = await engine.s.pool.fetchrow("SELECT * FROM image_transfers WHERE id=$1",
                                       uuid.UUID(tid))
    assert row is not None
    return dict(row)


async def _wait_phase(engine: Engine, tid: str, phase: str, timeout_s: float = 60) -> None:
    async def there() -> bool:
        return (await _transfer_row(engine, tid))["phase"] == phase
    await wait_until(there, timeout_s, f"transfer {tid} {phase}", interval_s=0.1)


async def _rest_transfer(client: ApiClient, disk_id: str, direction: str) -> str:
    r = await client.post("/imagetransfers", f'<image_transfer><disk id="{disk_id}"/>'
                          f"<direction>{direction}</direction>"
                          f"<inactivity_timeout>120</inactivity_timeout></image_transfer>")
    assert r.status == 201, r.text
    assert "<phase>initializing</phase>" in r.text or "<phase>transferring</phase>" in r.text
    tid = r.text.split('id="', 1)[1].split('"', 1)[0]
    return tid


async def test_upload_download_cancel_and_faults(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(serve_api=True, storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 1, agent_config=IMAGEIO_AGENT)
    shared = engines.base / "shared"
    dc, sd = await posix_data_center(engine, hosts, shared)
    disk = await finished(await s.runner.run(AddDisk(s, SYSTEM, sd, SIZE, fmt="raw",
                                                     sparse=True, alias="up1")))
    assert await disk_status(engine, disk) == "ok"
    volume = str(await s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                       uuid.UUID(disk)))
    data = bytearray(os.urandom(SIZE))
    data[MiB:2 * MiB] = bytes(MiB)
    data = bytes(data)

    conn = connect(engine)
    client = await client_for(engine)
    await client.login()
    io = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_tls(engine)))
    try:
        # ---- upload with the SDK, as its upload_disk.py does
        transfers = conn.system_service().image_transfers_service()
        t = await in_thread(transfers.add, types.ImageTransfer(
            disk=types.Disk(id=disk), direction=types.ImageTransferDirection.UPLOAD))
        assert t.phase in (types.ImageTransferPhase.INITIALIZING,
                           types.ImageTransferPhase.TRANSFERRING)
        ts = transfers.image_transfer_service(t.id)
        await sdk_wait(lambda: ts.get().phase == types.ImageTransferPhase.TRANSFERRING, 60,
                       "transferring")
        t = await in_thread(ts.get)
        assert t.transfer_url and t.transfer_url.endswith(
            "/images/" + str((await _transfer_row(engine, t.id))["ticket_id"]))
        assert t.proxy_url == t.transfer_url
        assert t.direction == types.ImageTransferDirection.UPLOAD
        assert t.format == types.DiskFormat.RAW and t.host.id == engines.host_id(engine,
                                                                                  hosts[0])
        assert t.disk.id == disk and t.image.id == volume
        disks = conn.system_service().disks_service()
        assert (await in_thread(disks.disk_service(disk).get)).status == types.DiskStatus.LOCKED
        assert await _put(io, t.transfer_url, data[:5 * MiB]) == 200
        assert await _put(io, t.transfer_url, data[5 * MiB:], 5 * MiB) == 200
        await sdk_wait(lambda: ts.get().transferred == SIZE, 30, "progress seen")
        await in_thread(ts.finalize)
        await sdk_wait(lambda: ts.get().phase == types.ImageTransferPhase.FINISHED_SUCCESS, 60,
                       "upload finished")
        assert (await in_thread(disks.disk_service(disk).get)).status == types.DiskStatus.OK
        assert volume_path(shared, sd, disk, volume).read_bytes() == data
        # the ticket is gone: the URL answers 403
        assert await _put(io, t.transfer_url, b"x" * 512) == 403
        assert (await in_thread(ts.get)).transfer_url is None

        # ---- download with the SDK, bytes compared
        t = await in_thread(transfers.add, types.ImageTransfer(
            disk=types.Disk(id=disk), direction=types.ImageTransferDirection.DOWNLOAD))
        ts = transfers.image_transfer_service(t.id)
        await sdk_wait(lambda: ts.get().phase == types.ImageTransferPhase.TRANSFERRING, 60,
                       "transferring")
        t = await in_thread(ts.get)
        assert await _get(io, t.transfer_url) == data
        assert await _put(io, t.transfer_url, b"x" * 512) == 403  # a read-only ticket
        await in_thread(ts.finalize)
        await sdk_wait(lambda: ts.get().phase == types.ImageTransferPhase.FINISHED_SUCCESS, 60,
                       "download finished")
        assert await disk_status(engine, disk) == "ok"
        listed = await in_thread(transfers.list)
        assert len(listed) == 2

        # ---- plain REST + HTTPS: upload new bytes, download them back
        data2 = os.urandom(SIZE)
        tid = await _rest_transfer(client, disk, "upload")
        await _wait_phase(engine, tid, "transferring")
        r = await client.get(f"/imagetransfers/{tid}")
        url = r.text.split("<transfer_url>", 1)[1].split("<", 1)[0]
        assert await _put(io, url, data2) == 200
        r = await client.post(f"/imagetransfers/{tid}/extend")
        assert r.status == 200 and "<action>" in r.text
        r = await client.post(f"/imagetransfers/{tid}/finalize")
        assert r.status == 200 and "<status>complete</status>" in r.text
        await _wait_phase(engine, tid, "finished_success")
        tid = await _rest_transfer(client, disk, "download")
        await _wait_phase(engine, tid, "transferring")
        url = str((await _transfer_row(engine, tid))["transfer_url"])
        assert await _get(io, url) == data2
        assert (await client.post(f"/imagetransfers/{tid}/finalize")).status == 200
        await _wait_phase(engine, tid, "finished_success")

        # ---- cancel an upload halfway: the disk is illegal, the ticket gone
        tid = await _rest_transfer(client, disk, "upload")
        await _wait_phase(engine, tid, "transferring")
        url = str((await _transfer_row(engine, tid))["transfer_url"])
        assert await _put(io, url, data[:MiB], 0) == 200
        r = await client.post(f"/imagetransfers/{tid}/cancel")
        assert r.status == 200, r.text
        await _wait_phase(engine, tid, "finished_failure")
        assert await disk_status(engine, disk) == "illegal"
        assert await _put(io, url, data[:512], 0) == 403
        r = await client.post(f"/imagetransfers/{tid}/finalize")
        assert r.status == 409 and "finished_failure" in r.text
        # a new upload makes the disk whole again
        t = await in_thread(transfers.add, types.ImageTransfer(
            disk=types.Disk(id=disk), direction=types.ImageTransferDirection.UPLOAD))
        ts = transfers.image_transfer_service(t.id)
        await sdk_wait(lambda: ts.get().phase == types.ImageTransferPhase.TRANSFERRING, 60,
                       "transferring")
        assert await _put(io, (await in_thread(ts.get)).transfer_url, data) == 200
        await in_thread(ts.finalize)
        await sdk_wait(lambda: ts.get().phase == types.ImageTransferPhase.FINISHED_SUCCESS, 60,
                       "re-upload finished")
        assert await disk_status(engine, disk) == "ok"
        assert volume_path(shared, sd, disk, volume).read_bytes() == data

        # ---- a download cancelled through the SDK leaves the disk ok
        t = await in_thread(transfers.add, types.ImageTransfer(
            disk=types.Disk(id=disk), direction=types.ImageTransferDirection.DOWNLOAD))
        ts = transfers.image_transfer_service(t.id)
        await in_thread(ts.cancel)
        await sdk_wait(lambda: ts.get().phase == types.ImageTransferPhase.FINISHED_FAILURE, 60,
                       "download cancelled")
        assert await disk_status(engine, disk) == "ok"

        # ---- faults
        r = await client.post("/imagetransfers", '<image_transfer><disk id="'
                              f'{uuid.uuid4()}"/><direction>upload</direction>'
                              "</image_transfer>")
        assert r.status == 400 and "does not exist" in r.text, r.text
        r = await client.post("/imagetransfers", "<image_transfer><direction>upload"
                              "</direction></image_transfer>")
        assert r.status == 400 and "disk" in r.text
        r = await client.post("/imagetransfers", f'<image_transfer><disk id="{disk}"/>'
                              "<direction>sideways</direction></image_transfer>")
        assert r.status == 400 and "direction" in r.text
        r = await client.post("/imagetransfers", f'<image_transfer><disk id="{disk}"/>'
                              "<direction>upload</direction><format>cow</format>"
                              "</image_transfer>")
        assert r.status == 400 and "format" in r.text and "raw" in r.text, r.text
        r = await client.get(f"/imagetransfers/{uuid.uuid4()}")
        assert r.status == 404
        try:
            await in_thread(transfers.image_transfer_service(str(uuid.uuid4())).get)
            raise AssertionError("a missing transfer was found")
        except sdk.NotFoundError:
            pass
        # a disk in use by a running VM
        _, cluster = await default_ids(engine)
        vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
            name="busy", memory_mib=128)))).value
        vm_disk = await finished(await s.runner.run(AddDisk(
            s, SYSTEM, sd, SIZE, fmt="cow", alias="busy-disk",
            attach=DiskAttach(vm, bootable=True))))
        await finished(await s.runner.run(RunVm(s, SYSTEM, vm)))

        async def vm_up() -> bool:
            return await vm_status(engine, vm) == "up"
        await wait_until(vm_up, 30, "VM up")
        r = await client.post("/imagetransfers", f'<image_transfer><disk id="{vm_disk}"/>'
                              "<direction>download</direction></image_transfer>")
        assert r.status == 409 and "VM busy using it is up" in r.text, r.text

        codes = [r["log_type"] for r in await s.pool.fetch(
            "SELECT log_type FROM audit_log WHERE log_type BETWEEN 9920 AND 9923")]
        assert codes.count(TransferAudit.INITIATED) == 7
        assert codes.count(TransferAudit.SUCCEEDED) == 5
        assert codes.count(TransferAudit.CANCELLED) == 2
        assert await s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0
    finally:
        await io.close()
        await client.session.close()
        await in_thread(conn.close)
