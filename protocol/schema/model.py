"""The verb schema in memory: types, verbs and params, loaded from protocol/schema/*.yml.

File format (modeled on vdsm's vdsm-api.yml, simplified to named references):

    types:
      VmStatus:                  # enum: values map value -> description
        type: enum
        values: {Up: running, Down: not running}
      UUID:                      # alias of a primitive
        type: alias
        sourcetype: string
      VmStats:                   # object; `open: true` allows undeclared members
        type: object
        properties:
          - {name: vmId, type: UUID, description: ...}
          - {name: cpuUser, type: string, optional: true}
      DiskStatsMap:              # map: string keys -> value type
        type: map
        value: DiskStats
      AnyConnection:             # union: the first alternative that validates
        type: union
        values: [NfsConnection, LocalFsConnection]
    verbs:
      VM.getStats:
        added: '3.1'
        description: ...
        params:
          - {name: vmID, type: UUID, description: ...}
          - {name: timeout, type: int, default: 30}   # a default makes it optional
        return: {type: [VmStats], description: ...}  # [T] is "list of T"
        errors: [1]
    events:
      '|virt|VM_status|<vmId>': {description: ..., params: VmStatusEvent}

Primitive types: string, int, uint, long, ulong, float, boolean, dict (any
object), list (any array), any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "PRIMITIVES",
    "MISSING",
    "TypeRef",
    "ListOf",
    "Property",
    "ObjectType",
    "EnumType",
    "AliasType",
    "MapType",
    "UnionType",
    "TypeDef",
    "Param",
    "Verb",
    "EventDef",
    "Schema",
    "python_name",
]

PRIMITIVES = frozenset(
    {"string", "int", "uint", "long", "ulong", "float", "boolean", "dict", "list", "any"})


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class ListOf:
    item: "TypeRef"

    def __str__(self) -> str:
        return f"[{self.item}]"


TypeRef = Union[str, ListOf]


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    type: TypeRef
    description: str = ""
    optional: bool = False
    added: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectType:
    name: str
    properties: tuple[Property, ...]
    open: bool = False
    description: str = ""
    added: str | None = None
    by_name: dict[str, Property] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({p.name: p for p in self.properties})


@dataclass(frozen=True, slots=True)
class EnumType:
    name: str
    values: dict[str, str]
    description: str = ""
    added: str | None = None


@dataclass(frozen=True, slots=True)
class AliasType:
    name: str
    source: TypeRef
    description: str = ""
    added: str | None = None


@dataclass(frozen=True, slots=True)
class MapType:
    name: str
    value: TypeRef
    key: TypeRef = "string"
    description: str = ""
    added: str | None = None


@dataclass(frozen=True, slots=True)
class UnionType:
    name: str
    options: tuple[TypeRef, ...]
    description: str = ""
    added: str | None = None


TypeDef = Union[ObjectType, EnumType, AliasType, MapType, UnionType]


def python_name(wire_name: str) -> str:
    """vmID -> vm_id, gracefulAttempts -> graceful_attempts, spUUID -> sp_uuid."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", wire_name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: TypeRef
    description: str = ""
    default: Any = MISSING
    pyname: str = ""
    added: str | None = None

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True, slots=True)
class Verb:
    name: str  # "Namespace.verb"
    params: tuple[Param, ...]
    returns: TypeRef | None
    description: str = ""
    return_description: str = ""
    errors: tuple[int, ...] = ()
    added: str | None = None
    by_name: dict[str, Param] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({p.name: p for p in self.params})

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]


@dataclass(frozen=True, slots=True)
class EventDef:
    name: str
    params: TypeRef | None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Schema:
    types: dict[str, TypeDef]
    verbs: dict[str, Verb]
    events: dict[str, EventDef]

    def namespaces(self) -> list[str]:
        return sorted({v.namespace for v in self.verbs.values()})

    def verbs_of(self, namespace: str) -> list[Verb]:
        return sorted((v for v in self.verbs.values() if v.namespace == namespace),
                      key=lambda v: v.name)
