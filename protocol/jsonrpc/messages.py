"""JSON-RPC 2.0 message values, their wire encoding and parsing.

JSON goes through orjson: bench/json_bench.py measures it against the stdlib
json and msgspec (bench/results/json.json: encoding a 1,000-VM getAllVmStats
reply is 8-10x faster than json and on par with msgspec; decoding it is bound by
object allocation, ~1.2x json for all three; small messages are 5-15x faster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import orjson

from .codes import ErrorCode, default_message

__all__ = [
    "JsonRpcError",
    "Request",
    "Response",
    "ErrorResponse",
    "InvalidMessage",
    "Incoming",
    "parse",
    "encode",
    "encode_request",
    "encode_notification",
    "encode_result",
    "encode_error",
    "result_dict",
    "error_dict",
    "dumps",
    "loads",
]

RequestId = Union[str, int, None]

dumps = orjson.dumps
loads = orjson.loads


class JsonRpcError(Exception):
    """An error that travels on the wire as a JSON-RPC error object."""

    def __init__(self, code: int, message: str | None = None, data: Any = None) -> None:
        self.code = int(code)
        self.message = message if message is not None else default_message(code)
        self.data = data
        super().__init__(f"[{self.code}] {self.message}")

    def to_wire(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


@dataclass(frozen=True, slots=True)
class Request:
    """A call; `is_notification` when the id member is absent."""

    method: str
    params: dict[str, Any] | list[Any]
    id: RequestId = None
    is_notification: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    id: RequestId
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    id: RequestId
    error: JsonRpcError


@dataclass(frozen=True, slots=True)
class InvalidMessage:
    """A batch member (or lone message) that is not valid JSON-RPC 2.0."""

    id: RequestId
    error: JsonRpcError


Incoming = Request | Response | ErrorResponse | InvalidMessage


def _parse_item(item: Any) -> Incoming:
    if not isinstance(item, dict):
        return InvalidMessage(None, JsonRpcError(
            ErrorCode.INVALID_REQUEST, "message must be a JSON object"))
    raw_id = item.get("id")
    msg_id = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    if item.get("jsonrpc") != "2.0":
        return InvalidMessage(msg_id, JsonRpcError(
            ErrorCode.INVALID_REQUEST, "member 'jsonrpc' must be \"2.0\""))
    if "id" in item and raw_id is not None and msg_id is None:
        return InvalidMessage(None, JsonRpcError(
            ErrorCode.INVALID_REQUEST, "member 'id' must be a string, an integer or null"))
    if "method" in item:
        method = item["method"]
        if not isinstance(method, str) or not method:
            return InvalidMessage(msg_id, JsonRpcError(
                ErrorCode.INVALID_REQUEST, "member 'method' must be a non-empty string"))
        params = item.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, (dict, list)):
            return InvalidMessage(msg_id, JsonRpcError(
                ErrorCode.INVALID_REQUEST, "member 'params' must be an object or an array"))
        return Request(method, params, msg_id, is_notification="id" not in item)
    if "result" in item:
        return Response(msg_id, item["result"])
    if "error" in item:
        err = item["error"]
        if isinstance(err, dict) and isinstance(err.get("code"), int):
            return ErrorResponse(msg_id, JsonRpcError(
                err["code"], str(err.get("message", "")), err.get("data")))
        return InvalidMessage(msg_id, JsonRpcError(
            ErrorCode.INVALID_REQUEST, "member 'error' must be an object with an integer code"))
    return InvalidMessage(msg_id, JsonRpcError(
        ErrorCode.INVALID_REQUEST, "message has neither method, result nor error"))


def parse(body: bytes | str) -> tuple[list[Incoming], bool]:
    """Parse a message or batch; returns (items, is_batch).

    Raises JsonRpcError(-32700) for invalid JSON and (-32600) for an empty batch.
    """
    try:
        doc = loads(body)
    except orjson.JSONDecodeError as exc:
        raise JsonRpcError(ErrorCode.PARSE_ERROR, f"Parse error: {exc}") from None
    if isinstance(doc, list):
        if not doc:
            raise JsonRpcError(ErrorCode.INVALID_REQUEST, "empty batch")
        return [_parse_item(item) for item in doc], True
    return [_parse_item(doc)], False


def _request_dict(method: str, params: Any, msg_id: RequestId) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": msg_id}


def encode_request(method: str, params: dict[str, Any] | list[Any], msg_id: RequestId) -> bytes:
    return dumps(_request_dict(method, params, msg_id))


def encode_notification(method: str, params: dict[str, Any] | list[Any]) -> bytes:
    return dumps({"jsonrpc": "2.0", "method": method, "params": params})


def result_dict(msg_id: RequestId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def error_dict(msg_id: RequestId, error: JsonRpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": error.to_wire()}


def encode_result(msg_id: RequestId, result: Any) -> bytes:
    return dumps(result_dict(msg_id, result))


def encode_error(msg_id: RequestId, error: JsonRpcError) -> bytes:
    return dumps(error_dict(msg_id, error))


def encode(message: Request | Response | ErrorResponse) -> bytes:
    if isinstance(message, Request):
        if message.is_notification:
            return encode_notification(message.method, message.params)
        return encode_request(message.method, message.params, message.id)
    if isinstance(message, Response):
        return encode_result(message.id, message.result)
    return encode_error(message.id, message.error)
