"""Binds handlers to schema verbs, one to one.

Handlers are coroutine functions taking the verb's params as keyword arguments
under their python names (vmID -> vm_id) and returning the wire result.
Mark them with @verb("Namespace.verb") and hand the objects to add_api().
`verify()` fails when a schema verb lacks a handler; `add()` fails at once when
a handler has no schema entry.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar, cast

from .model import Schema, Verb

__all__ = ["verb", "VerbRegistry", "BoundVerb", "SchemaMismatchError", "Handler"]

Handler = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__ov_verb__"


def verb(name: str) -> Callable[[F], F]:
    """Mark a method as the handler of the schema verb `name`."""

    def mark(fn: F) -> F:
        setattr(fn, _MARK, name)
        return fn

    return mark


class SchemaMismatchError(Exception):
    def __init__(self, missing: list[str], unknown: list[str]) -> None:
        self.missing = missing
        self.unknown = unknown
        parts = []
        if missing:
            parts.append(f"schema verbs without a handler: {', '.join(sorted(missing))}")
        if unknown:
            parts.append(f"handlers without a schema entry: {', '.join(sorted(unknown))}")
        super().__init__("; ".join(parts))


@dataclass(frozen=True, slots=True)
class BoundVerb:
    verb: Verb
    handler: Handler


class VerbRegistry:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._bound: dict[str, BoundVerb] = {}

    def add(self, name: str, handler: Handler) -> None:
        v = self.schema.verbs.get(name)
        if v is None:
            raise SchemaMismatchError([], [name])
        if name in self._bound:
            raise ValueError(f"verb {name} already has a handler")
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"handler of {name} must be a coroutine function")
        self._check_signature(v, handler)
        self._bound[name] = BoundVerb(v, handler)

    @staticmethod
    def _check_signature(v: Verb, handler: Handler) -> None:
        sig = inspect.signature(handler)
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return
        accepted = set(sig.parameters)
        missing = [p.pyname for p in v.params if p.pyname not in accepted]
        if missing:
            raise TypeError(f"handler of {v.name} does not accept params {missing}")

    def add_api(self, *apis: object) -> None:
        for api in apis:
            for _, member in inspect.getmembers(api, callable):
                name = getattr(member, _MARK, None)
                if name is not None:
                    self.add(name, cast(Handler, member))  # add() checks it is a coroutine

    def verify(self) -> None:
        missing = [n for n in self.schema.verbs if n not in self._bound]
        if missing:
            raise SchemaMismatchError(missing, [])

    def get(self, name: str) -> BoundVerb | None:
        return self._bound.get(name)

    def names(self) -> list[str]:
        return sorted(self._bound)
