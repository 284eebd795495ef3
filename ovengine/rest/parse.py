"""Request bodies (XML as the SDK sends it, or JSON) into one dict shape, and
typed accessors that raise a 400 naming the field."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson
from aiohttp import web

from ..errors import ValidationFailed

__all__ = ["read_body", "parse_xml", "get", "text", "as_int", "as_bool", "items", "ref_of",
           "Body"]

Body = dict[str, Any]
MAX_DEPTH = 32


def parse_xml(data: bytes) -> tuple[str, Body]:
    """XML -> (root tag, dict). Attributes become keys; repeated child tags a list;
    an element without children or attributes its text."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValidationFailed("XML document type declarations are not accepted", "body")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValidationFailed(f"malformed XML: {exc}", "body") from None
    value = _element(root, 0)
    return root.tag, value if isinstance(value, dict) else {"value": value}


def _element(el: ET.Element, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValidationFailed("XML nested too deeply", "body")
    children = list(el)
    if not children and not el.attrib:
        return (el.text or "").strip()
    out: dict[str, Any] = dict(el.attrib)
    for c in children:
        v = _element(c, depth + 1)
        if c.tag in out:
            prev = out[c.tag]
            if isinstance(prev, list):
                prev.append(v)
            else:
                out[c.tag] = [prev, v]
        else:
            out[c.tag] = v
    if not children and el.text and el.text.strip():
        out["value"] = el.text.strip()
    return out


async def read_body(request: web.Request, root: str | None = None) -> Body:
    """The request's object. Empty bodies are an empty object (actions)."""
    data = await request.read()
    if not data.strip():
        return {}
    ctype = request.content_type.lower()
    if "json" in ctype or (data.lstrip()[:1] in (b"{", b"[") and "xml" not in ctype):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed(f"malformed JSON: {exc}", "body") from None
        if not isinstance(value, dict):
            raise ValidationFailed("the body must be a JSON object", "body")
        if root is not None and list(value) == [root] and isinstance(value[root], dict):
            value = value[root]
        return value
    tag, body = parse_xml(data)
    if root is not None and tag != root:
        raise ValidationFailed(f"expected a <{root}> element, got <{tag}>", "body")
    return body


def get(d: Any, *path: str) -> Any:
    for key in path:
        if isinstance(d, list):
            d = d[0] if d else None
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    if isinstance(d, list) and path:
        return d[0] if d else None
    return d


def text(d: Any, *path: str, field: str | None = None, required: bool = False,
         max_len: int = 4000) -> str | None:
    v = get(d, *path)
    name = field or ".".join(path)
    if v is None or v == "":
        if required:
            raise ValidationFailed(f"{name} is required", name)
        return None if v is None else ""
    if isinstance(v, dict):
        v = v.get("value")
        if v is None:
            raise ValidationFailed(f"{name} must be a text value", name)
    if isinstance(v, bool):
        v = "true" if v else "false"
    if not isinstance(v, (str, int, float)):
        raise ValidationFailed(f"{name} must be a text value", name)
    s = str(v)
    if len(s) > max_len:
        raise ValidationFailed(f"{name} is too long (max {max_len})", name)
    return s


def as_int(d: Any, *path: str, field: str | None = None, minimum: int | None = None,
           maximum: int | None = None) -> int | None:
    name = field or ".".join(path)
    v = get(d, *path)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise ValidationFailed(f"{name} must be an integer", name)
    try:
        n = int(v) if not isinstance(v, float) or v.is_integer() else None
    except (TypeError, ValueError):
        n = None
    if n is None:
        raise ValidationFailed(f"{name} must be an integer, not {str(v)[:40]!r}", name)
    if (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        raise ValidationFailed(f"{name} must be between {minimum} and {maximum}", name)
    return n


def as_bool(d: Any, *path: str, field: str | None = None) -> bool | None:
    name = field or ".".join(path)
    v = get(d, *path)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1"):
        return True
    if s in ("false", "0"):
        return False
    raise ValidationFailed(f"{name} must be true or false", name)


def items(d: Any, *path: str) -> list[Any]:
    """A repeated element: `<permits><permit>..</permit></permits>` -> list."""
    cur = d
    for key in path:
        if not isinstance(cur, dict):
            return []
        cur = cur.get(key)
    if cur is None:
        return []
    return cur if isinstance(cur, list) else [cur]


def ref_of(d: Any, key: str) -> tuple[str | None, str | None]:
    """A reference given by id or by name: `<cluster id=".."/>` or
    `<cluster><name>Default</name></cluster>`."""
    r = get(d, key)
    if r is None:
        return None, None
    if not isinstance(r, dict):
        raise ValidationFailed(f"{key} must be a reference with an id or a name", key)
    rid = r.get("id")
    name = r.get("name")
    if rid is not None and not isinstance(rid, str):
        raise ValidationFailed(f"{key}.id must be text", f"{key}.id")
    if name is not None and not isinstance(name, str):
        raise ValidationFailed(f"{key}.name must be text", f"{key}.name")
    return rid, name
