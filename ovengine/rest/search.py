"""oVirt's search language (the `search=` query parameter) compiled to SQL.

    name=web* and status=up or cluster=Default
    name!=test  memory>1073741824  (status=up or status=paused)
    "free text"  sortby name desc

`and` binds tighter than `or`; a bare word matches the name. `*` is a
wildcard; text comparisons honour `case_sensitive` (default true, as in
oVirt); enum values (status) compare case-insensitively. An unknown field is
a 400 naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..errors import ValidationFailed

__all__ = ["Field", "compile_search", "Compiled"]

_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(!=|<=|>=|=|<|>)|([()])|([^\s=!<>()"]+))')
_OPS = {"=", "!=", "<", ">", "<=", ">="}


@dataclass(frozen=True)
class Field:
    sql: str
    kind: str = "text"   # text | enum | int | bool


@dataclass(frozen=True)
class Compiled:
    where: str
    order_by: str | None


def _tokens(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    s = s.strip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None or m.end() == pos:
            raise ValidationFailed(f"cannot parse the search query near {s[pos:pos + 20]!r}",
                                   "search")
        pos = m.end()
        quoted, op, paren, word = m.groups()
        if quoted is not None:
            out.append(("str", quoted.replace('\\"', '"')))
        elif op:
            out.append(("op", op))
        elif paren:
            out.append(("paren", paren))
        elif word:
            out.append(("word", word))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fields: dict[str, Field],
                 param: Callable[[object], str], case_sensitive: bool, default_field: str) -> None:
        self.t = tokens
        self.i = 0
        self.fields = fields
        self.param = param
        self.cs = case_sensitive
        self.default = default_field

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.t[j] if j < len(self.t) else None

    def word(self, w: str) -> bool:
        p = self.peek()
        return p is not None and p[0] == "word" and p[1].lower() == w

    def parse_or(self) -> str:
        parts = [self.parse_and()]
        while self.word("or"):
            self.i += 1
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def parse_and(self) -> str:
        parts = [self.parse_term()]
        while True:
            if self.word("and"):
                self.i += 1
                parts.append(self.parse_term())
            elif (p := self.peek()) is not None and not self.word("or") and \
                    not self.word("sortby") and p != ("paren", ")"):
                parts.append(self.parse_term())
            else:
                break
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def parse_term(self) -> str:
        p = self.peek()
        if p is None:
            raise ValidationFailed("incomplete search query", "search")
        if p == ("paren", "("):
            self.i += 1
            inner = self.parse_or()
            if self.peek() != ("paren", ")"):
                raise ValidationFailed("unbalanced parentheses in the search query", "search")
            self.i += 1
            return inner
        nxt = self.peek(1)
        if p[0] == "word" and nxt is not None and nxt[0] == "op":
            self.i += 2
            val = self.peek()
            if val is None or val[0] not in ("word", "str"):
                raise ValidationFailed(f"missing value after {p[1]}{nxt[1]}", "search")
            self.i += 1
            return self.compare(p[1], nxt[1], val[1])
        if p[0] in ("word", "str"):
            self.i += 1
            value = p[1] if "*" in p[1] else f"*{p[1]}*"
            return self.compare(self.default, "=", value)
        raise ValidationFailed(f"unexpected {p[1]!r} in the search query", "search")

    def compare(self, name: str, op: str, value: str) -> str:
        f = self.fields.get(name.lower())
        if f is None:
            raise ValidationFailed(f"unknown search field {name!r} (known: "
                                   f"{', '.join(sorted(self.fields))})", "search")
        if f.kind == "int":
            try:
                n = int(value)
            except ValueError:
                raise ValidationFailed(f"{name} needs an integer, not {value!r}",
                                       "search") from None
            sql_op = "<>" if op == "!=" else op
            return f"{f.sql} {sql_op} {self.param(n)}"
        if f.kind == "bool":
            v = value.lower()
            if v not in ("true", "false"):
                raise ValidationFailed(f"{name} needs true or false", "search")
            return f"{f.sql} {'<>' if op == '!=' else '='} {self.param(v == 'true')}"
        text = value.lower() if f.kind == "enum" else value
        col = f"lower({f.sql})" if f.kind == "enum" else f.sql
        if op in ("=", "!="):
            if "*" in text:
                pattern = (text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                           .replace("*", "%"))
                like = "LIKE" if self.cs or f.kind == "enum" else "ILIKE"
                neg = "NOT " if op == "!=" else ""
                return f"COALESCE({col}, '') {neg}{like} {self.param(pattern)}"
            if not self.cs and f.kind == "text":
                col, text = f"lower({col})", text.lower()
            return f"COALESCE({col}, '') {'<>' if op == '!=' else '='} {self.param(text)}"
        return f"{col} {op} {self.param(text)}"


def compile_search(query: str, fields: dict[str, Field], param: Callable[[object], str],
                   case_sensitive: bool = True, default_field: str = "name",
                   prefix: str | None = None) -> Compiled:
    q = query.strip()
    if prefix and q.lower().startswith(prefix.lower() + ":"):
        q = q[len(prefix) + 1:]
    order = None
    m = re.search(r"\bsortby\s+(\w+)(?:\s+(asc|desc))?\s*$", q, re.IGNORECASE)
    if m:
        f = fields.get(m.group(1).lower())
        if f is None:
            raise ValidationFailed(f"unknown sort field {m.group(1)!r}", "search")
        order = f"{f.sql} {(m.group(2) or 'asc').upper()}"
        q = q[:m.start()].strip()
    if not q:
        return Compiled("TRUE", order)
    parser = _Parser(_tokens(q), fields, param, case_sensitive, default_field)
    where = parser.parse_or()
    if parser.i != len(parser.t):
        raise ValidationFailed(f"unexpected {parser.t[parser.i][1]!r} in the search query",
                               "search")
    return Compiled(where, order)
