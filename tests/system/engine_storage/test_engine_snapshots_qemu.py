"""VM snapshots with disks driven through the engine, on real QEMU.

One storage host (its own sanlock daemon, a POSIX data domain) whose agent
runs VMs on qemu:///system. The VM's disk is an engine-made thin qcow2 disk;
the guest is the test guest of tests/fixtures/bootimage.py, which records
its boots and a heartbeat twice a second on its raw disk, so an empty disk is
all it needs. The engine has no direct kernel boot, so a vdsm-style
before_vm_start hook on the host adds the guest's kernel, initrd and command
line to the engine's domain XML (and a console log, and no relabelling of the
volumes: QEMU runs as root here).

Flow: run the VM, snapshot it live (CreateSnapshot: Volume.create on the SPM,
VM.snapshot on the host), let it write on, stop it, preview the snapshot and
commit: the active chain holds exactly what the guest had written before the
snapshot. Then run it again, snapshot live and remove that snapshot live
(VM.merge, a blockCommit of the active layer): the chain collapses, in the
database, in the volume metadata, in the qcow2 headers and in the running
domain, and no record is lost.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from ovengine.daemon import Engine
from ovengine.domain.commands import SYSTEM
from ovengine.domain.disk_commands import AddDisk, DiskAttach
from ovengine.domain.snapshot_commands import CreateSnapshot, RemoveSnapshot
from ovengine.domain.snapshot_images import drive_chain
from ovengine.domain.snapshot_preview import CommitSnapshot, PreviewSnapshot
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.domain.vm_lifecycle import RunVm, StopVm
from ovengine.localhosts import LocalAgent, ensure_libvirtd
from tests.fixtures.bootimage import (DISK_SIZE, BootImage, DiskRecords, boot_image,
                                      missing_boot_image_parts, read_records)
from tests.fixtures.engine import EngineFactory, vm_status, wait_until
from tests.fixtures.engine_storage import (STORAGE_ENGINE, default_ids, finished, image_dir,
                                           posix_data_center, require_storage, storage_hosts,
                                           volume_path)
from tests.fixtures.storage import qemu_info, read_kv

pytestmark = [pytest.mark.system, pytest.mark.skipif(
    shutil.which("libvirtd") is None or shutil.which("qemu-system-x86_64") is None,
    reason="needs libvirtd and qemu-system-x86 (libvirt-daemon-system, qemu-system-x86)")]

PREFIX = f"ovsys-{uuid.uuid4().hex[:6]}-"
BLANK = "00000000-0000-0000-0000-000000000000"

# The hook: the engine's XML plus direct kernel boot of the test guest. The
# tag of the boot comes from a file the test writes before each run.
_HOOK = """\
#!{python}
import os
import xml.etree.ElementTree as ET

ET.register_namespace("ovirt-vm", "http://ovirt.org/vm/1.0")
path = os.environ["_hook_domxml"]
tree = ET.parse(path)
root = tree.getroot()
# TCG, as the other QEMU system tests: the engine asks for KVM when the host
# has /dev/kvm, but nested KVM on CI machines may not boot the guest at all.
root.set("type", "qemu")
os_el = root.find("os")
for boot in os_el.findall("boot"):
    os_el.remove(boot)  # direct kernel boot instead
tag = open({tag_file!r}).read().strip()
for name, text in (("kernel", {kernel!r}), ("initrd", {initrd!r}),
                   ("cmdline", "console=ttyS0 quiet panic=-1 ovtest.tag=" + tag
                    + " ovtest.interval_us=500000")):
    ET.SubElement(os_el, name).text = text
devices = root.find("devices")
for dev in devices.findall("serial") + devices.findall("console"):
    devices.remove(dev)
serial = ET.SubElement(devices, "serial", type="file")
ET.SubElement(serial, "source", path={console_dir!r} + "/console-" + tag + ".log")
ET.SubElement(serial, "target", port="0")
seclabel = ET.SubElement(root, "seclabel", type="static", model="dac", relabel="no")
ET.SubElement(seclabel, "label").text = "+0:+0"
tree.write(path, encoding="unicode")
"""


@pytest.fixture(scope="module")
def guest_image() -> BootImage:
    why = missing_boot_image_parts()
    if why is not None:
        pytest.skip(why)
    return boot_image()


@pytest.fixture
def libvirtd() -> Iterator[None]:
    ensure_libvirtd()
    yield
    for name in _virsh("list", "--name").split():
        if name.startswith(PREFIX):
            _virsh("destroy", name)


def _virsh(*args: str) -> str:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True,
                          text=True, timeout=60).stdout


class Guest:
    """The host's boot hook for the test guest, and reading what it wrote."""

    def __init__(self, agent: LocalAgent, image: BootImage, shared: Path, sd: str,
                 disk: str) -> None:
        self.dir = agent.directory
        self.tag_file = self.dir / "guest-tag"
        self.shared, self.sd, self.disk = shared, sd, disk
        hook = self.dir / "hooks" / "before_vm_start" / "50_ovtest_boot"
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(_HOOK.format(python=sys.executable, tag_file=str(self.tag_file),
                                     kernel=str(image.kernel), initrd=str(image.initrd),
                                     console_dir=str(self.dir)))
        hook.chmod(0o755)

    def next_boot(self, tag: str) -> None:
        self.tag_file.write_text(tag)

    def path(self, vol: str) -> Path:
        return volume_path(self.shared, self.sd, self.disk, vol)

    def records(self, vol: str, *, backing: bool = True) -> DiskRecords:
        return read_records(self.path(vol), backing=backing)

    def consoles(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted(self.dir.glob("console-*.log")))

    async def wait_records(self, vol: str, what: str, predicate: Callable[[DiskRecords], bool],
                           timeout_s: float = 60.0) -> DiskRecords:
        """Until what the guest wrote (read through vol's chain) satisfies it."""
        def check() -> DiskRecords | None:
            records = self.records(vol)
            return records if predicate(records) else None
        try:
            result: DiskRecords = await wait_until(check, timeout_s, what, interval_s=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nrecords: {self.records(vol)}\n"
                                 f"guest consoles:\n{self.consoles()}") from None
        return result


async def _leaf(engine: Engine, disk: str) -> str:
    return str(await engine.s.pool.fetchval("SELECT image_id FROM disks WHERE id=$1",
                                            uuid.UUID(disk)))


async def _db_chain(engine: Engine, disk: str) -> list[str]:
    """The disk's volumes from its leaf down, as the images rows link them."""
    rows = await engine.s.pool.fetch("SELECT id, parent_id FROM images WHERE disk_id=$1",
                                     uuid.UUID(disk))
    parent = {str(r["id"]): str(r["parent_id"]) for r in rows}
    chain = [await _leaf(engine, disk)]
    while parent[chain[-1]] != BLANK:
        chain.append(parent[chain[-1]])
    assert set(chain) == set(parent), f"rows outside the chain: {parent}"
    return chain


def _storage_chain(guest: Guest, leaf: str) -> list[str]:
    """The chain from the qcow2 headers (leaf down), checked against the
    volume metadata; every LEGAL volume of the image is in it."""
    chain = [leaf]
    while True:
        info = qemu_info(guest.path(chain[-1]))
        meta = read_kv(guest.path(chain[-1]).with_name(chain[-1] + ".meta"))
        backing = info.get("backing-filename")
        assert meta["PUUID"] == (backing or BLANK), (chain, meta, info)
        if not backing:
            break
        chain.append(backing)
    legal = {m.stem for m in image_dir(guest.shared, guest.sd, guest.disk).glob("*.meta")
             if read_kv(m)["LEGALITY"] == "LEGAL"}
    assert legal == set(chain), (legal, chain)
    return chain


async def _status_is(engine: Engine, vm: str, want: str) -> bool:
    return await vm_status(engine, vm) == want


async def _run(engine: Engine, vm: str, guest: Guest, tag: str) -> str:
    guest.next_boot(tag)
    s = engine.s
    host: str = (await s.runner.run(RunVm(s, SYSTEM, vm))).value
    try:
        await wait_until(lambda: _status_is(engine, vm, "up"), 60, "QEMU VM up")
    except AssertionError as exc:
        raise AssertionError(f"{exc} (status {await vm_status(engine, vm)})\n"
                             f"{guest.consoles()}") from None
    return host


async def _stop(engine: Engine, vm: str) -> None:
    s = engine.s
    await s.runner.run(StopVm(s, SYSTEM, vm))
    await wait_until(lambda: _status_is(engine, vm, "down"), 30, "VM down")


async def _running_chain(engine: Engine, host: str, vm: str, disk: str) -> list[str]:
    xml = (await engine.s.hosts.call(host, "Host.dumpxmls", {"vmList": [vm]}))[vm]
    return drive_chain(xml, disk)


async def test_live_snapshot_preview_commit_and_live_merge_on_qemu(
        libvirtd: None, guest_image: BootImage, engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    s = engine.s
    (agent,) = await storage_hosts(engines, engine, 1, libvirt_uri="qemu:///system")
    shared = engines.base / "shared"
    _, sd = await posix_data_center(engine, [agent], shared)
    _, cluster = await default_ids(engine)
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name=f"{PREFIX}snap", memory_mib=192, memory_guaranteed_mib=192)))).value
    disk = await finished(await s.runner.run(AddDisk(
        s, SYSTEM, sd, DISK_SIZE, "cow", True, alias="boot",
        attach=DiskAttach(vm, bootable=True))))
    base = await _leaf(engine, disk)
    guest = Guest(agent, guest_image, shared, sd, disk)

    # ---- a live snapshot of the running VM
    host = await _run(engine, vm, guest, "first")
    assert await _running_chain(engine, host, vm, disk) == [base]
    await guest.wait_records(base, "boot 1 and 3 heartbeats",
                             lambda r: r.boots == {1: "first"} and r.last_heartbeat(1) >= 2)
    s1 = await finished(await s.runner.run(CreateSnapshot(s, SYSTEM, vm, "s1",
                                                          disk_ids=[disk])))
    top = await _leaf(engine, disk)
    assert top != base
    assert await _running_chain(engine, host, vm, disk) == [top, base]
    assert await _db_chain(engine, disk) == _storage_chain(guest, top) == [top, base]
    # From now on the guest writes into the new leaf; the base holds the past.
    at_snapshot = guest.records(base, backing=False)
    taken = at_snapshot.last_heartbeat(1)
    assert at_snapshot.boots == {1: "first"} and taken >= 2 and at_snapshot.contiguous(1)
    await guest.wait_records(top, "3 heartbeats after the snapshot",
                             lambda r: r.last_heartbeat(1) >= taken + 3)
    assert guest.records(top, backing=False).last_heartbeat(1) > taken
    assert guest.records(base, backing=False) == at_snapshot  # read only now

    # ---- stopped: preview s1 and commit; the writes after it are gone
    await _stop(engine, vm)
    await finished(await s.runner.run(PreviewSnapshot(s, SYSTEM, vm, s1)))
    await finished(await s.runner.run(CommitSnapshot(s, SYSTEM, vm)))
    committed = await _leaf(engine, disk)
    assert committed not in (top, base)
    assert await _db_chain(engine, disk) == _storage_chain(guest, committed) == [committed,
                                                                                 base]
    assert not guest.path(top).exists()
    assert guest.records(committed) == at_snapshot

    # ---- run again from the committed state, snapshot live, remove it live
    host = await _run(engine, vm, guest, "second")
    await guest.wait_records(committed, "boot 2 and 2 heartbeats",
                             lambda r: r.boots == {1: "first", 2: "second"}
                             and r.last_heartbeat(2) >= 1)
    s2 = await finished(await s.runner.run(CreateSnapshot(s, SYSTEM, vm, "s2",
                                                          disk_ids=[disk])))
    leaf = await _leaf(engine, disk)
    assert await _running_chain(engine, host, vm, disk) == [leaf, committed, base]
    assert await _db_chain(engine, disk) == _storage_chain(guest, leaf) == [leaf, committed,
                                                                           base]
    taken2 = guest.records(committed, backing=False).last_heartbeat(2)
    await guest.wait_records(leaf, "heartbeats in the new leaf",
                             lambda r: r.last_heartbeat(2) >= taken2 + 3)

    # Live merge: the active leaf is committed into s2's volume, which
    # becomes the leaf again (blockCommit of the active layer, then pivot).
    await finished(await s.runner.run(RemoveSnapshot(s, SYSTEM, vm, s2)), 90)
    assert await s.pool.fetchval("SELECT 1 FROM snapshots WHERE id=$1", uuid.UUID(s2)) is None
    assert await _leaf(engine, disk) == committed
    assert await _running_chain(engine, host, vm, disk) == [committed, base]
    assert await _db_chain(engine, disk) == _storage_chain(guest, committed) == [committed,
                                                                                 base]
    assert not guest.path(leaf).exists()
    assert read_kv(guest.path(committed).with_name(committed + ".meta"))["VOLTYPE"] == "LEAF"
    # The guest goes on writing into the merged volume; nothing was lost.
    now = guest.records(committed).last_heartbeat(2)
    await guest.wait_records(committed, "heartbeats after the merge",
                             lambda r: r.last_heartbeat(2) >= now + 2)
    await _stop(engine, vm)
    final = guest.records(committed)
    assert final.boots == {1: "first", 2: "second"} and final.counter == 2, final
    assert final.heartbeats[1] == list(range(taken + 1))  # boot 1 as at s1
    assert final.contiguous(2) and final.last_heartbeat(2) >= taken2 + 5, final
    assert guest.records(base, backing=False) == at_snapshot  # s1 untouched
    assert await s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0
    assert await s.pool.fetchval("SELECT count(*) FROM async_tasks") == 0
    rows: list[Any] = await s.pool.fetch("SELECT snapshot_type, status FROM snapshots "
                                         "WHERE vm_id=$1 ORDER BY creation_date",
                                         uuid.UUID(vm))
    assert [(r["snapshot_type"], r["status"]) for r in rows] == [("active", "ok"),
                                                                 ("regular", "ok")]
