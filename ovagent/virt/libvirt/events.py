"""libvirt's event loop on asyncio, safe against calls from worker threads.

libvirt needs an event loop implementation (file-descriptor watches and
timers) for domain events and keepalives. libvirtaio provides one, but it
touches the asyncio loop from whatever thread libvirt calls it in; the remote
driver calls it from every thread that makes an RPC (it disables and
re-enables its socket watch around each call), and our libvirt calls run in
worker threads (see boundary.py). uvloop aborts the process when that
happens (reproduced: 16 concurrent list_domains on qemu:///system).

Here every registration change is queued in order and applied on the loop
thread; only watch/timer ids are handed out synchronously. libvirt copes with
the short delay (its callbacks re-check their state under their own locks),
and must not call the free callback from inside a remove call, which the
queue also guarantees.

libvirt accepts one implementation per process (virEventRegisterImpl can
be called once), hence the module-level instance: `ensure_event_loop_impl`
creates it on first use and moves it to a new loop when the old one is closed
(pytest-asyncio makes a loop per test).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import libvirt

from ..hypervisor import HypervisorError

__all__ = ["ThreadSafeEventImpl", "ensure_event_loop_impl", "current_impl"]

log = logging.getLogger(__name__)

_READ = libvirt.VIR_EVENT_HANDLE_READABLE
_WRITE = libvirt.VIR_EVENT_HANDLE_WRITABLE


@dataclass(eq=False)
class _Watch:
    fd: int
    events: int
    cb: Callable[..., Any]
    opaque: Any


@dataclass(eq=False)
class _Timer:
    interval_ms: int
    cb: Callable[..., Any]
    opaque: Any
    handle: asyncio.Handle | None = None


class ThreadSafeEventImpl:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ops: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = \
            collections.deque()
        self._drain_scheduled = False
        self._ids = itertools.count(1)
        self._live_watches: set[int] = set()  # ids known to libvirt (any thread)
        self._live_timers: set[int] = set()
        # Applied state: touched on the loop thread only.
        self._watches: dict[int, _Watch] = {}
        self._by_fd: dict[int, dict[int, _Watch]] = {}
        self._watched: dict[int, int] = {}  # fd -> events registered on the loop
        self._timers: dict[int, _Timer] = {}

    def register(self) -> None:
        libvirt.virEventRegisterImpl(self._add_handle, self._update_handle,
                                     self._remove_handle, self._add_timeout,
                                     self._update_timeout, self._remove_timeout)

    # ------------------------------------------------- called by libvirt
    def _add_handle(self, fd: int, events: int, cb: Callable[..., Any], opaque: Any) -> int:
        with self._lock:
            watch = next(self._ids)
            self._live_watches.add(watch)
        self._submit(self._apply_add_handle, watch, fd, events, cb, opaque)
        return watch

    def _update_handle(self, watch: int, events: int) -> None:
        self._submit(self._apply_update_handle, watch, events)

    def _remove_handle(self, watch: int) -> int:
        with self._lock:
            if watch not in self._live_watches:
                return -1
            self._live_watches.discard(watch)
        self._submit(self._apply_remove_handle, watch)
        return 0

    def _add_timeout(self, interval_ms: int, cb: Callable[..., Any], opaque: Any) -> int:
        with self._lock:
            timer = next(self._ids)
            self._live_timers.add(timer)
        self._submit(self._apply_add_timeout, timer, interval_ms, cb, opaque)
        return timer

    def _update_timeout(self, timer: int, interval_ms: int) -> None:
        self._submit(self._apply_update_timeout, timer, interval_ms)

    def _remove_timeout(self, timer: int) -> int:
        with self._lock:
            if timer not in self._live_timers:
                return -1
            self._live_timers.discard(timer)
        self._submit(self._apply_remove_timeout, timer)
        return 0

    # ------------------------------------------------------ the queue
    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        with self._lock:
            self._ops.append((fn, args))
            schedule = not self._drain_scheduled
            self._drain_scheduled = True
        if self._on_loop_thread():
            self._drain()  # in order: whatever other threads queued comes first
        elif schedule:
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nothing to watch any more
                log.debug("libvirt event change after the loop closed")

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._ops:
                    self._drain_scheduled = False
                    return
                fn, args = self._ops.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("libvirt event registration change failed")

    # ----------------------------------------- applied on the loop thread
    def _apply_add_handle(self, watch: int, fd: int, events: int, cb: Callable[..., Any],
                          opaque: Any) -> None:
        w = _Watch(fd, events, cb, opaque)
        self._watches[watch] = w
        self._by_fd.setdefault(fd, {})[watch] = w
        self._refresh_fd(fd)

    def _apply_update_handle(self, watch: int, events: int) -> None:
        w = self._watches.get(watch)
        if w is not None:
            w.events = events
            self._refresh_fd(w.fd)

    def _apply_remove_handle(self, watch: int) -> None:
        w = self._watches.pop(watch, None)
        if w is None:
            return
        on_fd = self._by_fd.get(w.fd, {})
        on_fd.pop(watch, None)
        if not on_fd:
            self._by_fd.pop(w.fd, None)
        self._refresh_fd(w.fd)
        self._free(w.opaque)

    def _refresh_fd(self, fd: int) -> None:
        wanted = 0
        for w in self._by_fd.get(fd, {}).values():
            wanted |= w.events
        wanted &= _READ | _WRITE
        have = self._watched.get(fd, 0)
        if wanted & _READ and not have & _READ:
            self.loop.add_reader(fd, self._dispatch, fd, _READ)
        elif have & _READ and not wanted & _READ:
            self.loop.remove_reader(fd)
        if wanted & _WRITE and not have & _WRITE:
            self.loop.add_writer(fd, self._dispatch, fd, _WRITE)
        elif have & _WRITE and not wanted & _WRITE:
            self.loop.remove_writer(fd)
        if wanted:
            self._watched[fd] = wanted
        else:
            self._watched.pop(fd, None)

    def _dispatch(self, fd: int, event: int) -> None:
        for watch, w in list(self._by_fd.get(fd, {}).items()):
            if w.events & event and self._watches.get(watch) is w:
                try:
                    w.cb(watch, fd, event, w.opaque)
                except Exception:
                    log.exception("libvirt fd callback failed")

    def _apply_add_timeout(self, timer: int, interval_ms: int, cb: Callable[..., Any],
                           opaque: Any) -> None:
        self._timers[timer] = _Timer(interval_ms, cb, opaque)
        self._schedule(timer)

    def _apply_update_timeout(self, timer: int, interval_ms: int) -> None:
        t = self._timers.get(timer)
        if t is not None:
            t.interval_ms = interval_ms
            self._schedule(timer)

    def _apply_remove_timeout(self, timer: int) -> None:
        t = self._timers.pop(timer, None)
        if t is None:
            return
        if t.handle is not None:
            t.handle.cancel()
        self._free(t.opaque)

    def _schedule(self, timer: int) -> None:
        t = self._timers[timer]
        if t.handle is not None:
            t.handle.cancel()
            t.handle = None
        if t.interval_ms == 0:
            t.handle = self.loop.call_soon(self._fire, timer, t)
        elif t.interval_ms > 0:
            t.handle = self.loop.call_later(t.interval_ms / 1000, self._fire, timer, t)

    def _fire(self, timer: int, t: _Timer) -> None:
        if self._timers.get(timer) is not t:
            return
        t.handle = None
        try:
            t.cb(timer, t.opaque)
        except Exception:
            log.exception("libvirt timer callback failed")
        # Periodic until changed; the callback may have updated or removed it.
        if self._timers.get(timer) is t and t.handle is None:
            self._schedule(timer)

    def _free(self, opaque: Any) -> None:
        # libvirt forbids calling the free callback from within remove: defer it.
        self.loop.call_soon(libvirt.virEventInvokeFreeCallback, opaque)

    # ------------------------------------------------------ loop moves
    def move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve from `loop` from now on (the previous loop is closed)."""
        self.loop = loop
        with self._lock:
            self._drain_scheduled = False
        self._watched.clear()
        for fd in list(self._by_fd):
            self._refresh_fd(fd)
        for timer, t in list(self._timers.items()):
            t.handle = None
            self._schedule(timer)
        self._drain()


_impl: ThreadSafeEventImpl | None = None


def current_impl() -> ThreadSafeEventImpl | None:
    return _impl


def ensure_event_loop_impl(loop: asyncio.AbstractEventLoop) -> None:
    """Route libvirt's event loop through `loop`, once per process.

    If an earlier loop (a previous test's) is closed, the implementation is
    moved to this loop; a second running loop is refused.
    """
    global _impl
    # Silence libvirt's default error printer: errors surface as exceptions.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    if _impl is None:
        _impl = ThreadSafeEventImpl(loop)
        _impl.register()
    elif _impl.loop is not loop:
        if not _impl.loop.is_closed():
            raise HypervisorError("libvirt events are bound to another running asyncio loop")
        _impl.move_to(loop)
