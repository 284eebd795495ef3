"""ovagent-client argument parsing (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovagent.client_cli import UsageError, parse_params, parse_value
from protocol.schema import default_schema

SCHEMA = default_schema()


def test_values_are_json_when_they_parse() -> None:
    assert parse_value("42") == 42
    assert parse_value('{"a": [1, true]}') == {"a": [1, True]}
    assert parse_value("true") is True
    assert parse_value("hello world") == "hello world"
    assert parse_value("") == ""


def test_string_params_keep_their_text(tmp_path: Path) -> None:
    verb = SCHEMA.verbs["VM.setTicket"]
    params = parse_params(SCHEMA, verb, ["vmID=1234", "password=123456", "ttl=120",
                                         "existingConnAction=keep", "params={}"])
    assert params == {"vmID": "1234", "password": "123456", "ttl": 120,
                      "existingConnAction": "keep", "params": {}}


def test_at_file_reads_json_or_text(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"xml": "<domain/>"}')
    (tmp_path / "t.txt").write_text("not json\n")
    verb = SCHEMA.verbs["VM.create"]
    params = parse_params(SCHEMA, verb, ["vmID=x", f"vmParams=@{tmp_path}/p.json"])
    assert params["vmParams"] == {"xml": "<domain/>"}
    ticket = parse_params(SCHEMA, SCHEMA.verbs["VM.setTicket"], [
        "vmID=x", f"password=@{tmp_path}/t.txt", "ttl=1", "existingConnAction=keep",
        "params={}"])
    assert ticket["password"] == "not json\n"


@pytest.mark.parametrize("args, named", [
    (["vmID"], "'vmID'"),
    (["=x"], "'=x'"),
    (["vmid=x"], "'vmid'"),
    ([], "vmID"),
    (["vmID=a", "vmID=b"], "vmID given twice"),
])
def test_bad_arguments(args: list[str], named: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_params(SCHEMA, SCHEMA.verbs["VM.getStats"], args)
    assert named in str(err.value)
