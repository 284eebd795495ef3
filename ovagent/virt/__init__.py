"""Virtualization: VMs, their lifecycle, sampling, hooks; the Hypervisor role."""
