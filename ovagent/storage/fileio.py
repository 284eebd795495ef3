"""Blocking file helpers for shared storage; callers run them through StorageIO.

Metadata is replaced atomically: written to "<file>.new", flushed to disk,
renamed over the file, and the directory flushed, so a reader (or a crash)
sees either the old or the new content, never a mix.
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import time
from pathlib import Path

__all__ = ["write_atomic_blocking", "read_blocking", "read_direct_blocking",
           "fsync_dir_blocking", "create_sparse_blocking", "remove_blocking",
           "free_space_blocking"]


def fsync_dir_blocking(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic_blocking(path: Path, data: bytes, mode: int = 0o660) -> None:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    fsync_dir_blocking(path.parent)


def read_blocking(path: Path) -> bytes:
    return path.read_bytes()


def read_direct_blocking(path: Path, size: int = 4096) -> tuple[bytes, float]:
    """Read the start of a file bypassing the page cache; returns (data, seconds).

    This is the monitor's liveness probe (vdsm reads the metadata with
    O_DIRECT for the same reason: a cached read says nothing about the
    server). File systems without O_DIRECT support get a plain read.
    """
    start = time.monotonic()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        data = path.read_bytes()[:size]
        return data, time.monotonic() - start
    try:
        buf = mmap.mmap(-1, size)  # page aligned, as O_DIRECT requires
        try:
            try:
                n = os.readv(fd, [buf])
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                n = 0
                os.close(fd)
                fd = os.open(path, os.O_RDONLY)
                n = os.readv(fd, [buf])
            data = bytes(buf[:n])
        finally:
            buf.close()
    finally:
        os.close(fd)
    return data, time.monotonic() - start


def create_sparse_blocking(path: Path, size: int, mode: int = 0o660) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, mode)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_blocking(path: Path) -> bool:
    """Remove a file or directory tree; False when it was not there."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def free_space_blocking(path: Path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding path."""
    st = os.statvfs(path)
    return st.f_frsize * st.f_blocks, st.f_frsize * st.f_bavail
