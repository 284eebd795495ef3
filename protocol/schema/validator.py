"""Strict validation of verb params (incoming) and results (in tests).

Errors name the path of the bad value and the type that was expected, e.g.
`Invalid parameter 'vmParams.memSize': expected int, got string`.
"""

from __future__ import annotations

from typing import Any

from ..jsonrpc import ErrorCode, JsonRpcError
from .model import (
    AliasType,
    EnumType,
    ListOf,
    MapType,
    ObjectType,
    Schema,
    TypeRef,
    UnionType,
    Verb,
)

__all__ = ["ValidationError", "Validator"]


class ValidationError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_INT_BOUNDS = {"int": (-(2**31), 2**31 - 1), "uint": (0, 2**32 - 1),
               "long": (-(2**63), 2**63 - 1), "ulong": (0, 2**64 - 1)}


class Validator:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    # ------------------------------------------------------------- params
    def bind_params(self, verb: Verb, params: dict[str, Any] | list[Any]) -> dict[str, Any]:
        """Check wire params against the verb; return handler kwargs (python names).

        Raises JsonRpcError(-32602) naming the missing, unknown or bad param.
        """
        if isinstance(params, list):
            if len(params) > len(verb.params):
                raise JsonRpcError(
                    ErrorCode.INVALID_PARAMS,
                    f"{verb.name} takes at most {len(verb.params)} positional params, "
                    f"got {len(params)}")
            params = {p.name: v for p, v in zip(verb.params, params)}
        unknown = [k for k in params if k not in verb.by_name]
        if unknown:
            expected = ", ".join(p.name for p in verb.params) or "none"
            raise JsonRpcError(
                ErrorCode.INVALID_PARAMS,
                f"Unknown parameter '{unknown[0]}' for {verb.name} (expected: {expected})")
        kwargs: dict[str, Any] = {}
        for p in verb.params:
            value = params.get(p.name)
            if value is None and not p.required:
                kwargs[p.pyname] = p.default  # null for an optional param means "default"
            elif p.name in params:
                try:
                    self.check(p.type, value, p.name)
                except ValidationError as exc:
                    raise JsonRpcError(
                        ErrorCode.INVALID_PARAMS,
                        f"Invalid parameter '{exc.path}': {exc.reason}") from None
                kwargs[p.pyname] = value
            else:
                raise JsonRpcError(
                    ErrorCode.INVALID_PARAMS,
                    f"Missing required parameter '{p.name}' ({self.describe(p.type)}) "
                    f"for {verb.name}")
        return kwargs

    def check_result(self, verb: Verb, result: Any) -> None:
        """Raise ValidationError when a handler's result breaks its schema."""
        if verb.returns is None:
            if result is not True:
                raise ValidationError("result", "verb declares no return, expected true")
            return
        self.check(verb.returns, result, "result")

    # -------------------------------------------------------------- types
    def describe(self, ref: TypeRef) -> str:
        if isinstance(ref, ListOf):
            return f"list of {self.describe(ref.item)}"
        t = self.schema.types.get(ref)
        if isinstance(t, AliasType):
            return f"{ref} ({self.describe(t.source)})"
        if isinstance(t, EnumType):
            return f"{ref} (one of {', '.join(t.values)})"
        if isinstance(t, ObjectType):
            return f"{ref} (object)"
        if isinstance(t, MapType):
            return f"{ref} (map)"
        return ref

    def check(self, ref: TypeRef, value: Any, path: str) -> None:
        if isinstance(ref, ListOf):
            if not isinstance(value, list):
                raise ValidationError(path, f"expected list, got {_json_kind(value)}")
            for i, item in enumerate(value):
                self.check(ref.item, item, f"{path}[{i}]")
            return
        if ref in _INT_BOUNDS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(path, f"expected {ref}, got {_json_kind(value)}")
            lo, hi = _INT_BOUNDS[ref]
            if not lo <= value <= hi:
                raise ValidationError(path, f"{value} is out of range for {ref}")
            return
        if ref == "string":
            if not isinstance(value, str):
                raise ValidationError(path, f"expected string, got {_json_kind(value)}")
            return
        if ref == "boolean":
            if not isinstance(value, bool):
                raise ValidationError(path, f"expected boolean, got {_json_kind(value)}")
            return
        if ref == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValidationError(path, f"expected float, got {_json_kind(value)}")
            return
        if ref == "dict":
            if not isinstance(value, dict):
                raise ValidationError(path, f"expected object, got {_json_kind(value)}")
            return
        if ref == "list":
            if not isinstance(value, list):
                raise ValidationError(path, f"expected list, got {_json_kind(value)}")
            return
        if ref == "any":
            return
        t = self.schema.types[ref]
        if isinstance(t, AliasType):
            try:
                self.check(t.source, value, path)
            except ValidationError as exc:
                raise ValidationError(exc.path, f"{exc.reason} (for {ref})") from None
        elif isinstance(t, EnumType):
            if not isinstance(value, str) or value not in t.values:
                raise ValidationError(
                    path, f"expected one of {', '.join(map(repr, t.values))} ({ref}), "
                          f"got {value!r}")
        elif isinstance(t, ObjectType):
            self._check_object(t, value, path)
        elif isinstance(t, MapType):
            if not isinstance(value, dict):
                raise ValidationError(path, f"expected {ref} (map), got {_json_kind(value)}")
            for k, v in value.items():
                self.check(t.key, k, f"{path}<key>")
                self.check(t.value, v, f"{path}.{k}")
        elif isinstance(t, UnionType):
            reasons = []
            for option in t.options:
                try:
                    self.check(option, value, path)
                    return
                except ValidationError as exc:
                    reasons.append(f"{option}: {exc.reason}")
            raise ValidationError(path, f"matches no alternative of {ref} ({'; '.join(reasons)})")

    def _check_object(self, t: ObjectType, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise ValidationError(path, f"expected {t.name} (object), got {_json_kind(value)}")
        if not t.open:
            for k in value:
                if k not in t.by_name:
                    raise ValidationError(f"{path}.{k}", f"unknown member of {t.name}")
        for prop in t.properties:
            member = value.get(prop.name)
            if member is None and prop.optional:
                continue
            if prop.name in value:
                self.check(prop.type, value[prop.name], f"{path}.{prop.name}")
            elif not prop.optional:
                raise ValidationError(
                    f"{path}.{prop.name}",
                    f"missing required member ({self.describe(prop.type)}) of {t.name}")
