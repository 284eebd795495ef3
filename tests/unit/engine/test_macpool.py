"""MAC pool arithmetic and the NIC devices of the domain XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ovengine.config import NetworkConfig
from ovengine.domain.domxml import NicSpec, VmSpec, build_domain_xml
from ovengine.domain.macpool import MacPool, check_mac, int_to_mac, mac_to_int, normalize_mac
from ovengine.errors import ValidationFailed
from protocol.configfile import ConfigError


def test_mac_int_round_trip() -> None:
    assert mac_to_int("56:6f:00:00:01:00") == 0x566F00000100
    assert int_to_mac(0x566F00000100) == "56:6f:00:00:01:00"
    assert normalize_mac(" 56-6F-00-AA-bb-0C ") == "56:6f:00:aa:bb:0c"
    for bad in ("56:6f:00:00:00", "56:6f:00:00:00:0g", "566f00000000", ""):
        with pytest.raises(ValueError):
            normalize_mac(bad)
    with pytest.raises(ValueError):
        int_to_mac(1 << 48)


def test_check_mac_names_the_field_and_refuses_multicast() -> None:
    assert check_mac("56:6F:00:00:00:01") == "56:6f:00:00:00:01"
    with pytest.raises(ValidationFailed) as e:
        check_mac("not-a-mac")
    assert e.value.field == "mac.address"
    with pytest.raises(ValidationFailed, match="multicast"):
        check_mac("01:00:5e:00:00:01")


def test_pool_ranges_first_free_and_exhaustion() -> None:
    pool = MacPool.parse(["56:6f:00:00:00:00-56:6f:00:00:00:02", "56:6f:00:00:10:00-56:6f:00:00:10:00"])
    assert pool.size == 4
    assert pool.contains("56:6F:00:00:00:01") and not pool.contains("56:6f:00:00:00:03")
    assert pool.first_free(set()) == "56:6f:00:00:00:00"
    used = {mac_to_int("56:6f:00:00:00:00"), mac_to_int("56:6f:00:00:00:02")}
    assert pool.first_free(used) == "56:6f:00:00:00:01"
    used.add(mac_to_int("56:6f:00:00:00:01"))
    assert pool.first_free(used) == "56:6f:00:00:10:00"   # the next range
    used.add(mac_to_int("56:6f:00:00:10:00"))
    assert pool.first_free(used) is None


def test_pool_skips_multicast_addresses() -> None:
    pool = MacPool.parse(["01:00:00:00:00:00-02:00:00:00:00:01"])
    assert pool.first_free(set()) == "02:00:00:00:00:00"


def test_bad_ranges_are_startup_errors() -> None:
    for bad in (["56:6f:00:00:00:05-56:6f:00:00:00:01"], ["56:6f:00:00:00:05"], [],
                ["x-y"]):
        with pytest.raises(ValueError):
            MacPool.parse(bad)
    with pytest.raises(ConfigError, match="mac_pool_ranges"):
        NetworkConfig(mac_pool_ranges=("56:6f:00:00:00:05",))
    assert MacPool.parse(NetworkConfig().mac_pool_ranges).size == 65536


def test_domain_xml_nics() -> None:
    xml = build_domain_xml(VmSpec(id="11111111-2222-3333-4444-555555555555", name="v",
                                  memory_mib=64, memory_guaranteed_mib=64, memory_max_mib=64,
                                  nics=(NicSpec("56:6f:00:00:00:01", "virtio", "ovirtmgmt"),
                                        NicSpec("56:6f:00:00:00:02", "e1000", "net2",
                                                linked=False),
                                        NicSpec("56:6f:00:00:00:03", "rtl8139"))))
    ifaces = ET.fromstring(xml).findall("devices/interface")
    got = [(i.get("type"), i.find("source").get("bridge") if i.find("source") is not None
            else None, i.find("mac").get("address"), i.find("model").get("type"),
            i.find("link").get("state") if i.find("link") is not None else "up")
           for i in ifaces]
    assert got == [("bridge", "ovirtmgmt", "56:6f:00:00:00:01", "virtio", "up"),
                   ("bridge", "net2", "56:6f:00:00:00:02", "e1000", "down"),
                   ("user", None, "56:6f:00:00:00:03", "rtl8139", "down")]
