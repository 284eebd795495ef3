"""`ovengine lab up|down`: the lab from the command line."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

from ..config import EngineConfig
from ..demo import local_server_names
from .lab import Lab
from .netns import LabNetwork

__all__ = ["lab_up", "lab_down"]


async def lab_up(state_dir: Path, api_port: int, hosts: int, qemu: bool,
                 base: EngineConfig) -> None:
    config = replace(base, api=replace(base.api, port=api_port,
                                       server_names=local_server_names()))
    lab = Lab(state_dir, config, qemu=qemu)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await lab.up(hosts)
        engine = lab.engine
        assert engine is not None
        print(f"API: {engine.api_url}")
        print("User: admin@internal")
        print(f"Password: {engine.admin_password}")
        print(f"CA: {engine.s.ca.files.ca_cert}")
        for i, agent in enumerate(lab.agents):
            print(f"Host {agent.name}: {agent.address}:{agent.port} (netns {agent.netns}, "
                  f"pid {agent.pid})")
        print("Failure tools: ip link set ovlab<N>r down|up; kill -9 / kill -STOP <pid>",
              flush=True)
        await stop.wait()
    finally:
        await lab.down()


async def lab_down() -> None:
    removed = await LabNetwork.teardown_all()
    print("\n".join(removed) if removed else "nothing to remove")
