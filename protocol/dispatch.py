"""Server-side JSON-RPC dispatch: body in, body out (no I/O).

Requests are validated against the schema and handed to their handler; every
failure becomes a JSON-RPC error object. Batches of any size are answered as
JSON-RPC 2.0 says, except that a batch of one is answered with a single object,
which is what vdsm does and what vdsm's python client expects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from .jsonrpc import (
    ErrorCode,
    InvalidMessage,
    JsonRpcError,
    Request,
    dumps,
    encode_error,
    error_dict,
    parse,
    result_dict,
)
from .schema import Validator, VerbRegistry

__all__ = ["Dispatcher", "Guard"]

log = logging.getLogger(__name__)

# Called with the method name before each call; raise JsonRpcError to refuse
# (e.g. the agent's 99 "recovery in progress").
Guard = Callable[[str], None]


class Dispatcher:
    def __init__(self, registry: VerbRegistry, guard: Guard | None = None) -> None:
        self.registry = registry
        self.validator = Validator(registry.schema)
        self.guard = guard

    async def handle(self, body: bytes) -> bytes | None:
        """Answer one STOMP body; None when nothing is to be sent back."""
        try:
            items, is_batch = parse(body)
        except JsonRpcError as exc:
            return encode_error(None, exc)
        if not is_batch or len(items) == 1:
            answer = await self._answer(items[0])
            return None if answer is None else self._encode(answer)
        answers = await asyncio.gather(*(self._answer(item) for item in items))
        replies = [a for a in answers if a is not None]
        if not replies:
            return None
        try:
            return dumps(replies)
        except TypeError:  # some result is not JSON: answer that one with an error
            return b"[" + b",".join(self._encode(a) for a in replies) + b"]"

    @staticmethod
    def _encode(answer: dict[str, Any]) -> bytes:
        try:
            return dumps(answer)
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            log.error("result of request id %r is not JSON-serializable: %s",
                      answer.get("id"), exc)
            return encode_error(answer.get("id"), JsonRpcError(
                ErrorCode.INTERNAL_ERROR,
                f"Internal error: result is not JSON-serializable: {exc}"))

    async def _answer(self, item: Any) -> dict[str, Any] | None:
        if isinstance(item, InvalidMessage):
            return error_dict(item.id, item.error)
        if not isinstance(item, Request):
            # A response sent to a server: nothing to correlate it with.
            return error_dict(None, JsonRpcError(
                ErrorCode.INVALID_REQUEST, "server accepts requests only"))
        try:
            result = await self.call(item.method, item.params)
        except JsonRpcError as exc:
            if item.is_notification:
                return None
            return error_dict(item.id, exc)
        if item.is_notification:
            return None
        return result_dict(item.id, result)

    async def call(self, method: str, params: dict[str, Any] | list[Any]) -> Any:
        bound = self.registry.get(method)
        if bound is None:
            raise JsonRpcError(ErrorCode.METHOD_NOT_FOUND, f"Method not found: {method}")
        try:
            if self.guard is not None:
                self.guard(method)
            kwargs = self.validator.bind_params(bound.verb, params)
            result = await bound.handler(**kwargs)
        except JsonRpcError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the edge: any handler bug becomes a wire error
            log.exception("%s failed", method)
            raise JsonRpcError(ErrorCode.INTERNAL_ERROR,
                               f"Internal error in {method}: {type(exc).__name__}: {exc}") from None
        return True if result is None else result
