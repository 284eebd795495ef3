"""A lab: an engine with its embedded PostgreSQL and N hosts, each an agent in
its own network namespace with its own address, certificate and libvirt (the
test driver with its own node definition by default, libvirtd + QEMU with
qemu=True). Failure tools for tests: cut a host's link, kill -9 its agent,
pause its agent (SIGSTOP: a hung host).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import EngineConfig
from ..daemon import Engine
from ..domain.commands import SYSTEM
from ..domain.host_commands import AddHost
from ..localhosts import LocalAgent, ensure_libvirtd
from .netns import LabNetwork

__all__ = ["Lab"]

log = logging.getLogger(__name__)


@dataclass
class Lab:
    state_dir: Path
    config: EngineConfig
    qemu: bool = False
    serve_api: bool = True
    agent_config: dict[str, Any] | None = None
    # Hosts with storage: a repository and a sanlock daemon each (LocalAgent).
    storage: bool = False
    sanlock_io_timeout_s: int = 10
    storage_config: dict[str, Any] | None = None
    engine: Engine | None = None
    network: LabNetwork = field(default_factory=LabNetwork)
    agents: list[LocalAgent] = field(default_factory=list)

    async def up(self, hosts: int, wait_s: float = 90.0) -> None:
        await LabNetwork.teardown_all()  # leftovers of a crashed lab
        if self.qemu:
            await asyncio.to_thread(ensure_libvirtd)
        await self.network.create_bridge()
        self.engine = Engine(replace(self.config, state_dir=self.state_dir / "engine"),
                             serve_api=self.serve_api)
        await self.engine.start()
        s = self.engine.s
        cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
        for i in range(hosts):
            net = await self.network.add_host(i)
            # Hosts differ a little, like a real rack would.
            agent = LocalAgent(self.state_dir / "hosts" / f"lab{i}", f"lab{i}",
                               address=net.address, port=54321, netns=net.netns,
                               libvirt_uri="qemu:///system" if self.qemu else "",
                               cpus=8 + 4 * (i % 3), memory_mib=16384 * (1 + i % 2),
                               agent_config=self.agent_config, storage=self.storage,
                               sanlock_io_timeout_s=self.sanlock_io_timeout_s,
                               storage_config=self.storage_config)
            if not await s.pool.fetchval("SELECT 1 FROM hosts WHERE name=$1", agent.name):
                result = await s.runner.run(AddHost(s, SYSTEM, agent.name, agent.address,
                                                    cluster, agent.certificate_request(),
                                                    port=agent.port))
                agent.install_certificate(result.value.certificate_pem, result.value.ca_pem)
            await agent.start()
            self.agents.append(agent)
        await self.wait_all_up(wait_s)

    async def wait_all_up(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if all(self.status(i) == "up" for i in range(len(self.agents))):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"lab hosts not up after {timeout_s} s: "
                           f"{[self.status(i) for i in range(len(self.agents))]}")

    def host_id(self, index: int) -> str:
        assert self.engine is not None
        name = self.agents[index].name
        return next(h.id for h in self.engine.s.hosts.hosts.values() if h.name == name)

    def status(self, index: int) -> str:
        assert self.engine is not None
        return self.engine.s.hosts.hosts[self.host_id(index)].status

    # ------------------------------------------------------- failure tools
    async def link_down(self, index: int) -> None:
        await self.network.link(index, up=False)

    async def link_up(self, index: int) -> None:
        await self.network.link(index, up=True)

    async def kill_agent(self, index: int) -> None:
        await self.agents[index].kill()

    async def kill_host(self, index: int) -> None:
        """kill -9 of the agent and its sanlock daemon (storage hosts): power loss."""
        await self.agents[index].kill_host()

    async def restart_agent(self, index: int) -> None:
        await self.agents[index].start()

    def pause_agent(self, index: int) -> None:
        self.agents[index].signal(signal.SIGSTOP)

    def resume_agent(self, index: int) -> None:
        self.agents[index].signal(signal.SIGCONT)

    async def down(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
            self.engine = None
        for agent in self.agents:
            await agent.stop()
            await agent.stop_storage()
        self.agents.clear()
        await LabNetwork.teardown_all()
