"""Storage server connections (StoragePool.connectStorageServer).

Each connection appears as a directory <mnt root>/<transformed spec>, the
way vdsm lays out /rhev/data-center/mnt:

- localfs (type 4): a symlink to the local directory `connection`.
- nfs (type 1): mount -t nfs with vdsm's options (soft, nosharecache,
  timeo, retrans, nfsvers, nolock for v3 unless asked otherwise).
- posixfs (type 6): mount -t <vfs_type> -o <mnt_options> <spec>. A spec that
  is a local directory with vfs_type "none" (or no type) is bind-mounted:
  the way to share one directory between several hosts on one machine.

Connecting what is already connected succeeds; disconnecting what is not
connected succeeds. Results are vdsm's per-connection status codes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .boundary import StorageIO
from .constants import domain_type_name
from .errors import (
    MountError,
    StorageError,
    StorageInvalidParameter,
    StorageServerValidationError,
)
from .metadata import normalize_spec, transform_path

__all__ = ["Connection", "parse_connection", "ConnectionManager", "mounted_targets_blocking"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connection:
    id: str
    kind: str  # localfs, nfs, posixfs
    spec: str
    vfs_type: str
    options: str

    def local_path(self, mnt_root: Path) -> Path:
        return mnt_root / transform_path(self.spec)

    @property
    def is_bind(self) -> bool:
        return self.kind == "posixfs" and self.vfs_type in ("", "none") \
            and self.spec.startswith("/")


def _nfs_options(params: dict[str, Any]) -> str:
    timeout = int(params.get("timeout") or 100)
    retrans = int(params.get("retrans") or 3)
    options = ["soft", "nosharecache", f"timeo={timeout}", f"retrans={retrans}"]
    version = params.get("protocol_version")
    version = None if version in (None, "", "auto") else str(version)
    if version:
        major, _, minor = version.partition(".")
        options.append(f"nfsvers={int(major)}")
        if minor:
            options.append(f"minorversion={int(minor)}")
    extra = [o for o in str(params.get("mnt_options") or "").split(",") if o]
    if version in (None, "3") and "lock" not in extra and "nolock" not in extra:
        extra.append("nolock")  # NFSv3 remote locks break HA VM failover (vdsm)
    return ",".join(options + extra)


def parse_connection(domain_type: Any, params: dict[str, Any]) -> Connection:
    kind = domain_type_name(domain_type)
    con_id = str(params.get("id") or "")
    spec = str(params.get("connection") or params.get("spec") or "")
    if not spec:
        raise StorageInvalidParameter(f"connection of {con_id or params!r}")
    spec = normalize_spec(spec)
    if kind == "LOCALFS":
        return Connection(con_id, "localfs", spec, "", "")
    if kind == "NFS":
        return Connection(con_id, "nfs", spec, "nfs", _nfs_options(params))
    if kind in ("POSIXFS", "GLUSTERFS"):
        vfs_type = str(params.get("vfs_type") or params.get("vfsType") or "")
        return Connection(con_id, "posixfs", spec, vfs_type,
                          str(params.get("mnt_options") or params.get("options") or ""))
    raise StorageInvalidParameter(f"domainType {kind} has no file connections")


def mounted_targets_blocking() -> set[str]:
    """Mount points of this mount namespace (from /proc/self/mountinfo)."""
    targets = set()
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4:
                targets.add(fields[4].encode().decode("unicode_escape"))
    return targets


def _is_linked_blocking(link: Path, target: str) -> bool:
    return link.is_symlink() and os.path.normpath(os.readlink(link)) == target


def _link_blocking(link: Path, target: str) -> None:
    if not os.path.isdir(target):
        raise StorageServerValidationError(f"path = {target}: not a directory")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if _is_linked_blocking(link, target):
            return
        link.unlink()
    os.symlink(target, link)


def _unlink_blocking(link: Path) -> None:
    try:
        link.unlink()
    except FileNotFoundError:
        pass


def _rmdir_blocking(path: Path) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass


class ConnectionManager:
    def __init__(self, io: StorageIO, mnt_root: Path) -> None:
        self.io = io
        self.mnt_root = mnt_root
        self.connections: dict[str, Connection] = {}

    async def is_connected(self, con: Connection) -> bool:
        path = con.local_path(self.mnt_root)
        if con.kind == "localfs":
            return await self.io.run(_is_linked_blocking, path, con.spec)
        return str(path) in await self.io.run(mounted_targets_blocking)

    async def connect(self, con: Connection) -> None:
        path = con.local_path(self.mnt_root)
        if con.kind == "localfs":
            await self.io.run(_link_blocking, path, con.spec)
        elif not await self.is_connected(con):
            await self._mount(con, path)
        self.connections[con.id] = con
        log.info("connected %s %s at %s", con.kind, con.spec, path)

    async def _mount(self, con: Connection, path: Path) -> None:
        if con.is_bind and not await self.io.run(os.path.isdir, con.spec):
            raise StorageServerValidationError(f"path = {con.spec}: not a directory")
        await self.io.run(lambda: path.mkdir(parents=True, exist_ok=True))
        if con.is_bind:
            argv = ["mount", "--bind"]
            if con.options:
                argv += ["-o", con.options]
        else:
            argv = ["mount", "-t", con.vfs_type or "auto"]
            if con.options:
                argv += ["-o", con.options]
        result = await self.io.command(*argv, con.spec, str(path))
        if result.rc != 0:
            await self.io.run(_rmdir_blocking, path)
            raise MountError(f"{' '.join(argv)} {con.spec} {path}: {result.text}")

    async def disconnect(self, con: Connection) -> None:
        path = con.local_path(self.mnt_root)
        if con.kind == "localfs":
            await self.io.run(_unlink_blocking, path)
        else:
            if await self.is_connected(con):
                result = await self.io.command("umount", "-f", "-l", str(path))
                if result.rc != 0:
                    raise MountError(f"umount {path}: {result.text}")
            await self.io.run(_rmdir_blocking, path)
        self.connections.pop(con.id, None)
        log.info("disconnected %s %s from %s", con.kind, con.spec, path)

    @staticmethod
    def status_of(exc: BaseException | None) -> int:
        if exc is None:
            return 0
        if isinstance(exc, StorageError):
            return exc.code
        return 100
