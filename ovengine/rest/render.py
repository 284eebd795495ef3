"""Rendering: one representation, two formats.

A resource is a dict in the shape of the oVirt model: scalar values are
strings (booleans `true`/`false`, numbers in decimal, dates ISO-8601 with an
offset), nested dicts are sub-objects, a list under a key is that element
repeated. `id`, `href` and `rel` (string values) are XML attributes.

XML: what the SDK reads (every response carries `Content-Type:
application/xml`). JSON: oVirt's JSON shape (`{"vm": [...]}` for a
collection, scalars as strings), served only to clients that ask for JSON
and not XML (the SDK sends `Accept: application/xml` after any user Accept).

Large collections are rendered by string building: `xml_of()` for the
generic case, and a per-type fast path where a type registers one
(`FastXml`), checked against `xml_of()` in tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from typing import Any, Callable, Iterator, Mapping, Sequence

import orjson
from aiohttp import web

__all__ = ["API", "esc", "ts_sql", "xml_of", "json_of", "wants_json", "respond", "respond_collection",
           "ts", "b", "ref", "link", "links", "actions", "XML_TYPE", "JSON_TYPE"]

API = "/ovirt-engine/api"
XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
_ATTRS = frozenset({"id", "href", "rel"})
_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
# XML 1.0 forbids most control characters even as references: drop them.
_CONTROL = {c: None for c in range(32) if c not in (9, 10, 13)}
_CONTROL.update({0xFFFE: None, 0xFFFF: None})


def esc(s: str) -> str:
    if "&" in s or "<" in s or ">" in s or '"' in s:
        s = s.translate(_ESC)
    if not s.isprintable():
        s = s.translate(_CONTROL)
    return s


def ts(value: dt.datetime | str | None) -> str | None:
    """ISO-8601 with milliseconds and an offset, as the SDK's date reader wants
    (a string is taken as already formatted, see ts_sql)."""
    if value is None or type(value) is str:
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat(timespec="milliseconds")


def ts_sql(column: str) -> str:
    """SQL that formats a timestamptz column as ts() does (UTC)."""
    return (f"to_char({column} AT TIME ZONE 'UTC', "
            f"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+00:00\"')")


def b(value: Any) -> str:
    return "true" if value else "false"


def ref(kind: str, obj_id: Any) -> dict[str, str] | None:
    """A reference to another object: `<cluster href=".." id=".."/>`."""
    if obj_id is None:
        return None
    i = str(obj_id)
    return {"href": f"{API}/{kind}/{i}", "id": i}


def link(href: str, rel: str) -> dict[str, str]:
    return {"href": href, "rel": rel}


def links(base: str, rels: Sequence[str]) -> list[dict[str, str]]:
    return [{"href": f"{base}/{r}", "rel": r} for r in rels]


def actions(base: str, names: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    return {"link": links(base, names)}


# ------------------------------------------------------------------- XML
def _xml(tag: str, value: Any, out: list[str]) -> None:
    t = type(value)
    if t is str:
        out.append(f"<{tag}>{esc(value)}</{tag}>")
    elif t is dict:
        attrs = ""
        if "id" in value or "href" in value or "rel" in value:
            parts = []
            for k in ("href", "id", "rel"):
                x = value.get(k)
                if type(x) is str:
                    parts.append(f' {k}="{esc(x)}"')
            attrs = "".join(parts)
            children = [(k, x) for k, x in value.items()
                        if x is not None and not (k in _ATTRS and type(x) is str)]
        else:
            children = [(k, x) for k, x in value.items() if x is not None]
        if not children:
            out.append(f"<{tag}{attrs}/>")
            return
        out.append(f"<{tag}{attrs}>")
        for k, x in children:
            _xml(k, x, out)
        out.append(f"</{tag}>")
    elif t is list or t is tuple:
        for x in value:
            _xml(tag, x, out)
    elif value is None:
        return
    elif t is bool:
        out.append(f"<{tag}>{b(value)}</{tag}>")
    else:
        out.append(f"<{tag}>{esc(str(value))}</{tag}>")


def xml_of(root: str, body: Mapping[str, Any]) -> str:
    out: list[str] = []
    _xml(root, dict(body), out)
    return "".join(out)


def json_of(body: Any) -> bytes:
    return orjson.dumps(_prune(body))


def _prune(v: Any) -> Any:
    if type(v) is dict:
        return {k: _prune(x) for k, x in v.items() if x is not None}
    if type(v) is list:
        return [_prune(x) for x in v]
    return v


# ----------------------------------------------------------- negotiation
def wants_json(request: web.Request) -> bool:
    """JSON only for clients that ask for JSON and not for XML (the SDK sends
    a user's Accept header before its own `Accept: application/xml`)."""
    accepts = request.headers.getall("Accept", [])
    if not accepts:
        return False
    joined = ",".join(accepts).lower()
    if "xml" in joined:
        return False
    return "json" in joined


def respond(request: web.Request, root: str, body: Mapping[str, Any],
            status: int = 200) -> web.Response:
    if wants_json(request):
        return web.Response(body=json_of(body), status=status, content_type=JSON_TYPE)
    return web.Response(text=xml_of(root, body), status=status, content_type=XML_TYPE,
                        charset="utf-8")


FastXml = Callable[[Any], str]


@contextlib.contextmanager
def _gc_paused(n: int) -> Iterator[None]:
    """Rendering a large collection allocates many short-lived containers;
    the cyclic collector would run dozens of times over them for nothing.
    The section is synchronous, so no other task runs while it is paused."""
    if n < 500 or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def respond_collection(request: web.Request, plural: str, singular: str,
                       rows: Sequence[Any], to_dict: Callable[[Any], dict[str, Any]],
                       fast_xml: FastXml | None = None, pruned: bool = False,
                       fast_json: FastXml | None = None) -> web.Response:
    """A collection: `<vms><vm ...>...</vm></vms>` or `{"vm": [...]}`. Only
    items go inside the root (the SDK reads every child as an item)."""
    with _gc_paused(len(rows)):
        return _collection(request, plural, singular, rows, to_dict, fast_xml, pruned,
                           fast_json)


def _collection(request: web.Request, plural: str, singular: str, rows: Sequence[Any],
                to_dict: Callable[[Any], dict[str, Any]], fast_xml: FastXml | None,
                pruned: bool, fast_json: FastXml | None) -> web.Response:
    if wants_json(request) and fast_json is not None:
        text = f'{{"{singular}":[{",".join([fast_json(r) for r in rows])}]}}'
        return web.Response(text=text, content_type=JSON_TYPE)
    if wants_json(request):
        items = [to_dict(r) for r in rows] if pruned else [_prune(to_dict(r)) for r in rows]
        return web.Response(body=orjson.dumps({singular: items}), content_type=JSON_TYPE)
    if fast_xml is not None:
        inner = "".join([fast_xml(r) for r in rows])
    else:
        out: list[str] = []
        for r in rows:
            _xml(singular, to_dict(r), out)
        inner = "".join(out)
    text = f"<{plural}>{inner}</{plural}>" if inner else f"<{plural}/>"
    return web.Response(text=text, content_type=XML_TYPE, charset="utf-8")
