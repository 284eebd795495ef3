"""The README's main job, `ovengine demo`, as a user runs it: a subprocess
that prints where to connect; the official SDK finds two hosts up and the
data domain active and makes a disk on it; SIGTERM stops everything it
started; a second run continues with the same state."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

from tests.fixtures.agent import free_port, wait_until
from tests.fixtures.engine_storage import require_storage
from tests.integration.rest.test_sdk import in_thread, sdk_wait

REPO = Path(__file__).resolve().parents[3]
MiB = 1024 * 1024


class Demo:
    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: dict[str, str] = {}

    async def start(self, until: str = "Storage", timeout_s: float = 240) -> None:
        """Run it and read its lines `Key: value` until `until` was printed."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ovengine", "--log-level", "warning", "demo",
            "--state-dir", str(self.state_dir), "--api-port", str(self.port),
            "--hosts", "2", cwd=REPO, stdout=asyncio.subprocess.PIPE,
            stderr=open(self.state_dir.parent / "demo.err", "ab"))
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while until not in self.lines:
            line = await asyncio.wait_for(self.proc.stdout.readline(),
                                          max(0.1, deadline - time.monotonic()))
            if not line:
                raise AssertionError(f"demo exited ({await self.proc.wait()}) after "
                                     f"{self.lines}: see {self.state_dir.parent}/demo.err")
            key, _, value = line.decode().strip().partition(": ")
            self.lines[key] = value

    async def stop(self, timeout_s: float = 60) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout_s)

    def connect(self, password: str) -> sdk.Connection:
        return sdk.Connection(url=self.lines["API"], username=self.lines["User"],
                              password=password, ca_file=self.lines["CA"], timeout=30)


def _left_behind(state_dir: Path) -> list[str]:
    """Processes still running with the state directory on their command line."""
    out = subprocess.run(["pgrep", "-af", str(state_dir)], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


async def test_demo_runs_serves_the_sdk_and_stops_cleanly() -> None:
    require_storage()
    # Not under pytest's 0700 tmp_path: the embedded PostgreSQL runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="ov-test-demo-"))
    os.chmod(base, 0o711)
    state_dir = base / "demo"
    demo = Demo(state_dir, free_port())
    try:
        await demo.start()
        assert demo.lines["API"] == f"https://localhost:{demo.port}/ovirt-engine/api"
        assert demo.lines["User"] == "admin@internal"
        assert Path(demo.lines["CA"]).is_file()
        assert demo.lines["Storage"].startswith("data (posixfs ")
        assert demo.lines["Storage"].endswith(", active)")
        password = demo.lines["Password"]
        conn = demo.connect(password)
        try:
            system = conn.system_service()
            hosts = await in_thread(system.hosts_service().list)
            assert sorted((h.name, h.status) for h in hosts) == [
                ("host0", types.HostStatus.UP), ("host1", types.HostStatus.UP)]
            disks = system.disks_service()
            disk = await in_thread(disks.add, types.Disk(
                name="demo-disk", format=types.DiskFormat.COW, provisioned_size=64 * MiB,
                storage_domains=[types.StorageDomain(name="data")]))
            await sdk_wait(lambda: disks.disk_service(disk.id).get().status
                           == types.DiskStatus.OK, 60, "disk ok")
        finally:
            await in_thread(conn.close)
        assert await demo.stop() == 0
        await wait_until(lambda: not _left_behind(state_dir), 30, "demo processes gone")

        # A second run continues: same password, same hosts, the disk is there.
        again = Demo(state_dir, demo.port)
        demo = again
        await again.start()
        assert again.lines["Password"] == password
        assert again.lines["Storage"].endswith(", active)")
        conn = again.connect(password)
        try:
            system = conn.system_service()
            names = [d.name for d in await in_thread(system.disks_service().list)]
            assert names == ["demo-disk"]
            await sdk_wait(lambda: all(h.status == types.HostStatus.UP
                                       for h in system.hosts_service().list()), 60, "hosts up")
        finally:
            await in_thread(conn.close)
        assert await again.stop() == 0
        await wait_until(lambda: not _left_behind(state_dir), 30, "demo processes gone")
    finally:
        if demo.proc is not None and demo.proc.returncode is None:
            demo.proc.kill()
            await demo.proc.wait()
        for line in _left_behind(state_dir):
            subprocess.run(["kill", "-9", line.split()[0]], check=False)
        # A killed demo leaves its hosts' bind mounts of the data domain.
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                                text=True).stdout.split()
        for target in mounts:
            if target.startswith(str(base)):
                subprocess.run(["umount", "-l", target], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
