"""The agent's composition root: builds everything, runs, tears down in reverse.

Start order matters: the RPC server listens first and answers 99 ("recovery
in progress") while the VM manager connects to libvirt and rediscovers the
VMs it runs and the storage service finishes the tasks a crash interrupted;
only then do sampling start and systemd hear READY=1. Stopping never touches
the VMs: libvirt keeps running them. Storage stops before the VM manager and
gives the SPM lease back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any, Awaitable, Callable

from protocol import sdnotify, tls
from protocol.dispatch import Dispatcher
from protocol.jsonrpc import ErrorCode, JsonRpcError
from protocol.schema import VerbRegistry, default_schema
from protocol.server import RpcServer
from protocol.stomp import Limits

from .api.host import HostApi
from .api.imagetickets import ImageTicketApi
from .api.storage import storage_apis
from .api.vm import VmApi
from .config import AgentConfig
from .host.stats import HostStatsSampler
from .imageio.service import ImageService
from .storage import StorageService
from .virt.hooks import HookError, HookRunner
from .virt.hypervisor import Hypervisor
from .virt.manager import VmManager
from .virt.sampling import VmSampler
from .virt.vm import VmStatus

__all__ = ["Agent", "run"]

log = logging.getLogger(__name__)

# Verbs answered even while recovering (liveness checks).
_ALWAYS_ALLOWED = frozenset({"Host.ping2"})


def _certificate_name(cert_file: Any) -> str:
    """The agent's identity: the common name the engine signed for it."""
    from cryptography.x509.oid import NameOID

    from protocol import pki

    try:
        cert = pki.load_cert(open(cert_file, "rb").read())
    except (OSError, ValueError):
        return ""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


class EventPublisher:
    """Late binding between the VM manager (built first) and the RPC server."""

    def __init__(self) -> None:
        self.server: RpcServer | None = None

    def publish(self, method: str, params: dict[str, Any]) -> None:
        if self.server is not None:
            self.server.publish_event(method, params)


def make_hypervisor(config: AgentConfig) -> Hypervisor:
    from .virt.libvirt.hypervisor import LibvirtHypervisor

    lc = config.libvirt
    if lc.uri.startswith("fake://"):
        # Tests: libvirt's test driver has no disk snapshots or block commits;
        # the fake changes the domain XML as libvirt does (storage stays real).
        from .virt.fake import FakeHypervisor

        return FakeHypervisor(hostname=lc.uri[len("fake://"):].strip("/") or "fake-host")
    return LibvirtHypervisor(lc.uri, lifecycle_threads=lc.lifecycle_threads,
                             monitoring_threads=lc.monitoring_threads,
                             lifecycle_timeout_s=lc.lifecycle_timeout_s,
                             monitoring_timeout_s=lc.monitoring_timeout_s,
                             use_kvm=lc.use_kvm)


class Agent:
    """One running agent; `port` is known once `start()` returned."""

    def __init__(self, config: AgentConfig, hypervisor: Hypervisor | None = None) -> None:
        self.config = config
        self.hooks = HookRunner(config.hooks.dir, config.hooks.timeout_s)
        self.hypervisor = hypervisor or make_hypervisor(config)
        self.events = EventPublisher()
        self.storage = StorageService(config.storage, config.state_dir)
        self.manager = VmManager(self.hypervisor, self.hooks, self.events.publish,
                                 powering_up_s=config.vm.powering_up_s,
                                 shutdown_timeout_s=config.vm.shutdown_timeout_s,
                                 owner=_certificate_name(config.tls.cert),
                                 storage=self.storage,
                                 block_job_poll_s=config.vm.block_job_poll_s)
        self.host_stats = HostStatsSampler(self.hypervisor, self._vm_counts,
                                           self.storage.domain_vitals)
        self.vm_sampler = VmSampler(self.manager)
        self.images = ImageService(config.imageio, config.listen.host, config.tls,
                                   config.storage.repository)
        registry = VerbRegistry(default_schema())
        registry.add_api(HostApi(self.manager, self.host_stats, self.hooks,
                                 lambda: self.images.port),
                         VmApi(self.manager), *storage_apis(self.storage),
                         ImageTicketApi(self.images))
        registry.verify()
        self.dispatcher = Dispatcher(registry, guard=self._guard)
        ctx = tls.server_context(config.tls.cert, config.tls.key, config.tls.ca,
                                 config.tls.crl)
        self.server = RpcServer(self.dispatcher, ctx, limits=Limits(
            max_body_bytes=config.max_frame_mib * 1024 * 1024))
        self.events.server = self.server
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    def _guard(self, method: str) -> None:
        if self.manager.recovering and method not in _ALWAYS_ALLOWED:
            raise JsonRpcError(ErrorCode.RECOVERY_IN_PROGRESS,
                               "Recovering from crash or still initializing")

    def _vm_counts(self) -> tuple[int, int, int, int, int, int]:
        vms = list(self.manager.vms.values())
        active = sum(1 for vm in vms if vm.status is VmStatus.UP)
        out = sum(1 for vm in vms if vm.status is VmStatus.MIGRATION_SOURCE)
        inc = sum(1 for vm in vms if vm.status is VmStatus.MIGRATION_DESTINATION)
        committed = sum(vm.memory_kib for vm in vms if vm.status.running)
        return len(vms), active, out + inc, inc, out, committed

    async def start(self) -> None:
        c = self.config
        watchdog = sdnotify.watchdog_interval_s()
        if watchdog:
            # From the start: recovery (hooks, libvirt) may outlast WatchdogSec.
            async def ping() -> None:
                sdnotify.notify("WATCHDOG=1")
            self._every(watchdog, ping, "watchdog")
        self.port = await self.server.start(c.listen.host, c.listen.port)
        sdnotify.notify("STATUS=recovering VMs")
        try:
            await self.hooks.run("before_vdsm_start")
        except HookError as exc:
            log.warning("before_vdsm_start hook failed: %s", exc)
        await self.manager.start()
        # Storage tasks a crash interrupted are finished (reported failed, or
        # completed when storage proves it) before anyone can ask about them.
        await self.storage.start()
        await self.images.start()
        await self.vm_sampler.sample_once()
        await self.host_stats.sample()
        self._every(c.sampling.vm_interval_s, self.vm_sampler.sample_once, "vm-sampling")
        self._every(c.sampling.host_interval_s, self.host_stats.sample, "host-sampling")
        sdnotify.notify("READY=1")
        sdnotify.notify(f"STATUS=serving {len(self.manager.vms)} VMs on port {self.port}")
        self.ready.set()
        log.info("agent ready on port %d with %d VMs", self.port, len(self.manager.vms))

    def _every(self, interval_s: float, fn: Callable[[], Awaitable[None]], name: str) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await fn()
                except Exception:
                    log.exception("%s failed", name)

        self._tasks.append(asyncio.get_running_loop().create_task(loop(), name=name))

    async def stop(self) -> None:
        sdnotify.notify("STOPPING=1")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.server.close()
        await self.images.close()
        # Storage before VMs: tasks are interrupted (their records stay for
        # the next start), monitoring stops, the SPM lease is given back.
        await self.storage.close()
        await self.manager.close()
        try:
            await self.hooks.run("after_vdsm_stop")
        except HookError as exc:
            log.warning("after_vdsm_stop hook failed: %s", exc)
        log.info("agent stopped (VMs left running)")


async def run(config: AgentConfig) -> None:
    agent = Agent(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.start()
        await stop.wait()
    finally:
        await agent.stop()
