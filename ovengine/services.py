"""The engine's services, built once by the daemon and handed to commands and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from .audit import AuditLog
from .bus import EventBus
from .config import EngineConfig
from .domain.locks import LockManager
from .hosts.manager import HostManager
from .monitoring.store import VmStateStore
from .monitoring.vm_monitor import VmMonitor
from .pki import EngineCa

if TYPE_CHECKING:
    from .domain.commands import CommandRunner
    from .storage.manager import StorageManager

__all__ = ["Services"]


@dataclass(eq=False)
class Services:
    config: EngineConfig
    pool: asyncpg.Pool
    audit: AuditLog
    bus: EventBus
    locks: LockManager
    store: VmStateStore
    monitor: VmMonitor
    hosts: HostManager
    ca: EngineCa
    runner: "CommandRunner" = field(init=False)
    storage: "StorageManager" = field(init=False)
