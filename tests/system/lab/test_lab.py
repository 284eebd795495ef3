"""A 3-host lab in network namespaces: VMs run on it; one host's link goes down
and the engine marks it non_responsive; the link returns and the host is up
again, its VMs reconciled."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import AsyncIterator

import pytest
import pytest_asyncio

from ovengine.domain.commands import SYSTEM
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm
from ovengine.lab.lab import Lab
from ovengine.lab.netns import LabNetwork
from tests.fixtures.engine import (FAST_AGENT_CONFIG, engine_config_for_test, private_tmpdir,
                                   vm_status, wait_until)

pytestmark = [pytest.mark.system, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 for network namespaces")]


@pytest_asyncio.fixture
async def lab(engine_dsn: str) -> AsyncIterator[Lab]:
    base = private_tmpdir("ov-test-lab-")
    lab = Lab(base, engine_config_for_test(base / "engine", engine_dsn), serve_api=False,
              agent_config=FAST_AGENT_CONFIG)
    try:
        yield lab
    finally:
        await lab.down()
        shutil.rmtree(base, ignore_errors=True)


async def test_three_host_lab_link_down_and_back(lab: Lab) -> None:
    await lab.up(3)
    engine = lab.engine
    assert engine is not None
    s = engine.s
    addresses = sorted(h.address for h in s.hosts.hosts.values())
    assert addresses == ["10.77.0.10", "10.77.0.11", "10.77.0.12"]
    # Each host reports its own node definition.
    mem = sorted(r["mem_size_mib"] for r in await s.pool.fetch(
        "SELECT mem_size_mib FROM host_dynamic"))
    assert mem == [16384, 16384, 32768]

    cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    vms = {}
    for i in range(3):
        vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
            name=f"lab-vm{i}", memory_mib=256)))).value
        await s.runner.run(RunVm(s, SYSTEM, vm, host_id=lab.host_id(i)))
        vms[i] = vm

    async def all_up() -> bool:
        return all([await vm_status(engine, vm) == "up" for vm in vms.values()])
    await wait_until(all_up, 30, "lab VMs up")

    victim = 1
    await lab.link_down(victim)
    await wait_until(lambda: lab.status(victim) == "non_responsive",
                     engine.config.hosts.grace_period_s + 15, "non_responsive")
    assert await vm_status(engine, vms[victim]) == "unknown"
    assert lab.status(0) == "up" and lab.status(2) == "up"

    await lab.link_up(victim)
    await wait_until(lambda: lab.status(victim) == "up", 30, "host back up")
    # The agent never died, so its VM is still running and is reported up again.
    await wait_until(lambda: _is_up(engine, vms[victim]), 20, "VM reconciled to up")
    codes = [r["log_type"] for r in await s.pool.fetch(
        "SELECT log_type FROM audit_log WHERE host_id=$1 ORDER BY id",
        uuid.UUID(lab.host_id(victim)))]
    assert 12 in codes  # VDS_FAILURE: non responsive


async def _is_up(engine, vm: str) -> bool:  # type: ignore[no-untyped-def]
    return await vm_status(engine, vm) == "up"


async def test_lab_down_removes_everything(lab: Lab) -> None:
    await lab.up(2)
    await lab.down()
    from ovengine.lab.netns import ip
    assert "ovlab" not in await ip("netns", "list")
    assert "ovlab" not in await ip("-o", "link", "show")
    assert await LabNetwork.teardown_all() == []


@pytest.mark.skipif(shutil.which("libvirtd") is None, reason="needs libvirtd + QEMU")
async def test_qemu_lab_hosts_share_libvirtd_but_not_vms(engine_dsn: str) -> None:
    """Two lab hosts on one libvirtd: each runs and reports only its own VM."""
    import subprocess

    base = private_tmpdir("ov-test-qlab-")
    lab = Lab(base, engine_config_for_test(base / "engine", engine_dsn), qemu=True,
              serve_api=False, agent_config=FAST_AGENT_CONFIG)
    prefix = f"ovqlab-{uuid.uuid4().hex[:6]}-"
    try:
        await lab.up(2)
        engine = lab.engine
        assert engine is not None
        s = engine.s
        cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
        vms = []
        for i in range(2):
            vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
                name=f"{prefix}{i}", memory_mib=64, memory_guaranteed_mib=64)))).value
            await s.runner.run(RunVm(s, SYSTEM, vm, host_id=lab.host_id(i)))
            vms.append(vm)

        async def both_up() -> bool:
            return all([await vm_status(engine, vm) == "up" for vm in vms])
        try:
            await wait_until(both_up, 60, "QEMU VMs up")
        except AssertionError as exc:  # say what the engine saw instead
            statuses = [await vm_status(engine, vm) for vm in vms]
            events = await s.pool.fetch("SELECT log_type, message FROM audit_log "
                                        "ORDER BY id DESC LIMIT 15")
            logs = {str(p.relative_to(base)): p.read_text()[-2000:]
                    for p in base.rglob("agent.log")}
            raise AssertionError(f"{exc}: statuses {statuses}; latest events "
                                 f"{[(e['log_type'], e['message']) for e in events]}; "
                                 f"agent logs {logs}") from None
        # Each host reports exactly its own VM (no external duplicates).
        counts = await s.pool.fetch("SELECT run_on_host_id, count(*) FROM vm_dynamic "
                                    "WHERE status='up' GROUP BY run_on_host_id")
        assert sorted(r["count"] for r in counts) == [1, 1]
        # (Domains other programs run on this libvirtd are external VMs, as
        # vdsm reports them; only ours must not be.)
        assert await s.pool.fetchval(
            "SELECT count(*) FROM vm_static WHERE origin='external' AND name LIKE $1",
            f"%{prefix}%") == 0
    finally:
        await lab.down()
        out = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--name"],
                             capture_output=True, text=True).stdout
        for name in out.split():
            if name.startswith(prefix):
                subprocess.run(["virsh", "-c", "qemu:///system", "destroy", name],
                               capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
