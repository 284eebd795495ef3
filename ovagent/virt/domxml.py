"""Reading and adjusting libvirt domain XML (pure functions, no libvirt).

The agent keeps what it needs to recover a VM after its own restart in the
domain's <metadata>, under oVirt's namespace, so nothing lives only in the
agent's memory.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from typing import Any

__all__ = [
    "OV_NS",
    "DomainXmlError",
    "parse",
    "prepare_for_launch",
    "read_metadata",
    "summary",
    "display_info",
    "graphics_ticket_xml",
    "xml_hash",
]

OV_NS = "http://ovirt.org/vm/1.0"
_OV = f"{{{OV_NS}}}"
ET.register_namespace("ovirt-vm", OV_NS)


class DomainXmlError(ValueError):
    pass


def parse(xml: str) -> ET.Element:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DomainXmlError(f"domain XML is not well-formed: {exc}") from None
    if root.tag != "domain":
        raise DomainXmlError(f"expected a <domain> document, got <{root.tag}>")
    return root


def prepare_for_launch(xml: str, vm_id: str, metadata: dict[str, str]) -> str:
    """Check the uuid (set it when absent) and record our metadata entries."""
    root = parse(xml)
    uuid_el = root.find("uuid")
    if uuid_el is None:
        uuid_el = ET.SubElement(root, "uuid")
        uuid_el.text = vm_id
    elif (uuid_el.text or "").strip().lower() != vm_id.lower():
        raise DomainXmlError(
            f"domain XML uuid {uuid_el.text!r} does not match vmId {vm_id!r}")
    if root.find("name") is None:
        raise DomainXmlError("domain XML has no <name>")
    meta = root.find("metadata")
    if meta is None:
        meta = ET.SubElement(root, "metadata")
    ours = meta.find(f"{_OV}vm")
    if ours is None:
        ours = ET.SubElement(meta, f"{_OV}vm")
    for key, value in metadata.items():
        el = ours.find(f"{_OV}{key}")
        if el is None:
            el = ET.SubElement(ours, f"{_OV}{key}")
        el.text = value
    return ET.tostring(root, encoding="unicode")


def read_metadata(xml: str) -> dict[str, str] | None:
    """Our metadata entries, or None when the domain was not started by ov."""
    root = parse(xml)
    ours = root.find(f"metadata/{_OV}vm")
    if ours is None:
        return None
    return {child.tag.removeprefix(_OV): (child.text or "") for child in ours}


def _memory_kib(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip():
        return 0
    value = int(el.text.strip())  # type: ignore[union-attr]
    unit = (el.get("unit") or "KiB").lower()
    factor = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024,
              "m": 1024, "mib": 1024, "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2,
              "gb": 1000**3 / 1024}.get(unit, 1)
    return int(value * factor)


def summary(xml: str) -> dict[str, Any]:
    """Facts used in VM definitions and stats: name, memory, vCPUs, devices."""
    root = parse(xml)
    nics = []
    for iface in root.iterfind("devices/interface"):
        mac = iface.find("mac")
        target = iface.find("target")
        model = iface.find("model")
        nics.append({"macAddr": mac.get("address", "") if mac is not None else "",
                     "name": target.get("dev", "") if target is not None else "",
                     "nicModel": model.get("type", "") if model is not None else ""})
    disks = []
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        source = disk.find("source")
        path = ""
        if source is not None:
            path = source.get("file") or source.get("dev") or source.get("name") or ""
        disks.append({"name": target.get("dev", "") if target is not None else "",
                      "path": path, "device": disk.get("device", "disk")})
    vcpu = root.findtext("vcpu") or "1"
    return {
        "name": root.findtext("name") or "",
        "memory_kib": _memory_kib(root.find("memory")),
        "vcpus": int(vcpu.strip() or 1),
        "nics": nics,
        "disks": disks,
        "type": root.get("type", ""),
    }


def display_info(xml: str) -> list[dict[str, str]]:
    """vdsm's displayInfo: one entry per graphics device, ports as strings."""
    root = parse(xml)
    result = []
    for g in root.iterfind("devices/graphics"):
        listen = g.find("listen")
        address = g.get("listen") or (listen.get("address") if listen is not None else None)
        result.append({
            "type": g.get("type", ""),
            "port": g.get("port", "-1"),
            "tlsPort": g.get("tlsPort", "-1"),
            "ipAddress": address or "0",
        })
    return result


def graphics_ticket_xml(xml: str, graphics_type: str | None, password: str,
                        valid_to: str | None) -> str:
    """The live graphics device with a new password (and its expiry, UTC ISO)."""
    root = parse(xml)
    for g in root.iterfind("devices/graphics"):
        if graphics_type is None or g.get("type") == graphics_type:
            g.set("passwd", password)
            if valid_to is None:
                g.attrib.pop("passwdValidTo", None)
            else:
                g.set("passwdValidTo", valid_to)
            return ET.tostring(g, encoding="unicode")
    raise DomainXmlError(f"VM has no {graphics_type or 'graphics'} device")


def xml_hash(xml: str) -> str:
    """A stable hash of the domain XML (vdsm's `hash` stats field: a change
    tells the engine to fetch the XML again). Stable across agent restarts."""
    digest = hashlib.blake2b(xml.encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big", signed=True))
