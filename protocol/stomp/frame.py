"""STOMP frames and the events a StompConnection yields.

All event types are frozen: once parsed, a frame is a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

__all__ = [
    "CLIENT_COMMANDS",
    "SERVER_COMMANDS",
    "Frame",
    "HeartBeat",
    "Violation",
    "EndOfStream",
    "Event",
]

CLIENT_COMMANDS = frozenset(
    {
        "CONNECT",
        "STOMP",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
    }
)
SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})

# STOMP 1.2: CONNECT/CONNECTED headers are never escaped (the 1.0 rule).
UNESCAPED_COMMANDS = frozenset({"CONNECT", "STOMP", "CONNECTED"})


@dataclass(frozen=True, slots=True)
class Frame:
    """One STOMP frame. Headers keep wire order; on repeats the first wins."""

    command: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    _index: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Applied last to first, so the first of repeated headers wins.
        self._index.update(reversed(self.headers))

    @classmethod
    def build(cls, command: str, headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
              body: bytes = b"") -> "Frame":
        items = headers.items() if isinstance(headers, dict) else (headers or ())
        return cls(command, tuple((str(k), str(v)) for k, v in items), body)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._index.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._index[name]

    def __contains__(self, name: object) -> bool:
        return name in self._index


@dataclass(frozen=True, slots=True)
class HeartBeat:
    """An EOL received between frames (the peer is alive)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """The peer broke the protocol or a limit. The connection is over.

    `error_frame` is the ERROR frame (already encoded) to send before closing.
    """

    message: str
    error_frame: bytes


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer closed its side of the connection."""


Event = Frame | HeartBeat | Violation | EndOfStream
