"""OVA files on a host: read an OVA's OVF and member index, write an OVA
from volumes, copy a disk out of an OVA member into a volume.

The layout is oVirt's (pack_ova.py / extract_ova.py): an uncompressed tar
whose first member is `vm.ovf` (or `template.ovf`), then one member per disk
named by its volume UUID and holding a qcow2 image, then two zero blocks.
A disk member is exactly as long as the OVF's File ovf:size says: oVirt
sizes it with `qemu-img measure` before converting, so the image is padded
with zeros to that size, and we do the same.

qemu-img reads a member in place through a raw node with an offset, so an
import extracts nothing.  An export converts each disk into a hidden
temporary file next to the OVA and streams it into the tar, then renames
the tar into place: a half-written OVA never carries the final name.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import StorageError
from .tasks import TaskContext

if TYPE_CHECKING:
    from .service import StorageService

__all__ = ["OvaError", "OvaMember", "OvaService", "read_index_blocking",
           "write_ova_blocking", "member_json"]

BLOCK = 512
MAX_OVF_BYTES = 16 * 1024 * 1024
_COPY_CHUNK = 8 * 1024 * 1024
IMAGE_FORMATS = ("qcow2", "raw", "vmdk")


class OvaError(StorageError):
    """The file is not a usable OVA (named in the message)."""


@dataclass(frozen=True, slots=True)
class OvaMember:
    name: str
    offset: int   # of the data, in the tar file
    size: int


def read_index_blocking(path: Path) -> list[OvaMember]:
    if not path.is_absolute():
        raise OvaError(f"{path}: the OVA path must be absolute")
    if not path.is_file():
        raise OvaError(f"{path}: no such file")
    try:
        # "r:" only: oVirt's OVAs are never compressed and we read members in place.
        with tarfile.open(path, "r:") as tar:
            return [OvaMember(m.name, m.offset_data, m.size) for m in tar.getmembers()
                    if m.isfile()]
    except tarfile.TarError as exc:
        raise OvaError(f"{path} is not an OVA (not an uncompressed tar file: {exc})") from None


def read_bytes_blocking(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def _header(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o644
    # GNU format: members of 8 GiB and more need its base-256 size field.
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _pad(f: BinaryIO, size: int) -> None:
    rest = size % BLOCK
    if rest:
        f.write(b"\0" * (BLOCK - rest))


def _copy_padded(dst: BinaryIO, src_path: Path, size: int) -> None:
    written = 0
    with open(src_path, "rb") as src:
        while True:
            chunk = src.read(_COPY_CHUNK)
            if not chunk:
                break
            dst.write(chunk)
            written += len(chunk)
    if written > size:
        raise OvaError(f"{src_path}: the image ({written} bytes) is larger than the "
                       f"{size} bytes the OVF announces")
    # Zeros up to the announced size: seek leaves a hole instead of writing them.
    dst.seek(size - written, os.SEEK_CUR)
    _pad(dst, size)


def write_ova_blocking(dst: Path, ovf_name: str, ovf: bytes,
                       disks: list[tuple[str, Path, int]], mtime: float) -> None:
    """Write the tar to `dst` (which must not exist yet); disks are
    (member name, image file, announced size)."""
    with open(dst, "xb") as f:
        f.write(_header(ovf_name, len(ovf), mtime))
        f.write(ovf)
        _pad(f, len(ovf))
        for name, path, size in disks:
            f.write(_header(name, size, mtime))
            _copy_padded(f, path, size)
        f.write(b"\0" * (2 * BLOCK))
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def rename_new_blocking(src: Path, dst: Path) -> None:
    if dst.exists():
        raise OvaError(f"{dst} exists already")
    os.rename(src, dst)


def remove_quietly_blocking(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def member_json(ova: Path, member: OvaMember, fmt: str | None = None) -> str:
    """A qemu image spec reading a tar member in place (a raw node with an
    offset); without `fmt` qemu probes the format."""
    node: dict[str, Any] = {"driver": "raw", "offset": member.offset, "size": member.size,
                            "file": {"driver": "file", "filename": str(ova)}}
    spec: dict[str, Any] = {"file": node} if fmt is None else {"driver": fmt, "file": node}
    return "json:" + json.dumps(spec)


class OvaService:
    """The OVA verbs' work, on the agent's storage (domains, qemu-img, tasks)."""

    def __init__(self, storage: "StorageService") -> None:
        self.storage = storage
        self.io = storage.io
        self.qemu = storage.qemu

    async def _index(self, ova: Path) -> list[OvaMember]:
        return await self.io.run(read_index_blocking, ova)

    async def _probe(self, ova: Path, m: OvaMember) -> tuple[str, int]:
        try:
            info = await self.qemu.info(Path(member_json(ova, m)))
        except StorageError:
            return "", 0
        return str(info.get("format", "")), int(info.get("virtual-size", 0))

    async def query(self, ova_path: str) -> dict[str, Any]:
        ova = Path(ova_path)
        members = await self._index(ova)
        ovfs = [m for m in members if m.name.lower().endswith(".ovf")]
        if not ovfs:
            raise OvaError(f"{ova} is not an OVA: it holds no .ovf file")
        ovf_m = ovfs[0]
        if ovf_m.size > MAX_OVF_BYTES:
            raise OvaError(f"{ova}: the OVF {ovf_m.name} is too large ({ovf_m.size} bytes)")
        raw = await self.io.run(read_bytes_blocking, ova, ovf_m.offset, ovf_m.size)
        files = []
        for m in members:
            if m is ovf_m:
                continue
            fmt, vsize = await self._probe(ova, m)
            files.append({"name": m.name, "offset": m.offset, "size": m.size,
                          "format": fmt, "virtualSize": vsize})
        return {"ovf": raw.decode("utf-8", "replace"), "ovfName": ovf_m.name, "files": files}

    async def _leaf(self, sd: str, img: str, vol: str) -> tuple[Path, str]:
        dom = await self.storage.domain(sd)
        prepared = await self.storage.volumes.prepare(dom, img, vol, False)
        md = await dom.read_volume(img, vol)
        return Path(prepared["path"]), "qcow2" if md.format == "COW" else "raw"

    async def measure(self, sd: str, img: str, vol: str) -> dict[str, int]:
        path, fmt = await self._leaf(sd, img, vol)
        required = await self.qemu.measure_qcow2(path, fmt)
        info = await self.qemu.info(path, fmt)
        return {"required": required, "virtualSize": int(info["virtual-size"])}

    async def export(self, ova_path: str, ovf: str, disks: list[dict[str, Any]],
                     entity: str) -> str:
        ova = Path(ova_path)
        if not ova.is_absolute() or ova.name in ("", ".", ".."):
            raise OvaError(f"{ova_path}: the OVA path must be an absolute file path")
        if entity not in ("vm", "template"):
            raise OvaError(f"entity must be vm or template, not {entity!r}")
        if not await self.io.run(ova.parent.is_dir):
            raise OvaError(f"{ova.parent}: no such directory")
        if await self.io.run(ova.exists):
            raise OvaError(f"{ova} exists already")
        sources = [(d, *await self._leaf(d["storagedomainID"], d["imageID"], d["volumeID"]))
                   for d in disks]
        tmp = ova.with_name(f".{ova.name}.part")
        temps = [ova.with_name(f".{ova.name}.{d['name']}.qcow2") for d in disks]

        async def body(_ctx: TaskContext) -> None:
            try:
                for (d, src, fmt), t in zip(sources, temps):
                    await self.io.run(remove_quietly_blocking, t)
                    await self.qemu.convert(src, t, src_fmt=fmt, dst_fmt="qcow2",
                                            timeout_s=self.storage.config.copy_timeout_s)
                members = [(d["name"], t, int(d["size"])) for (d, _, _), t in
                           zip(sources, temps)]
                await self.io.run(remove_quietly_blocking, tmp)
                await self.io.run(write_ova_blocking, tmp, f"{entity}.ovf", ovf.encode(),
                                  members, time.time(), timeout_s=self.storage.config.copy_timeout_s)
                await self.io.run(rename_new_blocking, tmp, ova)
            finally:
                await self.io.run(remove_quietly_blocking, tmp, *temps)

        return await self.storage.tasks.start("exportOva", body, tag="ova",
                                              recovery={"kind": "exportOva", "path": ova_path})

    async def import_disk(self, ova_path: str, member: str, sd: str, img: str,
                          vol: str) -> str:
        ova = Path(ova_path)
        found = [m for m in await self._index(ova) if m.name == member]
        if not found:
            raise OvaError(f"{ova} has no member {member!r}")
        m = found[0]
        fmt, vsize = await self._probe(ova, m)
        if fmt not in IMAGE_FORMATS:
            raise OvaError(f"member {member} of {ova} is not a disk image qemu-img can read "
                           f"({fmt or 'unknown format'})")
        dst, dst_fmt = await self._leaf_any(sd, img, vol)
        capacity = int((await self.qemu.info(dst, dst_fmt))["virtual-size"])
        if vsize > capacity:
            raise OvaError(f"member {member} ({vsize} bytes) does not fit volume {vol} "
                           f"({capacity} bytes)")
        src = member_json(ova, m, fmt)

        async def body(_ctx: TaskContext) -> None:
            # -n: write into the volume Volume.create made (its metadata and
            # format stay); it is new, so it reads as zeros already.
            await self.qemu.convert_into(src, dst, src_fmt=fmt, dst_fmt=dst_fmt,
                                         timeout_s=self.storage.config.copy_timeout_s)

        return await self.storage.tasks.start("importOvaDisk", body, tag="ova",
                                              recovery={"kind": "importOvaDisk"})

    async def _leaf_any(self, sd: str, img: str, vol: str) -> tuple[Path, str]:
        dom = await self.storage.domain(sd)
        md = await dom.read_volume(img, vol)
        return dom.volume_path(img, vol), "qcow2" if md.format == "COW" else "raw"
