"""oVirt search syntax -> SQL, request body parsing, permits data."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from ovengine.aaa.authz import SqlParams
from ovengine.aaa.permits import (ActionGroup, PREDEFINED_ROLES, USER_VM_MANAGER_ROLE_ID)
from ovengine.db.migrate import MIGRATIONS_DIR
from ovengine.domain.vm_commands import USER_VM_MANAGER_ROLE_ID as LEAD_ID
from ovengine.errors import ValidationFailed
from ovengine.rest.parse import as_bool, as_int, items, parse_xml, ref_of
from ovengine.rest.search import Field, compile_search

FIELDS = {"name": Field("s.name"), "status": Field("d.status", "enum"),
          "memory": Field("m", "int"), "cluster": Field("c.name")}


def _c(q: str, cs: bool = True) -> tuple[str, list[object]]:
    p = SqlParams()
    return compile_search(q, FIELDS, p, cs, prefix="Vms").where, p.values


def test_search_compiles() -> None:
    assert _c("name=web1") == ("COALESCE(s.name, '') = $1", ["web1"])
    where, vals = _c("name=web* and status=UP or cluster=Default")
    assert where == ("((COALESCE(s.name, '') LIKE $1 AND COALESCE(lower(d.status), '') = $2) "
                     "OR COALESCE(c.name, '') = $3)")
    assert vals == ["web%", "up", "Default"]
    where, vals = _c("Vms: name=a_b* ", cs=False)
    assert "ILIKE" in where and vals == ["a\\_b%"]
    assert _c("memory>=1024")[1] == [1024]
    assert _c('name="two words"')[1] == ["two words"]
    assert _c("(name=a or name=b) status!=down")[0].count("OR") == 1
    assert _c("free")[1] == ["%free%"]
    for bad in ("nosuch=1", "memory=lots", "name=", "(name=a", "name=a )", "status<"):
        with pytest.raises(ValidationFailed) as err:
            _c(bad)
        assert err.value.field == "search"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_search_never_crashes(q: str) -> None:
    try:
        where, values = _c(q)
    except ValidationFailed:
        return
    # Values are parameters, never pasted into the SQL.
    assert len(re.findall(r"\$\d+", where)) == len(values)


def test_parse_xml_bodies() -> None:
    tag, body = parse_xml(b"<vm><name>x</name><cluster id='c1'/><os><boot><devices>"
                          b"<device>hd</device><device>cdrom</device></devices></boot></os>"
                          b"<template><name>Blank</name></template></vm>")
    assert tag == "vm" and body["name"] == "x"
    assert ref_of(body, "cluster") == ("c1", None) and ref_of(body, "template") == (None, "Blank")
    assert items(body, "os", "boot", "devices", "device") == ["hd", "cdrom"]
    assert as_int({"m": "12"}, "m") == 12 and as_bool({"b": "TRUE"}, "b") is True
    with pytest.raises(ValidationFailed) as err:
        as_int({"memory": "256MiB"}, "memory")
    assert err.value.field == "memory"
    with pytest.raises(ValidationFailed):
        parse_xml(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')


def test_predefined_roles_match_the_migration() -> None:
    sql = (MIGRATIONS_DIR / "0002_aaa.sql").read_text()
    for role in PREDEFINED_ROLES:
        assert f"'{role.id}', '{role.name}'" in sql
        for permit in role.permits:
            assert f"('{ActionGroup(permit).rest_name}')" in sql
    # oVirt's UserVmManager id, as the VM commands use it.
    assert LEAD_ID == USER_VM_MANAGER_ROLE_ID == "def00006-0000-0000-0000-def000000006"
