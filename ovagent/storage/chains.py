"""Volume chains after merges: metadata follows what qemu did.

Live merge (VM.merge, on the host running the VM): libvirt commits `top`
into `base` and rewrites the qcow2 links itself; `sync_volume_chain` then
makes the volume metadata say the same (vdsm's Image.syncVolumeChain):
volumes missing from the actual chain are unlinked; when the removed run
ends at the leaf (active commit), that leaf is marked ILLEGAL, before the
pivot, so that a crash at any point leaves a VM that must be started on the
base; otherwise the removed run's child gets the run's parent as PUUID.

Cold merge (Image.coldMerge, SPM, VM down): qemu-img commits `top` into its
parent `base` and rebases `top`'s children onto `base`. Ordering keeps every
moment recoverable: base is ILLEGAL while its content changes (reading
through top stays correct all along), children are relinked (qcow2 header,
then metadata), top is marked ILLEGAL (out of the chain), base is LEGAL
again last. Either way the removed volume stays on disk, ILLEGAL and
without children, for the engine to delete with Volume.delete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from .constants import ILLEGAL, INTERNAL, LEAF, LEGAL, SHARED, qemu_format
from .domain import FileDomain
from .errors import MergeSnapshotsError, VolumeDoesNotExist
from .metadata import VolumeMetadata
from .qemuimg import QemuImgError
from .volumes import Volumes

__all__ = ["sync_volume_chain", "ColdMergeRequest", "check_cold_merge", "cold_merge_body",
           "cold_merge_recovery", "cold_merge_done"]

log = logging.getLogger(__name__)


async def sync_volume_chain(volumes: Volumes, dom: FileDomain, img: str, leaf: str,
                            actual: list[str]) -> list[str]:
    """Unlink from the metadata chain of `leaf` the volumes not in `actual`
    (what the VM really uses); returns the unlinked volumes, leaf-side first."""
    chain = await volumes.chain(dom, img, leaf)  # leaf first
    uuids = [uuid for uuid, _ in chain]
    metas = dict(chain)
    removed: list[str] = []
    for uuid in uuids:
        if uuid not in actual:
            removed.append(uuid)
        elif removed:
            break  # one contiguous run per merge
    if not removed:
        return []
    top, bottom = removed[0], removed[-1]
    new_parent = metas[bottom].parent
    if top == uuids[0]:
        md = metas[top]
        if md.legality != ILLEGAL:
            log.info("leaf %s/%s leaves the chain: marking it ILLEGAL", img, top)
            await dom.write_volume(img, top, replace(md, legality=ILLEGAL))
    else:
        child = uuids[uuids.index(top) - 1]
        log.info("volume %s of image %s now backs onto %s (was %s)", child, img,
                 new_parent, top)
        await dom.write_volume(img, child, replace(metas[child], parent=new_parent))
    return removed


@dataclass(frozen=True)
class ColdMergeRequest:
    img: str
    base: str
    top: str


async def check_cold_merge(volumes: Volumes, dom: FileDomain,
                           req: ColdMergeRequest) -> None:
    metas = await volumes.metas(dom, req.img)
    for vol in (req.base, req.top):
        if vol not in metas:
            raise VolumeDoesNotExist(f"{vol} in image {req.img}")
    base, top = metas[req.base], metas[req.top]
    if top.parent != req.base:
        raise MergeSnapshotsError(f"{req.base} is not the parent of {req.top}")
    if base.voltype == SHARED or base.image != req.img:
        raise MergeSnapshotsError(f"base {req.base} is a template volume (SHARED)")
    if top.image != req.img:
        raise MergeSnapshotsError(f"top {req.top} belongs to image {top.image}")
    for vol, md in ((req.base, base), (req.top, top)):
        if md.legality != LEGAL:
            raise MergeSnapshotsError(f"volume {vol} is {md.legality}")


def cold_merge_recovery(dom: FileDomain, req: ColdMergeRequest) -> dict[str, Any]:
    return {"kind": "cold_merge", "image_dir": str(dom.image_dir(req.img)),
            "base": req.base, "top": req.top}


def cold_merge_done(metas: dict[str, VolumeMetadata], base: str, top: str) -> bool:
    """Finished: top is out of the chain (ILLEGAL, nobody's parent), base LEGAL."""
    top_md, base_md = metas.get(top), metas.get(base)
    if base_md is None or base_md.legality != LEGAL:
        return False
    if top_md is not None and top_md.legality != ILLEGAL:
        return False
    return not any(md.parent == top for v, md in metas.items() if v != top)


async def cold_merge_body(volumes: Volumes, dom: FileDomain, req: ColdMergeRequest, *,
                          rate_limit_bytes_s: int, timeout_s: float) -> None:
    metas = await volumes.metas(dom, req.img)
    base, top = metas[req.base], metas[req.top]
    children = sorted(v for v, md in metas.items() if md.parent == req.top and v != req.top)
    await dom.write_volume(req.img, req.base, replace(base, legality=ILLEGAL))
    try:
        await volumes.qemu.commit(dom.volume_path(req.img, req.top), qemu_format(top.format),
                                  rate_limit_bytes_s=rate_limit_bytes_s, timeout_s=timeout_s)
        for child in children:
            child_md = metas[child]
            await volumes.qemu.rebase_unsafe(dom.volume_path(req.img, child),
                                             qemu_format(child_md.format), req.base,
                                             qemu_format(base.format))
            await dom.write_volume(req.img, child, replace(child_md, parent=req.base))
    except QemuImgError as exc:
        raise MergeSnapshotsError(exc.detail) from None
    await dom.write_volume(req.img, req.top, replace(top, legality=ILLEGAL))
    await dom.write_volume(req.img, req.base, replace(
        base, legality=LEGAL, voltype=INTERNAL if children else LEAF,
        capacity=max(base.capacity, top.capacity)))
    log.info("cold merge of %s into %s (image %s) done; %s is out of the chain",
             req.top, req.base, req.img, req.top)
