"""`ovengine demo`: the engine with its embedded PostgreSQL and local hosts.

Everything lives under one state directory, so a second run continues where
the first stopped (same database, same enrolled hosts, same admin password).
Hosts are ovagent processes on this machine: the libvirt test driver by
default (each with its own simulated node), real libvirtd + QEMU with --qemu.
Ctrl-C or SIGTERM stops the agents, the engine and the database; VMs on QEMU
keep running under libvirtd and are recovered by the next run.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import replace
from pathlib import Path

from .config import ApiConfig, EngineConfig
from .daemon import Engine
from .domain.commands import SYSTEM
from .domain.host_commands import AddHost
from .localhosts import LocalAgent, ensure_libvirtd

__all__ = ["run_demo", "local_server_names"]

log = logging.getLogger(__name__)


def local_server_names() -> tuple[str, ...]:
    """Names and addresses clients may use to reach this machine."""
    names = ["localhost", "127.0.0.1", socket.gethostname()]
    try:
        names.append(socket.getfqdn())
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            names.append(str(info[4][0]))
    except OSError:
        pass
    return tuple(dict.fromkeys(n for n in names if n))


async def _enroll(engine: Engine, agent: LocalAgent) -> None:
    s = engine.s
    if await s.pool.fetchval("SELECT 1 FROM hosts WHERE name=$1", agent.name):
        return  # enrolled by an earlier run
    cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    result = await s.runner.run(AddHost(s, SYSTEM, agent.name, agent.address, cluster,
                                        agent.certificate_request(), port=agent.port))
    agent.install_certificate(result.value.certificate_pem, result.value.ca_pem)


async def run_demo(state_dir: Path, api_port: int, hosts: int, qemu: bool,
                   base_config: EngineConfig | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    base = base_config or EngineConfig()
    config = replace(base, state_dir=state_dir / "engine",
                     api=replace(base.api, port=api_port, server_names=local_server_names()))
    if qemu:
        await asyncio.to_thread(ensure_libvirtd)
    engine = Engine(config)
    agents: list[LocalAgent] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await engine.start()
        for i in range(hosts):
            agent = LocalAgent(state_dir / "hosts" / f"host{i}", f"host{i}",
                               libvirt_uri="qemu:///system" if qemu else "",
                               cpus=8, memory_mib=16384)
            await _enroll(engine, agent)
            await agent.start()
            agents.append(agent)
        names = {a.name for a in agents}
        deadline = loop.time() + 60
        while loop.time() < deadline and not stop.is_set():
            if all(h.status == "up" for h in engine.s.hosts.hosts.values() if h.name in names):
                break
            await asyncio.sleep(0.2)
        else:
            if not stop.is_set():
                log.warning("not every host is up yet; see %s/hosts/*/agent.log", state_dir)
        print(f"API: {engine.api_url}")
        print("User: admin@internal")
        print(f"Password: {engine.admin_password or '(see ' + str(state_dir) + '/engine/admin-password)'}")
        print(f"CA: {engine.s.ca.files.ca_cert}", flush=True)
        await stop.wait()
    finally:
        # Engine first: hosts keep their last status instead of "connecting".
        await engine.stop()
        for agent in agents:
            await agent.stop()
