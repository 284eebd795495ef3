"""Collections as one query each: the base SELECT, the filtered-view
condition for users who only see what they hold permissions on, the
`search=` condition, ordering and `max=`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from ..aaa.authz import SqlParams, parse_uuid, visible_condition
from ..errors import NotFound, ValidationFailed
from .context import ctx, ident
from .search import Field, compile_search

__all__ = ["Collection", "list_rows", "get_row", "query_bool", "query_int"]


@dataclass(frozen=True)
class Collection:
    kind: str                 # visibility rule (ovengine.aaa.authz.visible_condition)
    select: str               # SELECT ... FROM ... (joins included)
    where: str                # the base condition (TRUE, or e.g. the entity type)
    id_col: str
    cols: dict[str, str]      # column aliases the visibility rule needs
    fields: dict[str, Field] = field(default_factory=dict)
    order: str = "name"
    prefix: str = ""          # search prefix, e.g. "Vms" in "Vms: name=x"
    what: str = "object"


def query_bool(request: web.Request, name: str, default: bool) -> bool:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    v = v.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise ValidationFailed(f"{name} must be true or false", name)


def query_int(request: web.Request, name: str) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return None
    try:
        n = int(v)
    except ValueError:
        raise ValidationFailed(f"{name} must be an integer", name) from None
    if n < -1 or n > 2**62:
        raise ValidationFailed(f"{name} is out of range", name)
    return n


async def list_rows(request: web.Request, coll: Collection, extra: str | None = None,
                    extra_params: tuple[Any, ...] = (), order: str | None = None,
                    search: bool = True) -> list[asyncpg.Record]:
    p = SqlParams()
    for v in extra_params:
        p(v)
    conds = [coll.where]
    if extra:
        conds.append(extra)
    who = ident(request)
    if who.filtered:
        conds.append(visible_condition(coll.kind, who.visibility(), p, coll.cols))
    order_by = order or coll.order
    q = request.query.get("search") if search else None
    if q:
        compiled = compile_search(q, coll.fields, p, query_bool(request, "case_sensitive", True),
                                  prefix=coll.prefix)
        conds.append(compiled.where)
        if compiled.order_by:
            order_by = compiled.order_by
    limit = query_int(request, "max")
    sql = f"{coll.select} WHERE {' AND '.join(f'({c})' for c in conds)} ORDER BY {order_by}"
    if limit is not None and limit >= 0:
        sql += f" LIMIT {p(limit)}"
    return await ctx(request).s.pool.fetch(sql, *p.values)


async def get_row(request: web.Request, coll: Collection, obj_id: str,
                  extra: str | None = None, extra_params: tuple[Any, ...] = ()) -> asyncpg.Record:
    """One object (its read permission was checked by the route's policy)."""
    key = parse_uuid(obj_id, coll.what)
    p = SqlParams()
    for v in extra_params:
        p(v)
    conds = [coll.where, f"{coll.id_col} = {p(key)}"]
    if extra:
        conds.append(extra)
    row = await ctx(request).s.pool.fetchrow(
        f"{coll.select} WHERE {' AND '.join(f'({c})' for c in conds)}", *p.values)
    if row is None:
        raise NotFound(f"{coll.what} {obj_id} does not exist")
    return row
