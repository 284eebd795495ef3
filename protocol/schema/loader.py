"""Load protocol/schema/*.yml (yaml.safe_load) into a checked Schema.

Loading fails with SchemaError naming the file and entry when a reference is
dangling, a name repeats across files, or an entry is malformed, so a schema
mistake stops a daemon at start instead of surfacing as a wire error later.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from .model import (
    MISSING,
    PRIMITIVES,
    AliasType,
    EnumType,
    EventDef,
    ListOf,
    MapType,
    ObjectType,
    Param,
    Property,
    Schema,
    TypeDef,
    TypeRef,
    UnionType,
    Verb,
    python_name,
)

__all__ = ["SchemaError", "load_schema", "default_schema", "SCHEMA_DIR"]

SCHEMA_DIR = Path(__file__).parent


class SchemaError(Exception):
    pass


def _type_ref(raw: Any, where: str) -> TypeRef:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and len(raw) == 1:
        return ListOf(_type_ref(raw[0], where))
    raise SchemaError(f"{where}: a type must be a name or [name], got {raw!r}")


def _version(raw: Any) -> str | None:
    return None if raw is None else str(raw)


def _text(raw: Any) -> str:
    return " ".join(str(raw).split()) if raw is not None else ""


def _load_type(name: str, raw: dict[str, Any], where: str) -> TypeDef:
    kind = raw.get("type")
    desc, added = _text(raw.get("description")), _version(raw.get("added"))
    if kind == "object":
        props = []
        for i, p in enumerate(raw.get("properties") or []):
            if not isinstance(p, dict) or "name" not in p or "type" not in p:
                raise SchemaError(f"{where}: property #{i} needs name and type")
            props.append(Property(
                name=str(p["name"]), type=_type_ref(p["type"], f"{where}.{p['name']}"),
                description=_text(p.get("description")),
                optional=bool(p.get("optional", False)) or "default" in p,
                added=_version(p.get("added"))))
        return ObjectType(name, tuple(props), bool(raw.get("open", False)), desc, added)
    if kind == "enum":
        values = raw.get("values")
        if isinstance(values, list):
            values = {str(v): "" for v in values}
        if not isinstance(values, dict) or not values:
            raise SchemaError(f"{where}: enum needs values")
        return EnumType(name, {str(k): _text(v) for k, v in values.items()}, desc, added)
    if kind == "alias":
        return AliasType(name, _type_ref(raw.get("sourcetype"), where), desc, added)
    if kind == "map":
        return MapType(name, _type_ref(raw.get("value"), where),
                       _type_ref(raw.get("key", "string"), where), desc, added)
    if kind == "union":
        options = raw.get("values") or []
        return UnionType(name, tuple(_type_ref(o, where) for o in options), desc, added)
    raise SchemaError(f"{where}: unknown type kind {kind!r}")


def _load_verb(name: str, raw: dict[str, Any], where: str) -> Verb:
    if name.count(".") != 1:
        raise SchemaError(f"{where}: verb names are 'Namespace.verb', got {name!r}")
    params = []
    for i, p in enumerate(raw.get("params") or []):
        if not isinstance(p, dict) or "name" not in p or "type" not in p:
            raise SchemaError(f"{where}: param #{i} needs name and type")
        params.append(Param(
            name=str(p["name"]), type=_type_ref(p["type"], f"{where}.{p['name']}"),
            description=_text(p.get("description")),
            default=p["default"] if "default" in p else MISSING,
            pyname=str(p.get("pyname") or python_name(str(p["name"]))),
            added=_version(p.get("added"))))
    ret = raw.get("return")
    returns: TypeRef | None = None
    ret_desc = ""
    if isinstance(ret, dict) and "type" in ret:
        returns = _type_ref(ret["type"], f"{where}.return")
        ret_desc = _text(ret.get("description"))
    errors = tuple(int(e) for e in (raw.get("errors") or []))
    return Verb(name, tuple(params), returns, _text(raw.get("description")), ret_desc, errors,
                _version(raw.get("added")))


def _refs(ref: TypeRef) -> Iterable[str]:
    if isinstance(ref, ListOf):
        yield from _refs(ref.item)
    else:
        yield ref


def _check_references(schema: Schema, origin: dict[str, str]) -> None:
    """Every type reference must resolve; errors name the file (via `origin`)."""
    known = set(schema.types) | PRIMITIVES

    def check(ref: TypeRef, where: str) -> None:
        for name in _refs(ref):
            if name not in known:
                raise SchemaError(f"{where}: unknown type {name!r}")

    for t in schema.types.values():
        where = f"{origin[f'type {t.name}']}: type {t.name}"
        if isinstance(t, ObjectType):
            for p in t.properties:
                check(p.type, f"{where}.{p.name}")
        elif isinstance(t, AliasType):
            check(t.source, where)
        elif isinstance(t, MapType):
            check(t.value, where)
            check(t.key, where)
        elif isinstance(t, UnionType):
            for o in t.options:
                check(o, where)
    for v in schema.verbs.values():
        where = f"{origin[f'verb {v.name}']}: verb {v.name}"
        for param in v.params:
            check(param.type, f"{where} param {param.name}")
        if v.returns is not None:
            check(v.returns, f"{where} return")
    for e in schema.events.values():
        if e.params is not None:
            check(e.params, f"{origin[f'event {e.name}']}: event {e.name}")


def load_schema(paths: Iterable[Path]) -> Schema:
    types: dict[str, TypeDef] = {}
    verbs: dict[str, Verb] = {}
    events: dict[str, EventDef] = {}
    seen_in: dict[str, str] = {}
    origin: dict[str, str] = {}  # "type X" / "verb X" / "event X" -> file name
    for path in sorted(paths):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        if not isinstance(doc, dict):
            raise SchemaError(f"{path.name}: top level must be a mapping")
        unknown = set(doc) - {"types", "verbs", "events"}
        if unknown:
            raise SchemaError(f"{path.name}: unknown top-level keys {sorted(unknown)}")
        for name, raw in (doc.get("types") or {}).items():
            where = f"{path.name}: type {name}"
            if name in seen_in:
                raise SchemaError(f"{where}: already defined in {seen_in[name]}")
            if name in PRIMITIVES:
                raise SchemaError(f"{where}: shadows a primitive type")
            seen_in[name] = path.name
            origin[f"type {name}"] = path.name
            types[name] = _load_type(name, raw or {}, where)
        for name, raw in (doc.get("verbs") or {}).items():
            where = f"{path.name}: verb {name}"
            if name in verbs:
                raise SchemaError(f"{where}: already defined")
            verbs[name] = _load_verb(name, raw or {}, where)
            origin[f"verb {name}"] = path.name
        for name, raw in (doc.get("events") or {}).items():
            raw = raw or {}
            params = raw.get("params")
            events[name] = EventDef(name, _type_ref(params, name) if params else None,
                                    _text(raw.get("description")))
            origin[f"event {name}"] = path.name
    schema = Schema(types, verbs, events)
    _check_references(schema, origin)
    return schema


@lru_cache(maxsize=1)
def default_schema() -> Schema:
    """The schema shipped in protocol/schema/, loaded once per process."""
    return load_schema(SCHEMA_DIR.glob("*.yml"))
