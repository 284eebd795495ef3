"""The lab's network: one Linux bridge and, per host, a network namespace
joined to it by a veth pair, with its own address.

    root namespace: bridge ovlab0 10.77.0.1/24 -- veth ovlabNr (port of the bridge)
    namespace ovlab-hN: eth0 (the veth's other end) 10.77.0.(10+N)/24, lo

Everything is named with the `ovlab` prefix, so `teardown_all()` can remove
what a crashed lab left behind. Needs root and iproute2.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

__all__ = ["LabNetwork", "LabHostNet", "NetworkError", "BRIDGE", "PREFIX"]

log = logging.getLogger(__name__)

PREFIX = "ovlab"
BRIDGE = f"{PREFIX}0"
SUBNET = "10.77.0"


class NetworkError(Exception):
    pass


async def ip(*args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


@dataclass(frozen=True)
class LabHostNet:
    index: int

    @property
    def netns(self) -> str:
        return f"{PREFIX}-h{self.index}"

    @property
    def veth(self) -> str:
        return f"{PREFIX}{self.index}r"  # root-side end, a port of the bridge

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.index}"


class LabNetwork:
    def __init__(self) -> None:
        self.hosts: list[LabHostNet] = []

    @property
    def gateway(self) -> str:
        return f"{SUBNET}.1"

    async def create_bridge(self) -> None:
        await ip("link", "add", BRIDGE, "type", "bridge")
        await ip("addr", "add", f"{self.gateway}/24", "dev", BRIDGE)
        await ip("link", "set", BRIDGE, "up")

    async def add_host(self, index: int) -> LabHostNet:
        if not 0 <= index < 240:
            raise NetworkError("the lab has room for 240 hosts")
        h = LabHostNet(index)
        await ip("netns", "add", h.netns)
        peer = f"{PREFIX}{index}p"
        await ip("link", "add", h.veth, "type", "veth", "peer", "name", peer)
        await ip("link", "set", peer, "netns", h.netns)
        await ip("link", "set", h.veth, "master", BRIDGE, "up")
        await ip("-n", h.netns, "link", "set", peer, "name", "eth0")
        await ip("-n", h.netns, "addr", "add", f"{h.address}/24", "dev", "eth0")
        await ip("-n", h.netns, "link", "set", "eth0", "up")
        await ip("-n", h.netns, "link", "set", "lo", "up")
        self.hosts.append(h)
        return h

    async def link(self, index: int, up: bool) -> None:
        """Cut or restore a host's network (its bridge port)."""
        await ip("link", "set", LabHostNet(index).veth, "up" if up else "down")

    @staticmethod
    async def teardown_all() -> list[str]:
        """Remove every ovlab namespace, veth and bridge (this run's or a
        crashed run's). Returns what was removed."""
        removed = []
        for line in (await ip("netns", "list", check=False)).splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(f"{PREFIX}-"):
                await ip("netns", "del", name, check=False)
                removed.append(f"netns {name}")
        for line in (await ip("-o", "link", "show", check=False)).splitlines():
            parts = line.split(":")
            if len(parts) > 1:
                name = parts[1].strip().split("@")[0]
                if name.startswith(PREFIX):
                    await ip("link", "del", name, check=False)
                    removed.append(f"link {name}")
        return removed
