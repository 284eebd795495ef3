"""The verb schema: loader errors, validator rules, handler registry, generated help."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from protocol.schema import (
    MISSING,
    ListOf,
    SchemaError,
    SchemaMismatchError,
    ValidationError,
    Validator,
    VerbRegistry,
    load_schema,
    namespace_help,
    namespaces_help,
    python_name,
    verb,
    verb_help,
)
from tests.fixtures.protocol import TestApi, write_test_schema


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def schema(tmp_path: Path) -> Any:
    return load_schema([write_test_schema(tmp_path)])


# ------------------------------------------------------------------ loader
def test_loads_types_verbs_and_defaults(schema: Any) -> None:
    add = schema.verbs["Test.add"]
    assert [p.name for p in add.params] == ["a", "b"]
    assert add.params[0].required and not add.params[1].required
    assert add.params[1].default == 0
    assert schema.verbs["Host.ping2"].returns is None
    assert schema.verbs["Test.echo"].by_name["vmID"].pyname == "vm_id"
    assert schema.verbs["Test.echo"].by_name["vmID"].default is None
    assert schema.verbs["Test.paint"].by_name["tags"].type == ListOf("string")
    assert schema.namespaces() == ["Host", "Test"]
    assert schema.verbs_of("Host")[0].short_name == "ping2"
    assert schema.types["Point"].by_name["label"].optional


@pytest.mark.parametrize("text, fragments", [
    ("""
     verbs:
       Test.x:
         params:
           - {name: a, type: Nowhere}
     """, ["bad.yml", "Test.x", "a", "unknown type 'Nowhere'"]),
    ("""
     types:
       T: {type: object, properties: [{name: m, type: [Missing]}]}
     """, ["type T.m", "'Missing'"]),
    ("""
     verbs:
       nodot: {}
     """, ["bad.yml", "nodot", "Namespace.verb"]),
    ("""
     types:
       E: {type: enum}
     """, ["bad.yml", "type E", "enum needs values"]),
    ("""
     types:
       K: {type: tuple}
     """, ["type K", "unknown type kind 'tuple'"]),
    ("""
     verbs:
       A.b:
         params: [{name: p}]
     """, ["verb A.b", "param #0 needs name and type"]),
    ("""
     stuff: {}
     """, ["bad.yml", "unknown top-level keys", "stuff"]),
    ("""
     - a list
     """, ["bad.yml", "top level must be a mapping"]),
    ("""
     types:
       string: {type: alias, sourcetype: int}
     """, ["shadows a primitive"]),
    ("""
     verbs:
       A.b:
         params: [{name: p, type: {a: 1}}]
     """, ["A.b.p", "a type must be a name or [name]"]),
])
def test_loader_errors_name_file_and_entry(tmp_path: Path, text: str,
                                           fragments: list[str]) -> None:
    with pytest.raises(SchemaError) as info:
        load_schema([write(tmp_path, "bad.yml", text)])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_duplicates_across_files_are_errors(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yml", """
        types:
          UUID: {type: alias, sourcetype: string}
        verbs:
          Host.ping2: {}
        """)
    b = write(tmp_path, "b.yml", """
        types:
          UUID: {type: alias, sourcetype: string}
        """)
    with pytest.raises(SchemaError, match=r"b.yml: type UUID: already defined in a.yml"):
        load_schema([a, b])
    c = write(tmp_path, "c.yml", """
        verbs:
          Host.ping2: {}
        """)
    with pytest.raises(SchemaError, match=r"c.yml: verb Host.ping2: already defined"):
        load_schema([a, c])


def test_references_across_files_resolve(tmp_path: Path) -> None:
    types = write(tmp_path, "types.yml", """
        types:
          UUID: {type: alias, sourcetype: string}
        """)
    verbs = write(tmp_path, "vm.yml", """
        verbs:
          VM.getStats:
            params: [{name: vmID, type: UUID}]
            return: {type: [UUID]}
        """)
    schema = load_schema([verbs, types])
    assert schema.verbs["VM.getStats"].returns == ListOf("UUID")


@pytest.mark.parametrize("wire, py", [("vmID", "vm_id"), ("gracefulAttempts", "graceful_attempts"),
                                      ("spUUID", "sp_uuid"), ("value", "value"),
                                      ("vmParams", "vm_params"), ("ID", "id")])
def test_python_name(wire: str, py: str) -> None:
    assert python_name(wire) == py


# --------------------------------------------------------------- validator
@pytest.mark.parametrize("ref, value", [
    ("int", 2**31 - 1), ("int", -(2**31)), ("uint", 0), ("long", 2**63 - 1),
    ("ulong", 2**64 - 1), ("float", 1), ("float", 1.5), ("string", ""), ("boolean", False),
    ("dict", {}), ("list", []), ("any", None), ("UUID", "x"), ("Color", "red"),
    ("Point", {"x": 1, "y": 2}), ("Point", {"x": 1, "y": 2, "label": None}),
    (ListOf("Point"), [{"x": 1, "y": 2}]), (ListOf(ListOf("int")), [[1], []]),
])
def test_valid_values(schema: Any, ref: Any, value: Any) -> None:
    Validator(schema).check(ref, value, "v")


@pytest.mark.parametrize("ref, value, path, fragment", [
    ("int", 2**31, "v", "out of range for int"),
    ("uint", -1, "v", "out of range for uint"),
    ("int", True, "v", "expected int, got boolean"),
    ("int", 1.0, "v", "expected int, got float"),
    ("float", True, "v", "expected float, got boolean"),
    ("string", 1, "v", "expected string, got int"),
    ("boolean", 0, "v", "expected boolean, got int"),
    ("dict", [], "v", "expected object, got list"),
    ("list", {}, "v", "expected list, got object"),
    ("UUID", 5, "v", "(for UUID)"),
    ("Color", "blue", "v", "expected one of 'red', 'green' (Color)"),
    ("Point", {"x": 1}, "v.y", "missing required member (int) of Point"),
    ("Point", {"x": 1, "y": 2, "q": 3}, "v.q", "unknown member of Point"),
    (ListOf("int"), [1, "2"], "v[1]", "expected int, got string"),
])
def test_invalid_values(schema: Any, ref: Any, value: Any, path: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        Validator(schema).check(ref, value, "v")
    assert info.value.path == path
    assert fragment in info.value.reason


def test_map_union_and_open_object(tmp_path: Path) -> None:
    schema = load_schema([write(tmp_path, "t.yml", """
        types:
          Disk: {type: object, open: true, properties: [{name: size, type: int}]}
          Disks: {type: map, value: Disk}
          Nfs: {type: object, properties: [{name: export, type: string}]}
          Local: {type: object, properties: [{name: path, type: string}]}
          Conn: {type: union, values: [Nfs, Local]}
        """)])
    v = Validator(schema)
    v.check("Disks", {"vda": {"size": 1, "extra": "ok"}}, "disks")
    with pytest.raises(ValidationError) as info:
        v.check("Disks", {"vda": {"size": "1"}}, "disks")
    assert info.value.path == "disks.vda.size"
    v.check("Conn", {"path": "/x"}, "c")
    with pytest.raises(ValidationError) as info:
        v.check("Conn", {"url": "x"}, "c")
    assert "matches no alternative of Conn" in info.value.reason
    assert "Nfs:" in info.value.reason and "Local:" in info.value.reason


def test_check_result(schema: Any) -> None:
    v = Validator(schema)
    v.check_result(schema.verbs["Host.ping2"], True)
    with pytest.raises(ValidationError):
        v.check_result(schema.verbs["Host.ping2"], {"x": 1})
    v.check_result(schema.verbs["Test.add"], 3)
    with pytest.raises(ValidationError, match="result"):
        v.check_result(schema.verbs["Test.add"], "3")


def test_describe(schema: Any) -> None:
    v = Validator(schema)
    assert v.describe("UUID") == "UUID (string)"
    assert v.describe("Color") == "Color (one of red, green)"
    assert v.describe(ListOf("Point")) == "list of Point (object)"


def test_bind_params_maps_to_python_names_and_defaults(schema: Any) -> None:
    v = Validator(schema)
    assert v.bind_params(schema.verbs["Test.echo"], {"value": 1, "vmID": "u"}) == {
        "value": 1, "vm_id": "u"}
    assert v.bind_params(schema.verbs["Test.echo"], [1]) == {"value": 1, "vm_id": None}
    kwargs = v.bind_params(schema.verbs["Test.paint"], {"point": {"x": 0, "y": 0},
                                                        "color": "red"})
    assert kwargs["tags"] == []


# ---------------------------------------------------------------- registry
def test_registry_binds_every_verb_once(schema: Any) -> None:
    registry = VerbRegistry(schema)
    registry.add_api(TestApi())
    registry.verify()
    assert registry.names() == sorted(schema.verbs)
    assert registry.get("Test.add") is not None and registry.get("Nope.x") is None
    with pytest.raises(ValueError, match="already has a handler"):
        registry.add_api(TestApi())


def test_registry_reports_missing_handlers(schema: Any) -> None:
    registry = VerbRegistry(schema)

    class Partial:
        @verb("Host.ping2")
        async def ping2(self) -> None:
            return None

    registry.add_api(Partial())
    with pytest.raises(SchemaMismatchError) as info:
        registry.verify()
    assert "Test.add" in info.value.missing and "Host.ping2" not in info.value.missing
    assert "schema verbs without a handler" in str(info.value)


def test_registry_refuses_handler_without_schema_entry(schema: Any) -> None:
    class Extra:
        @verb("Host.reboot")
        async def reboot(self) -> None:
            return None

    with pytest.raises(SchemaMismatchError) as info:
        VerbRegistry(schema).add_api(Extra())
    assert info.value.unknown == ["Host.reboot"]
    assert "handlers without a schema entry: Host.reboot" in str(info.value)


def test_registry_refuses_sync_handlers_and_wrong_signatures(schema: Any) -> None:
    def sync_ping() -> None:
        return None

    async def add_without_b(a: int) -> int:
        return a

    async def add_kwargs(**kwargs: Any) -> int:
        return 0

    registry = VerbRegistry(schema)
    with pytest.raises(TypeError, match="coroutine"):
        registry.add("Host.ping2", sync_ping)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\['b'\]"):
        registry.add("Test.add", add_without_b)
    registry.add("Test.add", add_kwargs)  # **kwargs takes anything


# -------------------------------------------------------------------- help
def test_help_texts(schema: Any) -> None:
    text = verb_help(schema, schema.verbs["Test.paint"])
    assert "Test.paint" in text and "point: Point" in text and "tags: [string] = []" in text
    assert "members: x, y, label?" in text and "returns: Point" in text
    assert "params: none" in verb_help(schema, schema.verbs["Host.ping2"])
    assert "Host" in namespaces_help(schema) and "Test" in namespaces_help(schema)
    assert "Test.add" in namespace_help(schema, "Test")
    with pytest.raises(KeyError):
        namespace_help(schema, "Nope")
    assert repr(MISSING) == "MISSING"
