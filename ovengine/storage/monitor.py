"""Storage domain monitoring from the hosts' reports.

Every host connected to a pool monitors the pool's active domains and
reports each one in Host.getStats `storageDomains` ({valid, acquired,
actual, delay, code}). The engine keeps, per (host, domain), since when the
host has not seen the domain work, and then, as oVirt does (but simpler):

- a host that has not seen an active domain of its data center for
  `domain_failure_timeout_s` becomes non_operational ("cannot access the
  Storage Domain(s) ..."); every `host_recovery_interval_s` it is connected
  to its storage again (connectStorageServer mounts what is missing, then
  StoragePool.connect), and once its reports show every active domain
  working it is up again (oVirt's auto-recovery);
- a non-master domain that none of the pool's hosts has seen for that long
  becomes inactive (audited; it is not re-activated by itself: activate it);
  a failing master is only reported (ov cannot move the master role).

A report that has not made its first check yet (`actual` false) counts as
neither good nor bad.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..audit import AuditLog, AuditRefs
from ..config import StorageConfig
from ..hosts.manager import HostManager
from .connector import PoolConnector
from .layout import PoolLayout
from .spm import StorageAudit, _audit

__all__ = ["DomainMonitor", "judge"]

log = logging.getLogger(__name__)


def judge(vitals: dict[str, Any] | None) -> bool | None:
    """True: the host sees the domain work; False: it does not; None: no verdict yet."""
    if vitals is None:
        return False
    if not vitals.get("actual", True):
        return None
    return bool(vitals.get("valid")) and int(vitals.get("code", 0) or 0) == 0


@dataclass
class _Report:
    at: float
    domains: dict[str, Any]


class DomainMonitor:
    def __init__(self, pool: asyncpg.Pool, hosts: HostManager, connector: PoolConnector,
                 audit: AuditLog, cfg: StorageConfig) -> None:
        self.pool = pool
        self.hosts = hosts
        self.connector = connector
        self.audit = audit
        self.cfg = cfg
        self.reports: dict[str, _Report] = {}
        self.failing: dict[tuple[str, str], float] = {}   # (host, domain) -> since
        self.non_operational: set[str] = set()             # hosts made so for storage
        self._reconnected: dict[str, float] = {}           # host -> last recovery attempt

    def on_host_stats(self, host_id: str, domains: dict[str, Any]) -> None:
        self.reports[host_id] = _Report(time.monotonic(), dict(domains or {}))

    async def check(self, layout: PoolLayout) -> None:
        now = time.monotonic()
        active = layout.active()
        hosts = self.connector.pool_hosts(layout.dc_id, ("up", "non_operational"))
        unseen: dict[str, int] = {d.id: 0 for d in active}
        judged: dict[str, int] = {d.id: 0 for d in active}
        for host_id in hosts:
            report = self.reports.get(host_id)
            if report is None:
                continue
            bad: list[str] = []
            for d in active:
                verdict = judge(report.domains.get(d.id))
                key = (host_id, d.id)
                if verdict is None:
                    continue
                judged[d.id] += 1
                if verdict:
                    self.failing.pop(key, None)
                    continue
                since = self.failing.setdefault(key, now)
                if now - since >= self.cfg.domain_failure_timeout_s:
                    bad.append(d.name)
                    unseen[d.id] += 1
            rt = self.hosts.hosts.get(host_id)
            if rt is None:
                continue
            if bad and rt.status == "up":
                await self._host_failed(layout, host_id, bad)
            elif rt.status == "non_operational" and host_id in self.non_operational:
                if all((host_id, d.id) not in self.failing for d in active) and \
                        all(judge(report.domains.get(d.id)) for d in active):
                    await self._host_recovered(host_id)
                elif now - self._reconnected.get(host_id, 0.0) >= \
                        self.cfg.host_recovery_interval_s:
                    self._reconnected[host_id] = now
                    reason = await self.connector.connect_host(host_id)
                    log.info("reconnecting non operational host %s to its storage: %s",
                             rt.name, reason or "done")
        for d in active:
            if judged[d.id] and unseen[d.id] == judged[d.id]:
                await self._domain_failed(layout, d.id, d.name, d.master)

    async def retry_unconnected(self) -> None:
        """Hosts made non_operational before they could join their pool (their
        storage connection failed when they came up): try again now and then."""
        now = time.monotonic()
        pooled = set().union(*self.connector.connected.values()) \
            if self.connector.connected else set()
        for host_id in sorted(self.non_operational - pooled):
            rt = self.hosts.hosts.get(host_id)
            if rt is None:
                self.non_operational.discard(host_id)
                continue
            if rt.status != "non_operational" or not rt.connected or \
                    now - self._reconnected.get(host_id, 0.0) < self.cfg.host_recovery_interval_s:
                continue
            self._reconnected[host_id] = now
            reason = await self.connector.connect_host(host_id)
            if reason is None and not self.connector.is_connected_any(host_id):
                # Nothing to join (its data center has no pool): it is fine as it is.
                await self._host_recovered(host_id)

    async def _host_failed(self, layout: PoolLayout, host_id: str, domains: list[str]) -> None:
        rt = self.hosts.hosts[host_id]
        reason = (f"Host {rt.name} cannot access the Storage Domain(s) {', '.join(domains)} "
                  f"attached to the Data Center {layout.name}")
        self.non_operational.add(host_id)
        self._reconnected[host_id] = time.monotonic()
        await self.hosts.set_status(rt, "non_operational", reason)
        await self.audit.log(_audit(StorageAudit.VDS_SET_NONOPERATIONAL_DOMAIN),
                             f"{reason}. Setting Host state to Non-Operational.",
                             AuditRefs(host_id=uuid.UUID(host_id), host_name=rt.name,
                                       data_center_id=uuid.UUID(layout.dc_id)))

    async def _host_recovered(self, host_id: str) -> None:
        rt = self.hosts.hosts[host_id]
        self.non_operational.discard(host_id)
        self._reconnected.pop(host_id, None)
        if rt.admin_status == "up" and rt.connected:
            await self.hosts.set_status(rt, "up", "")
            await self.audit.log(_audit(StorageAudit.VDS_ACTIVATE_ASYNC),
                                 f"Host {rt.name} sees its storage again and was activated.",
                                 AuditRefs(host_id=uuid.UUID(host_id), host_name=rt.name))

    async def _domain_failed(self, layout: PoolLayout, sd_id: str, name: str,
                             master: bool) -> None:
        refs = AuditRefs(storage_domain_id=uuid.UUID(sd_id),
                         data_center_id=uuid.UUID(layout.dc_id))
        if master:
            await self.audit.log(_audit(StorageAudit.STORAGE_DOMAIN_ERROR),
                                 f"The master Storage Domain {name} of Data Center "
                                 f"{layout.name} is not accessible from any host.", refs)
            for key in [k for k in self.failing if k[1] == sd_id]:
                self.failing[key] = time.monotonic()  # report again after another period
            return
        await self.pool.execute("UPDATE storage_pool_iso_map SET status='inactive', "
                                "status_changed_at=now() WHERE storage_domain_id=$1 AND "
                                "data_center_id=$2 AND status='active'",
                                uuid.UUID(sd_id), uuid.UUID(layout.dc_id))
        for key in [k for k in self.failing if k[1] == sd_id]:
            del self.failing[key]
        await self.audit.log(_audit(StorageAudit.SYSTEM_DEACTIVATED_STORAGE_DOMAIN),
                             f"Storage Domain {name} (Data Center {layout.name}) was "
                             f"deactivated by system because it is not visible by any of the "
                             f"hosts.", refs)
        await self.connector.refresh(layout.dc_id)
