"""The Hypervisor contract, run against every implementation.

- fake:  FakeHypervisor (pure Python)
- test:  LibvirtHypervisor on libvirt's test driver (a private simulated node)
- qemu:  LibvirtHypervisor on qemu:///system: real libvirtd + QEMU (TCG),
         64 MiB diskless guests (skipped, naming what is missing, without them)

Where implementations legitimately differ the case says so (`acpi_stops_guest`:
a diskless QEMU guest ignores the power button; `graphics_password`: the test
driver cannot update devices; `balloon_applies`: without a guest balloon driver
QEMU keeps the current size).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import pytest

from ovagent.virt.disks import drives, snapshot_xml
from ovagent.virt.fake import FakeHypervisor
from ovagent.virt.hypervisor import (
    BlockJobStatus,
    DomainEvent,
    DomainEventKind,
    DomainExistsError,
    DomainSample,
    DomainState,
    Hypervisor,
    HypervisorError,
    NoSuchDomainError,
    UnsupportedError,
)
from ovagent.virt.libvirt.hypervisor import LibvirtHypervisor
from tests.fixtures.agent import (
    DOMAIN_PREFIX,
    NODE_CPUS,
    NODE_MEMORY_MIB,
    EventLog,
    domain_xml,
    new_vm_id,
)

DEADLINE_S = 15.0
KIND = DomainEventKind


@dataclass
class Case:
    kind: str
    hv: Hypervisor
    events: EventLog
    acpi_stops_guest: bool
    graphics_password: bool
    balloon_applies: bool
    created: list[str] = field(default_factory=list)

    async def create(self, *, start_paused: bool = False, memory_mib: int = 64) -> str:
        vm_id = new_vm_id()
        xml = domain_xml(self.kind, f"{DOMAIN_PREFIX}c-{vm_id[:8]}", vm_id,
                         memory_mib=memory_mib)
        self.created.append(vm_id)
        info = await self.hv.create(xml, start_paused=start_paused)
        assert info.uuid == vm_id
        return vm_id

    def kinds(self, vm_id: str) -> list[DomainEventKind]:
        return [e.kind for e in self.events.items if e.uuid == vm_id]

    async def wait_event(self, vm_id: str, kind: DomainEventKind,
                         detail: str | None = None) -> DomainEvent:
        def seen(items: list[DomainEvent]) -> DomainEvent | None:
            for e in items:
                if e.uuid == vm_id and e.kind is kind and detail in (None, e.detail):
                    return e
            return None
        return await self.events.wait_for(seen, DEADLINE_S, f"{kind.value} event of {vm_id}")

    async def sample_of(self, vm_id: str) -> DomainSample:
        for s in await self.hv.sample():
            if s.uuid == vm_id:
                return s
        raise AssertionError(f"no sample for {vm_id}")


@pytest.fixture(params=["fake", "test", pytest.param("qemu", marks=pytest.mark.system)])
async def case(request: pytest.FixtureRequest, test_driver_uri: str) -> AsyncIterator[Case]:
    kind: str = request.param
    hv: Hypervisor
    if kind == "fake":
        hv = FakeHypervisor(cpus=NODE_CPUS, memory_mib=NODE_MEMORY_MIB)
    elif kind == "test":
        hv = LibvirtHypervisor(test_driver_uri, lifecycle_timeout_s=30,
                               monitoring_timeout_s=30)
    else:
        uri = request.getfixturevalue("qemu_uri")
        hv = LibvirtHypervisor(uri, lifecycle_timeout_s=60, monitoring_timeout_s=30)
    events = EventLog()
    await hv.connect(events.append)
    c = Case(kind, hv, events, acpi_stops_guest=kind != "qemu",
             graphics_password=kind != "test", balloon_applies=kind != "qemu")
    try:
        yield c
    finally:
        for vm_id in c.created:
            try:
                await hv.destroy(vm_id)
            except NoSuchDomainError:
                pass
        await hv.close()


class TestHypervisorContract:
    async def test_connected(self, case: Case) -> None:
        assert case.hv.is_alive()

    async def test_create_reports_started_and_lists_the_domain(self, case: Case) -> None:
        vm_id = await case.create()
        await case.wait_event(vm_id, KIND.STARTED)
        listed = {d.uuid: d for d in await case.hv.list_domains()}
        assert vm_id in listed
        d = listed[vm_id]
        assert d.state is DomainState.RUNNING
        assert d.name == f"{DOMAIN_PREFIX}c-{vm_id[:8]}"
        assert f"<uuid>{vm_id}</uuid>" in d.xml

    async def test_create_paused(self, case: Case) -> None:
        vm_id = await case.create(start_paused=True)
        await case.wait_event(vm_id, KIND.SUSPENDED)
        assert case.kinds(vm_id)[:2] == [KIND.STARTED, KIND.SUSPENDED]
        listed = {d.uuid: d for d in await case.hv.list_domains()}
        assert listed[vm_id].state is DomainState.PAUSED
        await case.hv.resume(vm_id)
        await case.wait_event(vm_id, KIND.RESUMED)

    async def test_suspend_resume_events_in_order(self, case: Case) -> None:
        vm_id = await case.create()
        await case.wait_event(vm_id, KIND.STARTED)
        await case.hv.suspend(vm_id)
        await case.wait_event(vm_id, KIND.SUSPENDED)
        assert (await case.sample_of(vm_id)).state is DomainState.PAUSED
        await case.hv.resume(vm_id)
        await case.wait_event(vm_id, KIND.RESUMED)
        assert (await case.sample_of(vm_id)).state is DomainState.RUNNING
        kinds = case.kinds(vm_id)
        # QEMU starts with its CPUs stopped and resumes them: a RESUMED may come
        # before STARTED. From STARTED on, the order is the contract.
        assert kinds[kinds.index(KIND.STARTED) + 1:] == [KIND.SUSPENDED, KIND.RESUMED]

    async def test_resume_of_a_running_domain_fails(self, case: Case) -> None:
        vm_id = await case.create()
        with pytest.raises(HypervisorError):
            await case.hv.resume(vm_id)

    async def test_shutdown(self, case: Case) -> None:
        vm_id = await case.create()
        await case.wait_event(vm_id, KIND.STARTED)
        await case.hv.shutdown(vm_id)
        if case.acpi_stops_guest:
            event = await case.wait_event(vm_id, KIND.STOPPED)
            assert event.detail == "shutdown"
        else:
            # A diskless guest has no OS to obey ACPI: it keeps running until destroyed.
            assert vm_id in {d.uuid for d in await case.hv.list_domains()}
            await case.hv.destroy(vm_id)
            assert (await case.wait_event(vm_id, KIND.STOPPED)).detail == "destroyed"
        assert vm_id not in {d.uuid for d in await case.hv.list_domains()}

    async def test_destroy_reports_stopped(self, case: Case) -> None:
        vm_id = await case.create()
        await case.wait_event(vm_id, KIND.STARTED)
        await case.hv.destroy(vm_id)
        event = await case.wait_event(vm_id, KIND.STOPPED)
        assert event.detail == "destroyed"
        assert vm_id not in {d.uuid for d in await case.hv.list_domains()}
        with pytest.raises(NoSuchDomainError):
            await case.hv.get_xml(vm_id)

    async def test_graceful_destroy(self, case: Case) -> None:
        vm_id = await case.create()
        await case.hv.destroy(vm_id, graceful=True)
        await case.wait_event(vm_id, KIND.STOPPED)

    async def test_list_domains_holds_every_domain(self, case: Case) -> None:
        ids = {await case.create(), await case.create(start_paused=True)}
        listed = {d.uuid: d for d in await case.hv.list_domains()}
        assert ids <= set(listed)
        states = {listed[i].state for i in ids}
        assert states == {DomainState.RUNNING, DomainState.PAUSED}
        for d in listed.values():
            ET.fromstring(d.xml)

    async def test_sample_counters_grow(self, case: Case) -> None:
        vm_id = await case.create()
        first = await case.sample_of(vm_id)
        assert first.state is DomainState.RUNNING
        assert first.vcpus == 1
        assert first.balloon_maximum_kib == 64 * 1024
        assert 0 < first.balloon_current_kib <= 64 * 1024

        async def grown() -> DomainSample | None:
            s = await case.sample_of(vm_id)
            return s if s.cpu_time_ns > first.cpu_time_ns else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while (second := await grown()) is None:
            assert loop.time() < deadline, "CPU time did not grow"
            await asyncio.sleep(0.05)
        assert second.cpu_time_ns > first.cpu_time_ns

    async def test_get_xml(self, case: Case) -> None:
        vm_id = await case.create()
        root = ET.fromstring(await case.hv.get_xml(vm_id))
        assert root.tag == "domain"
        assert root.findtext("uuid") == vm_id
        assert root.findtext("name") == f"{DOMAIN_PREFIX}c-{vm_id[:8]}"
        assert root.find("devices/graphics") is not None

    async def test_set_balloon(self, case: Case) -> None:
        vm_id = await case.create()
        await case.hv.set_balloon(vm_id, 48 * 1024)
        if case.balloon_applies:
            assert (await case.sample_of(vm_id)).balloon_current_kib == 48 * 1024
        with pytest.raises(HypervisorError):
            await case.hv.set_balloon(vm_id, 128 * 1024)  # above the maximum

    async def test_set_graphics_password(self, case: Case) -> None:
        vm_id = await case.create()
        live = ET.fromstring(await case.hv.get_xml(vm_id))
        graphics = live.find("devices/graphics")
        assert graphics is not None
        graphics.set("passwd", "s3cret")
        graphics.set("passwdValidTo", "2037-01-01T00:00:00")
        device = ET.tostring(graphics, encoding="unicode")
        if not case.graphics_password:
            with pytest.raises(UnsupportedError):
                await case.hv.set_graphics_password(vm_id, device)
            return
        await case.hv.set_graphics_password(vm_id, device)
        after = ET.fromstring(await case.hv.get_xml(vm_id)).find("devices/graphics")
        assert after is not None
        assert after.get("passwdValidTo", "").startswith("2037-01-01")
        assert "passwd" not in after.attrib  # secrets stay out of the plain XML

    async def test_node_info(self, case: Case) -> None:
        info = await case.hv.node_info()
        assert info.online_cpus >= 1
        assert info.memory_mib > 0
        assert info.cpu_sockets * info.cpu_cores_per_socket * info.cpu_threads_per_core >= 1
        assert info.arch == "x86_64"
        assert info.cpu_model
        assert info.driver in ("FAKE", "TEST", "QEMU")
        if case.kind != "qemu":  # a simulated node is what it was told to be
            assert info.online_cpus == NODE_CPUS
            assert info.memory_mib == NODE_MEMORY_MIB

    async def test_node_memory(self, case: Case) -> None:
        before = await case.hv.node_memory()
        info = await case.hv.node_info()
        assert 0 <= before.free_kib <= before.total_kib
        assert abs(before.total_kib / 1024 - info.memory_mib) <= info.memory_mib * 0.05
        if case.kind != "qemu":
            await case.create(memory_mib=256)
            after = await case.hv.node_memory()
            assert before.free_kib - after.free_kib == 256 * 1024

    async def test_unknown_domain(self, case: Case) -> None:
        missing = new_vm_id()
        ops = {
            "destroy": case.hv.destroy(missing),
            "shutdown": case.hv.shutdown(missing),
            "reboot": case.hv.reboot(missing),
            "reset": case.hv.reset(missing),
            "suspend": case.hv.suspend(missing),
            "resume": case.hv.resume(missing),
            "get_xml": case.hv.get_xml(missing),
            "set_balloon": case.hv.set_balloon(missing, 1024),
            "set_graphics_password": case.hv.set_graphics_password(
                missing, "<graphics type='vnc' passwd='x'/>"),
        }
        for name, op in ops.items():
            with pytest.raises(NoSuchDomainError):
                await op
                pytest.fail(f"{name} of an unknown domain succeeded")

    async def test_duplicate_uuid_or_name(self, case: Case) -> None:
        vm_id = await case.create()
        xml = domain_xml(case.kind, f"{DOMAIN_PREFIX}c-{vm_id[:8]}", vm_id)
        with pytest.raises(DomainExistsError):
            await case.hv.create(xml)
        other = new_vm_id()
        with pytest.raises(DomainExistsError):
            await case.hv.create(domain_xml(case.kind, f"{DOMAIN_PREFIX}c-{vm_id[:8]}", other))
        assert other not in {d.uuid for d in await case.hv.list_domains()}

    async def test_invalid_xml(self, case: Case) -> None:
        with pytest.raises(HypervisorError):
            await case.hv.create("<domain type='kvm'><name>x</name")

    async def test_disk_snapshot_then_active_commit_and_pivot(self, case: Case,
                                                              tmp_path: Path) -> None:
        if case.kind == "test":
            pytest.skip("libvirt's test driver has no disk-only snapshots or block jobs")
        if shutil.which("qemu-img") is None:
            pytest.skip("qemu-img is not installed (qemu-utils)")
        base, top = tmp_path / "base.qcow2", tmp_path / "top.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base.name, "-F",
                        "qcow2", str(top)], check=True)
        vm_id = new_vm_id()
        disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file='{base}'/><target dev='vda' bus='virtio'/></disk>")
        xml = domain_xml(case.kind, f"{DOMAIN_PREFIX}c-{vm_id[:8]}", vm_id, devices=disk)
        # QEMU runs as root here (the files are in the test's private directory).
        xml = xml.replace("</domain>", "<seclabel type='static' model='dac' relabel='no'>"
                                       "<label>+0:+0</label></seclabel></domain>")
        case.created.append(vm_id)
        await case.hv.create(xml)

        (vda,) = drives(await case.hv.get_xml(vm_id))
        await case.hv.snapshot_disks(vm_id, snapshot_xml({"vda": str(top)}, [vda]))
        (vda,) = drives(await case.hv.get_xml(vm_id))
        assert [layer.path for layer in vda.chain] == [str(top), str(base)]
        assert await case.hv.block_job_info(vm_id, "vda") is None

        targets = [f"vda[{layer.index}]" if layer.index is not None else layer.path
                   for layer in vda.chain]
        await case.hv.block_commit(vm_id, "vda", targets[1], targets[0], active=True)

        def block_event(status: BlockJobStatus) -> DomainEvent | None:
            for e in case.events.items:
                if e.uuid == vm_id and e.kind is KIND.BLOCK_JOB and e.detail == status.value:
                    return e
            return None
        ready = await case.events.wait_for(lambda _: block_event(BlockJobStatus.READY),
                                           DEADLINE_S, "block job ready")
        assert ready.disk == "vda"
        info = await case.hv.block_job_info(vm_id, "vda")
        assert info is not None and info.kind == "active_commit" and info.ready
        assert drives(await case.hv.get_xml(vm_id))[0].mirror_ready
        await case.hv.block_job_abort(vm_id, "vda", pivot=True)
        await case.events.wait_for(lambda _: block_event(BlockJobStatus.COMPLETED),
                                   DEADLINE_S, "block job completed")
        (vda,) = drives(await case.hv.get_xml(vm_id))
        assert [layer.path for layer in vda.chain] == [str(base)]
        assert await case.hv.block_job_info(vm_id, "vda") is None
