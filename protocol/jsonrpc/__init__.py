"""JSON-RPC 2.0: messages, batches, encoding, and the error-code table."""

from .codes import ErrorCode, default_message
from .messages import (
    ErrorResponse,
    Incoming,
    InvalidMessage,
    JsonRpcError,
    Request,
    Response,
    dumps,
    encode,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    error_dict,
    loads,
    parse,
    result_dict,
)

__all__ = [
    "ErrorCode",
    "ErrorResponse",
    "Incoming",
    "InvalidMessage",
    "JsonRpcError",
    "Request",
    "Response",
    "default_message",
    "dumps",
    "encode",
    "encode_error",
    "encode_notification",
    "encode_request",
    "encode_result",
    "error_dict",
    "loads",
    "parse",
    "result_dict",
]
