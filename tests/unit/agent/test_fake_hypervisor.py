"""FakeHypervisor specifics the contract test cannot see: its clock-driven
counters, injected faults, simulated outages and guest behaviour."""

from __future__ import annotations

import asyncio

import pytest

from ovagent.virt.fake import FakeHypervisor
from ovagent.virt.hypervisor import (
    DomainEvent,
    DomainEventKind,
    DomainState,
    HypervisorError,
    HypervisorTimeoutError,
    NoSuchDomainError,
)
from tests.fixtures.agent import domain_xml, new_vm_id


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def xml(vm_id: str, devices: str = "", **kwargs: object) -> str:
    return domain_xml("fake", f"vm-{vm_id[:8]}", vm_id, devices=devices, **kwargs)  # type: ignore[arg-type]


NIC_DISK = ("<interface type='network'><source network='ovirtmgmt'/>"
            "<mac address='00:1a:4a:16:01:51'/></interface>"
            "<disk type='file' device='disk'><source file='/x.img'/>"
            "<target dev='vda' bus='virtio'/></disk>")


@pytest.fixture
async def fake() -> FakeHypervisor:
    hv = FakeHypervisor(clock=Clock(), call_timeout_s=0.2)
    events: list[DomainEvent] = []
    await hv.connect(events.append)
    hv.seen = events  # type: ignore[attr-defined]
    return hv


async def test_counters_follow_running_time(fake: FakeHypervisor) -> None:
    clock: Clock = fake.clock  # type: ignore[assignment]
    vm_id = new_vm_id()
    await fake.create(xml(vm_id, NIC_DISK, vcpus=2))
    (s0,) = await fake.sample()
    assert s0.cpu_time_ns == 0 and s0.vcpus == 2
    assert set(s0.net) == {"vnet0"} and set(s0.block) == {"vda"}
    clock.now += 10
    (s1,) = await fake.sample()
    assert s1.cpu_time_ns > 0
    assert s1.cpu_user_ns + s1.cpu_system_ns <= s1.cpu_time_ns
    assert s1.net["vnet0"]["rx_bytes"] > 0 and s1.block["vda"]["rd_bytes"] > 0
    # Paused: nothing moves, however long it stays paused.
    await fake.suspend(vm_id)
    clock.now += 100
    (s2,) = await fake.sample()
    assert s2.cpu_time_ns == s1.cpu_time_ns
    assert s2.net == s1.net and s2.state is DomainState.PAUSED
    await fake.resume(vm_id)
    clock.now += 10
    (s3,) = await fake.sample()
    assert abs(s3.cpu_time_ns - 2 * s1.cpu_time_ns) <= 1  # 20 s of running in all


async def test_domains_differ_but_are_deterministic() -> None:
    shares = set()
    for _ in range(2):
        for vm_id in ("4a4b8e8c-0000-4000-8000-000000000001",
                      "4a4b8e8c-0000-4000-8000-000000000002"):
            hv = FakeHypervisor(clock=Clock())
            await hv.connect(lambda e: None)
            await hv.create(xml(vm_id))
            hv.clock.now += 1  # type: ignore[attr-defined]
            shares.add((vm_id, (await hv.sample())[0].cpu_time_ns))
    assert len(shares) == 2  # same uuid -> same figures; other uuid -> others


async def test_events_are_delivered_on_the_loop_in_order(fake: FakeHypervisor) -> None:
    seen: list[DomainEvent] = fake.seen  # type: ignore[attr-defined]
    vm_id = new_vm_id()
    await fake.create(xml(vm_id), start_paused=True)
    assert seen == []  # not synchronously: call_soon
    await fake.resume(vm_id)
    await fake.destroy(vm_id)
    await asyncio.sleep(0)
    assert [(e.kind, e.detail) for e in seen] == [
        (DomainEventKind.STARTED, "booted"), (DomainEventKind.SUSPENDED, "user"),
        (DomainEventKind.RESUMED, "user"), (DomainEventKind.STOPPED, "destroyed")]


async def test_injected_errors(fake: FakeHypervisor) -> None:
    vm_id = new_vm_id()
    other = new_vm_id()
    await fake.create(xml(vm_id))
    await fake.create(xml(other))
    fake.inject("suspend", HypervisorError("boom"), uuid=vm_id, times=1)
    await fake.suspend(other)  # another domain: unaffected
    with pytest.raises(HypervisorError, match="boom"):
        await fake.suspend(vm_id)
    await fake.suspend(vm_id)  # only once
    with pytest.raises(ValueError):
        fake.inject("no_such_method", HypervisorError("x"))
    with pytest.raises(ValueError):
        fake.inject("sample")


async def test_hang_times_out_or_is_released(fake: FakeHypervisor) -> None:
    fake.inject("sample", hang=True)
    with pytest.raises(HypervisorTimeoutError):
        await fake.sample()
    fake.call_timeout_s = 30
    waiting = asyncio.ensure_future(fake.sample())
    await asyncio.sleep(0)
    assert not waiting.done()
    fake.release_hangs()
    assert await asyncio.wait_for(waiting, 5) == []
    assert await fake.sample() == []  # the fault is gone
    assert fake.calls["sample"] == 3


async def test_lost_connection(fake: FakeHypervisor) -> None:
    resynced = asyncio.Event()
    await fake.connect(fake.seen.append, resynced.set)  # type: ignore[attr-defined]
    vm_id = new_vm_id()
    await fake.create(xml(vm_id))
    fake.break_connection()
    assert not fake.is_alive()
    with pytest.raises(HypervisorError):
        await fake.list_domains()
    fake.crash(vm_id)  # nobody hears of it
    fake.restore_connection()
    await asyncio.wait_for(resynced.wait(), 5)
    assert await fake.list_domains() == []
    assert DomainEventKind.STOPPED not in [e.kind for e in fake.seen]  # type: ignore[attr-defined]


async def test_acpi_shutdown_delay_and_deaf_guests() -> None:
    hv = FakeHypervisor(acpi_shutdown_s=0.05)
    stopped = asyncio.Event()
    await hv.connect(lambda e: e.kind is DomainEventKind.STOPPED and stopped.set())
    vm_id = new_vm_id()
    await hv.create(xml(vm_id))
    await hv.shutdown(vm_id)
    assert vm_id in hv.domains  # not yet
    await asyncio.wait_for(stopped.wait(), 5)
    assert vm_id not in hv.domains
    deaf = FakeHypervisor(acpi_shutdown_s=None)
    await deaf.connect(lambda e: None)
    await deaf.create(xml(vm_id))
    await deaf.shutdown(vm_id)
    assert vm_id in deaf.domains


async def test_live_xml(fake: FakeHypervisor) -> None:
    a, b = new_vm_id(), new_vm_id()
    info = await fake.create(xml(a, NIC_DISK))
    await fake.create(xml(b))
    assert "port='5900'" in info.xml or 'port="5900"' in info.xml
    assert "vnet0" in info.xml
    live_b = await fake.get_xml(b)
    assert 'port="5901"' in live_b
    assert "passwd=" not in live_b.replace("passwdValidTo", "")
    with pytest.raises(NoSuchDomainError):
        await fake.get_xml(new_vm_id())


async def test_node_memory_counts_domains(fake: FakeHypervisor) -> None:
    total = (await fake.node_memory()).total_kib
    vm_id = new_vm_id()
    await fake.create(xml(vm_id, memory_mib=1024))
    assert (await fake.node_memory()).free_kib == total - 1024 * 1024
    await fake.set_balloon(vm_id, 512 * 1024)
    assert (await fake.node_memory()).free_kib == total - 512 * 1024


async def test_create_rejects_bad_xml(fake: FakeHypervisor) -> None:
    for bad in ("<domain><name>x</name></domain>",  # no memory
                "<domain><memory>1</memory></domain>",  # no name
                "<domain><name>x</name><uuid>nope</uuid><memory>1</memory></domain>",
                "<vm/>"):
        with pytest.raises(HypervisorError):
            await fake.create(bad)
    info = await fake.create("<domain><name>anon</name><memory unit='GiB'>1</memory></domain>")
    assert len(info.uuid) == 36  # generated, like libvirt
