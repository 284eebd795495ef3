"""Volume and image operations on file domains (qemu-img + vdsm metadata).

Every operation that makes or changes a volume follows one rule, so that a
crash (kill -9, power loss) can never leave a half-made volume that claims
to be usable: mark ILLEGAL first (the .meta is written, atomically, before
any data exists), do the work, mark LEGAL last. Deletion marks ILLEGAL
first and removes the .meta last.

Operations that change storage are split in `check_*` (validation, run
before a task is started, so errors reach the caller synchronously) and the
task body (`*_body`), with a `rollback` for failures and a recovery checker
(`*_done`) for restarts. The SPM check is the caller's (StorageService).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .boundary import StorageIO
from .constants import (
    ALIGNMENT,
    BLANK_UUID,
    COW,
    ILLEGAL,
    INTERNAL,
    LEAF,
    LEASE_EXT,
    LEGAL,
    META_EXT,
    PREALLOCATED,
    RAW,
    SHARED,
    qemu_format,
)
from .domain import FileDomain
from .errors import (
    CannotDeleteSharedVolume,
    CopyImageError,
    CreateVolumeSizeError,
    ImageDoesNotExistInSD,
    IncorrectFormat,
    PrepareIllegalVolume,
    VolumeAlreadyExists,
    VolumeCreationError,
    VolumeDoesNotExist,
    VolumeExtendingError,
    VolumeHasChildren,
    VolumeResizeValueError,
)
from .fileio import create_sparse_blocking, fsync_dir_blocking, remove_blocking
from .metadata import VolumeMetadata
from .qemuimg import QemuImg, QemuImgError
from .tasks import TaskContext

__all__ = ["Volumes", "CreateRequest", "CopyRequest", "read_metas_blocking"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreateRequest:
    img: str
    vol: str
    capacity: int
    format: str
    type: str
    disktype: str
    description: str
    parent_img: str
    parent_vol: str
    initial_size: int | None
    legal: bool
    voltype: str = LEAF      # SHARED: a template's volume, filled next (OVA import)


@dataclass(frozen=True)
class CopyRequest:
    src_img: str
    src_vol: str
    dst_img: str
    dst_vol: str
    description: str
    voltype: str
    format: str
    type: str


def _sizes_blocking(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_blocks * 512


def read_metas_blocking(image_dir: Path) -> dict[str, VolumeMetadata]:
    out: dict[str, VolumeMetadata] = {}
    try:
        names = os.listdir(image_dir)
    except FileNotFoundError:
        return out
    for name in names:
        if name.endswith(META_EXT):
            try:
                out[name[:-len(META_EXT)]] = VolumeMetadata.decode(
                    (image_dir / name).read_bytes())
            except Exception as exc:  # a broken .meta must not hide the others
                log.warning("unreadable volume metadata %s: %s", image_dir / name, exc)
    return out


def _link_blocking(src: Path, dst: Path) -> None:
    if not dst.exists():
        os.link(src, dst)


def _mkdir_blocking(path: Path) -> bool:
    try:
        path.mkdir(parents=False)
    except FileExistsError:
        return False
    fsync_dir_blocking(path.parent)
    return True


def _rmdir_if_empty_blocking(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _exists_blocking(*paths: Path) -> list[bool]:
    return [p.exists() for p in paths]


class Volumes:
    def __init__(self, io: StorageIO, qemu: QemuImg, *, copy_timeout_s: float,
                 copy_rate_limit_bytes_s: int) -> None:
        self.io = io
        self.qemu = qemu
        self.copy_timeout_s = copy_timeout_s
        self.copy_rate_limit_bytes_s = copy_rate_limit_bytes_s

    # --------------------------------------------------------------- queries
    async def metas(self, dom: FileDomain, img: str) -> dict[str, VolumeMetadata]:
        return await self.io.run(read_metas_blocking, dom.image_dir(img))

    async def children(self, dom: FileDomain, img: str, vol: str) -> list[str]:
        return sorted(v for v, md in (await self.metas(dom, img)).items()
                      if md.parent == vol and v != vol)

    async def info(self, dom: FileDomain, img: str, vol: str) -> dict[str, Any]:
        md = await dom.read_volume(img, vol)
        sizes = await self.io.run(_sizes_blocking, dom.volume_path(img, vol))
        info: dict[str, Any] = {
            "uuid": vol, "type": md.type, "format": md.format, "disktype": md.disktype,
            "voltype": md.voltype, "capacity": str(md.capacity),
            "parent": md.parent or BLANK_UUID, "description": md.description,
            "pool": "", "domain": md.domain, "image": md.image, "ctime": str(md.ctime),
            "mtime": "0", "legality": md.legality, "generation": md.generation,
            "children": [],
        }
        if sizes is None:
            info.update(apparentsize="0", truesize="0", status="INVALID")
        else:
            info.update(apparentsize=str(sizes[0]), truesize=str(sizes[1]), status="OK")
        if md.legality == ILLEGAL:
            info["status"] = ILLEGAL
        if dom.lock.has_volume_leases:
            info["lease"] = {"path": str(dom.lease_path(img, vol)), "offset": 0}
        return info

    async def size(self, dom: FileDomain, img: str, vol: str) -> dict[str, str]:
        await dom.read_volume(img, vol)
        sizes = await self.io.run(_sizes_blocking, dom.volume_path(img, vol))
        if sizes is None:
            raise VolumeDoesNotExist(f"{vol}: no data file")
        return {"apparentsize": str(sizes[0]), "truesize": str(sizes[1])}

    async def chain(self, dom: FileDomain, img: str, vol: str
                    ) -> list[tuple[str, VolumeMetadata]]:
        """(uuid, metadata) of the volume and its ancestors, leaf first."""
        metas = await self.metas(dom, img)
        chain: list[tuple[str, VolumeMetadata]] = []
        current = vol
        while True:
            md = metas.get(current)
            if md is None:
                raise VolumeDoesNotExist(f"{current} in image {img}")
            chain.append((current, md))
            if not md.has_parent:
                return chain
            current = md.parent
            if len(chain) > 1000:
                raise VolumeDoesNotExist(f"loop in the chain of {vol}")

    async def prepare(self, dom: FileDomain, img: str, vol: str,
                      allow_illegal: bool) -> dict[str, Any]:
        chain = await self.chain(dom, img, vol)
        for uuid_, md in chain:
            if md.legality != LEGAL and not allow_illegal:
                raise PrepareIllegalVolume(f"volume {uuid_} of image {img} is {md.legality}")
        uuids = [uuid_ for uuid_, _ in chain]
        exists = await self.io.run(_exists_blocking,
                                   *(dom.volume_path(img, u) for u in uuids))
        missing = [u for u, ok in zip(uuids, exists) if not ok]
        if missing:
            raise VolumeDoesNotExist(f"data of {missing[0]} in image {img}")
        path = str(dom.volume_path(img, vol))
        volumes = []
        for uuid_ in reversed(uuids):
            entry: dict[str, Any] = {"domainID": dom.sd_uuid, "imageID": img,
                                     "volumeID": uuid_,
                                     "path": str(dom.volume_path(img, uuid_))}
            if dom.lock.has_volume_leases:
                entry.update(leasePath=str(dom.lease_path(img, uuid_)), leaseOffset=0)
            volumes.append(entry)
        return {"path": path, "info": {"type": "file", "path": path},
                "imgVolumesInfo": volumes}

    # ---------------------------------------------------------------- create
    async def check_create(self, dom: FileDomain, req: CreateRequest) -> None:
        if req.capacity < 1:
            raise CreateVolumeSizeError(f"size={req.capacity}")
        if await dom.volume_exists(req.img, req.vol):
            raise VolumeAlreadyExists(req.vol)
        if req.parent_vol != BLANK_UUID:
            if req.format != COW:
                raise IncorrectFormat(f"a {req.format} volume cannot have a parent")
            parent_img = req.parent_img if req.parent_img != BLANK_UUID else req.img
            parent = await dom.read_volume(parent_img, req.parent_vol)
            if parent.legality != LEGAL:
                raise VolumeCreationError(f"parent {req.parent_vol} is {parent.legality}")
            if parent_img != req.img and parent.voltype != SHARED:
                raise VolumeCreationError(
                    f"parent {req.parent_vol} of another image is not a template (SHARED)")
            if req.voltype == SHARED:
                raise VolumeCreationError("a template (SHARED) volume cannot have a parent")

    def create_recovery(self, dom: FileDomain, req: CreateRequest) -> dict[str, Any]:
        return {"kind": "create_volume", "meta": str(dom.meta_path(req.img, req.vol)),
                "data": str(dom.volume_path(req.img, req.vol))}

    async def create_body(self, dom: FileDomain, req: CreateRequest, ctx: TaskContext) -> None:
        image_dir = dom.image_dir(req.img)
        await ctx.note(created_dir=await self.io.run(_mkdir_blocking, image_dir))
        parent_img = req.parent_img if req.parent_img != BLANK_UUID else req.img
        has_parent = req.parent_vol != BLANK_UUID
        parent_md = None
        if has_parent:
            parent_md = await dom.read_volume(parent_img, req.parent_vol)
            if parent_img != req.img:
                # A template's volume is hard-linked into every image based on it.
                await ctx.note(linked=req.parent_vol)
                for suffix in ("", META_EXT, LEASE_EXT):
                    src = dom.image_dir(parent_img) / f"{req.parent_vol}{suffix}"
                    if suffix == LEASE_EXT and not dom.lock.has_volume_leases:
                        continue
                    await self.io.run(_link_blocking, src,
                                      image_dir / f"{req.parent_vol}{suffix}")
        md = VolumeMetadata.new(
            domain=dom.sd_uuid, image=req.img,
            parent=req.parent_vol if has_parent else BLANK_UUID, capacity=req.capacity,
            format=req.format, type=req.type, voltype=req.voltype, disktype=req.disktype,
            description=req.description, legality=ILLEGAL)
        await dom.write_volume(req.img, req.vol, md)  # ILLEGAL first
        await self._init_lease(dom, req.img, req.vol)
        data = dom.volume_path(req.img, req.vol)
        try:
            if req.format == COW:
                preallocation = "falloc" if req.type == PREALLOCATED and not has_parent \
                    else None
                await self.qemu.create(
                    data, "qcow2", req.capacity,
                    backing=req.parent_vol if has_parent else None,
                    backing_fmt=qemu_format(parent_md.format) if parent_md else None,
                    preallocation=preallocation)
            else:
                await self.qemu.create(data, "raw", req.capacity,
                                       preallocation="falloc" if req.type == PREALLOCATED
                                       else None)
        except QemuImgError as exc:
            raise VolumeCreationError(exc.detail) from None
        if parent_md is not None and parent_md.voltype == LEAF and parent_img == req.img:
            await dom.write_volume(req.img, req.parent_vol, replace(parent_md, voltype=INTERNAL))
        if req.legal:
            await dom.write_volume(req.img, req.vol, replace(md, legality=LEGAL))  # LEGAL last
        log.info("created volume %s/%s/%s (%s %s, %d bytes)", dom.sd_uuid, req.img, req.vol,
                 req.format, req.type, req.capacity)

    async def create_rollback(self, dom: FileDomain, req: CreateRequest) -> bool:
        clean = await self._remove_volume_files(dom, req.img, req.vol)
        if req.parent_vol != BLANK_UUID and req.parent_img in (BLANK_UUID, req.img):
            await self._relink_leaf(dom, req.img, req.parent_vol)
        await self._cleanup_image(dom, req.img)
        return clean

    async def _init_lease(self, dom: FileDomain, img: str, vol: str) -> None:
        if not dom.lock.has_volume_leases:
            return
        path = dom.lease_path(img, vol)
        await self.io.run(create_sparse_blocking, path, ALIGNMENT)
        await dom.lock.init_volume_lease(path, vol)

    # ---------------------------------------------------------------- delete
    async def check_delete(self, dom: FileDomain, img: str, vol: str, force: bool) -> None:
        md = await dom.read_volume(img, vol)
        if md.voltype == SHARED and not force:
            raise CannotDeleteSharedVolume(f"img {img} vol {vol}")
        children = await self.children(dom, img, vol)
        if children:
            raise VolumeHasChildren(f"{vol} has children {children}")

    def delete_recovery(self, dom: FileDomain, img: str, vol: str) -> dict[str, Any]:
        return {"kind": "delete_volume", "meta": str(dom.meta_path(img, vol)),
                "data": str(dom.volume_path(img, vol))}

    async def delete_body(self, dom: FileDomain, img: str, vol: str) -> None:
        md = await dom.read_volume(img, vol)
        if md.legality != ILLEGAL:
            await dom.write_volume(img, vol, replace(md, legality=ILLEGAL))  # ILLEGAL first
        await self._remove_volume_files(dom, img, vol)
        if md.has_parent:
            await self._relink_leaf(dom, img, md.parent)
        await self._cleanup_image(dom, img)
        log.info("deleted volume %s/%s/%s", dom.sd_uuid, img, vol)

    async def _remove_volume_files(self, dom: FileDomain, img: str, vol: str) -> bool:
        clean = True
        for path in (dom.volume_path(img, vol), dom.lease_path(img, vol),
                     dom.meta_path(img, vol)):  # metadata last
            try:
                await self.io.run(remove_blocking, path)
            except OSError as exc:
                log.error("cannot remove %s: %s", path, exc)
                clean = False
        return clean

    async def _relink_leaf(self, dom: FileDomain, img: str, parent: str) -> None:
        """After a child went away: a parent without children is a LEAF again."""
        metas = await self.metas(dom, img)
        parent_md = metas.get(parent)
        if parent_md is None or parent_md.voltype != INTERNAL:
            return
        if any(md.parent == parent for v, md in metas.items() if v != parent):
            return
        await dom.write_volume(img, parent, replace(parent_md, voltype=LEAF))

    async def _cleanup_image(self, dom: FileDomain, img: str) -> None:
        """Drop template links nobody uses any more, then the empty image dir."""
        metas = await self.metas(dom, img)
        own = {v for v, md in metas.items() if md.image == img}
        if not own:
            for v, md in metas.items():
                for path in (dom.volume_path(img, v), dom.lease_path(img, v),
                             dom.meta_path(img, v)):
                    await self.io.run(remove_blocking, path)
            await self.io.run(_rmdir_if_empty_blocking, dom.image_dir(img))

    # ---------------------------------------------------------------- extend
    async def check_extend(self, dom: FileDomain, img: str, vol: str, new_size: int
                           ) -> VolumeMetadata:
        md = await dom.read_volume(img, vol)
        if new_size < md.capacity:
            raise VolumeResizeValueError(f"new size {new_size} < current {md.capacity}")
        if md.voltype == SHARED:
            raise VolumeResizeValueError(f"{vol} is a template volume")
        return md

    def extend_recovery(self, dom: FileDomain, img: str, vol: str,
                        new_size: int) -> dict[str, Any]:
        return {"kind": "extend_volume", "meta": str(dom.meta_path(img, vol)),
                "size": new_size}

    async def extend_body(self, dom: FileDomain, img: str, vol: str, new_size: int) -> None:
        md = await dom.read_volume(img, vol)
        if new_size == md.capacity:
            return
        was_legal = md.legality == LEGAL
        await dom.write_volume(img, vol, replace(md, legality=ILLEGAL))
        preallocation = "falloc" if md.format == RAW and md.type == PREALLOCATED else None
        try:
            await self.qemu.resize(dom.volume_path(img, vol), qemu_format(md.format),
                                   new_size, preallocation)
        except QemuImgError as exc:
            raise VolumeExtendingError(exc.detail) from None
        await dom.write_volume(img, vol, replace(
            md, capacity=new_size, legality=LEGAL if was_legal else md.legality,
            generation=(md.generation + 1) % 1000))
        log.info("extended %s/%s/%s to %d bytes", dom.sd_uuid, img, vol, new_size)

    # ------------------------------------------------------------------ copy
    async def check_copy(self, src: FileDomain, dst: FileDomain, req: CopyRequest) -> None:
        if src.sd_uuid == dst.sd_uuid and req.src_img == req.dst_img:
            raise CopyImageError("source and destination image are the same")
        chain = await self.chain(src, req.src_img, req.src_vol)
        bad = [uuid_ for uuid_, md in chain if md.legality != LEGAL]
        if bad:
            raise CopyImageError(f"the chain of {req.src_vol} has ILLEGAL volumes")
        if await dst.volume_exists(req.dst_img, req.dst_vol):
            raise VolumeAlreadyExists(req.dst_vol)

    def copy_recovery(self, dst: FileDomain, req: CopyRequest) -> dict[str, Any]:
        return {"kind": "copy_volume", "meta": str(dst.meta_path(req.dst_img, req.dst_vol)),
                "data": str(dst.volume_path(req.dst_img, req.dst_vol))}

    async def copy_body(self, src: FileDomain, dst: FileDomain, req: CopyRequest,
                        ctx: TaskContext) -> None:
        src_md = await src.read_volume(req.src_img, req.src_vol)
        await ctx.note(created_dir=await self.io.run(_mkdir_blocking,
                                                     dst.image_dir(req.dst_img)))
        md = VolumeMetadata.new(
            domain=dst.sd_uuid, image=req.dst_img, parent=BLANK_UUID,
            capacity=src_md.capacity, format=req.format, type=req.type,
            voltype=req.voltype, disktype=src_md.disktype, description=req.description,
            legality=ILLEGAL)
        await dst.write_volume(req.dst_img, req.dst_vol, md)  # ILLEGAL first
        await self._init_lease(dst, req.dst_img, req.dst_vol)
        preallocation = "falloc" if req.type == PREALLOCATED else None
        try:
            await self.qemu.convert(
                src.volume_path(req.src_img, req.src_vol),
                dst.volume_path(req.dst_img, req.dst_vol),
                src_fmt=qemu_format(src_md.format), dst_fmt=qemu_format(req.format),
                preallocation=preallocation, rate_limit_bytes_s=self.copy_rate_limit_bytes_s,
                timeout_s=self.copy_timeout_s)
        except QemuImgError as exc:
            raise CopyImageError(exc.detail) from None
        await dst.write_volume(req.dst_img, req.dst_vol, replace(md, legality=LEGAL))
        log.info("copied %s/%s/%s to %s/%s/%s", src.sd_uuid, req.src_img, req.src_vol,
                 dst.sd_uuid, req.dst_img, req.dst_vol)

    async def copy_rollback(self, dst: FileDomain, req: CopyRequest) -> bool:
        clean = await self._remove_volume_files(dst, req.dst_img, req.dst_vol)
        await self._cleanup_image(dst, req.dst_img)
        return clean

    # ----------------------------------------------------------- image delete
    async def check_delete_image(self, dom: FileDomain, img: str) -> None:
        if not await self.io.run(os.path.isdir, dom.image_dir(img)):
            raise ImageDoesNotExistInSD(f"image={img}, domain={dom.sd_uuid}")

    def delete_image_recovery(self, dom: FileDomain, img: str) -> dict[str, Any]:
        return {"kind": "delete_image", "dir": str(dom.image_dir(img)),
                "removed": str(dom.removed_image_dir(img))}

    async def delete_image_body(self, dom: FileDomain, img: str) -> None:
        metas = await self.metas(dom, img)
        for vol, md in metas.items():
            if md.image == img and md.legality != ILLEGAL:  # ILLEGAL first
                await dom.write_volume(img, vol, replace(md, legality=ILLEGAL))
        removed = dom.removed_image_dir(img)
        await self.io.run(os.rename, dom.image_dir(img), removed)
        await self.io.run(remove_blocking, removed)
        log.info("deleted image %s/%s", dom.sd_uuid, img)

    async def collect_garbage(self, dom: FileDomain) -> None:
        """Remove leftovers of interrupted image deletions (SPM start)."""
        def removed_dirs() -> list[Path]:
            try:
                return [e for e in dom.images_dir.iterdir()
                        if e.name.startswith("_remove_me_")]
            except FileNotFoundError:
                return []
        for path in await self.io.run(removed_dirs):
            log.info("removing leftover %s", path)
            await self.io.run(remove_blocking, path)

    # -------------------------------------------------------------- recovery
    async def meta_is_legal(self, recovery: dict[str, Any], size: int | None = None) -> bool:
        def check() -> bool:
            data = Path(recovery["data"]) if "data" in recovery else None
            try:
                md = VolumeMetadata.decode(Path(recovery["meta"]).read_bytes())
            except Exception:  # missing or unreadable: not done
                return False
            if data is not None and not data.exists():
                return False
            return md.legality == LEGAL and (size is None or md.capacity == size)
        return await self.io.run(check)

    def recoverers(self) -> dict[str, Any]:
        async def created(rec: dict[str, Any]) -> bool:
            return await self.meta_is_legal(rec)

        async def extended(rec: dict[str, Any]) -> bool:
            return await self.meta_is_legal(rec, int(rec["size"]))

        async def deleted(rec: dict[str, Any]) -> bool:
            gone = await self.io.run(_exists_blocking, Path(rec["meta"]), Path(rec["data"]))
            return not any(gone)

        async def image_deleted(rec: dict[str, Any]) -> bool:
            gone = await self.io.run(_exists_blocking, Path(rec["dir"]), Path(rec["removed"]))
            return not any(gone)

        return {"create_volume": created, "copy_volume": created,
                "extend_volume": extended, "delete_volume": deleted,
                "delete_image": image_deleted}
