"""A host whose first initialization fails while its link stays up (the
agent answers getCapabilities with an error, as when libvirt hiccups or a
call times out under load) must still come up: the engine retries instead of
leaving it "initializing" forever.

The agent runs in process on the fake hypervisor so that the failure can be
injected at the hypervisor boundary; everything between (TLS, STOMP,
JSON-RPC, the engine's host manager, PostgreSQL) is real.
"""

from __future__ import annotations

from ovagent.config import AgentConfig, HooksConfig, ImageioConfig, ListenConfig, TlsConfig
from ovagent.daemon import Agent
from ovagent.virt.fake import FakeHypervisor
from ovagent.virt.hypervisor import HypervisorError
from ovengine.domain.commands import SYSTEM
from ovengine.domain.host_commands import AddHost
from ovengine.localhosts import LocalAgent, free_port
from tests.fixtures.engine import EngineFactory, wait_until


async def test_host_comes_up_after_failed_initialization(engines: EngineFactory) -> None:
    engine = await engines.start()
    s = engine.s
    cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    # LocalAgent only for its key, CSR and certificate files; the agent runs here.
    files = LocalAgent(engines.base / "flaky", "flaky")
    fake = FakeHypervisor(hostname="flaky")
    fake.inject("node_info", HypervisorError("libvirt: internal error (injected)"), times=2)
    port = free_port()
    result = await s.runner.run(AddHost(s, SYSTEM, "flaky", "127.0.0.1", cluster,
                                        files.certificate_request(), port=port))
    files.install_certificate(result.value.certificate_pem, result.value.ca_pem)
    agent = Agent(AgentConfig(
        listen=ListenConfig("127.0.0.1", port),
        tls=TlsConfig(files.cert_file, files.key_file, files.ca_file),
        hooks=HooksConfig(dir=engines.base / "no-hooks"),
        imageio=ImageioConfig(enabled=False),
        state_dir=engines.base / "flaky" / "state"), hypervisor=fake)
    await agent.start()
    try:
        host = next(h for h in s.hosts.hosts.values() if h.name == "flaky")
        await wait_until(lambda: host.status == "up", 30,
                         "host up after two failed getCapabilities")
        # Both injected failures were answered and retried on the same link.
        assert fake.calls["node_info"] >= 3
        assert host.connects == 1
        caps = await s.pool.fetchval("SELECT cpu_threads FROM host_dynamic WHERE host_id = "
                                     "(SELECT id FROM hosts WHERE name = 'flaky')")
        assert caps == fake.cpus
    finally:
        await agent.stop()
