"""The storage pool (data center) this host is connected to, and its SPM role.

The pool's metadata lives in its master domain's metadata (POOL_DOMAINS,
POOL_DESCRIPTION, POOL_SPM_ID, POOL_SPM_LVER, MASTER_VERSION, ROLE=Master).
Every host reads it; only the SPM writes it, and only while it holds the
master domain's SDM lease (checked before each write, not just remembered).

SPM role: "Free" -> "Contend" (spmStart task running) -> "SPM" (lease held)
-> "Free" (spmStop, or the lease lost).
"""

from __future__ import annotations

import logging
from typing import Any

from .constants import ACTIVE, LVER_INVALID, SPM_ID_FREE
from .domain import FileDomain
from .errors import NotSpm, PoolWrongMaster
from .metadata import decode_pool_domains, encode_pool_domains

__all__ = ["StoragePool", "FREE", "CONTEND", "SPM"]

log = logging.getLogger(__name__)

FREE, CONTEND, SPM = "Free", "Contend", "SPM"


class StoragePool:
    def __init__(self, sp_uuid: str, host_id: int, master: FileDomain, master_version: int,
                 domain_dict: dict[str, str] | None) -> None:
        self.sp_uuid = sp_uuid
        self.host_id = host_id
        self.master = master
        self.master_version = master_version
        # With a domainDict from the engine the map lives in memory (vdsm's
        # memory backend); else it is read from the master's metadata.
        self.memory_map = domain_dict
        self.domains: dict[str, str] = dict(domain_dict or {})
        self.spm_role = FREE
        self.lver = LVER_INVALID

    # ------------------------------------------------------------- metadata
    async def refresh(self) -> dict[str, str]:
        md = await self.master.reload()
        version = int(md.get("MASTER_VERSION", "0") or 0)
        if self.sp_uuid not in self.master.pools or md.get("ROLE") != "Master" \
                or version != self.master_version:
            raise PoolWrongMaster(f"SD={self.master.sd_uuid}, pool={self.sp_uuid} "
                                  f"(role={md.get('ROLE')}, version={version})")
        if self.memory_map is None:
            self.domains = decode_pool_domains(md.get("POOL_DOMAINS", ""))
        return md

    async def require_spm(self) -> None:
        if self.spm_role != SPM:
            raise NotSpm(f"pool {self.sp_uuid}: this host is {self.spm_role}")
        if not await self.master.lock.holds_spm():
            self.spm_role = FREE
            raise NotSpm(f"pool {self.sp_uuid}: the SPM lease was lost")

    async def write_pool(self, changes: dict[str, str | None]) -> dict[str, str]:
        """Change pool keys in the master metadata (SPM only)."""
        await self.require_spm()
        return await self.master.update_metadata(changes)

    async def set_domain_status(self, sd_uuid: str, status: str | None) -> None:
        def change(md: dict[str, str]) -> dict[str, str | None]:
            domains = decode_pool_domains(md.get("POOL_DOMAINS", ""))
            if status is None:
                domains.pop(sd_uuid, None)
            else:
                domains[sd_uuid] = status
            return {"POOL_DOMAINS": encode_pool_domains(domains)}

        await self.require_spm()
        md = await self.master.modify_metadata(change)
        domains = decode_pool_domains(md.get("POOL_DOMAINS", ""))
        if self.memory_map is not None:
            if status is None:
                self.memory_map.pop(sd_uuid, None)
            else:
                self.memory_map[sd_uuid] = status
        self.domains = dict(self.memory_map) if self.memory_map is not None else domains

    def active_domains(self) -> list[str]:
        return [sd for sd, status in self.domains.items() if status == ACTIVE]

    # ------------------------------------------------------------------ SPM
    async def spm_status(self) -> dict[str, Any]:
        if self.spm_role == SPM:
            return {"spmId": self.host_id, "spmStatus": SPM, "spmLver": self.lver}
        if self.spm_role == CONTEND:
            return {"spmId": SPM_ID_FREE, "spmStatus": CONTEND, "spmLver": LVER_INVALID}
        owner = await self.master.lock.spm_owner()
        if owner is not None:
            lver, spm_id = owner
            return {"spmId": spm_id, "spmStatus": FREE, "spmLver": lver}
        md = await self.master.reload()
        return {"spmId": int(md.get("POOL_SPM_ID", SPM_ID_FREE) or SPM_ID_FREE),
                "spmStatus": FREE,
                "spmLver": int(md.get("POOL_SPM_LVER", LVER_INVALID) or LVER_INVALID)}

    async def become_spm(self, lver: int | None) -> None:
        md = await self.master.reload()
        if lver is None:  # local lock: count takeovers in the metadata
            lver = max(int(md.get("POOL_SPM_LVER", "0") or 0), 0) + 1
        self.lver = lver
        self.spm_role = SPM
        await self.write_pool({"POOL_SPM_ID": str(self.host_id), "POOL_SPM_LVER": str(lver)})
        log.info("host %d is SPM of pool %s (lver %d)", self.host_id, self.sp_uuid, lver)

    async def resign_spm(self) -> None:
        if self.spm_role == SPM:
            try:
                await self.write_pool({"POOL_SPM_ID": str(SPM_ID_FREE)})
            except Exception as exc:  # the lease may be gone already
                log.warning("cannot clear POOL_SPM_ID: %s", exc)
        self.spm_role = FREE
        await self.master.lock.release_spm()
        log.info("host %d is no longer SPM of pool %s", self.host_id, self.sp_uuid)
