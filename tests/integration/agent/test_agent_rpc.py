"""A running Agent driven over real mutual TLS with RpcClient, like the engine does.

Runs on the libvirt test driver (a simulated node) and on the FakeHypervisor.
Every result is checked against the verb schema (AgentHarness.call) and every
VM_status event against events.yml (start_agent's teardown).
"""

from __future__ import annotations

import asyncio

import pytest

from ovagent.virt.fake import FakeHypervisor
from ovagent.virt.hypervisor import DomainState
from protocol.jsonrpc import ErrorCode
from tests.fixtures.agent import (
    NODE_CPUS,
    NODE_MEMORY_MIB,
    AgentHarness,
    StartAgent,
    new_vm_id,
    wait_until,
)

KINDS = ["test", "fake"]
LIFECYCLE = ["Powering up", "Up", "Paused", "Up", "Powering down", "Down"]


@pytest.fixture(params=KINDS)
async def agent(request: pytest.FixtureRequest, start_agent: StartAgent) -> AgentHarness:
    return await start_agent(request.param)


async def test_lifecycle_with_events_in_order(agent: AgentHarness) -> None:
    vm_id = await agent.create_vm("life")
    up = await agent.wait_status(vm_id, "Up")
    assert up["vmId"] == vm_id
    assert up["monitorResponse"] == "0"
    assert up["displayInfo"][0]["type"] == "vnc"

    assert await agent.call("VM.pause", {"vmID": vm_id}) == {"vmList": {}}
    paused = await agent.stats(vm_id)
    assert paused["status"] == "Paused" and paused["pauseCode"] == "NOERR"
    assert await agent.call("VM.cont", {"vmID": vm_id}) == {"vmList": {}}
    assert (await agent.stats(vm_id))["status"] == "Up"

    assert await agent.call("VM.shutdown", {"vmID": vm_id, "delay": "0",
                                            "message": "bye", "timeout": 5}) is True
    down = await agent.wait_event_status(vm_id, "Down")
    assert down["exitCode"] == 0
    assert down["exitReason"] == 6  # admin shut down
    assert down["exitMessage"] == "Admin shut down from the engine"
    assert agent.statuses(vm_id) == LIFECYCLE  # WaitForLaunch is not an event
    # The XML did not change, so neither did its hash (a change makes the
    # engine fetch the XML again): Powering up already carries the live one.
    hashes = {p[vm_id]["hash"] for m, p in agent.events.items if m.endswith(vm_id)}
    assert hashes == {up["hash"]}

    # Down VMs stay listed, with their exit info, until the engine destroys them.
    stats = await agent.stats(vm_id)
    assert stats["status"] == "Down" and stats["exitReason"] == 6
    assert "elapsedTime" not in stats
    assert await agent.call("VM.destroy", {"vmID": vm_id}) is True
    assert await agent.call("Host.getVMList", {"onlyUUID": True}) == []
    assert await agent.call_error("VM.getStats", {"vmID": vm_id}) == ErrorCode.NO_VM
    assert agent.statuses(vm_id) == LIFECYCLE  # destroying a Down VM says nothing more


async def test_destroy_a_running_vm(agent: AgentHarness) -> None:
    vm_id = await agent.create_vm("gone")
    await agent.wait_status(vm_id, "Up")
    assert await agent.call("VM.destroy", {"vmID": vm_id, "gracefulAttempts": 0}) is True
    down = await agent.wait_event_status(vm_id, "Down")
    assert down["exitReason"] == 6
    assert agent.statuses(vm_id) == ["Powering up", "Up", "Down"]
    assert vm_id not in {d.uuid for d in await agent.hypervisor.list_domains()}
    assert await agent.call_error("VM.destroy", {"vmID": vm_id}) == ErrorCode.NO_VM


async def test_stats_change_over_time(agent: AgentHarness) -> None:
    vm_id = await agent.create_vm("busy", memory_mib=128, vcpus=2)
    first = await agent.wait_status(vm_id, "Up")

    async def moved() -> dict[str, object] | None:
        s = await agent.stats(vm_id)
        if int(s["cpuUsage"]) > int(first.get("cpuUsage", 0)) and \
                int(s["elapsedTime"]) > int(first["elapsedTime"]):
            return s
        return None
    later = await wait_until(moved, 5.0, "cpuUsage and elapsedTime to grow")
    assert float(later["cpuUser"]) > 0 or float(later["cpuSys"]) > 0
    assert later["vcpuCount"] == "2"
    assert later["balloonInfo"]["balloon_max"] == str(128 * 1024)
    assert int(later["statusTime"]) > int(first["statusTime"])
    every = await agent.call("Host.getAllVmStats")
    assert [s["vmId"] for s in every] == [vm_id]


async def test_launch_paused(agent: AgentHarness) -> None:
    vm_id = await agent.create_vm("sleepy", launchPaused="true")
    stats = await agent.wait_status(vm_id, "Paused")
    assert stats["pauseCode"] == "NOERR"
    await agent.call("VM.cont", {"vmID": vm_id})
    await agent.wait_status(vm_id, "Up")
    assert "Powering up" not in agent.statuses(vm_id)


async def test_error_codes(agent: AgentHarness) -> None:
    missing = new_vm_id()
    for method in ("VM.getStats", "VM.destroy", "VM.pause", "VM.cont", "VM.reset"):
        assert await agent.call_error(method, {"vmID": missing}) == ErrorCode.NO_VM, method
    vm_id = await agent.create_vm("twice")
    again = {"vmID": vm_id, "vmParams": {"xml": agent.xml("other", vm_id)}}
    assert await agent.call_error("VM.create", again) == ErrorCode.VM_EXISTS
    bad_params = [
        ("VM.getStats", {"vmID": 42}),
        ("VM.getStats", {}),
        ("VM.create", {"vmID": new_vm_id(), "vmParams": {}}),  # no xml
        ("VM.create", {"vmID": new_vm_id(), "vmParams": {"xml": "<domain/>"}, "x": 1}),
        ("VM.setBalloonTarget", {"vmID": vm_id, "target": -1}),
        ("Host.getVMList", {"onlyUUID": "yes"}),
    ]
    for method, params in bad_params:
        assert await agent.call_error(method, params) == ErrorCode.INVALID_PARAMS, params
    assert await agent.call_error("VM.frobnicate", {}) == ErrorCode.METHOD_NOT_FOUND
    # A mismatched vmId inside vmParams, or XML for another uuid: invalid / create error.
    other = new_vm_id()
    assert await agent.call_error("VM.create", {
        "vmID": other, "vmParams": {"xml": agent.xml("x", other), "vmId": new_vm_id()}}
    ) == ErrorCode.INVALID_PARAMETER
    assert await agent.call_error("VM.create", {
        "vmID": other, "vmParams": {"xml": agent.xml("x", new_vm_id())}}
    ) == ErrorCode.CREATE_ERROR
    await agent.wait_status(vm_id, "Up")
    assert await agent.call_error("VM.setBalloonTarget",
                                  {"vmID": vm_id, "target": 10**9}) == ErrorCode.INVALID_PARAMETER


async def test_host_verbs(agent: AgentHarness) -> None:
    assert await agent.call("Host.ping2") is True
    caps = await agent.call("Host.getCapabilities")
    assert caps["cpuThreads"] == str(NODE_CPUS)
    assert caps["memSize"] == str(NODE_MEMORY_MIB)
    assert caps["onlineCpus"] == ",".join(map(str, range(NODE_CPUS)))
    assert "4.7" in caps["clusterLevels"]
    await agent.call("Host.getHardwareInfo")

    a = await agent.create_vm("a", memory_mib=256)
    b = await agent.create_vm("b")
    await agent.wait_status(a, "Up")
    await agent.wait_status(b, "Up")

    async def counted() -> dict[str, object] | None:
        s = await agent.call("Host.getStats")
        # Counts are live; node memory comes with the next host sample.
        return s if s["vmCount"] == 2 and s["vmActive"] == 2 and \
            s["memFree"] == NODE_MEMORY_MIB - 256 - 64 else None
    stats = await wait_until(counted, 5.0, "vmCount 2 and their memory used")
    assert stats["memCommitted"] == 256 + 64
    assert stats["memAvailable"] == NODE_MEMORY_MIB - 256 - 64

    assert sorted(await agent.call("Host.getVMList", {"onlyUUID": True})) == sorted([a, b])
    short = await agent.call("Host.getVMList", {"vmList": [a]})
    assert [(s["vmId"], s["status"]) for s in short] == [(a, "Up")]
    full = await agent.call("Host.getVMFullList", {"vmList": [b]})
    assert full[0]["vmId"] == b and full[0]["memSize"] == 64
    xmls = await agent.call("Host.dumpxmls", {"vmList": [a, b]})
    assert set(xmls) == {a, b}
    assert f"<uuid>{a}</uuid>" in xmls[a]
    assert await agent.call_error("Host.dumpxmls", {"vmList": [new_vm_id()]}) == \
        ErrorCode.NO_VM


async def test_set_ticket_and_balloon(agent: AgentHarness) -> None:
    vm_id = await agent.create_vm("console")
    await agent.wait_status(vm_id, "Up")
    ticket = {"vmID": vm_id, "password": "s3cret", "ttl": "120",
              "existingConnAction": "disconnect", "params": {"userName": "admin"}}
    if agent.kind == "test":
        # The test driver cannot update a live device.
        assert await agent.call_error("VM.setTicket", ticket) == ErrorCode.GENERAL
    else:
        assert await agent.call("VM.setTicket", ticket) is True
    assert await agent.call("VM.setBalloonTarget", {"vmID": vm_id, "target": 32768}) == \
        {"code": 0, "message": "Done"}

    async def ballooned() -> bool:
        s = await agent.stats(vm_id)
        return bool(s["balloonInfo"]["balloon_target"] == "32768"
                    and s["balloonInfo"]["balloon_cur"] == "32768")
    await wait_until(ballooned, 5.0, "balloon at 32 MiB")


async def test_getvmlist_survives_many_vms(agent: AgentHarness) -> None:
    ids = [await agent.create_vm(f"many{i}") for i in range(20)]
    await wait_until(lambda: agent.agent.manager.vms and all(
        vm.status.value == "Up" for vm in agent.agent.manager.vms.values()), 10.0, "all Up")
    assert sorted(await agent.call("Host.getVMList", {"onlyUUID": True})) == sorted(ids)
    assert len(await agent.call("Host.getAllVmStats")) == 20


# ------------------------------------------------- fake-only situations
async def test_not_responding_while_sampling_hangs(start_agent: StartAgent) -> None:
    fake = FakeHypervisor(call_timeout_s=0.3)
    agent = await start_agent("fake", hypervisor=fake, vm_interval_s=0.1)
    vm_id = await agent.create_vm("stuck")
    await agent.wait_status(vm_id, "Up")
    fake.inject("sample", hang=True)

    async def monitor(value: str) -> bool:
        return bool((await agent.stats(vm_id))["monitorResponse"] == value)
    await wait_until(lambda: monitor("-1"), 5.0, "monitorResponse -1")
    fake.release_hangs()
    await wait_until(lambda: monitor("0"), 5.0, "monitorResponse 0 again")
    # A hung lifecycle call fails the verb (resource unavailable), not the agent.
    fake.inject("suspend", hang=True)
    assert await agent.call_error("VM.pause", {"vmID": vm_id}) == \
        ErrorCode.RESOURCE_UNAVAILABLE
    assert await agent.call("Host.ping2") is True


async def test_guest_exits(start_agent: StartAgent) -> None:
    fake = FakeHypervisor()
    agent = await start_agent("fake", hypervisor=fake)
    crashing = await agent.create_vm("crash")
    leaving = await agent.create_vm("leave")
    await agent.wait_status(crashing, "Up")
    await agent.wait_status(leaving, "Up")
    fake.crash(crashing)
    fake.guest_shutdown(leaving)
    crashed = await agent.wait_event_status(crashing, "Down")
    assert (crashed["exitCode"], crashed["exitReason"]) == (1, 1)
    left = await agent.wait_event_status(leaving, "Down")
    assert (left["exitCode"], left["exitReason"]) == (0, 7)  # user shut down


async def test_io_error_pause(start_agent: StartAgent) -> None:
    fake = FakeHypervisor()
    agent = await start_agent("fake", hypervisor=fake)
    vm_id = await agent.create_vm("eio")
    await agent.wait_status(vm_id, "Up")
    fake.io_error(vm_id, "enospc")  # libvirt's reason for a full (thin) disk
    paused = await agent.wait_event_status(vm_id, "Paused")
    assert paused["pauseCode"] == "ENOSPC"  # the engine extends the disk on it
    assert (await agent.stats(vm_id))["pauseCode"] == "ENOSPC"
    await agent.call("VM.cont", {"vmID": vm_id})
    other = await agent.create_vm("eio2")
    await agent.wait_status(other, "Up")
    fake.io_error(other, "eio")
    assert (await agent.wait_event_status(other, "Paused"))["pauseCode"] == "EIO"


async def test_resync_after_lost_connection(start_agent: StartAgent) -> None:
    fake = FakeHypervisor()
    agent = await start_agent("fake", hypervisor=fake)
    lost = await agent.create_vm("lost")
    paused = await agent.create_vm("paused-meanwhile")
    await agent.wait_status(lost, "Up")
    await agent.wait_status(paused, "Up")
    fake.break_connection()
    # Meanwhile (no events reach the agent): one VM dies, one is paused.
    fake.crash(lost)
    dom = fake.domains[paused]
    dom.stop_clock(fake.clock())
    dom.state, dom.reason = DomainState.PAUSED, "user"
    fake.restore_connection()
    down = await agent.wait_event_status(lost, "Down")
    assert down["exitReason"] == 9  # libvirt domain missing
    await agent.wait_event_status(paused, "Paused")


async def test_shutdown_ignored_then_forced(start_agent: StartAgent) -> None:
    fake = FakeHypervisor(acpi_shutdown_s=None)  # a guest deaf to ACPI
    agent = await start_agent("fake", hypervisor=fake)
    stubborn = await agent.create_vm("stubborn")
    forced = await agent.create_vm("forced")
    await agent.wait_status(stubborn, "Up")
    await agent.wait_status(forced, "Up")
    await agent.call("VM.shutdown", {"vmID": stubborn, "timeout": 1})
    await agent.call("VM.shutdown", {"vmID": forced, "timeout": 1, "force": True})
    down = await agent.wait_event_status(forced, "Down")
    assert down["exitReason"] == 6
    # Without force the VM stays up once the timeout passed.
    await agent.events.wait_for(
        lambda _: agent.statuses(stubborn)[-2:] == ["Powering down", "Up"], 5.0,
        "stubborn VM back to Up")
    assert stubborn in fake.domains


async def test_destroy_while_the_domain_is_being_created(start_agent: StartAgent) -> None:
    """A destroy that comes while the hypervisor is creating the domain waits for
    it and then kills it: no domain may outlive its VM."""
    fake = FakeHypervisor(call_timeout_s=10)
    agent = await start_agent("fake", hypervisor=fake)
    fake.inject("create", hang=True)
    vm_id = await agent.create_vm("raced")
    await wait_until(lambda: fake.calls.get("create") == 1, 5.0, "create in flight")
    destroy = asyncio.ensure_future(agent.call("VM.destroy", {"vmID": vm_id}))
    manager = agent.agent.manager
    await wait_until(lambda: vm_id not in manager.vms or manager.vms[vm_id].destroy_requested,
                     5.0, "destroy under way")
    fake.release_hangs()
    assert await asyncio.wait_for(destroy, 10) is True
    await wait_until(lambda: not any(t.get_name() == f"launch {vm_id}"
                                     for t in manager._tasks), 5.0, "launch over")
    assert vm_id not in fake.domains
    assert agent.statuses(vm_id)[-1] == "Down"
