"""Domain XML helpers: launch preparation, metadata, summaries, tickets, hashes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ovagent.virt.domxml import (
    DomainXmlError,
    display_info,
    graphics_ticket_xml,
    prepare_for_launch,
    read_metadata,
    summary,
    xml_hash,
)
from tests.fixtures.agent import domain_xml, new_vm_id


def test_prepare_for_launch_records_metadata() -> None:
    vm_id = new_vm_id()
    xml = prepare_for_launch(domain_xml("qemu", "a", vm_id), vm_id,
                             {"startTime": "12.5", "params": "{}"})
    assert read_metadata(xml) == {"startTime": "12.5", "params": "{}"}
    again = prepare_for_launch(xml, vm_id.upper(), {"startTime": "13"})
    assert read_metadata(again) == {"startTime": "13", "params": "{}"}
    assert read_metadata(domain_xml("qemu", "a", vm_id)) is None


def test_prepare_for_launch_checks_the_domain() -> None:
    vm_id = new_vm_id()
    with pytest.raises(DomainXmlError, match="does not match"):
        prepare_for_launch(domain_xml("qemu", "a", new_vm_id()), vm_id, {})
    with pytest.raises(DomainXmlError, match="no <name>"):
        prepare_for_launch("<domain><memory>1</memory></domain>", vm_id, {})
    with pytest.raises(DomainXmlError, match="well-formed"):
        prepare_for_launch("<domain>", vm_id, {})
    with pytest.raises(DomainXmlError, match="<domain>"):
        prepare_for_launch("<vm/>", vm_id, {})
    xml = prepare_for_launch("<domain><name>n</name><memory>1</memory></domain>", vm_id, {})
    assert ET.fromstring(xml).findtext("uuid") == vm_id


@pytest.mark.parametrize("memory, kib", [("<memory>2048</memory>", 2048),
                                         ("<memory unit='MiB'>64</memory>", 65536),
                                         ("<memory unit='GiB'>2</memory>", 2 * 1024**2),
                                         ("<memory unit='b'>1048576</memory>", 1024)])
def test_summary_memory_units(memory: str, kib: int) -> None:
    xml = f"<domain><name>n</name>{memory}<vcpu placement='static'>3</vcpu></domain>"
    facts = summary(xml)
    assert facts["memory_kib"] == kib and facts["vcpus"] == 3 and facts["name"] == "n"


def test_display_and_ticket() -> None:
    xml = domain_xml("qemu", "a", new_vm_id()).replace("port='-1'", "port='5907'")
    assert display_info(xml) == [{"type": "vnc", "port": "5907", "tlsPort": "-1",
                                  "ipAddress": "127.0.0.1"}]
    device = ET.fromstring(graphics_ticket_xml(xml, None, "pw", "2030-01-01T00:00:00"))
    assert device.get("passwd") == "pw" and device.get("port") == "5907"
    assert device.get("passwdValidTo") == "2030-01-01T00:00:00"
    forever = ET.fromstring(graphics_ticket_xml(xml, "vnc", "pw", None))
    assert "passwdValidTo" not in forever.attrib
    with pytest.raises(DomainXmlError):
        graphics_ticket_xml(xml, "spice", "pw", None)


def test_hash_is_stable_and_sensitive() -> None:
    vm_id = new_vm_id()
    a = domain_xml("qemu", "a", vm_id)
    assert xml_hash(a) == xml_hash(a)
    assert xml_hash(a) != xml_hash(domain_xml("qemu", "a", vm_id, memory_mib=128))
    int(xml_hash(a))  # a signed integer in a string, as vdsm
