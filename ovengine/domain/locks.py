"""Entity locks held by running commands.

The engine is the only writer, so the in-memory table is authoritative while
it runs: checking and recording happen with no await in between, hence
atomically. Every lock is mirrored in the entity_locks table so that an
engine crash leaves a visible trace; the next start removes all rows (their
commands died with the engine) after the commands' recovery ran.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from ..errors import Locked

__all__ = ["LockSpec", "LockManager"]


@dataclass(frozen=True, slots=True)
class LockSpec:
    entity_type: str  # "vm", "host", "template", "disk", "snapshot", ...
    entity_id: str
    exclusive: bool = True
    reason: str = ""


class LockManager:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        # (type, id) -> {command_id: LockSpec}
        self._held: dict[tuple[str, str], dict[str, LockSpec]] = {}

    def conflicts(self, spec: LockSpec) -> LockSpec | None:
        holders = self._held.get((spec.entity_type, spec.entity_id))
        if not holders:
            return None
        for held in holders.values():
            if held.exclusive or spec.exclusive:
                return held
        return None

    def is_locked(self, entity_type: str, entity_id: str) -> bool:
        return bool(self._held.get((entity_type, entity_id)))

    async def acquire(self, command_id: str, specs: list[LockSpec]) -> None:
        for spec in specs:
            held = self.conflicts(spec)
            if held is not None:
                what = held.reason or "another operation"
                raise Locked(f"Cannot proceed: {spec.entity_type} {spec.entity_id} is locked "
                             f"by {what}. Try again when it completes.")
        for spec in specs:
            self._held.setdefault((spec.entity_type, spec.entity_id), {})[command_id] = spec
        if specs:
            try:
                await self.pool.executemany(
                    "INSERT INTO entity_locks (entity_type, entity_id, command_id, exclusive, "
                    "reason) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    [(s.entity_type, uuid.UUID(s.entity_id), uuid.UUID(command_id),
                      s.exclusive, s.reason) for s in specs])
            except BaseException:
                self._forget(command_id)
                raise

    def _forget(self, command_id: str) -> None:
        for key in [k for k, holders in self._held.items() if command_id in holders]:
            del self._held[key][command_id]
            if not self._held[key]:
                del self._held[key]

    async def release(self, command_id: str) -> None:
        self._forget(command_id)
        await self.pool.execute("DELETE FROM entity_locks WHERE command_id = $1",
                                uuid.UUID(command_id))

    async def clear_stale(self) -> list[asyncpg.Record]:
        """At start: every persisted lock belongs to a command that died."""
        return await self.pool.fetch("DELETE FROM entity_locks RETURNING entity_type, entity_id, "
                                     "reason")
