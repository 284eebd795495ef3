"""The host simulator: many hosts in one process, like oVirt's vdsmfake.

Each simulated host is a real `Agent` (the same daemon code, verbs, schema,
events and STOMP/TLS server as ovagent) on a `FakeHypervisor`: its own
listening address and port, its own certificate, and VMs whose counters move
with time. The only thing not real is the hypervisor.

    python -m ovagent.simulator MANIFEST.json

The manifest (JSON) lists the hosts; the engine CA must have signed their
certificates (a benchmark writes it after enrolling the hosts):

    {"ca": "/path/ca.pem", "outage_s": 5.0,
     "sampling": {"vm_interval_s": 15, "host_interval_s": 15},
     "hosts": [{"name": "sim0", "address": "127.1.0.1", "port": 54321,
                "cert": "...pem", "key": "...pem", "cpus": 16, "memory_mib": 65536,
                "vms": [{"id": "<uuid>", "name": "vm0", "memory_mib": 512}]}]}

VMs listed for a host are running when the simulator starts (the agents
recover them, as after an agent restart). Prints "READY <hosts>" when every
host listens. Signals: SIGUSR1 drops every connection and stops listening for
`outage_s` seconds (a reconnect storm for the engine), SIGTERM/SIGINT stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from protocol.flow import configure_logging

from .config import (AgentConfig, HooksConfig, ListenConfig, SamplingConfig, TlsConfig,
                     VmConfig)
from .daemon import Agent
from .virt.domxml import prepare_for_launch
from .virt.fake import FakeHypervisor

__all__ = ["Simulator", "domain_xml", "main"]

log = logging.getLogger(__name__)

DOMAIN_XML = """<domain type='kvm'><name>{name}</name><uuid>{id}</uuid>
<memory unit='MiB'>{memory}</memory><currentMemory unit='MiB'>{memory}</currentMemory>
<vcpu>{vcpus}</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><interface type='bridge'><source bridge='ovirtmgmt'/><mac address='{mac}'/>
<model type='virtio'/></interface>
<disk type='file' device='disk'><source file='/rhev/data-center/sim/{id}'/>
<target dev='vda' bus='virtio'/></disk>
<graphics type='vnc' port='-1' autoport='yes'/></devices></domain>"""


def domain_xml(vm_id: str, name: str, memory_mib: int, vcpus: int = 1) -> str:
    mac = "00:1a:4a:" + ":".join(vm_id.replace("-", "")[i:i + 2] for i in (0, 2, 4))
    xml = DOMAIN_XML.format(id=vm_id, name=name, memory=memory_mib, vcpus=vcpus, mac=mac)
    return prepare_for_launch(xml, vm_id, {"startTime": f"{time.time():.3f}", "params": "{}"})


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Simulator:
    def __init__(self, manifest: dict[str, Any], state_dir: Path) -> None:
        self.manifest = manifest
        self.state_dir = state_dir
        self.agents: list[Agent] = []
        self.outage_s = float(manifest.get("outage_s", 5.0))
        self._outage: asyncio.Task[None] | None = None

    def _config(self, h: dict[str, Any]) -> AgentConfig:
        sampling = self.manifest.get("sampling", {})
        return AgentConfig(
            listen=ListenConfig(h["address"], int(h["port"])),
            tls=TlsConfig(Path(h["cert"]), Path(h["key"]), Path(self.manifest["ca"])),
            sampling=SamplingConfig(float(sampling.get("vm_interval_s", 15.0)),
                                    float(sampling.get("host_interval_s", 15.0))),
            vm=VmConfig(powering_up_s=float(self.manifest.get("powering_up_s", 2.0))),
            hooks=HooksConfig(dir=self.state_dir / "no-hooks"),
            state_dir=self.state_dir / h["name"])

    async def _start_one(self, h: dict[str, Any]) -> Agent:
        fake = FakeHypervisor(cpus=int(h.get("cpus", 16)),
                              memory_mib=int(h.get("memory_mib", 65536)), hostname=h["name"])
        # The VMs already run when the agent starts: it recovers them.
        await fake.connect(lambda _event: None)
        for vm in h.get("vms", []):
            await fake.create(domain_xml(vm["id"], vm["name"], int(vm.get("memory_mib", 512)),
                                         int(vm.get("vcpus", 1))))
        agent = Agent(self._config(h), hypervisor=fake)
        await agent.start()
        return agent

    async def start(self, batch: int = 50) -> None:
        hosts = self.manifest["hosts"]
        for i in range(0, len(hosts), batch):
            self.agents += await asyncio.gather(*(self._start_one(h)
                                                  for h in hosts[i:i + batch]))

    def outage(self) -> None:
        if self._outage is None or self._outage.done():
            self._outage = asyncio.get_running_loop().create_task(self._drop_and_return())

    async def _drop_and_return(self) -> None:
        print(f"OUTAGE {time.time():.3f}", flush=True)
        await asyncio.gather(*(a.server.close() for a in self.agents))
        await asyncio.sleep(self.outage_s)
        await asyncio.gather(*(a.server.start(a.config.listen.host, a.config.listen.port)
                               for a in self.agents))
        print(f"BACK {time.time():.3f}", flush=True)

    async def stop(self) -> None:
        if self._outage is not None:
            self._outage.cancel()
        await asyncio.gather(*(a.stop() for a in self.agents), return_exceptions=True)


async def run(manifest_path: Path) -> None:
    manifest = json.loads(manifest_path.read_text())
    sim = Simulator(manifest, manifest_path.parent / "sim-state")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, sim.outage)
    try:
        await sim.start()
        print(f"READY {len(sim.agents)}", flush=True)
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m ovagent.simulator MANIFEST.json", file=sys.stderr)
        return 2
    configure_logging("WARNING")
    raise_fd_limit()
    uvloop.run(run(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
