"""Where to run a VM: a pure function (the scheduler issue replaces it).

Filter: the host must be up and have enough memory left for the VM (what its
last statistics say is available, minus memory promised to VMs started since).
Score: the least loaded host (CPU), then the one with the most free memory,
then the one with the fewest VMs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Conflict

__all__ = ["HostCandidate", "pick_host", "VM_MEMORY_OVERHEAD_MIB"]

# Per-VM overhead a host needs beyond the guest memory (QEMU itself).
VM_MEMORY_OVERHEAD_MIB = 65


@dataclass(frozen=True, slots=True)
class HostCandidate:
    id: str
    name: str
    free_mib: int
    cpu_pct: float
    vm_count: int


def pick_host(candidates: list[HostCandidate], memory_mib: int) -> HostCandidate:
    if not candidates:
        raise Conflict("Cannot run VM: there is no host in status Up in the VM's cluster.")
    need = memory_mib + VM_MEMORY_OVERHEAD_MIB
    fitting = [c for c in candidates if c.free_mib >= need]
    if not fitting:
        best = max(candidates, key=lambda c: c.free_mib)
        raise Conflict(f"Cannot run VM: no host has {need} MiB of free memory "
                       f"(the most is {best.free_mib} MiB on {best.name}).")
    return min(fitting, key=lambda c: (round(c.cpu_pct), -c.free_mib, c.vm_count, c.name))
