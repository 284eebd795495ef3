"""Live disk snapshots (VM.snapshot), as vdsm takes them.

The engine creates each new leaf volume beforehand (Volume.create on the SPM,
qcow2, with the drive's current leaf as parent). The snapshot then prepares
each new leaf on this host and asks libvirt for an external disk-only
snapshot reusing those files, without libvirt snapshot metadata: the drives
switch to their new leaf atomically (QEMU pauses I/O for it), and the domain
XML (and so the VM's `hash`) changes, which tells the engine to fetch it.

Differences from vdsm: no guest agent, so the file systems are never frozen
(the snapshot is crash-consistent; `frozen` changes nothing); memory
snapshots (snapMemory) are refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from protocol.jsonrpc import ErrorCode, JsonRpcError

from .disks import Drive, drives, snapshot_xml
from .drivestorage import DriveStorage
from .errors import snapshot_error
from .hypervisor import Hypervisor, HypervisorError

__all__ = ["SnapshotDrive", "parse_snap_drives", "take_snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotDrive:
    """One entry of snapDrives: move image `img` of `sd` from `base` to `vol`."""

    sd: str
    img: str
    vol: str  # the new leaf
    base: str | None  # the leaf the drive uses now (None: whatever it is)


def parse_snap_drives(raw: list[dict[str, Any]]) -> list[SnapshotDrive]:
    out = []
    for entry in raw:
        try:
            out.append(SnapshotDrive(str(entry["domainID"]), str(entry["imageID"]),
                                     str(entry["volumeID"]),
                                     str(entry["baseVolumeID"]) if entry.get("baseVolumeID")
                                     else None))
        except KeyError as exc:
            raise snapshot_error(f"snapDrives entry {entry} lacks {exc}") from None
    return out


def _plan(xml: str, wanted: list[SnapshotDrive]) -> tuple[list[Drive],
                                                        list[tuple[SnapshotDrive, Drive]]]:
    all_drives = drives(xml)
    plan: list[tuple[SnapshotDrive, Drive]] = []
    for spec in wanted:
        drive = next((d for d in all_drives if d.ref is not None
                      and (d.ref.sd, d.ref.img) == (spec.sd, spec.img)), None)
        if drive is None or drive.ref is None:
            raise snapshot_error(f"the VM has no drive of image {spec.img} on domain "
                                 f"{spec.sd}")
        if drive.ref.vol == spec.vol:
            log.info("drive %s already uses volume %s: nothing to do", drive.name, spec.vol)
            continue
        if spec.base is not None and drive.ref.vol != spec.base:
            raise snapshot_error(f"drive {drive.name} uses volume {drive.ref.vol}, not the "
                                 f"base volume {spec.base}")
        if any(d is drive for _, d in plan):
            raise snapshot_error(f"drive {drive.name} is listed twice")
        plan.append((spec, drive))
    return all_drives, plan


async def take_snapshot(hypervisor: Hypervisor, storage: DriveStorage, vm_id: str,
                        wanted: list[SnapshotDrive], *, busy_drives: set[str]) -> int:
    """Move the drives to their new leaves; the number of drives moved."""
    try:
        xml = await hypervisor.get_xml(vm_id)
    except HypervisorError as exc:
        raise snapshot_error(str(exc)) from None
    all_drives, plan = _plan(xml, wanted)
    for _, drive in plan:
        if drive.name in busy_drives:
            raise snapshot_error(f"drive {drive.name} has a block job (a merge) running")
    if not plan:
        return 0
    prepared: list[SnapshotDrive] = []
    new_sources: dict[str, str] = {}
    try:
        for spec, drive in plan:
            assert drive.ref is not None
            info = await storage.volume_info(spec.sd, spec.img, spec.vol)
            if info.get("format") != "COW" or info.get("parent") != drive.ref.vol:
                raise snapshot_error(
                    f"volume {spec.vol} must be a qcow2 (COW) volume on top of "
                    f"{drive.ref.vol}, it is {info.get('format')} on {info.get('parent')}")
            new_sources[drive.name] = await storage.prepare_volume(spec.sd, spec.img, spec.vol)
            prepared.append(spec)
        request = snapshot_xml(new_sources, all_drives)
        log.info("VM %s: snapshot of %s", vm_id,
                 ", ".join(f"{d.name} onto {s.vol}" for s, d in plan))
        await hypervisor.snapshot_disks(vm_id, request, quiesce=False)
    except BaseException as exc:
        for spec in prepared:
            try:
                await storage.teardown_image(spec.sd, spec.img, spec.vol)
            except Exception as td_exc:
                log.warning("teardown of %s after a failed snapshot: %s", spec.vol, td_exc)
        if isinstance(exc, HypervisorError):
            raise snapshot_error(str(exc)) from None
        if isinstance(exc, JsonRpcError) and exc.code != ErrorCode.SNAPSHOT_ERROR:
            raise snapshot_error(exc.message) from None
        raise
    return len(plan)
