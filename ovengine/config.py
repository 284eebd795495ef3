"""ovengine configuration: conf/ovengine.yaml (+ ovengine.yaml.d/*.yaml drop-ins)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.configfile import ConfigError, load_config

__all__ = ["EngineConfig", "DatabaseConfig", "ApiConfig", "HostsConfig", "MonitoringConfig",
           "AuthConfig", "LdapConfig", "VmsConfig", "StorageConfig", "NetworkConfig", "load",
           "DEFAULT_CONFIG_PATH"]

DEFAULT_CONFIG_PATH = Path("/etc/ov/ovengine.yaml")


@dataclass(frozen=True)
class DatabaseConfig:
    # Empty: run a private PostgreSQL cluster under state_dir/postgresql.
    dsn: str = ""
    pool_min: int = 2
    pool_max: int = 20
    statement_timeout_s: float = 60.0
    # Only for throwaway clusters (tests, demos): trade durability for speed.
    embedded_fsync: bool = True


@dataclass(frozen=True)
class ApiConfig:
    host: str = "0.0.0.0"
    port: int = 8443
    # Hostnames/addresses the engine's HTTPS certificate is valid for.
    server_names: tuple[str, ...] = ("localhost", "127.0.0.1")
    max_body_mib: int = 64
    token_lifetime_s: float = 3600.0


@dataclass(frozen=True)
class HostsConfig:
    heartbeat_ms: int = 10000
    connect_timeout_s: float = 20.0
    call_timeout_s: float = 180.0
    # A host that lost its link stays "connecting" this long before it is
    # declared non_responsive (its VMs then become "unknown").
    grace_period_s: float = 30.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_concurrent_polls: int = 200


@dataclass(frozen=True)
class MonitoringConfig:
    vm_stats_interval_s: float = 15.0
    host_stats_interval_s: float = 15.0


@dataclass(frozen=True)
class VmsConfig:
    # shutdown: ACPI first, powered off if the guest is still up after this.
    shutdown_timeout_s: float = 120.0


@dataclass(frozen=True)
class StorageConfig:
    # getSpmStatus of each data center's SPM, and a new election when it has none.
    spm_poll_interval_s: float = 10.0
    # How long one spmStart task may take (the agent waits for the SPM lease up
    # to its storage.spm_acquire_timeout_s, 300 s by default).
    spm_start_timeout_s: float = 360.0
    # After a failed election, wait this long before the next attempt.
    spm_retry_s: float = 5.0
    # Task.getStatus of a running storage task (volume create, copy, delete).
    task_poll_interval_s: float = 2.0
    # A storage task that has not finished after this fails its command (the
    # agent's own qemu-img copy limit is 6 h).
    task_timeout_s: float = 21600.0
    # A host that cannot see an active domain of its data center for this
    # long becomes non_operational; a domain no host sees that long, inactive.
    domain_failure_timeout_s: float = 300.0
    # A host made non_operational by storage is reconnected to its storage this
    # often (oVirt's auto-recovery); it is up again once it sees every domain.
    host_recovery_interval_s: float = 300.0
    # Storage calls that are not tasks (create domain, connect, prepare).
    call_timeout_s: float = 120.0


@dataclass(frozen=True)
class NetworkConfig:
    # The MAC pool: "first-last" ranges the engine allocates VM NIC addresses
    # from (oVirt's default pool is in 56:6f:xx:xx:xx:xx).
    mac_pool_ranges: tuple[str, ...] = ("56:6f:00:00:00:00-56:6f:00:00:ff:ff",)

    def __post_init__(self) -> None:
        from .domain.macpool import MacPool  # the parser; a bad range is a startup error

        try:
            MacPool.parse(self.mac_pool_ranges)
        except ValueError as exc:
            raise ConfigError(f"network.mac_pool_ranges: {exc}") from None


@dataclass(frozen=True)
class LdapConfig:
    name: str = ""            # the profile/domain name users log in with (user@name)
    url: str = ""             # ldap://host:port
    bind_dn: str = ""
    bind_password: str = ""
    user_base: str = ""
    user_filter: str = "(uid={user})"
    group_base: str = ""
    group_filter: str = "(|(member={dn})(memberUid={user}))"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class AuthConfig:
    # Set admin@internal's password at first start; empty: generate one and
    # print it once (and store it in state_dir/admin-password).
    admin_password: str = ""
    ldap: tuple[LdapConfig, ...] = ()


@dataclass(frozen=True)
class EngineConfig:
    state_dir: Path = Path("/var/lib/ov/engine")
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    hosts: HostsConfig = field(default_factory=HostsConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    vms: VmsConfig = field(default_factory=VmsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    log_level: str = "info"


def load(path: Path | None, overrides: dict[str, Any] | None = None) -> EngineConfig:
    return load_config(EngineConfig, path, overrides)
