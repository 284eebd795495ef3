"""The thread-safe libvirt event loop implementation, driven as libvirt drives it:
registrations from worker threads, dispatch on the asyncio loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Callable

import libvirt
import pytest
import uvloop

from ovagent.virt.libvirt.events import ThreadSafeEventImpl

READ = libvirt.VIR_EVENT_HANDLE_READABLE


class Impl(ThreadSafeEventImpl):
    """Not registered with libvirt; records free callbacks instead of calling libvirt."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.freed: list[Any] = []

    def _free(self, opaque: Any) -> None:
        self.loop.call_soon(self.freed.append, opaque)


def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn(*args)))
    t.start()
    t.join()
    return out[0]


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> Callable[[], asyncio.AbstractEventLoop]:
    return asyncio.new_event_loop if request.param == "asyncio" else uvloop.new_event_loop


def run(factory: Callable[[], asyncio.AbstractEventLoop], coro_fn: Callable[..., Any]) -> None:
    loop = factory()
    try:
        loop.run_until_complete(coro_fn(loop))
    finally:
        loop.close()


def test_fd_watch_registered_from_a_worker_thread(loop_factory: Callable[[], Any]) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        impl = Impl(loop)
        a, b = socket.socketpair()
        calls: list[tuple[int, int, int, str]] = []

        def cb(watch: int, fd: int, event: int, opaque: str) -> None:
            calls.append((watch, fd, event, opaque))
            a.recv(100)

        watch = in_thread(impl._add_handle, a.fileno(), READ, cb, "op")
        assert watch > 0
        b.send(b"x")
        await until(lambda: len(calls) == 1)
        assert calls[0] == (watch, a.fileno(), READ, "op")
        in_thread(impl._update_handle, watch, 0)  # disabled: no dispatch
        # (applied on the loop's next turn: a dispatch just before is harmless,
        # libvirt re-checks its state in its callbacks)
        await until(lambda: a.fileno() not in impl._watched)
        b.send(b"y")
        await asyncio.sleep(0.05)
        assert len(calls) == 1
        in_thread(impl._update_handle, watch, READ)
        await until(lambda: len(calls) == 2)
        assert in_thread(impl._remove_handle, watch) == 0
        assert impl._remove_handle(watch) == -1  # unknown now
        await until(lambda: impl.freed == ["op"])
        a.close()
        b.close()
    run(loop_factory, body)


def test_timers(loop_factory: Callable[[], Any]) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        impl = Impl(loop)
        fired: list[int] = []
        immediate: list[int] = []

        def every_10ms(timer: int, opaque: Any) -> None:
            fired.append(timer)

        def once_now(timer: int, opaque: Any) -> None:
            immediate.append(timer)
            impl._update_timeout(timer, -1)  # libvirt disables a 0 timer from its callback

        periodic = in_thread(impl._add_timeout, 10, every_10ms, "p")
        zero = in_thread(impl._add_timeout, 0, once_now, "z")
        await until(lambda: len(fired) >= 3 and immediate == [zero])
        await asyncio.sleep(0.03)
        assert immediate == [zero]
        in_thread(impl._update_timeout, periodic, -1)
        await asyncio.sleep(0)
        count = len(fired)
        await asyncio.sleep(0.05)
        assert len(fired) == count
        assert in_thread(impl._remove_timeout, periodic) == 0
        assert impl._remove_timeout(zero) == 0
        await until(lambda: sorted(impl.freed) == ["p", "z"])
    run(loop_factory, body)


def test_changes_apply_in_order_across_threads(loop_factory: Callable[[], Any]) -> None:
    """add from a thread then update from the loop: the update must not be lost."""
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        impl = Impl(loop)
        fired: list[int] = []
        timer = in_thread(impl._add_timeout, -1, lambda t, o: fired.append(t), None)
        impl._update_timeout(timer, 5)  # on the loop thread, before the add was applied
        await until(lambda: len(fired) >= 2)
    run(loop_factory, body)


def test_moving_to_a_new_loop_keeps_watches_and_timers() -> None:
    first = asyncio.new_event_loop()
    impl = Impl(first)
    fired: list[int] = []
    first.run_until_complete(asyncio.sleep(0))
    impl._add_timeout(5, lambda t, o: fired.append(t), None)
    first.run_until_complete(asyncio.sleep(0.03))
    first.close()
    count = len(fired)
    assert count >= 1

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        impl.move_to(loop)
        await until(lambda: len(fired) >= count + 2)
    run(uvloop.new_event_loop, body)
