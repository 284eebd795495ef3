"""Placement (pure) and the domain XML the engine sends in VM.create."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ovengine.domain.domxml import VmSpec, build_domain_xml
from ovengine.domain.placement import HostCandidate, pick_host
from ovengine.errors import Conflict


def test_pick_least_loaded_host_with_enough_memory() -> None:
    hosts = [HostCandidate("a", "a", 4096, 50.0, 3), HostCandidate("b", "b", 2048, 5.0, 1),
             HostCandidate("c", "c", 100, 0.0, 0)]
    assert pick_host(hosts, 1024).id == "b"       # c lacks memory, b less loaded than a
    assert pick_host(hosts, 3000).id == "a"       # only a fits
    with pytest.raises(Conflict, match="no host has"):
        pick_host(hosts, 8192)
    with pytest.raises(Conflict, match="no host in status Up"):
        pick_host([], 64)


def test_ties_go_to_more_free_memory_then_fewer_vms() -> None:
    hosts = [HostCandidate("a", "a", 4000, 10.2, 5), HostCandidate("b", "b", 8000, 9.9, 9)]
    assert pick_host(hosts, 512).id == "b"
    hosts = [HostCandidate("a", "a", 8000, 10.0, 5), HostCandidate("b", "b", 8000, 10.0, 2)]
    assert pick_host(hosts, 512).id == "b"


def test_domain_xml() -> None:
    xml = build_domain_xml(VmSpec(id="11111111-2222-3333-4444-555555555555", name="vm<&>",
                                  memory_mib=256, memory_guaranteed_mib=128, memory_max_mib=1024,
                                  sockets=2, cores=2, threads=1, display_address="0"))
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "vm<&>"
    assert root.findtext("uuid") == "11111111-2222-3333-4444-555555555555"
    assert root.findtext("memory") == str(256 * 1024)
    assert root.findtext("vcpu") == "4"
    topo = root.find("cpu/topology")
    assert topo is not None and (topo.get("sockets"), topo.get("cores")) == ("2", "2")
    g = root.find("devices/graphics")
    assert g is not None and g.get("type") == "vnc" and g.get("autoport") == "yes"
    # The console password starts expired: nobody connects before a ticket.
    assert g.get("passwdValidTo") == "1970-01-01T00:00:01"
    ns = "{http://ovirt.org/vm/1.0}"
    assert root.findtext(f"metadata/{ns}vm/{ns}clusterVersion") == "4.7"
    kvm = ET.fromstring(build_domain_xml(VmSpec(id="x", name="k", memory_mib=1,
                                                memory_guaranteed_mib=1, memory_max_mib=1,
                                                kvm=True)))
    assert kvm.get("type") == "kvm"
