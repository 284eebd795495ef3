"""libvirtd restarts under a running agent: the agent reconnects, registers its
event callbacks again and keeps reporting; the running VM is untouched."""

from __future__ import annotations

import subprocess
import time

import pytest

from ovengine.localhosts import ensure_libvirtd
from tests.fixtures.agent import StartAgent, wait_until

pytestmark = pytest.mark.system


def _restart_libvirtd() -> None:
    subprocess.run(["pkill", "-x", "libvirtd"], check=False)
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            raise AssertionError("libvirtd did not stop")
        time.sleep(0.05)
    ensure_libvirtd()


async def test_agent_survives_a_libvirtd_restart(start_agent: StartAgent,
                                                 qemu_uri: str) -> None:
    agent = await start_agent("qemu", uri=qemu_uri)
    first = await agent.create_vm("before")
    await agent.wait_status(first, "Up")

    _restart_libvirtd()

    # The agent notices and reconnects on its own (close callback + backoff).
    hypervisor = agent.hypervisor
    await wait_until(lambda: getattr(hypervisor, "connections", 0) >= 2
                     and hypervisor.is_alive(), 30, "agent reconnected to libvirtd")
    # The VM kept running through the restart.
    assert (await agent.stats(first))["status"] == "Up"
    # Events flow again: a pause of the old VM and a new VM's start are both reported.
    await agent.call("VM.pause", {"vmID": first})
    await agent.wait_event_status(first, "Paused", timeout_s=15)
    second = await agent.create_vm("after")
    await agent.wait_event_status(second, "Up", timeout_s=30)
    # Stats keep coming from the new connection.
    stats = await agent.stats(second)
    await wait_until(lambda: _grew(agent, second, int(stats.get("cpuUsage", 0))), 15,
                     "stats from the new connection")


async def _grew(agent, vm_id: str, before: int) -> bool:  # type: ignore[no-untyped-def]
    return int((await agent.stats(vm_id)).get("cpuUsage", 0)) > before
