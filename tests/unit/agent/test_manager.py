"""VmManager on the FakeHypervisor: recovery, adoption, exit reasons, API wiring."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from ovagent.api.host import HostApi
from ovagent.api.imagetickets import ImageTicketApi
from ovagent.api.storage import storage_apis
from ovagent.api.vm import VmApi
from ovagent.config import ImageioConfig, StorageConfig, TlsConfig
from ovagent.host.stats import HostStatsSampler
from ovagent.imageio.service import ImageService
from ovagent.storage import StorageService
from ovagent.virt.domxml import prepare_for_launch
from ovagent.virt.fake import FakeHypervisor
from ovagent.virt.hooks import HookRunner
from ovagent.virt.manager import VmManager
from ovagent.virt.vm import VmStatus
from protocol.jsonrpc import ErrorCode, JsonRpcError
from protocol.schema import VerbRegistry, default_schema
from tests.fixtures.agent import EventLog, domain_xml, new_vm_id


def managed(vm_id: str, started_ago_s: float, **params: Any) -> str:
    return prepare_for_launch(domain_xml("fake", f"vm-{vm_id[:6]}", vm_id), vm_id, {
        "startTime": f"{time.time() - started_ago_s:.3f}",
        "params": orjson.dumps(params).decode()})


async def manager_on(fake: FakeHypervisor, **kwargs: Any) -> tuple[VmManager, EventLog]:
    events = EventLog()
    manager = VmManager(fake, HookRunner(None), lambda m, p: events.append((m, p)),
                        powering_up_s=0.05, **kwargs)
    await manager.start()
    return manager, events


async def test_recovery_adopts_what_the_hypervisor_runs() -> None:
    fake = FakeHypervisor()
    await fake.connect(lambda e: None)
    ours, paused, foreign = new_vm_id(), new_vm_id(), new_vm_id()
    await fake.create(managed(ours, 3600, custom={"k": "v"}))
    await fake.create(managed(paused, 60), start_paused=True)
    await fake.create(domain_xml("fake", "foreign", foreign))
    manager, events = await manager_on(fake)
    assert not manager.recovering
    assert manager.vms[ours].status is VmStatus.UP
    assert manager.vms[paused].status is VmStatus.PAUSED
    assert 3599 <= manager.vms[ours].elapsed_s() <= 3601  # the start time survives
    assert manager.vms[ours].params == {"custom": {"k": "v"}}
    assert manager.vms[foreign].external
    assert events.items == []  # recovery reports nothing: the engine polls
    await manager.close()


async def test_a_vm_started_behind_our_back_is_adopted() -> None:
    fake = FakeHypervisor()
    manager, events = await manager_on(fake)
    stranger = new_vm_id()
    await fake.create(domain_xml("fake", "stranger", stranger))
    await events.wait_for(lambda items: any(m.endswith(stranger) for m, _ in items), 5,
                          "the stranger reported")
    assert manager.vms[stranger].external
    assert manager.vms[stranger].definition()["external"] is True
    await manager.close()


async def test_a_stale_pause_event_is_corrected_from_the_domain_state() -> None:
    """Up, then a late SUSPENDED event for a domain that runs: the agent
    checks the real state and reports Up again (no VM stuck Paused)."""
    from ovagent.virt.hypervisor import DomainEvent, DomainEventKind

    fake = FakeHypervisor()
    manager, events = await manager_on(fake)
    vm_id = new_vm_id()
    await manager.create({"vmId": vm_id, "xml": domain_xml("fake", "x", vm_id)})
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.UP, 5, "Up")
    manager._on_domain_event(DomainEvent(vm_id, DomainEventKind.SUSPENDED, "user", ""))
    assert manager.vms[vm_id].status is VmStatus.PAUSED  # what the event said
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.UP, 5,
                          "Up again from the domain state")
    # a real pause stays a pause, even checked after the fact
    await manager.pause(vm_id)
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.PAUSED, 5, "Paused")
    vm = manager.vms[vm_id]
    await manager._apply_pause_state(vm, vm.pause_events)
    assert vm.status is VmStatus.PAUSED
    # a check overtaken by a newer pause/resume event changes nothing
    await manager.cont(vm_id)
    await events.wait_for(lambda _: vm.status is VmStatus.UP, 5, "Up after resume")
    vm.status = VmStatus.PAUSED  # as if a stale event had just been applied
    await manager._apply_pause_state(vm, vm.pause_events - 1)
    assert vm.status is VmStatus.PAUSED
    await manager.close()


@pytest.mark.parametrize("how, code, reason", [("crash", 1, 1), ("guest_shutdown", 0, 7)])
async def test_exit_reasons(how: str, code: int, reason: int) -> None:
    fake = FakeHypervisor()
    manager, events = await manager_on(fake)
    vm_id = new_vm_id()
    await manager.create({"vmId": vm_id, "xml": domain_xml("fake", "x", vm_id)})
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.UP, 5, "Up")
    getattr(fake, how)(vm_id)
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.DOWN, 5, "Down")
    info = manager.vms[vm_id].exit_info
    assert info is not None and (info.code, int(info.reason)) == (code, reason)
    await manager.close()


async def test_start_failure_is_a_down_vm() -> None:
    from ovagent.virt.hypervisor import HypervisorError

    fake = FakeHypervisor()
    manager, events = await manager_on(fake)
    fake.inject("create", HypervisorError("no memory for you"))
    vm_id = new_vm_id()
    await manager.create({"vmId": vm_id, "xml": domain_xml("fake", "x", vm_id)})
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.DOWN, 5, "Down")
    info = manager.vms[vm_id].exit_info
    assert info is not None and "no memory for you" in info.message
    assert int(info.reason) == 3
    await manager.close()


async def test_operations_on_a_down_vm() -> None:
    fake = FakeHypervisor()
    manager, events = await manager_on(fake)
    vm_id = new_vm_id()
    await manager.create({"vmId": vm_id, "xml": domain_xml("fake", "x", vm_id)})
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.UP, 5, "Up")
    fake.crash(vm_id)
    await events.wait_for(lambda _: manager.vms[vm_id].status is VmStatus.DOWN, 5, "Down")
    for op in (manager.pause, manager.cont, manager.reset):
        with pytest.raises(JsonRpcError) as err:
            await op(vm_id)
        assert err.value.code == ErrorCode.VM_DOWN
    await manager.close()


def test_every_schema_verb_has_exactly_one_handler(tmp_path: Path) -> None:
    fake = FakeHypervisor()
    manager = VmManager(fake, HookRunner(None), lambda m, p: None)
    registry = VerbRegistry(default_schema())
    storage = StorageService(StorageConfig(repository=tmp_path / "rhev"), tmp_path)
    images = ImageService(ImageioConfig(enabled=False), "127.0.0.1", TlsConfig(),
                          tmp_path / "rhev")
    registry.add_api(HostApi(manager, HostStatsSampler(fake, lambda: (0,) * 6),
                             HookRunner(None)), VmApi(manager), *storage_apis(storage),
                     ImageTicketApi(images))
    registry.verify()
    assert registry.names() == sorted(default_schema().verbs)


async def test_agents_sharing_a_hypervisor_manage_only_their_own_vms() -> None:
    # Two agents on one libvirtd (the lab and the demo with QEMU do that).
    shared = FakeHypervisor()
    alpha, _ = await manager_on(shared, owner="alpha")
    created = await alpha.create({"vmId": (mine := new_vm_id()),
                                  "xml": domain_xml("fake", "mine", mine)})
    assert created["status"] == "WaitForLaunch"
    for _ in range(1000):  # the launch runs in the background
        if mine in shared.domains:
            break
        await asyncio.sleep(0.001)
    assert mine in shared.domains
    foreign = new_vm_id()
    await shared.create(domain_xml("fake", "foreign", foreign))
    beta, _ = await manager_on(shared, owner="beta")
    assert mine not in beta.vms            # alpha's VM, tagged with its owner
    assert beta.vms[foreign].external      # untagged: reported as external
    again, _ = await manager_on(shared, owner="alpha")
    assert mine in again.vms and not again.vms[mine].external
    for m in (alpha, beta, again):
        await m.close()
