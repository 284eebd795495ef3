"""The VM's disks as the domain XML shows them (pure functions, no libvirt).

A drive on a storage domain has a source path ending in
`<sdUUID>/images/<imgUUID>/<volUUID>` (the domain's mount directory, or the
pool link /rhev/data-center/<spUUID>/<sdUUID>/...): that is how the agent
knows which volume a drive uses, as vdsm's drive objects do. The live XML of
a running domain also lists each drive's backing chain (<backingStore>, with
the `index` libvirt uses to name a layer: "vda[2]").
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import PurePosixPath

from .domxml import parse

__all__ = ["VolumeRef", "Layer", "Drive", "volume_ref", "drives", "find_drive",
           "snapshot_xml"]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class VolumeRef:
    sd: str
    img: str
    vol: str


@dataclass(frozen=True, slots=True)
class Layer:
    """One image of a drive's chain."""

    path: str
    vol: str | None  # volume UUID when the path is a storage domain volume
    index: int | None  # libvirt's index of the layer, when the XML gives it
    format: str = ""


@dataclass(frozen=True, slots=True)
class Drive:
    name: str  # target dev: vda, sdb, ...
    device: str  # disk, cdrom, lun
    path: str  # the active layer
    format: str  # qcow2, raw
    ref: VolumeRef | None  # the active layer's volume
    chain: tuple[Layer, ...]  # active layer first, then its backing files
    # An active commit on this drive copied everything: it can pivot.
    mirror_ready: bool = False

    @property
    def volumes(self) -> list[str]:
        """Volume UUIDs of the chain, leaf first."""
        return [layer.vol for layer in self.chain if layer.vol is not None]

    def layer(self, vol: str) -> Layer | None:
        for layer in self.chain:
            if layer.vol == vol:
                return layer
        return None

    def target(self, vol: str) -> str:
        """How libvirt names this volume of the drive: "vda[3]" (or its path)."""
        layer = self.layer(vol)
        if layer is None:
            raise LookupError(f"volume {vol} is not in the chain of {self.name}")
        if layer.index is not None:
            return f"{self.name}[{layer.index}]"
        return layer.path


def volume_ref(path: str) -> VolumeRef | None:
    """The volume a path names, when it is .../<sd>/images/<img>/<vol>."""
    parts = PurePosixPath(path).parts
    if len(parts) < 4 or parts[-3] != "images":
        return None
    sd, img, vol = parts[-4], parts[-2], parts[-1]
    if not all(_UUID.match(p) for p in (sd, img, vol)):
        return None
    return VolumeRef(sd, img, vol)


def _source_path(el: ET.Element | None) -> str:
    if el is None:
        return ""
    return el.get("file") or el.get("dev") or el.get("name") or ""


def _index(el: ET.Element | None) -> int | None:
    value = el.get("index") if el is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _drive(disk: ET.Element) -> Drive | None:
    target = disk.find("target")
    name = target.get("dev", "") if target is not None else ""
    source = disk.find("source")
    path = _source_path(source)
    if not name or not path:
        return None
    driver = disk.find("driver")
    fmt = driver.get("type", "raw") if driver is not None else "raw"
    # libvirt puts the active layer's index on <source> (or on <disk> in older
    # versions' live XML).
    index = _index(source) if _index(source) is not None else _index(disk)
    ref = volume_ref(path)
    chain = [Layer(path, ref.vol if ref else None, index, fmt)]
    store = disk.find("backingStore")
    while store is not None and store.find("source") is not None:
        layer_path = _source_path(store.find("source"))
        layer_ref = volume_ref(layer_path)
        fmt_el = store.find("format")
        chain.append(Layer(layer_path, layer_ref.vol if layer_ref else None, _index(store),
                           fmt_el.get("type", "") if fmt_el is not None else ""))
        store = store.find("backingStore")
    mirror = disk.find("mirror")
    return Drive(name, disk.get("device", "disk"), path, fmt, ref, tuple(chain),
                 mirror_ready=mirror is not None and mirror.get("ready") == "yes")


def drives(xml: str) -> list[Drive]:
    """The domain's disks that have a source, in XML order."""
    root = parse(xml)
    out = []
    for disk in root.iterfind("devices/disk"):
        drive = _drive(disk)
        if drive is not None:
            out.append(drive)
    return out


def find_drive(xml: str, sd: str, img: str, vol: str | None = None) -> Drive | None:
    """The drive using image `img` of domain `sd` (with `vol` in its chain, if given)."""
    for drive in drives(xml):
        if drive.ref is None or (drive.ref.sd, drive.ref.img) != (sd, img):
            continue
        if vol is None or vol in drive.volumes:
            return drive
    return None


def snapshot_xml(new_sources: dict[str, str], all_drives: list[Drive]) -> str:
    """A disk-only <domainsnapshot>: the named drives move to their new qcow2
    overlay (an existing file), every other disk is left out of the snapshot."""
    root = ET.Element("domainsnapshot")
    disks = ET.SubElement(root, "disks")
    for drive in all_drives:
        new = new_sources.get(drive.name)
        el = ET.SubElement(disks, "disk", name=drive.name)
        if new is None:
            el.set("snapshot", "no")
            continue
        el.set("snapshot", "external")
        el.set("type", "file")
        ET.SubElement(el, "driver", type="qcow2")
        ET.SubElement(el, "source", file=new)
    return ET.tostring(root, encoding="unicode")
