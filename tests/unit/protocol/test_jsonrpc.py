"""JSON-RPC 2.0 messages: parsing, encoding, the error-code table."""

from __future__ import annotations

import json

import pytest

from protocol.jsonrpc import (
    ErrorCode,
    ErrorResponse,
    InvalidMessage,
    JsonRpcError,
    Request,
    Response,
    default_message,
    encode,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse,
)


def test_request_by_name_and_by_position() -> None:
    items, is_batch = parse(b'{"jsonrpc":"2.0","method":"VM.getStats","params":{"vmID":"x"},'
                            b'"id":"1"}')
    assert not is_batch
    assert items == [Request("VM.getStats", {"vmID": "x"}, "1")]
    items, _ = parse('{"jsonrpc":"2.0","method":"VM.getStats","params":["x"],"id":7}')
    assert items == [Request("VM.getStats", ["x"], 7)]


def test_notification_has_no_id() -> None:
    (item,), _ = parse(b'{"jsonrpc":"2.0","method":"|virt|VM_status|1","params":{}}')
    assert isinstance(item, Request) and item.is_notification and item.id is None
    (item,), _ = parse(b'{"jsonrpc":"2.0","method":"Host.ping2","id":null}')
    assert isinstance(item, Request) and not item.is_notification and item.params == {}


def test_batch_and_responses() -> None:
    items, is_batch = parse(b'[{"jsonrpc":"2.0","id":1,"result":true},'
                            b'{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"no VM"}},'
                            b'{"jsonrpc":"2.0","method":"Host.ping2","params":[],"id":3}]')
    assert is_batch
    assert items[0] == Response(1, True)
    assert isinstance(items[1], ErrorResponse) and items[1].error.code == 1
    assert items[1].error.message == "no VM"
    assert items[2] == Request("Host.ping2", [], 3)


def test_invalid_json_is_parse_error() -> None:
    with pytest.raises(JsonRpcError) as info:
        parse(b'{"jsonrpc":')
    assert info.value.code == ErrorCode.PARSE_ERROR == -32700


def test_empty_batch_is_invalid_request() -> None:
    with pytest.raises(JsonRpcError) as info:
        parse(b"[]")
    assert info.value.code == -32600


@pytest.mark.parametrize("doc, expected_id", [
    ('42', None),
    ('{"method":"a","id":1}', 1),                         # no jsonrpc member
    ('{"jsonrpc":"1.0","method":"a","id":1}', 1),
    ('{"jsonrpc":"2.0","method":"","id":"x"}', "x"),
    ('{"jsonrpc":"2.0","method":5,"id":2}', 2),
    ('{"jsonrpc":"2.0","method":"a","params":3,"id":2}', 2),
    ('{"jsonrpc":"2.0","method":"a","id":[1]}', None),    # id of a bad type
    ('{"jsonrpc":"2.0","method":"a","id":true}', None),
    ('{"jsonrpc":"2.0","id":1}', 1),                       # neither method nor result
    ('{"jsonrpc":"2.0","id":1,"error":"x"}', 1),
])
def test_invalid_messages(doc: str, expected_id: object) -> None:
    (item,), _ = parse(doc)
    assert isinstance(item, InvalidMessage)
    assert item.error.code == -32600
    assert item.id == expected_id


def test_encoders_produce_json_rpc_2() -> None:
    assert json.loads(encode_request("Host.ping2", {}, 1)) == {
        "jsonrpc": "2.0", "method": "Host.ping2", "params": {}, "id": 1}
    assert json.loads(encode_notification("|virt|VM_status|x", {"notify_time": 1})) == {
        "jsonrpc": "2.0", "method": "|virt|VM_status|x", "params": {"notify_time": 1}}
    assert json.loads(encode_result("a", [1])) == {"jsonrpc": "2.0", "id": "a", "result": [1]}
    err = JsonRpcError(1, data={"vmId": "x"})
    assert json.loads(encode_error(5, err)) == {
        "jsonrpc": "2.0", "id": 5,
        "error": {"code": 1, "message": "Virtual machine does not exist", "data": {"vmId": "x"}}}
    for message in (Request("a", [1], 3), Request("b", {}, None, is_notification=True),
                    Response(4, None), ErrorResponse(None, JsonRpcError(-32700))):
        (back,), _ = parse(encode(message))
        assert back == message or (isinstance(back, ErrorResponse)
                                   and back.error.code == -32700)


def test_error_codes_match_vdsm() -> None:
    expected = {"NO_VM": 1, "TIMEOUT": 3, "VM_EXISTS": 4, "VM_DOWN": 6, "MISSING_PARAM": 11,
                "RECOVERY_IN_PROGRESS": 99, "GENERAL": 100, "VOLUME_DOES_NOT_EXIST": 201,
                "POOL_UNKNOWN": 309, "DOMAIN_DOES_NOT_EXIST": 358, "UNKNOWN_TASK": 401,
                "ACQUIRE_LOCK_FAILURE": 651, "HOST_ID_FAILURE": 661, "PARSE_ERROR": -32700,
                "INTERNAL_ERROR": -32603}
    for name, code in expected.items():
        assert ErrorCode[name] == code
    assert all(default_message(c) != "Error" for c in ErrorCode)
    assert default_message(123456) == "Error"
    assert str(JsonRpcError(99)) == "[99] Recovering from crash or initializing"
