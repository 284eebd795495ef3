"""The Hypervisor role: what the agent needs from whatever runs its VMs.

Implementations: `LibvirtHypervisor` (ovagent.virt.libvirt, real libvirt:
QEMU or the in-process test driver) and `FakeHypervisor` (pure Python, for the
host simulator). Every method is a coroutine; an implementation that blocks
(libvirt) runs its calls in worker threads behind a timeout and raises
HypervisorTimeoutError instead of blocking the event loop.

Domains are identified by their UUID string (the oVirt VM id).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Protocol

__all__ = [
    "DomainState",
    "DomainEventKind",
    "DomainEvent",
    "DomainInfo",
    "DomainSample",
    "NodeInfo",
    "NodeMemory",
    "BlockJobInfo",
    "BlockJobStatus",
    "Hypervisor",
    "HypervisorError",
    "NoSuchDomainError",
    "DomainExistsError",
    "HypervisorTimeoutError",
    "UnsupportedError",
    "EventCallback",
    "ReconnectCallback",
]


class HypervisorError(Exception):
    """A hypervisor operation failed; the message says why."""


class NoSuchDomainError(HypervisorError):
    pass


class DomainExistsError(HypervisorError):
    pass


class HypervisorTimeoutError(HypervisorError):
    """The call did not return in time (the hypervisor may be stuck)."""


class UnsupportedError(HypervisorError):
    """This hypervisor (driver) cannot do that operation."""


class DomainState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting_down"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    SUSPENDED_PM = "pmsuspended"
    UNKNOWN = "unknown"


class DomainEventKind(enum.Enum):
    STARTED = "started"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    STOPPED = "stopped"
    SHUTDOWN = "shutdown"  # guest began/finished shutting down (domain may still run)
    CRASHED = "crashed"
    REBOOTED = "rebooted"
    IO_ERROR = "io_error"
    # A block job (commit) changed state: `disk` names the drive (vda), `detail`
    # is a BlockJobStatus value.
    BLOCK_JOB = "block_job"
    OTHER = "other"


class BlockJobStatus(str, enum.Enum):
    """How a block job ended, or that an active commit is ready to pivot."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    uuid: str
    kind: DomainEventKind
    # Why, in hypervisor terms: "shutdown", "destroyed", "crashed", "ioerror",
    # "user", "failed", "migrated", "saved", ... (free text, for exit info).
    detail: str = ""
    # The drive (target dev, e.g. vda) of a BLOCK_JOB event.
    disk: str = ""


@dataclass(frozen=True, slots=True)
class DomainInfo:
    uuid: str
    name: str
    state: DomainState
    xml: str
    # Why the domain is in that state, same vocabulary as DomainEvent.detail.
    reason: str = ""


@dataclass(slots=True)
class DomainSample:
    """Counters of one domain at one instant (rates come from two samples)."""

    uuid: str
    state: DomainState
    cpu_time_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    vcpus: int = 0
    balloon_current_kib: int = 0
    balloon_maximum_kib: int = 0
    memory_rss_kib: int = 0
    memory_stats: dict[str, int] = field(default_factory=dict)  # unused, available, ...
    # per device name: rx_bytes, tx_bytes, rx_pkts, tx_pkts, rx_errs, tx_errs, rx_drop, tx_drop
    net: dict[str, dict[str, int]] = field(default_factory=dict)
    # per device name: rd_reqs, wr_reqs, rd_bytes, wr_bytes, rd_times, wr_times,
    # allocation, capacity, physical
    block: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BlockJobInfo:
    """Progress of the block job running on one drive (bytes: cur of end)."""

    kind: str  # "commit", "active_commit", "pull", "copy", "unknown"
    cur: int
    end: int
    bandwidth_mib_s: int = 0

    @property
    def ready(self) -> bool:
        """An active commit that copied everything (libvirt also says so in the
        domain XML: <mirror ready='yes'>)."""
        return self.kind == "active_commit" and self.end > 0 and self.cur == self.end


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the host is made of (capabilities and hardware info come from it)."""

    hostname: str
    arch: str
    cpu_model: str
    cpu_mhz: int
    cpu_sockets: int
    cpu_cores_per_socket: int
    cpu_threads_per_core: int
    online_cpus: int
    memory_mib: int
    cpu_flags: tuple[str, ...] = ()
    emulated_machines: tuple[str, ...] = ()
    numa_nodes: int = 1
    kvm_enabled: bool = False
    driver: str = ""  # "QEMU", "TEST", "FAKE"
    libvirt_version: str = ""
    qemu_version: str = ""
    system_manufacturer: str = ""
    system_product: str = ""
    system_serial: str = ""
    system_uuid: str = ""


@dataclass(frozen=True, slots=True)
class NodeMemory:
    total_kib: int
    free_kib: int


EventCallback = Callable[[DomainEvent], None]
ReconnectCallback = Callable[[], None]


class Hypervisor(Protocol):
    async def connect(self, on_event: EventCallback,
                      on_reconnect: ReconnectCallback | None = None) -> None:
        """Connect and deliver domain lifecycle events to `on_event` (on the loop).

        `on_reconnect` is called (on the loop) after a lost connection came back:
        events may have been missed meanwhile, so the caller resynchronises.
        """

    async def close(self) -> None: ...

    async def list_domains(self) -> list[DomainInfo]:
        """Every domain that exists now (running, paused, ...)."""

    async def create(self, xml: str, start_paused: bool = False) -> DomainInfo:
        """Start a transient domain from its XML."""

    async def destroy(self, uuid: str, graceful: bool = False) -> None:
        """Power off; `graceful` asks the process to exit (SIGTERM) first."""

    async def shutdown(self, uuid: str) -> None:
        """Ask the guest to shut down (ACPI power button)."""

    async def reboot(self, uuid: str) -> None:
        """Ask the guest to reboot (ACPI)."""

    async def reset(self, uuid: str) -> None:
        """Hard reset, like the reset button."""

    async def suspend(self, uuid: str) -> None: ...

    async def resume(self, uuid: str) -> None: ...

    async def get_xml(self, uuid: str) -> str: ...

    async def set_graphics_password(self, uuid: str, graphics_xml: str) -> None:
        """Update a live graphics device (VNC/SPICE password and its expiry)."""

    async def set_balloon(self, uuid: str, target_kib: int) -> None: ...

    async def sample(self) -> list[DomainSample]:
        """Counters of every domain, in one bulk call where the hypervisor allows."""

    async def snapshot_disks(self, uuid: str, snapshot_xml: str, quiesce: bool = False) -> None:
        """Live external disk-only snapshot onto overlays that already exist
        (a <domainsnapshot> naming each drive's new source): the domain keeps
        no snapshot metadata; each named drive writes to its new overlay from
        then on, backed by what it used before."""

    async def block_commit(self, uuid: str, disk: str, base: str, top: str,
                           bandwidth_mib_s: int = 0, active: bool = False) -> None:
        """Start committing the layers from `top` down to just above `base`
        into `base` (both given as libvirt targets, e.g. "vda[2]"), keeping
        backing file names relative. `active`: top is the drive's active
        layer; the job then becomes READY and needs block_job_abort(pivot)."""

    async def block_job_info(self, uuid: str, disk: str) -> BlockJobInfo | None:
        """The block job on that drive, None when there is none."""

    async def block_job_abort(self, uuid: str, disk: str, pivot: bool = False) -> None:
        """End the drive's block job; with `pivot`, a READY active commit
        switches the drive to the base (a COMPLETED event follows)."""

    async def node_info(self) -> NodeInfo: ...

    async def node_memory(self) -> NodeMemory: ...

    def is_alive(self) -> bool:
        """False while the connection to the hypervisor is down (reconnecting)."""
