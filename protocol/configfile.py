"""Daemon configuration files: YAML + drop-ins -> frozen dataclasses.

`load_config(Root, path)` reads `path`, then every `path.d/*.yaml` in name
order (later files override earlier keys, mappings merge), then builds the
dataclass tree. An unknown key, a missing required key or a value of the wrong
type stops startup with ConfigError naming the key and the file. Used by both
daemons (ovengine, ovagent).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

__all__ = ["ConfigError", "load_config", "build", "merge", "override"]

T = TypeVar("T")


class ConfigError(Exception):
    pass


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return doc


def _check(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping")
        return build(hint, value, source, key + ".")  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(value, option, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{source}: bad value for '{key}'")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{key}' must be a list")
        item = get_args(hint)[0] if get_args(hint) else Any
        items = [_check(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping")
        return dict(value)
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a path string, got {value!r}")
        return Path(value)
    return value


def build(cls: type[T], data: dict[str, Any], source: str = "<config>", prefix: str = "") -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: unknown key '{prefix}{key}' (known here: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check(data[name], hints[name], prefix + name, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key '{prefix}{name}'")
    return cls(**kwargs)


def override(data: dict[str, Any], dotted: dict[str, Any]) -> dict[str, Any]:
    """Apply command-line style overrides {"a.b": value} (None values are skipped)."""
    out = data
    for key, value in dotted.items():
        if value is None:
            continue
        node: dict[str, Any] = {}
        parts = key.split(".")
        cur = node
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = value
        out = merge(out, node)
    return out


def load_config(cls: type[T], path: Path | None,
                overrides: dict[str, Any] | None = None) -> T:
    data: dict[str, Any] = {}
    sources = []
    if path is not None:
        if not path.exists():
            raise ConfigError(f"{path}: configuration file not found")
        data = _read(path)
        sources.append(str(path))
        dropins = path.with_name(path.name + ".d")
        if dropins.is_dir():
            for extra in sorted(dropins.glob("*.yaml")):
                data = merge(data, _read(extra))
                sources.append(str(extra))
    if overrides:
        data = override(data, overrides)
        sources.append("command line")
    return build(cls, data, " + ".join(sources) or "<defaults>")
