"""STOMP 1.2 header escaping ("Value Encoding")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.stomp.escaping import EscapeError, escape, unescape


@pytest.mark.parametrize("raw, wire", [
    ("plain", "plain"),
    ("a:b", "a\\cb"),
    ("line\nbreak", "line\\nbreak"),
    ("cr\rhere", "cr\\rhere"),
    ("back\\slash", "back\\\\slash"),
    ("\\n", "\\\\n"),  # a literal backslash-n is not a newline
    (":\n\r\\", "\\c\\n\\r\\\\"),
    ("", ""),
    ("日本:語", "日本\\c語"),
])
def test_escape_and_unescape(raw: str, wire: str) -> None:
    assert escape(raw) == wire
    assert unescape(wire) == raw


@pytest.mark.parametrize("wire", ["\\t", "a\\", "\\", "x\\0y", "\\C", "\\N"])
def test_undefined_escapes_are_errors(wire: str) -> None:
    with pytest.raises(EscapeError):
        unescape(wire)


def test_escape_returns_the_same_object_when_nothing_to_do() -> None:
    value = "jms.topic.vdsm_requests"
    assert escape(value) is value
    assert unescape(value) is value


@given(st.text())
def test_round_trip(value: str) -> None:
    wire = escape(value)
    assert "\n" not in wire and "\r" not in wire and ":" not in wire
    assert unescape(wire) == value
