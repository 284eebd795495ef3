"""kill -9 of the engine in the middle of a VM start: after a restart nothing
stays locked, the interrupted command is closed, and the VM ends in its true
state (what the host reports)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

from ovengine.domain.commands import SYSTEM
from ovengine.domain.vm_commands import AddVm, VmConfig
from protocol import tls
from protocol.rpc import RpcClient
from tests.fixtures.engine import EngineFactory, vm_status, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


async def _agent_truth(engine, agent, vm_id: str) -> str:  # type: ignore[no-untyped-def]
    """What the agent itself says about the VM ("down" when it does not know it)."""
    files = engine.s.ca.files
    client = RpcClient(agent.address, agent.port,
                       tls.client_context(files.engine_cert, files.engine_key, files.ca_cert),
                       subscribe_events=False, call_timeout_s=10)
    await client.connect()
    try:
        stats = await client.call("Host.getAllVmStats")
    finally:
        await client.close()
    for s in stats:
        if s["vmId"] == vm_id:
            return {"Up": "up", "Powering up": "powering_up", "Down": "down"}.get(
                s["status"], s["status"])
    return "down"


async def test_engine_killed_during_vm_start(engines: EngineFactory) -> None:
    engine = await engines.start()
    s = engine.s
    (agent,) = await engines.add_hosts(engine, 1)
    cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="crash-vm", memory_mib=128)))).value
    state_dir, dsn = str(engine.config.state_dir), engines.dsn
    await engine.stop()
    engines.engines.remove(engine)

    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.engine.crash_child", state_dir, dsn, vm,
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdin is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.strip() == b"READY", line
        agent.signal(signal.SIGSTOP)  # VM.create will wait for an answer that never comes
        child.stdin.write(b"GO\n")
        await child.stdin.drain()

        # Kill the engine once the start is half-done: VM locked, command active.
        probe = await engines.start_probe_pool()
        async def half_done() -> bool:
            locked = await probe.fetchval("SELECT count(*) FROM entity_locks WHERE entity_id=$1",
                                          uuid.UUID(vm))
            active = await probe.fetchval("SELECT count(*) FROM command_entities "
                                          "WHERE command_type='RunVm' AND status='active'")
            status = await probe.fetchval("SELECT status FROM vm_dynamic WHERE vm_id=$1",
                                          uuid.UUID(vm))
            return bool(locked and active and status == "wait_for_launch")
        await wait_until(half_done, 30, "RunVm in flight")
        child.kill()
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        agent.signal(signal.SIGCONT)

    engine = await engines.start()  # same state dir and database: a restart
    s = engine.s
    assert await s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0
    assert await s.pool.fetchval(
        "SELECT count(*) FROM command_entities WHERE status='active'") == 0
    assert await s.pool.fetchval("SELECT count(*) FROM jobs WHERE status='started'") == 0
    assert await s.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE log_type=2024 AND message LIKE 'RunVm%'") == 1
    await wait_until(lambda: all(h.status == "up" and h.connects
                                 for h in s.hosts.hosts.values()), 30, "host up after restart")

    # The VM ends where the host says it is, not stuck in wait_for_launch.
    async def settled() -> bool:
        truth = await _agent_truth(engine, agent, vm)
        ours = await vm_status(engine, vm)
        return ours == truth and ours in ("up", "down")
    await wait_until(settled, 30, "VM state matching the host")
