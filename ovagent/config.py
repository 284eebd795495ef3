"""ovagent configuration: conf/ovagent.yaml (+ ovagent.yaml.d/*.yaml drop-ins).

Read once into frozen dataclasses; unknown keys stop startup naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.configfile import load_config

__all__ = ["AgentConfig", "ListenConfig", "TlsConfig", "LibvirtConfig", "SamplingConfig",
           "VmConfig", "HooksConfig", "StorageConfig", "ImageioConfig", "load",
           "DEFAULT_CONFIG_PATH",
           "parse_listen"]

DEFAULT_CONFIG_PATH = Path("/etc/ov/ovagent.yaml")


@dataclass(frozen=True)
class ListenConfig:
    host: str = "0.0.0.0"
    port: int = 54321


@dataclass(frozen=True)
class TlsConfig:
    cert: Path = Path("/etc/pki/ov/agent/cert.pem")
    key: Path = Path("/etc/pki/ov/agent/key.pem")
    ca: Path = Path("/etc/pki/ov/agent/ca.pem")
    crl: Path | None = None


@dataclass(frozen=True)
class LibvirtConfig:
    uri: str = "qemu:///system"
    lifecycle_threads: int = 8
    monitoring_threads: int = 4
    lifecycle_timeout_s: float = 120.0
    monitoring_timeout_s: float = 30.0
    # False: report no KVM, so the engine starts VMs under TCG (for hosts
    # whose /dev/kvm opens but cannot run guests, e.g. broken nested KVM).
    use_kvm: bool = True


@dataclass(frozen=True)
class SamplingConfig:
    vm_interval_s: float = 15.0
    host_interval_s: float = 15.0


@dataclass(frozen=True)
class VmConfig:
    # A started VM is reported "Powering up" this long before "Up".
    powering_up_s: float = 10.0
    # VM.shutdown without a timeout waits this long for the guest.
    shutdown_timeout_s: float = 120.0
    # How often a running live merge's progress (vmJobs cur/end) is read.
    block_job_poll_s: float = 2.0


@dataclass(frozen=True)
class HooksConfig:
    dir: Path = Path("/usr/libexec/ov/hooks")
    timeout_s: float = 60.0


@dataclass(frozen=True)
class StorageConfig:
    # Like vdsm's /rhev/data-center: storage connections appear under
    # <repository>/mnt, pools as <repository>/<spUUID>/<sdUUID> links.
    repository: Path = Path("/rhev/data-center")
    # sanlock daemon run directory (its socket); None: libsanlock's default
    # (/run/sanlock). Exported as SANLOCK_RUN_DIR before the first sanlock call.
    sanlock_run_dir: Path | None = None
    # sanlock io timeout of the domain lockspaces; a dead host's leases expire
    # 8 x this + 60 s (sanlock's watchdog constant) after its last renewal.
    sanlock_io_timeout_s: int = 10
    # Domain monitoring period (Host.getStats storageDomains).
    monitor_interval_s: float = 10.0
    # Worker threads for blocking file and sanlock calls.
    io_threads: int = 8
    # A blocking file or sanlock call that takes longer fails.
    io_timeout_s: float = 60.0
    # qemu-img create/resize/info and mount/umount that take longer fail.
    command_timeout_s: float = 600.0
    # A volume copy (qemu-img convert) that takes longer fails.
    copy_timeout_s: float = 21600.0
    # Bandwidth limit of volume copies in bytes/s (qemu-img convert -r); 0: none.
    copy_rate_limit_bytes_s: int = 0
    # How long spmStart waits for the host id and the SPM lease.
    spm_acquire_timeout_s: float = 300.0


@dataclass(frozen=True)
class ImageioConfig:
    # The image server (ovirt-imageio's HTTP API: transfer URLs
    # https://<host>:<port>/images/<ticket>), with the agent's certificate.
    enabled: bool = True
    # None: the address the agent's JSON-RPC listens on (listen.host).
    host: str | None = None
    port: int = 54322
    # Worker threads for reading and writing volumes.
    io_threads: int = 4
    # A read or write of one buffer that takes longer fails the request.
    io_timeout_s: float = 60.0
    # Bytes moved per read or write.
    buffer_kib: int = 1024


@dataclass(frozen=True)
class AgentConfig:
    listen: ListenConfig = field(default_factory=ListenConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    libvirt: LibvirtConfig = field(default_factory=LibvirtConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    vm: VmConfig = field(default_factory=VmConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    imageio: ImageioConfig = field(default_factory=ImageioConfig)
    state_dir: Path = Path("/var/lib/ov/agent")
    log_level: str = "info"
    max_frame_mib: int = 32


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen must be HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def load(path: Path | None, overrides: dict[str, Any] | None = None) -> AgentConfig:
    return load_config(AgentConfig, path, overrides)
