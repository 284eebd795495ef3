"""Human help generated from the schema (ovagent-client --help and per namespace)."""

from __future__ import annotations

import textwrap

from .model import MISSING, ObjectType, Schema, Verb

__all__ = ["namespaces_help", "namespace_help", "verb_help"]


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, width=78, initial_indent=indent, subsequent_indent=indent)


def namespaces_help(schema: Schema) -> str:
    lines = ["Namespaces (use 'ovagent-client NAMESPACE --help' for their verbs):"]
    for ns in schema.namespaces():
        verbs = schema.verbs_of(ns)
        text = f"{ns:<14} {len(verbs)} verbs: " + ", ".join(v.short_name for v in verbs)
        lines.append(textwrap.fill(text, width=78, initial_indent="  ",
                                   subsequent_indent=" " * 17))
    return "\n".join(lines)


def verb_help(schema: Schema, v: Verb) -> str:
    lines = [f"{v.name}" + (f"   (added {v.added})" if v.added else "")]
    if v.description:
        lines.append(_wrap(v.description, "    "))
    if v.params:
        lines.append("    params:")
        for p in v.params:
            opt = "" if p.default is MISSING else f" = {p.default!r}"
            lines.append(f"      {p.name}: {p.type}{opt}")
            if p.description:
                lines.append(_wrap(p.description, "          "))
            t = schema.types.get(p.type) if isinstance(p.type, str) else None
            if isinstance(t, ObjectType) and len(t.properties) <= 12:
                members = ", ".join(q.name + ("?" if q.optional else "") for q in t.properties)
                lines.append(_wrap(f"members: {members}", "          "))
    else:
        lines.append("    params: none")
    if v.returns is not None:
        lines.append(f"    returns: {v.returns}"
                     + (f" - {v.return_description}" if v.return_description else ""))
    return "\n".join(lines)


def namespace_help(schema: Schema, namespace: str) -> str:
    verbs = schema.verbs_of(namespace)
    if not verbs:
        raise KeyError(namespace)
    return "\n\n".join(verb_help(schema, v) for v in verbs)
