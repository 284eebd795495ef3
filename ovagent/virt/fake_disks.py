"""Disk snapshots and commit jobs of FakeHypervisor's domains (XML only, no data).

What libvirt does to a running domain's XML, reproduced on the fake's live
definition: a disk-only snapshot moves a drive to its new overlay (the old
chain becomes its <backingStore>); a commit job removes layers from the chain
(an active commit first becomes ready, then pivots to the base). Jobs finish
at once; their events are delivered by the caller (FakeHypervisor) in the
order libvirt sends them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .hypervisor import BlockJobInfo, BlockJobStatus, HypervisorError

__all__ = ["FakeDisks", "FakeBlockJob"]


@dataclass
class FakeBlockJob:
    disk: str
    active: bool
    base: int  # position in the chain list (0 = active layer)
    top: int
    size: int = 1 << 20

    def info(self) -> BlockJobInfo:
        return BlockJobInfo("active_commit" if self.active else "commit", self.size,
                            self.size)


def _chain(disk: ET.Element) -> list[ET.Element]:
    """The <source>-holding elements of a disk's chain: the disk, then each
    <backingStore>, active layer first."""
    out = [disk]
    store = disk.find("backingStore")
    while store is not None and store.find("source") is not None:
        out.append(store)
        store = store.find("backingStore")
    return out


class FakeDisks:
    """The disks of one fake domain's live XML and their block jobs."""

    def __init__(self, root: ET.Element) -> None:
        self.root = root
        self.jobs: dict[str, FakeBlockJob] = {}
        self._next_index = 1
        for disk in root.iterfind("devices/disk"):
            source = disk.find("source")
            if source is not None and source.get("index") is None:
                source.set("index", str(self._take_index()))

    def _take_index(self) -> int:
        value = self._next_index
        self._next_index += 1
        return value

    def _disk(self, name: str) -> ET.Element:
        for disk in self.root.iterfind("devices/disk"):
            target = disk.find("target")
            if target is not None and target.get("dev") == name:
                return disk
        raise HypervisorError(f"invalid argument: disk '{name}' not found in domain")

    # ----------------------------------------------------------- snapshot
    def snapshot(self, snapshot_xml: str) -> None:
        try:
            snap = ET.fromstring(snapshot_xml)
        except ET.ParseError as exc:
            raise HypervisorError(f"XML error: {exc}") from None
        changes = []
        for el in snap.iterfind("disks/disk"):
            if el.get("snapshot") != "external":
                continue
            disk = self._disk(el.get("name", ""))
            if disk.get("device", "disk") != "disk":
                raise HypervisorError(f"unsupported configuration: cannot snapshot "
                                      f"{disk.get('device')} {el.get('name')}")
            if el.get("name", "") in self.jobs:
                raise HypervisorError(f"block job on {el.get('name')} in progress")
            source = el.find("source")
            if source is None or not source.get("file"):
                raise HypervisorError("snapshot disk needs a source file")
            changes.append((disk, source.get("file", "")))
        for disk, new_file in changes:
            self._push_overlay(disk, new_file)

    def _push_overlay(self, disk: ET.Element, new_file: str) -> None:
        old_source = disk.find("source")
        old_driver = disk.find("driver")
        old_store = disk.find("backingStore")
        store = ET.Element("backingStore", type=disk.get("type", "file"),
                           index=old_source.get("index", "0") if old_source is not None
                           else "0")
        ET.SubElement(store, "format",
                      type=old_driver.get("type", "raw") if old_driver is not None else "raw")
        if old_source is not None:
            copy = ET.SubElement(store, "source", dict(old_source.attrib))
            copy.attrib.pop("index", None)
            disk.remove(old_source)
        if old_store is not None:
            disk.remove(old_store)
            store.append(old_store)
        new_source = ET.Element("source", file=new_file, index=str(self._take_index()))
        target = disk.find("target")
        disk.insert(list(disk).index(target) if target is not None else 0, new_source)
        disk.append(store)
        if old_driver is not None:
            old_driver.set("type", "qcow2")

    # --------------------------------------------------------------- jobs
    def _position(self, chain: list[ET.Element], name: str, target: str) -> int:
        for pos, el in enumerate(chain):
            source = el.find("source")
            index = (source.get("index") if pos == 0 and source is not None
                     else el.get("index"))
            path = source.get("file", "") if source is not None else ""
            if target in (f"{name}[{index}]", path) or (pos == 0 and target == name):
                return pos
        raise HypervisorError(f"invalid argument: could not find image '{target}' "
                              f"in chain for '{name}'")

    def commit(self, name: str, base: str, top: str, active: bool) -> FakeBlockJob:
        disk = self._disk(name)
        if name in self.jobs:
            raise HypervisorError(f"block job on {name} already active")
        chain = _chain(disk)
        top_pos = self._position(chain, name, top)
        base_pos = self._position(chain, name, base)
        if base_pos <= top_pos:
            raise HypervisorError(f"invalid argument: '{base}' is not a backing image "
                                  f"of '{top}'")
        if active != (top_pos == 0):
            raise HypervisorError("invalid argument: the active layer needs an active "
                                  "commit (and only it)")
        job = FakeBlockJob(name, active, base_pos, top_pos)
        self.jobs[name] = job
        return job

    def finish(self, job: FakeBlockJob) -> None:
        """Drop the committed layers: the top's child now backs onto the base;
        for an active commit the drive now writes to the base."""
        disk = self._disk(job.disk)
        chain = _chain(disk)
        base = chain[job.base]
        if job.top == 0:
            self._make_active(disk, base)
        else:
            child = chain[job.top - 1]
            old = child.find("backingStore")
            if old is not None:
                child.remove(old)
            child.append(base)
        self.jobs.pop(job.disk, None)

    @staticmethod
    def _make_active(disk: ET.Element, base: ET.Element) -> None:
        for tag in ("source", "backingStore"):
            el = disk.find(tag)
            if el is not None:
                disk.remove(el)
        source = base.find("source")
        assert source is not None
        new_source = ET.Element("source", dict(source.attrib), index=base.get("index", "0"))
        target = disk.find("target")
        disk.insert(list(disk).index(target) if target is not None else 0, new_source)
        fmt = base.find("format")
        driver = disk.find("driver")
        if driver is not None and fmt is not None:
            driver.set("type", fmt.get("type", "raw"))
        below = base.find("backingStore")
        if below is not None:
            disk.append(below)

    def abort(self, name: str, pivot: bool) -> BlockJobStatus:
        job = self.jobs.get(name)
        if job is None:
            raise HypervisorError(f"operation invalid: disk {name} does not have an "
                                  "active block job")
        if pivot:
            if not job.active:
                raise HypervisorError(f"block job on {name} is not an active commit")
            self.finish(job)
            return BlockJobStatus.COMPLETED
        self.jobs.pop(name, None)
        return BlockJobStatus.CANCELED

    def info(self, name: str) -> BlockJobInfo | None:
        self._disk(name)
        job = self.jobs.get(name)
        return job.info() if job is not None else None

    def mark_ready(self, job: FakeBlockJob) -> None:
        """libvirt shows a ready active commit as <mirror ready='yes'> in the XML."""
        disk = self._disk(job.disk)
        ET.SubElement(disk, "mirror", type="file", job="active-commit", ready="yes")

    def clear_mirror(self, name: str) -> None:
        disk = self._disk(name)
        for mirror in disk.findall("mirror"):
            disk.remove(mirror)
