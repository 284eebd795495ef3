"""Periodic bulk sampling of VM counters (one hypervisor call per interval).

getAllVmStats then serves the cached figures, so answering it costs no
hypervisor call at all. A sample that times out marks every running VM as
not responding (monitorResponse -1) until a sample succeeds again.
"""

from __future__ import annotations

import logging
import time

from .hypervisor import HypervisorError, HypervisorTimeoutError
from .manager import VmManager

__all__ = ["VmSampler"]

log = logging.getLogger(__name__)


class VmSampler:
    def __init__(self, manager: VmManager) -> None:
        self.manager = manager
        self.samples_taken = 0
        self.last_duration_s = 0.0

    async def sample_once(self) -> None:
        started = time.monotonic()
        vms = self.manager.vms
        try:
            samples = await self.manager.hypervisor.sample()
        except HypervisorTimeoutError as exc:
            log.warning("bulk VM sampling timed out: %s", exc)
            for vm in vms.values():
                if vm.status.running:
                    vm.mark_not_responding()
            return
        except HypervisorError as exc:
            log.warning("bulk VM sampling failed: %s", exc)
            return
        now = time.monotonic()
        for s in samples:
            sampled = vms.get(s.uuid)
            if sampled is not None and sampled.status.running:
                sampled.absorb_sample(s, now)
        self.samples_taken += 1
        self.last_duration_s = time.monotonic() - started
