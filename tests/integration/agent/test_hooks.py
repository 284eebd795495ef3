"""vdsm-style hooks around VM start and destroy, on a running agent (test driver)."""

from __future__ import annotations

import asyncio
import hashlib

from protocol.jsonrpc import ErrorCode
from tests.fixtures.agent import StartAgent, wait_until, write_hook

EDIT_XML = """#!/bin/sh
# Add a <description> naming the VM and a custom property (both from the environment).
sed -i "s|</name>|</name><description>hooked $vmId $color</description>|" "$_hook_domxml"
"""


async def test_before_vm_start_hook_edits_the_domain_xml(start_agent: StartAgent) -> None:
    agent = await start_agent("test")
    write_hook(agent.hooks_dir, "before_vm_start", "50_describe", EDIT_XML)
    vm_id = await agent.create_vm("hooked", custom={"color": "blue"})
    await agent.wait_status(vm_id, "Up")
    xml = (await agent.call("Host.dumpxmls", {"vmList": [vm_id]}))[vm_id]
    assert f"<description>hooked {vm_id} blue</description>" in xml
    assert f"hooked {vm_id} blue" in await agent.hypervisor.get_xml(vm_id)


async def test_failing_before_vm_start_hook_keeps_the_vm_down(start_agent: StartAgent) -> None:
    agent = await start_agent("test")
    write_hook(agent.hooks_dir, "before_vm_start", "10_fine", "#!/bin/sh\nexit 0\n")
    write_hook(agent.hooks_dir, "before_vm_start", "60_refuse",
               "#!/bin/sh\necho 'no room for this VM' >&2\nexit 2\n")
    vm_id = await agent.create_vm("refused")
    down = await agent.wait_event_status(vm_id, "Down")
    assert down["exitCode"] == 1
    assert down["exitReason"] == 3  # libvirt start failed
    assert "before_vm_start/60_refuse" in down["exitMessage"]
    assert "no room for this VM" in down["exitMessage"]
    assert agent.statuses(vm_id) == ["Down"]
    assert vm_id not in {d.uuid for d in await agent.hypervisor.list_domains()}
    stats = await agent.stats(vm_id)
    assert stats["status"] == "Down" and "60_refuse" in stats["exitMessage"]
    assert await agent.call("VM.destroy", {"vmID": vm_id}) is True


async def test_hook_exit_1_is_only_a_warning(start_agent: StartAgent) -> None:
    agent = await start_agent("test")
    write_hook(agent.hooks_dir, "before_vm_start", "50_grumble",
               "#!/bin/sh\necho 'just saying' >&2\nexit 1\n")
    vm_id = await agent.create_vm("warned")
    await agent.wait_status(vm_id, "Up")


async def test_hooks_are_listed_in_capabilities(start_agent: StartAgent) -> None:
    agent = await start_agent("test")
    start = write_hook(agent.hooks_dir, "before_vm_start", "50_describe", EDIT_XML)
    write_hook(agent.hooks_dir, "after_vm_destroy", "10_cleanup", "#!/bin/sh\nexit 0\n")
    (agent.hooks_dir / "before_vm_start" / "README").write_text("not executable: no hook")
    caps = await agent.call("Host.getCapabilities")
    assert set(caps["hooks"]) == {"before_vm_start", "after_vm_destroy"}
    assert caps["hooks"]["before_vm_start"] == {
        "50_describe": {"md5": hashlib.md5(start.read_bytes()).hexdigest()}}
    assert list(caps["hooks"]["after_vm_destroy"]) == ["10_cleanup"]


async def test_destroy_hooks(start_agent: StartAgent) -> None:
    agent = await start_agent("test")
    marks = agent.hooks_dir.parent / "marks"
    marks.mkdir()
    for point in ("before_vm_destroy", "after_vm_destroy"):
        write_hook(agent.hooks_dir, point, "10_mark",
                   f"#!/bin/sh\ntouch {marks}/{point}-$vmId\n")
    vm_id = await agent.create_vm("marked")
    await agent.wait_status(vm_id, "Up")
    await agent.call("VM.destroy", {"vmID": vm_id})
    assert (marks / f"before_vm_destroy-{vm_id}").exists()
    assert (marks / f"after_vm_destroy-{vm_id}").exists()

    write_hook(agent.hooks_dir, "before_vm_destroy", "20_veto", "#!/bin/sh\nexit 3\n")
    kept = await agent.create_vm("kept")
    await agent.wait_status(kept, "Up")
    assert await agent.call_error("VM.destroy", {"vmID": kept}) == ErrorCode.DESTROY_ERROR
    assert (await agent.stats(kept))["status"] == "Up"


async def test_destroy_while_a_start_hook_runs(start_agent: StartAgent) -> None:
    """The launch, back from its hooks, sees the destroy and starts nothing."""
    agent = await start_agent("test")
    go = agent.hooks_dir.parent / "go"
    write_hook(agent.hooks_dir, "before_vm_start", "50_slow",
               f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.02; done\n")
    vm_id = await agent.create_vm("raced")
    destroy = asyncio.ensure_future(agent.call("VM.destroy", {"vmID": vm_id}))
    try:
        manager = agent.agent.manager
        await wait_until(lambda: vm_id not in manager.vms
                         or manager.vms[vm_id].destroy_requested, 5.0, "destroy under way")
        go.touch()
        assert await asyncio.wait_for(destroy, 10) is True
    finally:
        go.touch()
        if not destroy.done():
            destroy.cancel()
    assert vm_id not in {d.uuid for d in await agent.hypervisor.list_domains()}
    assert await agent.call("Host.getVMList", {"onlyUUID": True}) == []
    assert "Up" not in agent.statuses(vm_id) and "Powering up" not in agent.statuses(vm_id)
