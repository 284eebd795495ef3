"""The engine's composition root: builds every service in order, tears down in reverse.

Start: state dir -> CA -> database (embedded cluster unless a DSN is set) ->
migrations -> in-memory VM view -> recovery of commands a crash interrupted
(no entity stays locked) -> storage manager (its SPM loop; storage tasks the
crash left are checked when their hosts answer) -> admin@internal -> host
links -> REST API.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from protocol import sdnotify, tls

from .aaa.bootstrap import ensure_admin
from .audit import AuditLog, AuditType
from .bus import EventBus
from .config import EngineConfig
from .db.embedded import EmbeddedPostgres
from .db.pool import create_pool
from .domain.commands import CommandRunner
from .domain.locks import LockManager
from .hosts.manager import HostManager
from .monitoring.store import VmStateStore
from .monitoring.vm_monitor import VmMonitor
from .pki import EngineCa
from .rest.server import ApiServer
from .services import Services
from .storage.manager import StorageManager

__all__ = ["Engine", "run"]

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, config: EngineConfig, *, serve_api: bool = True) -> None:
        self.config = config
        self.serve_api = serve_api
        self.pg: EmbeddedPostgres | None = None
        self.services: Services | None = None
        self.api: ApiServer | None = None
        self.api_url: str | None = None
        self.admin_password: str | None = None

    @property
    def s(self) -> Services:
        assert self.services is not None, "engine not started"
        return self.services

    async def start(self) -> None:
        c = self.config
        state: Path = c.state_dir
        state.mkdir(parents=True, exist_ok=True)
        ca = EngineCa(state / "pki")
        await asyncio.to_thread(ca.ensure_blocking, c.api.server_names)
        dsn = c.database.dsn
        if not dsn:
            self.pg = EmbeddedPostgres(state / "postgresql", fsync=c.database.embedded_fsync)
            dsn = await self.pg.start()
        pool = await create_pool(dsn, min_size=c.database.pool_min, max_size=c.database.pool_max,
                                 statement_timeout_s=c.database.statement_timeout_s)
        bus = EventBus()
        audit = AuditLog(pool, bus)
        store = VmStateStore(pool)
        monitor = VmMonitor(pool, store, audit, bus)
        ssl_ctx = tls.client_context(ca.files.engine_cert, ca.files.engine_key, ca.files.ca_cert)
        hosts = HostManager(pool, c.hosts, c.monitoring, ssl_ctx, audit, bus, monitor)
        s = Services(c, pool, audit, bus, LockManager(pool), store, monitor, hosts, ca)
        s.runner = CommandRunner(s)
        s.storage = StorageManager(pool, hosts, store, audit, bus, c.storage)
        self.services = s
        await store.load()
        recovered = await s.runner.recover_after_restart()
        if recovered:
            log.warning("recovered %d commands interrupted by a previous engine stop",
                        recovered)
        await s.storage.start()  # after recovery: what it left are orphan tasks
        self.admin_password = await ensure_admin(pool, state, c.auth.admin_password)
        await audit.log(AuditType.VDC_START, "Starting oVirt Engine.")
        await hosts.start()
        if self.serve_api:
            self.api = ApiServer(s)
            self.api_url = await self.api.start()
        sdnotify.notify("READY=1")

    async def stop(self) -> None:
        sdnotify.notify("STOPPING=1")
        if self.api is not None:
            await self.api.stop()
        s = self.services
        if s is not None:
            await s.runner.close()
            await s.storage.close()
            await s.hosts.close()
            await s.monitor.close()
            try:
                await s.audit.log(AuditType.VDC_STOP, "Stopping oVirt Engine.")
            except Exception:  # the database may already be gone
                log.debug("could not log the engine stop", exc_info=True)
            await s.pool.close()
        if self.pg is not None:
            await self.pg.stop()


async def run(config: EngineConfig) -> None:
    engine = Engine(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await engine.start()
        if engine.api_url:
            print(f"API: {engine.api_url}", flush=True)
        await stop.wait()
    finally:
        await engine.stop()
