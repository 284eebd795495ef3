"""In-process publish/subscribe for live notifications (REST event stream, tests).

Subscribers get a bounded queue; a slow subscriber loses its oldest items
(counted in `dropped`) instead of growing memory or slowing publishers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventBus", "Subscription", "Notification"]


@dataclass(frozen=True, slots=True)
class Notification:
    topic: str          # "audit", "vm", "host", ...
    payload: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[Notification]
    topics: frozenset[str] | None
    dropped: int = 0
    bus: "EventBus | None" = field(default=None, repr=False)

    async def get(self) -> Notification:
        return await self.queue.get()

    def close(self) -> None:
        if self.bus is not None:
            self.bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, topics: set[str] | None = None, maxsize: int = 1000) -> Subscription:
        sub = Subscription(asyncio.Queue(maxsize), frozenset(topics) if topics else None,
                           bus=self)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        note = Notification(topic, payload)
        for sub in self._subs:
            if sub.topics is not None and topic not in sub.topics:
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(note)
