"""The one thread boundary for libvirt calls.

libvirt calls block. Each goes to a bounded worker pool, with a timeout, under
a copy of the caller's context (so the flow id reaches the thread's log lines).
Two pools: lifecycle (create, destroy, shutdown, ...) and monitoring (stats,
XML dumps), so stuck stats calls never hold up a destroy. A timed-out call
keeps its worker until libvirt returns, but the caller is freed at once with
HypervisorTimeoutError and the VM can be marked not responding.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import libvirt

from ..hypervisor import (
    DomainExistsError,
    HypervisorError,
    HypervisorTimeoutError,
    NoSuchDomainError,
    UnsupportedError,
)

__all__ = ["Pool", "LibvirtBoundary", "translate_error", "ConnectionBrokenError"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pool(enum.Enum):
    LIFECYCLE = "lifecycle"
    MONITORING = "monitoring"


class ConnectionBrokenError(HypervisorError):
    """The libvirt connection is gone (libvirtd restarted or died)."""


_NO_DOMAIN = {libvirt.VIR_ERR_NO_DOMAIN}
_UNSUPPORTED = {libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}
_EXISTS = {libvirt.VIR_ERR_DOM_EXIST}
_MAYBE_EXISTS = {libvirt.VIR_ERR_OPERATION_FAILED, libvirt.VIR_ERR_OPERATION_INVALID}
_BROKEN = {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT,
           libvirt.VIR_ERR_INVALID_CONN}


def translate_error(exc: libvirt.libvirtError) -> HypervisorError:
    code = exc.get_error_code()
    message = exc.get_error_message() or str(exc)
    if code in _NO_DOMAIN:
        return NoSuchDomainError(message)
    if code in _UNSUPPORTED:
        return UnsupportedError(message)
    if code in _EXISTS or (code in _MAYBE_EXISTS and any(
            text in message for text in ("already exists", "already defined",
                                         "already active"))):
        # createXML of a name or uuid in use: "domain 'x' already exists with
        # uuid ...", "domain 'x' is already active"
        return DomainExistsError(message)
    if code in _BROKEN or (code == libvirt.VIR_ERR_INTERNAL_ERROR
                           and "client socket is closed" in message):
        return ConnectionBrokenError(message)
    return HypervisorError(message)


class LibvirtBoundary:
    def __init__(self, lifecycle_threads: int, monitoring_threads: int,
                 lifecycle_timeout_s: float, monitoring_timeout_s: float) -> None:
        self._pools = {
            Pool.LIFECYCLE: ThreadPoolExecutor(lifecycle_threads, "libvirt-lifecycle"),
            Pool.MONITORING: ThreadPoolExecutor(monitoring_threads, "libvirt-monitoring"),
        }
        self._timeouts = {Pool.LIFECYCLE: lifecycle_timeout_s,
                          Pool.MONITORING: monitoring_timeout_s}

    async def call(self, pool: Pool, fn: Callable[..., T], *args: Any,
                   timeout_s: float | None = None) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        future = loop.run_in_executor(self._pools[pool], ctx.run, fn, *args)
        timeout = self._timeouts[pool] if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            name = getattr(fn, "__name__", repr(fn))
            raise HypervisorTimeoutError(
                f"libvirt call {name} did not return within {timeout} s") from None
        except libvirt.libvirtError as exc:
            raise translate_error(exc) from None

    def shutdown(self) -> None:
        for pool in self._pools.values():
            # Do not wait: a hung libvirt call must not hang the agent's exit.
            pool.shutdown(wait=False, cancel_futures=True)
