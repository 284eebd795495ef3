"""libvirt.use_kvm: false makes a QEMU host report no KVM (the engine then
builds type='qemu' domains, TCG), whatever /dev/kvm claims."""

from __future__ import annotations

import pytest

from ovagent.virt.libvirt.hypervisor import LibvirtHypervisor
from ovagent.virt.libvirt.nodeinfo import _kvm_works

pytestmark = pytest.mark.system


async def test_use_kvm_false_reports_no_kvm(qemu_uri: str) -> None:
    async def kvm_enabled(use_kvm: bool) -> bool:
        hv = LibvirtHypervisor(qemu_uri, use_kvm=use_kvm)
        await hv.connect(lambda *_: None)
        try:
            return (await hv.node_info()).kvm_enabled
        finally:
            await hv.close()

    assert await kvm_enabled(True) == _kvm_works()
    assert await kvm_enabled(False) is False
