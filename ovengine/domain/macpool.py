"""VM NIC MAC addresses: the engine's pool of ranges and allocation from it.

The arithmetic is pure (MACs as 48-bit integers). Allocation happens in the
caller's transaction under a transaction-scoped advisory lock, so two
concurrent NIC additions never pick the same address; the unique index on
vm_interfaces.mac_address is the last guard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import Conflict, ValidationFailed

__all__ = ["MacPool", "mac_to_int", "int_to_mac", "normalize_mac", "check_mac",
           "allocate_mac", "mac_in_use", "lock_pool"]

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# pg_advisory_xact_lock key of MAC allocation ("ov-mac" as a number).
_LOCK_KEY = 0x6F762D6D6163


def normalize_mac(text: str) -> str:
    """Lower case, ':'-separated; ValueError if it is not a MAC address."""
    mac = text.strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise ValueError(f"{text!r} is not a MAC address (xx:xx:xx:xx:xx:xx)")
    return mac


def mac_to_int(mac: str) -> int:
    return int(normalize_mac(mac).replace(":", ""), 16)


def int_to_mac(n: int) -> str:
    if not 0 <= n < 1 << 48:
        raise ValueError(f"{n} is not a 48-bit MAC address")
    h = f"{n:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def check_mac(text: str, field: str = "mac.address") -> str:
    """A MAC a user gave: normalized, or 400 naming the field. Multicast
    addresses (low bit of the first octet) cannot be a NIC's."""
    try:
        mac = normalize_mac(text)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid MAC address: {exc}", field) from None
    if mac_to_int(mac) >> 40 & 1:
        raise ValidationFailed(f"Invalid MAC address {mac}: it is a multicast address", field)
    return mac


@dataclass(frozen=True)
class MacPool:
    """Inclusive ranges of unicast addresses, in the order they are used."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, texts: Iterable[str]) -> "MacPool":
        out = []
        for t in texts:
            first, sep, last = t.partition("-")
            if not sep:
                raise ValueError(f"{t!r} is not a range (first-last)")
            lo, hi = mac_to_int(first), mac_to_int(last)
            if lo > hi:
                raise ValueError(f"{t!r}: the first address is after the last")
            out.append((lo, hi))
        if not out:
            raise ValueError("the MAC pool needs at least one range")
        return cls(tuple(out))

    @property
    def size(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges)

    def contains(self, mac: str) -> bool:
        n = mac_to_int(mac)
        return any(lo <= n <= hi for lo, hi in self.ranges)

    def first_free(self, used: set[int]) -> str | None:
        """The lowest address of the pool (range by range) not in `used`;
        multicast addresses are skipped. None when the pool is exhausted."""
        for lo, hi in self.ranges:
            n = lo
            while n <= hi:
                if n >> 40 & 1:  # a multicast first octet: jump to the next octet
                    n = ((n >> 40) + 1) << 40
                    continue
                if n not in used:
                    return int_to_mac(n)
                n += 1
        return None


async def lock_pool(conn: Any) -> None:
    """Serialize MAC allocation until the end of conn's transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)


async def mac_in_use(conn: Any, mac: str, except_nic: Any = None) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM vm_interfaces WHERE mac_address = $1 AND id IS DISTINCT FROM $2",
        mac, except_nic))


async def allocate_mac(conn: Any, pool: MacPool) -> str:
    """A free address of the pool; call inside a transaction after lock_pool()
    and insert the NIC in the same transaction. 409 when the pool is full."""
    used = {mac_to_int(r["mac_address"]) for r in await conn.fetch(
        "SELECT mac_address FROM vm_interfaces WHERE mac_address IS NOT NULL")}
    mac = pool.first_free(used)
    if mac is None:
        raise Conflict(f"Cannot allocate a MAC address: the MAC pool ({pool.size} addresses) "
                       f"is exhausted.")
    return mac
