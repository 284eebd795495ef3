"""An engine in its own process for the storage crash test: it starts on the
given state dir and database, says READY once its hosts are up and its data
center has an SPM, then on "GO" adds a disk and, as soon as the command is
in its asynchronous phase (the Volume.create task started and recorded, the
disk locked), kills itself with SIGKILL: an engine crash at that point."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from ovengine.config import HostsConfig
from ovengine.daemon import Engine
from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk
from tests.fixtures.engine import engine_config_for_test, wait_until
from tests.fixtures.engine_storage import STORAGE_ENGINE


async def main(state_dir: str, dsn: str, dc_id: str, sd_id: str, disk_id: str) -> None:
    cfg = engine_config_for_test(Path(state_dir), dsn, storage=STORAGE_ENGINE,
                                 hosts=HostsConfig(heartbeat_ms=2000, grace_period_s=30,
                                                   connect_timeout_s=5.0))
    engine = Engine(cfg, serve_api=False)
    await engine.start()
    s = engine.s
    await wait_until(lambda: all(h.status == "up" and h.connected and h.connects
                                 for h in s.hosts.hosts.values()), 60, "hosts up")
    await wait_until(lambda: s.storage.spm.spm_of(dc_id) is not None, 120, "an SPM")
    print("READY", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() == "GO":
        result = await s.runner.run(AddDisk(s, SYSTEM, sd_id, 2 * 1024 ** 3, "cow", True,
                                            alias="crash-disk", disk_id=disk_id))
        assert result.pending is not None and not result.pending.done()
        os.kill(os.getpid(), signal.SIGKILL)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
