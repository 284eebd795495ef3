"""`ovengine demo`: the engine with its embedded PostgreSQL and local hosts.

Everything lives under one state directory, so a second run continues where
the first stopped (same database, same enrolled hosts, same admin password).
Hosts are ovagent processes on this machine: the libvirt test driver by
default (each with its own simulated node), real libvirtd + QEMU with --qemu.
Ctrl-C or SIGTERM stops the agents, the engine and the database; VMs on QEMU
keep running under libvirtd and are recovered by the next run.

With storage (the default when sanlock is installed) each host has its own
sanlock daemon, and the first run creates a POSIX data domain "data" on a
directory under the state directory, shared by every host (bind-mounted, as
an NFS export would be mounted), attached to the Default data center: disks,
snapshots, templates and image transfers work at once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
from dataclasses import replace
from pathlib import Path

from .config import ApiConfig, EngineConfig
from .daemon import Engine
from .domain.commands import SYSTEM
from .domain.host_commands import AddHost
from .domain.storage_commands import AddStorageDomain, AttachStorageDomain, StorageSpec
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


DATA_DOMAIN = "data"


async def _data_domain(engine: Engine, directory: Path, host_name: str) -> str:
    """The demo's data domain, made and attached at the first run; its status."""
    s = engine.s
    if not await s.pool.fetchval("SELECT 1 FROM storage_domains WHERE name=$1", DATA_DOMAIN):
        directory.mkdir(parents=True, exist_ok=True)
        host = next(h.id for h in s.hosts.hosts.values() if h.name == host_name)
        dc = str(await s.pool.fetchval("SELECT id FROM data_centers WHERE name='Default'"))
        sd = (await s.runner.run(AddStorageDomain(
            s, SYSTEM, DATA_DOMAIN, host,
            StorageSpec("posixfs", str(directory), vfs_type="none")))).value
        attached = await s.runner.run(AttachStorageDomain(s, SYSTEM, str(sd), dc))
        if attached.pending is not None:
            await asyncio.wait_for(asyncio.shield(attached.pending), 300)
    status = await s.pool.fetchval(
        "SELECT m.status FROM storage_domains d JOIN storage_pool_iso_map m "
        "ON m.storage_domain_id = d.id WHERE d.name=$1", DATA_DOMAIN)
    return str(status or "unattached")


async def run_demo(state_dir: Path, api_port: int, hosts: int, qemu: bool,
                   base_config: EngineConfig | None = None, storage: bool = True) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    base = base_config or EngineConfig()
    config = replace(base, state_dir=state_dir / "engine",
                     api=replace(base.api, port=api_port, server_names=local_server_names()))
    if qemu:
        await asyncio.to_thread(ensure_libvirtd)
    if storage and shutil.which("sanlock") is None:
        log.warning("sanlock is not installed: the demo runs without storage")
        storage = False
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
                               cpus=8, memory_mib=16384, storage=storage)
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
        if storage and agents and not stop.is_set():
            directory = state_dir / "storage" / DATA_DOMAIN
            try:
                status = await _data_domain(engine, directory, agents[0].name)
                print(f"Storage: {DATA_DOMAIN} (posixfs {directory}, {status})", flush=True)
            except Exception as exc:  # the demo still serves the API without storage
                log.error("the demo's data domain could not be set up: %s", exc)
        await stop.wait()
    finally:
        # Engine first: hosts keep their last status instead of "connecting".
        await engine.stop()
        for agent in agents:
            await agent.stop()
            await agent.stop_storage()
