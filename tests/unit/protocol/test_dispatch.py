"""Dispatcher: JSON-RPC bodies in, bodies out, against a small schema written to tmp_path."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from protocol.dispatch import Dispatcher
from protocol.jsonrpc import ErrorCode, JsonRpcError
from tests.fixtures.protocol import TestApi, make_registry


@pytest.fixture
def api() -> TestApi:
    return TestApi()


@pytest.fixture
def dispatcher(tmp_path: Path, api: TestApi) -> Dispatcher:
    return Dispatcher(make_registry(tmp_path, api))


async def ask(dispatcher: Dispatcher, message: Any) -> Any:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    reply = await dispatcher.handle(body)
    return None if reply is None else json.loads(reply)


def req(method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        msg["params"] = params
    return msg


async def test_params_by_name_and_by_position(dispatcher: Dispatcher) -> None:
    assert await ask(dispatcher, req("Test.add", {"a": 2, "b": 3})) == {
        "jsonrpc": "2.0", "id": 1, "result": 5}
    assert (await ask(dispatcher, req("Test.add", [2, 3], "x")))["result"] == 5
    assert (await ask(dispatcher, req("Test.add", [2])))["result"] == 2  # default b=0
    assert (await ask(dispatcher, req("Test.add", {"a": 2, "b": None})))["result"] == 2


async def test_verb_without_result_returns_true(dispatcher: Dispatcher) -> None:
    assert await ask(dispatcher, req("Host.ping2")) == {"jsonrpc": "2.0", "id": 1,
                                                        "result": True}


async def test_notification_gets_no_reply_but_runs(dispatcher: Dispatcher,
                                                   api: TestApi) -> None:
    assert await ask(dispatcher, {"jsonrpc": "2.0", "method": "Test.echo",
                                  "params": {"value": 1}}) is None
    assert api.calls == ["echo"]
    # Not even an error reply for a failing notification.
    assert await ask(dispatcher, {"jsonrpc": "2.0", "method": "Test.fail",
                                  "params": {"code": 1}}) is None


async def test_batch_of_two_or_more_is_answered_as_a_list(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, [req("Test.add", [1, 1], 1), req("Test.nope", {}, 2),
                                   {"jsonrpc": "2.0", "method": "Host.ping2"},
                                   req("Test.echo", {"value": "v"}, 3)])
    assert isinstance(reply, list)
    assert reply[0] == {"jsonrpc": "2.0", "id": 1, "result": 2}
    assert reply[1]["id"] == 2 and reply[1]["error"]["code"] == -32601
    assert reply[2] == {"jsonrpc": "2.0", "id": 3, "result": "v"}
    assert len(reply) == 3  # the notification has no answer


async def test_batch_of_notifications_only_gets_no_reply(dispatcher: Dispatcher) -> None:
    note = {"jsonrpc": "2.0", "method": "Host.ping2"}
    assert await ask(dispatcher, [note, note]) is None


async def test_batch_of_one_is_answered_with_a_single_object(dispatcher: Dispatcher) -> None:
    # What vdsm's python client sends and expects.
    reply = await ask(dispatcher, [req("Test.add", {"a": 1, "b": 2}, "only")])
    assert reply == {"jsonrpc": "2.0", "id": "only", "result": 3}


async def test_empty_batch(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, [])
    assert reply["error"]["code"] == -32600 and reply["id"] is None


@pytest.mark.parametrize("body", [b'{"jsonrpc":"2.0","method":', b"\xff\xfe", b""])
async def test_invalid_json(dispatcher: Dispatcher, body: bytes) -> None:
    reply = await ask(dispatcher, body)
    assert reply["error"]["code"] == -32700
    assert "id" in reply and reply["id"] is None


async def test_invalid_request_members(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, [{"jsonrpc": "2.0", "method": 1, "id": 4}, 5])
    assert [r["error"]["code"] for r in reply] == [-32600, -32600]
    assert [r["id"] for r in reply] == [4, None]


async def test_a_response_sent_to_the_server_is_invalid(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, {"jsonrpc": "2.0", "id": 1, "result": 1})
    assert reply["error"]["code"] == -32600


async def test_unknown_method(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, req("VM.nope", {}, 9))
    assert reply["id"] == 9
    assert reply["error"]["code"] == -32601
    assert "VM.nope" in reply["error"]["message"]


@pytest.mark.parametrize("params, fragments", [
    ({"a": "1"}, ["'a'", "expected int", "got string"]),
    ({"a": True}, ["'a'", "expected int", "got boolean"]),
    ({"a": 2**40}, ["'a'", "out of range for int"]),
    ({"b": 1}, ["Missing", "'a'", "int"]),
    ({}, ["Missing", "'a'", "int"]),
    ({"a": 1, "c": 2}, ["Unknown", "'c'", "a, b"]),
    ({"a": None}, ["'a'", "expected int", "got null"]),
    ([1, 2, 3], ["at most 2"]),
])
async def test_bad_params(dispatcher: Dispatcher, params: Any, fragments: list[str]) -> None:
    reply = await ask(dispatcher, req("Test.add", params))
    assert reply["error"]["code"] == -32602
    for fragment in fragments:
        assert fragment in reply["error"]["message"]


@pytest.mark.parametrize("params, fragments", [
    ({"point": {"x": 1}, "color": "red"}, ["'point.y'", "missing required member", "int"]),
    ({"point": {"x": 1, "y": "2"}, "color": "red"}, ["'point.y'", "expected int"]),
    ({"point": {"x": 1, "y": 2, "z": 3}, "color": "red"}, ["'point.z'", "unknown member"]),
    ({"point": [1, 2], "color": "red"}, ["'point'", "expected Point (object)", "got list"]),
    ({"point": {"x": 1, "y": 2}, "color": "blue"}, ["'color'", "'red', 'green'", "'blue'"]),
    ({"point": {"x": 1, "y": 2}, "color": "red", "tags": ["a", 1]},
     ["'tags[1]'", "expected string"]),
    ({"point": {"x": 1, "y": 2}, "color": "red", "tags": "a"}, ["'tags'", "expected list"]),
])
async def test_bad_nested_params_name_the_path(dispatcher: Dispatcher, params: Any,
                                               fragments: list[str]) -> None:
    reply = await ask(dispatcher, req("Test.paint", params))
    assert reply["error"]["code"] == -32602, reply
    for fragment in fragments:
        assert fragment in reply["error"]["message"], reply["error"]["message"]


async def test_valid_nested_params(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, req("Test.paint", {"point": {"x": 1, "y": 2, "label": None},
                                                     "color": "green", "tags": ["a", "b"]}))
    assert reply["result"] == {"x": 1, "y": 2, "label": "green:a,b"}


async def test_handler_raising_json_rpc_error_keeps_its_code(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, req("Test.fail", {"code": 1}, 5))
    assert reply == {"jsonrpc": "2.0", "id": 5,
                     "error": {"code": 1, "message": "Virtual machine does not exist"}}
    reply = await ask(dispatcher, req("Test.fail", {"code": 358}))
    assert reply["error"]["code"] == 358


async def test_handler_crash_is_internal_error(dispatcher: Dispatcher,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="protocol.dispatch"):
        reply = await ask(dispatcher, req("Test.crash", {}, 6))
    assert reply["id"] == 6
    assert reply["error"]["code"] == -32603
    assert "ZeroDivisionError" in reply["error"]["message"]
    assert any("Test.crash" in r.getMessage() for r in caplog.records)  # logged with traceback
    assert caplog.records[-1].exc_info is not None


async def test_unserializable_result_is_internal_error(dispatcher: Dispatcher) -> None:
    reply = await ask(dispatcher, req("Test.unserializable", {}, 8))
    assert reply["id"] == 8 and reply["error"]["code"] == -32603
    reply = await ask(dispatcher, [req("Test.unserializable", {}, 1), req("Host.ping2", {}, 2)])
    assert reply[0]["error"]["code"] == -32603
    assert reply[1] == {"jsonrpc": "2.0", "id": 2, "result": True}


async def test_guard_refuses_with_99_while_recovering(tmp_path: Path, api: TestApi) -> None:
    recovering = True

    def guard(method: str) -> None:
        if recovering and method != "Host.ping2":
            raise JsonRpcError(ErrorCode.RECOVERY_IN_PROGRESS)

    dispatcher = Dispatcher(make_registry(tmp_path, api), guard)
    reply = await ask(dispatcher, req("Test.echo", {"value": 1}))
    assert reply["error"]["code"] == 99
    assert api.calls == []  # the handler never ran
    assert (await ask(dispatcher, req("Host.ping2")))["result"] is True
    recovering = False
    assert (await ask(dispatcher, req("Test.echo", {"value": 1})))["result"] == 1


async def test_unknown_method_is_reported_before_the_guard(tmp_path: Path,
                                                           api: TestApi) -> None:
    def guard(method: str) -> None:
        raise JsonRpcError(99)

    dispatcher = Dispatcher(make_registry(tmp_path, api), guard)
    assert (await ask(dispatcher, req("No.such")))["error"]["code"] == -32601


async def test_broken_guard_is_internal_error(tmp_path: Path, api: TestApi) -> None:
    def guard(method: str) -> None:
        raise RuntimeError("guard bug")

    dispatcher = Dispatcher(make_registry(tmp_path, api), guard)
    reply = await ask(dispatcher, req("Host.ping2", {}, 3))
    assert reply["id"] == 3 and reply["error"]["code"] == -32603


async def test_call_api_directly(dispatcher: Dispatcher) -> None:
    assert await dispatcher.call("Test.add", {"a": 4}) == 4
    with pytest.raises(JsonRpcError) as info:
        await dispatcher.call("Test.add", {"a": "4"})
    assert info.value.code == -32602
