"""A VM's NICs in OVF terms: the OVA export writes them, the import recreates
them (network by name in the target data center, MAC kept when it is free)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from ..errors import ValidationFailed
from ..ovf.model import OvfNic
from .macpool import MacPool, allocate_mac, check_mac, lock_pool, mac_in_use
from .nic_commands import insert_nic

__all__ = ["ovf_nics", "import_nics", "OVF_TO_MODEL"]

# oVirt's VmInterfaceType names in the OVF <-> the REST/DB interface.
OVF_TO_MODEL = {"pv": "virtio", "e1000": "e1000", "rtl8139": "rtl8139"}
_MODEL_TO_OVF = {v: k for k, v in OVF_TO_MODEL.items()}
_NAME = re.compile(r"^[\w.\-]{1,50}$")


async def ovf_nics(pool: Any, vm_id: str) -> list[OvfNic]:
    rows = await pool.fetch(
        "SELECT i.*, n.name AS network FROM vm_interfaces i "
        "LEFT JOIN vnic_profiles p ON p.id = i.vnic_profile_id "
        "LEFT JOIN networks n ON n.id = p.network_id WHERE i.vm_id = $1 ORDER BY i.name",
        uuid.UUID(vm_id))
    return [OvfNic(name=r["name"], mac=r["mac_address"] or "",
                   interface=_MODEL_TO_OVF.get(r["interface"], "pv"),
                   network=r["network"] or "", linked=r["linked"]) for r in rows]


async def import_nics(conn: Any, mac_pool: MacPool, vm_id: str, dc_id: str,
                      nics: list[OvfNic]) -> None:
    """Create the NICs (in conn's transaction). A NIC's profile is the default
    profile of the data center's network of that name (none: empty profile);
    its MAC is kept if valid and unused, else one comes from the pool."""
    await lock_pool(conn)
    names: set[str] = set()
    for n in nics:
        name = n.name if _NAME.match(n.name) else f"nic{len(names) + 1}"
        while name in names:
            name = f"{name[:45]}_{len(names) + 1}"
        names.add(name)
        profile = None
        if n.network:
            profile = await conn.fetchval(
                "SELECT p.id FROM vnic_profiles p JOIN networks n ON n.id = p.network_id "
                "WHERE n.name = $1 AND n.data_center_id = $2 AND n.vm_network "
                "ORDER BY (p.name = n.name) DESC, p.name LIMIT 1", n.network, uuid.UUID(dc_id))
        mac: str | None = None
        try:
            mac = check_mac(n.mac) if n.mac else None
        except ValidationFailed:  # not a usable address: take one from the pool
            mac = None
        if mac is None or await mac_in_use(conn, mac):
            mac = await allocate_mac(conn, mac_pool)
        await insert_nic(conn, vm_id, str(uuid.uuid4()), name,
                         OVF_TO_MODEL.get(n.interface, "virtio"), mac,
                         str(profile) if profile else None, True, n.linked)
