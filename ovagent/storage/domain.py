"""File storage domains: vdsm's on-disk layout, metadata and lookup.

    <mount>/<sdUUID>/dom_md/metadata     domain (and, on the master, pool) metadata
    <mount>/<sdUUID>/dom_md/ids          sanlock lockspace (host ids)
    <mount>/<sdUUID>/dom_md/leases       sanlock resources (SDM lease at 1 MiB)
    <mount>/<sdUUID>/dom_md/inbox|outbox 16 MiB mailboxes (created, unused)
    <mount>/<sdUUID>/images/<imgUUID>/<volUUID>        volume data
    <mount>/<sdUUID>/images/<imgUUID>/<volUUID>.meta   volume metadata
    <mount>/<sdUUID>/images/<imgUUID>/<volUUID>.lease  volume lease (sanlock domains)

All file access runs through StorageIO (blocking, bounded, timed).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Callable

from .boundary import StorageIO
from .clusterlock import ClusterLock
from .constants import (
    ALIGNMENT,
    BLOCK_SIZE,
    DOMAIN_MD_DIR,
    DOMAIN_VERSION,
    IDS,
    IMAGES_DIR,
    INBOX,
    LEASE_EXT,
    LEASES,
    MAILBOX_SIZE,
    META_EXT,
    METADATA,
    OUTBOX,
    REMOVED_IMAGE_PREFIX,
    is_uuid,
)
from .errors import (
    DomainCreationError,
    DomainMetadataNotFound,
    VolumeDoesNotExist,
    VolumeMetadataWriteError,
)
from .fileio import (
    create_sparse_blocking,
    free_space_blocking,
    read_blocking,
    remove_blocking,
    write_atomic_blocking,
)
from .metadata import VolumeMetadata, decode_domain_metadata, encode_domain_metadata

__all__ = ["FileDomain", "find_domain_blocking", "list_domains_blocking",
           "create_layout_blocking", "default_domain_metadata"]

log = logging.getLogger(__name__)

# vdsm's lease defaults, recorded in the domain metadata.
_LEASE_DEFAULTS = {"LOCKPOLICY": "", "LOCKRENEWALINTERVALSEC": "5", "LEASETIMESEC": "60",
                   "IOOPTIMEOUTSEC": "10", "LEASERETRIES": "3"}


def find_domain_blocking(mnt_root: Path, sd_uuid: str) -> Path | None:
    """The directory of domain sd_uuid under any connection of mnt_root."""
    try:
        entries = list(mnt_root.iterdir())
    except FileNotFoundError:
        return None
    for entry in entries:
        candidate = entry / sd_uuid
        if (candidate / DOMAIN_MD_DIR / METADATA).exists():
            return candidate
    return None


def list_domains_blocking(mnt_root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        entries = list(mnt_root.iterdir())
    except FileNotFoundError:
        return found
    for entry in entries:
        try:
            children = list(entry.iterdir())
        except OSError:
            continue
        for child in children:
            if is_uuid(child.name) and (child / DOMAIN_MD_DIR / METADATA).exists():
                found.setdefault(child.name, child)
    return found


def default_domain_metadata(sd_uuid: str, name: str, type_name: str, class_name: str,
                            remote_path: str) -> dict[str, str]:
    md = {
        "ALIGNMENT": str(ALIGNMENT), "BLOCK_SIZE": str(BLOCK_SIZE), "CLASS": class_name,
        "DESCRIPTION": name, "POOL_UUID": "", "REMOTE_PATH": remote_path,
        "ROLE": "Regular", "SDUUID": sd_uuid, "TYPE": type_name,
        "VERSION": str(DOMAIN_VERSION),
    }
    md.update(_LEASE_DEFAULTS)
    return md


def create_layout_blocking(domain_dir: Path) -> None:
    """The empty files and directories of a new domain (metadata comes last)."""
    if domain_dir.exists():
        raise DomainCreationError(f"{domain_dir} exists")
    md_dir = domain_dir / DOMAIN_MD_DIR
    md_dir.mkdir(parents=True)
    (domain_dir / IMAGES_DIR).mkdir()
    for name in (IDS, LEASES):
        create_sparse_blocking(md_dir / name, 0)
    for name in (INBOX, OUTBOX):
        create_sparse_blocking(md_dir / name, MAILBOX_SIZE)


def _write_volume_blocking(path: Path, data: bytes) -> None:
    try:
        write_atomic_blocking(path, data)
    except OSError as exc:
        raise VolumeMetadataWriteError(f"{path}: {exc}") from None


def _read_volume_blocking(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VolumeDoesNotExist(path.name.removesuffix(META_EXT)) from None


def _list_images_blocking(images: Path) -> list[str]:
    try:
        return sorted(e.name for e in images.iterdir() if e.is_dir() and is_uuid(e.name))
    except FileNotFoundError:
        return []


def _list_volumes_blocking(image_dir: Path) -> list[str]:
    try:
        names = [e.name for e in image_dir.iterdir()]
    except FileNotFoundError:
        return []
    return sorted(n[:-len(META_EXT)] for n in names
                  if n.endswith(META_EXT) and is_uuid(n[:-len(META_EXT)]))


class FileDomain:
    def __init__(self, sd_uuid: str, path: Path, io: StorageIO, lock: ClusterLock,
                 metadata: dict[str, str]) -> None:
        self.sd_uuid = sd_uuid
        self.path = path
        self.io = io
        self.lock = lock
        self.md = metadata
        self._md_lock = asyncio.Lock()

    # ---------------------------------------------------------------- layout
    @property
    def mount_dir(self) -> Path:
        return self.path.parent

    @property
    def md_dir(self) -> Path:
        return self.path / DOMAIN_MD_DIR

    @property
    def metadata_path(self) -> Path:
        return self.md_dir / METADATA

    @property
    def ids_path(self) -> Path:
        return self.md_dir / IDS

    @property
    def leases_path(self) -> Path:
        return self.md_dir / LEASES

    @property
    def images_dir(self) -> Path:
        return self.path / IMAGES_DIR

    def image_dir(self, img: str) -> Path:
        return self.images_dir / img

    def removed_image_dir(self, img: str) -> Path:
        return self.images_dir / f"{REMOVED_IMAGE_PREFIX}{img}"

    def volume_path(self, img: str, vol: str) -> Path:
        return self.image_dir(img) / vol

    def meta_path(self, img: str, vol: str) -> Path:
        return self.image_dir(img) / f"{vol}{META_EXT}"

    def lease_path(self, img: str, vol: str) -> Path:
        return self.image_dir(img) / f"{vol}{LEASE_EXT}"

    # -------------------------------------------------------------- metadata
    @property
    def type_name(self) -> str:
        return self.md.get("TYPE", "UNKNOWN")

    @property
    def class_name(self) -> str:
        return self.md.get("CLASS", "Data")

    @property
    def version(self) -> int:
        return int(self.md.get("VERSION", DOMAIN_VERSION))

    @property
    def role(self) -> str:
        return self.md.get("ROLE", "Regular")

    @property
    def pools(self) -> list[str]:
        return [p for p in self.md.get("POOL_UUID", "").split(",") if p]

    async def reload(self) -> dict[str, str]:
        try:
            data = await self.io.run(read_blocking, self.metadata_path)
        except FileNotFoundError:
            raise DomainMetadataNotFound(f"sdUUID={self.sd_uuid}, metafile path="
                                         f"{self.metadata_path}") from None
        self.md = decode_domain_metadata(data)
        return dict(self.md)

    async def write_metadata(self, md: dict[str, str]) -> None:
        await self.io.run(write_atomic_blocking, self.metadata_path,
                          encode_domain_metadata(md))
        self.md = dict(md)

    async def modify_metadata(self, change: Callable[[dict[str, str]],
                                                     dict[str, str | None]]
                              ) -> dict[str, str]:
        """Read-modify-write; `change` maps the current metadata to the keys to set
        (None removes a key). Serialized here; across hosts only the SPM writes."""
        async with self._md_lock:
            md = await self.reload()
            for key, value in change(dict(md)).items():
                if value is None:
                    md.pop(key, None)
                else:
                    md[key] = value
            await self.write_metadata(md)
            return md

    async def update_metadata(self, changes: dict[str, str | None]) -> dict[str, str]:
        return await self.modify_metadata(lambda _md: changes)

    def info(self) -> dict[str, Any]:
        return {
            "uuid": self.sd_uuid,
            "type": self.type_name,
            "class": self.class_name,
            "name": self.md.get("DESCRIPTION", ""),
            "role": self.role,
            "pool": self.pools,
            "version": str(self.version),
            "remotePath": self.md.get("REMOTE_PATH", ""),
            "block_size": int(self.md.get("BLOCK_SIZE", BLOCK_SIZE)),
            "alignment": int(self.md.get("ALIGNMENT", ALIGNMENT)),
        }

    async def space(self) -> tuple[int, int]:
        return await self.io.run(free_space_blocking, self.path)

    # ---------------------------------------------------------------- images
    async def images(self) -> list[str]:
        return await self.io.run(_list_images_blocking, self.images_dir)

    async def volumes(self, img: str) -> list[str]:
        return await self.io.run(_list_volumes_blocking, self.image_dir(img))

    async def read_volume(self, img: str, vol: str) -> VolumeMetadata:
        data = await self.io.run(_read_volume_blocking, self.meta_path(img, vol))
        return VolumeMetadata.decode(data)

    async def write_volume(self, img: str, vol: str, md: VolumeMetadata) -> None:
        await self.io.run(_write_volume_blocking, self.meta_path(img, vol), md.encode())

    async def volume_exists(self, img: str, vol: str) -> bool:
        return await self.io.run(os.path.exists, self.meta_path(img, vol))

    async def remove(self, path: Path) -> bool:
        return await self.io.run(remove_blocking, path)
