"""qemu-img, run through the storage boundary (asyncio subprocesses, timeouts).

Backing files of new qcow2 volumes are the parent's bare volume UUID: the
parent lives (or is hard-linked, for templates) in the same image directory,
and qemu resolves a relative backing file from the image's directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .boundary import StorageIO
from .errors import StorageError

__all__ = ["QemuImg", "QemuImgError"]


class QemuImgError(StorageError):
    pass


class QemuImg:
    def __init__(self, io: StorageIO, binary: str = "qemu-img") -> None:
        self.io = io
        self.binary = binary

    async def _run(self, *args: str, timeout_s: float | None = None,
                   on_start: Callable[[int], None] | None = None) -> bytes:
        result = await self.io.command(self.binary, *args, timeout_s=timeout_s,
                                       on_start=on_start)
        if result.rc != 0:
            raise QemuImgError(f"qemu-img {args[0]} failed (rc={result.rc}): {result.text}")
        return result.out

    async def create(self, path: Path, fmt: str, size: int, *, backing: str | None = None,
                     backing_fmt: str | None = None, preallocation: str | None = None) -> None:
        args = ["create", "-q", "-f", fmt]
        options = []
        if fmt == "qcow2":
            options.append("compat=1.1")
        if preallocation:
            options.append(f"preallocation={preallocation}")
        if options:
            args += ["-o", ",".join(options)]
        if backing:
            args += ["-b", backing, "-F", backing_fmt or "qcow2"]
        args += [str(path), str(size)]
        await self._run(*args)

    async def info(self, path: Path, fmt: str | None = None,
                   backing_chain: bool = False) -> Any:
        args = ["info", "--output", "json", "-U"]
        if fmt:
            args += ["-f", fmt]
        if backing_chain:
            args.append("--backing-chain")
        return json.loads(await self._run(*args, str(path)))

    async def resize(self, path: Path, fmt: str, size: int,
                     preallocation: str | None = None) -> None:
        args = ["resize", "-q", "-f", fmt]
        if preallocation:
            args.append(f"--preallocation={preallocation}")
        await self._run(*args, str(path), str(size))

    async def convert(self, src: Path, dst: Path, *, src_fmt: str, dst_fmt: str,
                      preallocation: str | None = None, rate_limit_bytes_s: int = 0,
                      timeout_s: float | None = None,
                      on_start: Callable[[int], None] | None = None) -> None:
        """Copy src and its backing chain into one standalone image dst."""
        args = ["convert", "-f", src_fmt, "-O", dst_fmt]
        options = []
        if dst_fmt == "qcow2":
            options.append("compat=1.1")
        if preallocation:
            options.append(f"preallocation={preallocation}")
        if options:
            args += ["-o", ",".join(options)]
        if rate_limit_bytes_s > 0:
            args += ["-r", str(rate_limit_bytes_s)]
        await self._run(*args, str(src), str(dst), timeout_s=timeout_s, on_start=on_start)

    async def commit(self, top: Path, fmt: str, *, rate_limit_bytes_s: int = 0,
                     timeout_s: float | None = None) -> None:
        """Write top's data into its backing file; top is left as it was (-d)."""
        args = ["commit", "-q", "-d", "-f", fmt]
        if rate_limit_bytes_s > 0:
            args += ["-r", str(rate_limit_bytes_s)]
        await self._run(*args, str(top), timeout_s=timeout_s)

    async def rebase_unsafe(self, path: Path, fmt: str, backing: str, backing_fmt: str) -> None:
        """Point path at another backing file without touching data (-u): the
        new backing file must hold what the old chain showed."""
        await self._run("rebase", "-u", "-f", fmt, "-b", backing, "-F", backing_fmt, str(path))

    async def measure_qcow2(self, path: Path, fmt: str) -> int:
        """Bytes a qcow2 copy of path (its chain collapsed) needs at most."""
        out = await self._run("measure", "--output", "json", "-f", fmt, "-O", "qcow2",
                              "-o", "compat=1.1", str(path))
        return int(json.loads(out)["required"])

    async def convert_into(self, src: str, dst: Path, *, src_fmt: str, dst_fmt: str,
                           timeout_s: float | None = None) -> None:
        """Copy src (a path or a json: spec) into the existing, all-zero image
        dst, keeping dst's format options (-n --target-is-zero)."""
        await self._run("convert", "-n", "--target-is-zero", "-f", src_fmt, "-O", dst_fmt,
                        src, str(dst), timeout_s=timeout_s)
