"""Image transfer tickets, as ovirt-imageio keeps them (pure state, no I/O).

A ticket lets whoever knows its id read and/or write one prepared volume
through the image server, until it expires or is removed. The engine adds,
extends, queries and removes tickets with the Host.*_image_ticket verbs;
the server asks `authorize()` on every request and reports the bytes moved,
which Host.get_image_ticket shows as `transferred` (the engine's progress).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlparse

from protocol.jsonrpc import ErrorCode, JsonRpcError

__all__ = ["Ticket", "TicketStore", "TicketError", "Forbidden", "OPS"]

OPS = frozenset({"read", "write"})
# Expired tickets nobody removed are forgotten after this long.
_FORGET_EXPIRED_S = 3600.0


class TicketError(JsonRpcError):
    """A ticket verb failed (vdsm's ImageDaemonError code)."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.IMAGE_DAEMON_ERROR, f"Image daemon request failed: {detail}")
        self.detail = detail


class Forbidden(Exception):
    """An HTTP request the ticket does not allow (403 with this text)."""


@dataclass(eq=False)
class Ticket:
    uuid: str
    size: int
    url: str
    path: Path
    ops: frozenset[str]
    timeout_s: int
    expires: float
    sparse: bool = False
    filename: str | None = None
    transfer_id: str | None = None
    transferred: int = 0
    connections: int = 0
    canceled: bool = False
    last_active: float = field(default=0.0)

    def info(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uuid": self.uuid, "size": self.size, "url": self.url,
            "timeout": self.timeout_s, "ops": sorted(self.ops), "sparse": self.sparse,
            "active": self.connections > 0, "transferred": self.transferred,
            "expires": int(self.expires), "connections": self.connections,
            "idle_time": 0 if self.connections else int(max(0.0, now - self.last_active)),
            "canceled": self.canceled,
        }
        if self.filename:
            out["filename"] = self.filename
        if self.transfer_id:
            out["transfer_id"] = self.transfer_id
        return out


def _int(raw: dict[str, Any], key: str) -> int:
    try:
        value = int(raw[key])
    except KeyError:
        raise TicketError(f"ticket lacks {key!r}") from None
    except (TypeError, ValueError):
        raise TicketError(f"ticket {key!r} must be a whole number, got {raw[key]!r}") from None
    if value < 0:
        raise TicketError(f"ticket {key!r} must not be negative")
    return value


class TicketStore:
    def __init__(self, allowed_roots: list[Path],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed_roots = [Path(os.path.normpath(r)) for r in allowed_roots]
        self.clock = clock
        self._tickets: dict[str, Ticket] = {}

    # ------------------------------------------------------------ verbs
    def _path(self, url: str) -> Path:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise TicketError(f"unsupported url {url!r} (only file:///path)")
        raw = unquote(parsed.path)
        path = Path(os.path.normpath(raw))
        if not path.is_absolute() or raw != str(path):
            raise TicketError(f"url path {raw!r} is not a normalized absolute path")
        if not any(path.is_relative_to(root) for root in self.allowed_roots):
            raise TicketError(f"{path} is not under the storage repository "
                              f"({', '.join(map(str, self.allowed_roots))})")
        return path

    def add(self, raw: dict[str, Any]) -> Ticket:
        uuid = str(raw.get("uuid") or "")
        if not uuid or "/" in uuid:
            raise TicketError("ticket needs a uuid (no '/')")
        ops = raw.get("ops")
        if not isinstance(ops, list) or not ops or not set(ops) <= OPS:
            raise TicketError(f"ticket ops must be a list of {sorted(OPS)}, got {ops!r}")
        url = str(raw.get("url") or "")
        path = self._path(url)
        timeout = _int(raw, "timeout")
        now = self.clock()
        self._forget_expired(now)
        ticket = Ticket(uuid=uuid, size=_int(raw, "size"), url=url, path=path,
                        ops=frozenset(ops), timeout_s=timeout, expires=now + timeout,
                        sparse=bool(raw.get("sparse", False)),
                        filename=raw.get("filename") or None,
                        transfer_id=raw.get("transfer_id") or None, last_active=now)
        old = self._tickets.get(uuid)
        if old is not None and old.url != url:
            raise TicketError(f"ticket {uuid} exists for another url")
        if old is not None:  # adding again: imageio renews it
            ticket.transferred = old.transferred
            ticket.connections = old.connections
        self._tickets[uuid] = ticket
        return ticket

    def get(self, uuid: str) -> Ticket:
        ticket = self._tickets.get(uuid)
        if ticket is None:
            raise TicketError(f"No such ticket {uuid}")
        return ticket

    def info(self, uuid: str) -> dict[str, Any]:
        return self.get(uuid).info(self.clock())

    def extend(self, uuid: str, timeout_s: int) -> None:
        ticket = self.get(uuid)
        if timeout_s < 0:
            raise TicketError("timeout must not be negative")
        ticket.timeout_s = timeout_s
        ticket.expires = self.clock() + timeout_s

    def remove(self, uuid: str) -> None:
        """Requests under way finish; new ones are refused. Unknown ids: fine."""
        ticket = self._tickets.pop(uuid, None)
        if ticket is not None and ticket.connections:
            ticket.canceled = True

    def _forget_expired(self, now: float) -> None:
        for uuid in [t.uuid for t in self._tickets.values()
                     if not t.connections and now - t.expires > _FORGET_EXPIRED_S]:
            del self._tickets[uuid]

    # ---------------------------------------------------- server requests
    def authorize(self, uuid: str, op: str | None) -> Ticket:
        """The ticket, if it allows `op` now (None: any operation)."""
        ticket = self._tickets.get(uuid)
        if ticket is None:
            raise Forbidden(f"No such ticket {uuid}")
        if self.clock() >= ticket.expires:
            raise Forbidden(f"Ticket {uuid} expired")
        if op is not None and op not in ticket.ops:
            raise Forbidden(f"Ticket {uuid} forbids {op}")
        return ticket

    def begin(self, ticket: Ticket) -> None:
        ticket.connections += 1

    def end(self, ticket: Ticket) -> None:
        ticket.connections = max(0, ticket.connections - 1)
        ticket.last_active = self.clock()
