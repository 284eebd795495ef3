"""Engine core against real PostgreSQL and two real agents (libvirt test driver):
hosts come up, VMs run and stop, a killed agent's host goes non_responsive and
comes back."""

from __future__ import annotations

import time
import uuid

from ovengine.domain.commands import SYSTEM
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm, ShutdownVm, StopVm
from tests.fixtures.engine import EngineFactory, vm_status, wait_until


async def _cluster(engine) -> str:  # type: ignore[no-untyped-def]
    return str(await engine.s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))


async def test_hosts_come_up_and_vm_lifecycle(engines: EngineFactory) -> None:
    engine = await engines.start()
    s = engine.s
    agents = await engines.add_hosts(engine, 2)
    statuses = await s.pool.fetch("SELECT d.status FROM hosts h JOIN host_dynamic d "
                                  "ON d.host_id = h.id")
    assert sorted(r["status"] for r in statuses) == ["up", "up"]
    caps = await s.pool.fetchrow("SELECT cpu_cores, cpu_threads, mem_size_mib FROM host_dynamic "
                                 "LIMIT 1")
    # The test driver's node definition: 8 logical CPUs on 2 sockets, 32 GiB.
    assert (caps["cpu_cores"], caps["cpu_threads"], caps["mem_size_mib"]) == (4, 8, 32768)

    cluster = await _cluster(engine)
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="vm1", memory_mib=256)))).value
    assert await vm_status(engine, vm) == "down"
    host_id = (await s.runner.run(RunVm(s, SYSTEM, vm))).value
    assert host_id in {engines.host_id(engine, a) for a in agents}
    await wait_until(lambda: vm_status(engine, vm), 1)  # row exists
    await wait_until(lambda: _is(engine, vm, "up"), 20, "VM up")
    row = await s.pool.fetchrow("SELECT run_on_host_id, start_time FROM vm_dynamic "
                                "WHERE vm_id=$1", uuid.UUID(vm))
    assert str(row["run_on_host_id"]) == host_id and row["start_time"] is not None

    await s.runner.run(ShutdownVm(s, SYSTEM, vm))
    await wait_until(lambda: _is(engine, vm, "down"), 20, "VM down after shutdown")
    down = await s.pool.fetchrow("SELECT run_on_host_id, exit_status, exit_message, exit_reason "
                                 "FROM vm_dynamic WHERE vm_id=$1", uuid.UUID(vm))
    assert down["run_on_host_id"] is None
    assert (down["exit_status"], down["exit_reason"]) == (0, 6)
    codes = [r["log_type"] for r in await s.pool.fetch(
        "SELECT log_type FROM audit_log WHERE vm_id=$1 ORDER BY id", uuid.UUID(vm))]
    assert codes[:2] == [34, 153] and 32 in codes and 61 in codes and 73 in codes
    # Nothing stays locked once the commands ended.
    assert await s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0

    # Power off (stop) is immediate.
    await s.runner.run(RunVm(s, SYSTEM, vm))
    await wait_until(lambda: _is(engine, vm, "up"), 20, "VM up again")
    await s.runner.run(StopVm(s, SYSTEM, vm))
    assert await vm_status(engine, vm) == "down"


async def _is(engine, vm: str, status: str) -> bool:  # type: ignore[no-untyped-def]
    return await vm_status(engine, vm) == status


async def test_killed_agent_goes_non_responsive_and_comes_back(engines: EngineFactory) -> None:
    engine = await engines.start()
    s = engine.s
    agent, other = await engines.add_hosts(engine, 2)
    host = engines.host_id(engine, agent)
    cluster = await _cluster(engine)
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name="vm-on-victim", memory_mib=128)))).value
    await s.runner.run(RunVm(s, SYSTEM, vm, host_id=host))
    await wait_until(lambda: _is(engine, vm, "up"), 20, "VM up")

    grace = engine.config.hosts.grace_period_s
    started = time.monotonic()
    await agent.kill()
    await wait_until(lambda: s.hosts.hosts[host].status == "connecting", 10, "connecting")
    await wait_until(lambda: s.hosts.hosts[host].status == "non_responsive",
                     grace + 10, "non_responsive")
    elapsed = time.monotonic() - started
    # Not before the grace period ends, and not long after it.
    assert grace * 0.9 <= elapsed <= grace + 8, elapsed
    assert await vm_status(engine, vm) == "unknown"
    assert s.hosts.hosts[engines.host_id(engine, other)].status == "up"

    await agent.start()
    await wait_until(lambda: s.hosts.hosts[host].status == "up", 30, "host up again")
    # The VM is still known; the test driver's VMs died with the agent, so the
    # first full report of the host makes it down (not unknown any more).
    await wait_until(lambda: _is(engine, vm, "down"), 20, "VM reconciled")
    msg = await s.pool.fetchval("SELECT exit_message FROM vm_dynamic WHERE vm_id=$1",
                                uuid.UUID(vm))
    assert "not running" in msg
    codes = [r["log_type"] for r in await s.pool.fetch(
        "SELECT log_type FROM audit_log WHERE host_id=$1 ORDER BY id", uuid.UUID(host))]
    assert 12 in codes and codes.count(13) >= 2  # non responsive, then up twice
