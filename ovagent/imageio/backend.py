"""Reading and writing a volume file for the image server (blocking calls
behind the storage thread boundary, each with a timeout)."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
from pathlib import Path
from typing import Any

from ..storage.boundary import StorageIO

__all__ = ["FileBackend"]

log = logging.getLogger(__name__)

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_ZERO_CHUNK = 1024 * 1024


def _libc_fallocate() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    fn.restype = ctypes.c_int
    return fn


_FALLOCATE = _libc_fallocate()


def _open_blocking(path: Path, writable: bool) -> int:
    return os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC)


def _read_blocking(fd: int, offset: int, length: int) -> bytes:
    """`length` bytes at offset; past the end of the file they read as zeros
    (a sparse raw volume may be shorter than its capacity)."""
    chunks = []
    done = 0
    while done < length:
        data = os.pread(fd, length - done, offset + done)
        if not data:
            chunks.append(bytes(length - done))
            break
        chunks.append(data)
        done += len(data)
    return b"".join(chunks)


def _write_blocking(fd: int, offset: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _zero_blocking(fd: int, offset: int, length: int, punch: bool) -> None:
    if punch and _FALLOCATE is not None and length > 0:
        if _FALLOCATE(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EOPNOTSUPP, errno.ENOSYS):
            raise OSError(err, os.strerror(err))
    zeros = bytes(min(_ZERO_CHUNK, length))
    end = offset + length
    while offset < end:
        step = min(len(zeros), end - offset)
        _write_blocking(fd, offset, zeros[:step])
        offset += step


class FileBackend:
    def __init__(self, io: StorageIO) -> None:
        self.io = io

    async def open(self, path: Path, writable: bool) -> int:
        return await self.io.run(_open_blocking, path, writable)

    async def close(self, fd: int) -> None:
        await self.io.run(os.close, fd)

    async def read(self, fd: int, offset: int, length: int) -> bytes:
        return await self.io.run(_read_blocking, fd, offset, length)

    async def write(self, fd: int, offset: int, data: bytes) -> None:
        await self.io.run(_write_blocking, fd, offset, data)

    async def zero(self, fd: int, offset: int, length: int, punch: bool) -> None:
        await self.io.run(_zero_blocking, fd, offset, length, punch)

    async def flush(self, fd: int) -> None:
        await self.io.run(os.fsync, fd)
