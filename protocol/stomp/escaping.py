"""STOMP 1.2 header value escaping (section "Value Encoding")."""

from __future__ import annotations

__all__ = ["escape", "unescape", "EscapeError"]


class EscapeError(ValueError):
    """An undefined escape sequence: a fatal protocol error in STOMP 1.2."""


_ESCAPES = {"r": "\r", "n": "\n", "c": ":", "\\": "\\"}


def escape(value: str) -> str:
    if not ("\\" in value or ":" in value or "\n" in value or "\r" in value):
        return value
    return (
        value.replace("\\", "\\\\")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
        .replace(":", "\\c")
    )


def unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch != "\\":
            j = value.find("\\", i)
            if j < 0:
                out.append(value[i:])
                break
            out.append(value[i:j])
            i = j
            continue
        if i + 1 >= n:
            raise EscapeError("header value ends with a lone backslash")
        replacement = _ESCAPES.get(value[i + 1])
        if replacement is None:
            raise EscapeError(f"undefined escape sequence '\\{value[i + 1]}' in header value")
        out.append(replacement)
        i += 2
    return "".join(out)
