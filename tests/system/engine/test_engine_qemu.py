"""The engine driving a real QEMU VM (TCG or KVM, whatever this machine has)
through a real agent on libvirtd: run -> up, shutdown (the diskless guest
ignores ACPI, so the agent powers it off after the timeout) -> down."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from typing import Iterator

import pytest

from ovengine.domain.commands import SYSTEM
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm, ShutdownVm
from ovengine.localhosts import ensure_libvirtd
from tests.fixtures.engine import EngineFactory, vm_status, wait_until

pytestmark = [pytest.mark.system, pytest.mark.skipif(
    shutil.which("libvirtd") is None or shutil.which("qemu-system-x86_64") is None,
    reason="needs libvirtd and qemu-system-x86 (libvirt-daemon-system, qemu-system-x86)")]

PREFIX = f"ovsys-{uuid.uuid4().hex[:6]}-"


def _virsh(*args: str) -> str:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True,
                          text=True, timeout=60).stdout


@pytest.fixture
def libvirtd() -> Iterator[None]:
    ensure_libvirtd()
    yield
    for name in _virsh("list", "--name").split():
        if name.startswith(PREFIX):
            _virsh("destroy", name)


async def test_engine_runs_and_stops_a_qemu_vm(libvirtd: None, engines: EngineFactory) -> None:
    engine = await engines.start()
    s = engine.s
    await engines.add_hosts(engine, 1, libvirt_uri="qemu:///system")
    cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    name = f"{PREFIX}vm"
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name=name, memory_mib=64, memory_guaranteed_mib=64)))).value
    await s.runner.run(RunVm(s, SYSTEM, vm))

    async def is_status(want: str) -> bool:
        return await vm_status(engine, vm) == want
    await wait_until(lambda: is_status("up"), 60, "QEMU VM up")
    assert _virsh("domstate", name).strip() == "running"
    row = await s.pool.fetchrow("SELECT display_port, display_type FROM vm_dynamic "
                                "WHERE vm_id=$1", uuid.UUID(vm))
    assert row["display_type"] == "vnc" and row["display_port"] >= 5900

    # VM statistics arrive from the agent's bulk sampling.
    async def has_stats() -> bool:
        return bool(await s.pool.fetchval(
            "SELECT elapsed_s > 0 FROM vm_statistics WHERE vm_id=$1", uuid.UUID(vm)))
    await wait_until(has_stats, 30, "VM statistics")

    await s.runner.run(ShutdownVm(s, SYSTEM, vm))
    assert await vm_status(engine, vm) == "powering_down"
    await wait_until(lambda: is_status("down"), 60, "QEMU VM down after forced shutdown")
    assert name not in _virsh("list", "--name").split()
    reason = await s.pool.fetchval("SELECT exit_reason FROM vm_dynamic WHERE vm_id=$1",
                                   uuid.UUID(vm))
    assert reason == 6  # admin shut down from the engine
