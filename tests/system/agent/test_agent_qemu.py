"""The agent on real libvirtd + QEMU (TCG): tiny diskless VMs, over mutual TLS.

A diskless guest has no OS to obey ACPI, so shutdown is asked with force and
a short timeout: the agent powers the VM off when the timeout passes.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from protocol.jsonrpc import ErrorCode
from tests.fixtures.agent import AgentHarness, StartAgent, wait_until

pytestmark = pytest.mark.system

LIFECYCLE = ["Powering up", "Up", "Paused", "Up", "Powering down", "Down"]


@pytest.fixture
async def agent(start_agent: StartAgent, qemu_uri: str) -> AgentHarness:
    return await start_agent("qemu", uri=qemu_uri)


async def test_lifecycle_and_stats(agent: AgentHarness) -> None:
    vm_id = await agent.create_vm("life")
    up = await agent.wait_status(vm_id, "Up")
    assert up["displayInfo"][0]["type"] == "vnc"
    assert int(up["displayInfo"][0]["port"]) >= 5900  # the live port, not -1
    assert await agent.call_error("VM.create", {
        "vmID": vm_id, "vmParams": {"xml": agent.xml("dup", vm_id)}}) == ErrorCode.VM_EXISTS

    # QEMU burns CPU (TCG, BIOS looking for a boot device): figures move.
    async def moved() -> dict[str, object] | None:
        s = await agent.stats(vm_id)
        if int(s.get("cpuUsage", 0)) > int(up.get("cpuUsage", 0)) and \
                int(s["elapsedTime"]) > int(up["elapsedTime"]) and \
                float(s["cpuUser"]) + float(s["cpuSys"]) > 0:
            return s
        return None
    stats = await wait_until(moved, 10.0, "QEMU CPU figures and elapsedTime to grow")
    assert stats["balloonInfo"]["balloon_max"] == str(64 * 1024)
    assert stats["monitorResponse"] == "0"

    await agent.call("VM.pause", {"vmID": vm_id})
    assert (await agent.stats(vm_id))["status"] == "Paused"
    await agent.call("VM.cont", {"vmID": vm_id})
    assert (await agent.stats(vm_id))["status"] == "Up"

    await agent.call("VM.shutdown", {"vmID": vm_id, "timeout": 1, "force": True})
    down = await agent.wait_event_status(vm_id, "Down", timeout_s=20)
    assert (down["exitCode"], down["exitReason"]) == (0, 6)
    assert agent.statuses(vm_id) == LIFECYCLE
    await agent.call("VM.destroy", {"vmID": vm_id})
    assert vm_id not in {d.uuid for d in await agent.hypervisor.list_domains()}


async def test_console_ticket_balloon_and_destroy(agent: AgentHarness) -> None:
    vm_id = await agent.create_vm("console")
    await agent.wait_status(vm_id, "Up")
    assert await agent.call("VM.setTicket", {
        "vmID": vm_id, "password": "s3cret", "ttl": 120, "existingConnAction": "keep",
        "params": {}}) is True
    xml = (await agent.call("Host.dumpxmls", {"vmList": [vm_id]}))[vm_id]
    graphics = ET.fromstring(xml).find("devices/graphics")
    assert graphics is not None
    valid_to = dt.datetime.fromisoformat(graphics.get("passwdValidTo", "1970-01-01"))
    left = valid_to.replace(tzinfo=dt.timezone.utc) - dt.datetime.now(dt.timezone.utc)
    assert 60 < left.total_seconds() <= 121

    assert await agent.call("VM.setBalloonTarget", {"vmID": vm_id, "target": 49152}) == \
        {"code": 0, "message": "Done"}
    assert (await agent.stats(vm_id))["balloonInfo"]["balloon_target"] == "49152"

    await agent.call("VM.destroy", {"vmID": vm_id})
    down = await agent.wait_event_status(vm_id, "Down")
    assert down["exitReason"] == 6
    assert agent.statuses(vm_id) == ["Powering up", "Up", "Down"]


async def test_capabilities_of_this_host(agent: AgentHarness) -> None:
    caps = await agent.call("Host.getCapabilities")
    assert int(caps["cpuThreads"]) >= 1
    assert int(caps["memSize"]) > 0
    assert caps["packages2"]["qemu-kvm"]["version"] != "0"
    stats = await agent.call("Host.getStats")
    assert stats["memFree"] > 0
