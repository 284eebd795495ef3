"""An engine in its own process, for the crash test: it starts on the given
state dir and database, says READY once its host is up, then on "GO" runs a
VM start, which the test makes hang (the agent is stopped) and kills -9."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ovengine.config import HostsConfig
from ovengine.daemon import Engine
from ovengine.domain.commands import SYSTEM
from ovengine.domain.vm_lifecycle import RunVm
from tests.fixtures.engine import engine_config_for_test, wait_until


async def main(state_dir: str, dsn: str, vm_id: str) -> None:
    # Long heart-beats: the stopped agent must look alive until the kill.
    cfg = engine_config_for_test(Path(state_dir), dsn, hosts=HostsConfig(
        heartbeat_ms=60000, grace_period_s=120, call_timeout_s=300))
    engine = Engine(cfg, serve_api=False)
    await engine.start()
    # Up as seen by this engine (the database still says "up" from before).
    await wait_until(lambda: all(h.status == "up" and h.connected and h.connects
                                 for h in engine.s.hosts.hosts.values()), 60, "host up")
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line.strip() == "GO":
        await engine.s.runner.run(RunVm(engine.s, SYSTEM, vm_id))
    await asyncio.Event().wait()  # never returns: the test kills us


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
