"""The engine/CLI side: a persistent JSON-RPC client over STOMP over mutual TLS.

One RpcClient is one logical link to one agent. `start()` keeps it connected
for ever (reconnect with exponential backoff plus jitter, so a thousand
clients that lost their hosts together do not come back in lockstep);
`connect()` makes a single attempt (the CLI). Calls are pipelined, each with
its own timeout; when the link drops every call in flight fails at once with
ConnectionLostError. Subscriptions are restored after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import itertools
import logging
import random
import ssl
import uuid
from typing import Any, Callable

from .flow import flow_id as current_flow_id
from .jsonrpc import ErrorResponse, JsonRpcError, Request, Response, dumps, parse
from .stomp import Frame, Limits, Role, format_heartbeat
from .stomp.escaping import escape
from .tls import peer_fingerprint
from .transport import EVENTS_DESTINATION, REQUEST_DESTINATION, StompStream, send_header

__all__ = [
    "RpcClient",
    "ClientState",
    "RpcConnectionError",
    "NotConnectedError",
    "ConnectionLostError",
    "CallTimeoutError",
    "HandshakeError",
    "EventHandler",
]

log = logging.getLogger(__name__)

EventHandler = Callable[[str, dict[str, Any]], None]
StateHandler = Callable[["ClientState", str | None], None]


class RpcConnectionError(Exception):
    """The call could not complete because of the link, not the verb."""


class NotConnectedError(RpcConnectionError):
    pass


class ConnectionLostError(RpcConnectionError):
    pass


class CallTimeoutError(RpcConnectionError, TimeoutError):
    pass


class HandshakeError(RpcConnectionError):
    """TLS went fine but the STOMP handshake or the peer's identity did not."""


class ClientState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class _ClientConnection(StompStream):
    role = Role.CLIENT

    def __init__(self, client: "RpcClient") -> None:
        super().__init__(client.limits)
        self.client = client
        self.ready: asyncio.Future[None] = self.loop.create_future()
        # Mark a failed handshake's exception as seen even when nobody awaits it.
        self.ready.add_done_callback(lambda f: f.cancelled() or f.exception())

    def frame_received(self, frame: Frame) -> None:
        cmd = frame.command
        if cmd == "MESSAGE":
            self.client._on_message(frame)
        elif cmd == "CONNECTED":
            self.start_heartbeats()
            if not self.ready.done():
                self.ready.set_result(None)
        elif cmd == "ERROR":
            text = frame.body.decode("utf-8", "replace") or frame.get("message") or "ERROR"
            log.warning("%s sent ERROR: %s", self.client.name, text)
            if not self.ready.done():
                self.ready.set_exception(HandshakeError(f"server refused: {text}"))
            self.close_reason = f"server error: {text}"
            self.close()
        # RECEIPT: nothing waits for receipts.

    def stream_closed(self) -> None:
        if not self.ready.done():
            self.ready.set_exception(HandshakeError(self.close_reason or "connection closed"))
        self.client._on_connection_closed(self)


class RpcClient:
    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext, *,
                 server_hostname: str | None = None,
                 expected_fingerprint: str | None = None,
                 request_destination: str = REQUEST_DESTINATION,
                 reply_destination: str | None = None,
                 subscribe_events: bool = True,
                 heartbeat_ms: tuple[int, int] = (10000, 10000),
                 call_timeout_s: float = 180.0,
                 connect_timeout_s: float = 20.0,
                 backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 30.0,
                 limits: Limits | None = None,
                 on_event: EventHandler | None = None,
                 on_state: StateHandler | None = None,
                 name: str | None = None) -> None:
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError("RpcClient requires an SSLContext: there is no plaintext mode")
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.expected_fingerprint = expected_fingerprint
        self.request_destination = request_destination
        # A private reply destination (like vdsm's client): responses are ours only.
        self.reply_destination = reply_destination or str(uuid.uuid4())
        self.heartbeat_ms = heartbeat_ms
        self.call_timeout_s = call_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.limits = limits or Limits()
        self.on_event = on_event
        self.on_state = on_state
        self.name = name or f"{host}:{port}"
        self.state = ClientState.DISCONNECTED
        self.last_error: str | None = None
        self._conn: _ClientConnection | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._subs: dict[str, str] = {self.reply_destination: "reply"}
        self._sub_handlers: dict[str, Callable[[Frame], None]] = {}
        if subscribe_events:
            self._subs[EVENTS_DESTINATION] = "events"
        self._send_head = send_header(request_destination, self.reply_destination)
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self.connects = 0  # successful connections so far (reconnects + 1)

    # -------------------------------------------------------------- lifecycle
    def _set_state(self, state: ClientState, reason: str | None = None) -> None:
        if state is self.state:
            return
        self.state = state
        if state is ClientState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        if self.on_state is not None:
            try:
                self.on_state(state, reason)
            except Exception:  # a broken observer must not break the link
                log.exception("state observer of %s failed", self.name)

    async def connect(self) -> None:
        """One connection attempt; raises on failure (no retry)."""
        self._set_state(ClientState.CONNECTING)
        try:
            await asyncio.wait_for(self._open(), self.connect_timeout_s)
        except asyncio.TimeoutError:
            self.last_error = f"connect timeout after {self.connect_timeout_s} s"
            self._set_state(ClientState.DISCONNECTED, self.last_error)
            raise HandshakeError(f"{self.name}: {self.last_error}") from None
        except (OSError, RpcConnectionError) as exc:
            self.last_error = str(exc) or type(exc).__name__
            self._set_state(ClientState.DISCONNECTED, self.last_error)
            raise
        self._set_state(ClientState.CONNECTED)

    def start(self) -> None:
        """Stay connected in the background until close()."""
        if self._supervisor is None:
            # A fresh context: the link outlives whatever operation started it,
            # so its callbacks must not inherit that operation's flow id.
            self._supervisor = asyncio.get_running_loop().create_task(
                self._run(), name=f"rpc-client {self.name}", context=contextvars.Context())

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    @property
    def connected(self) -> bool:
        return self.state is ClientState.CONNECTED

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
            self._supervisor = None
        conn = self._conn
        if conn is not None:
            conn.write(b"DISCONNECT\n\n\0")
            conn.close()
            try:
                await asyncio.wait_for(asyncio.shield(conn.closed), 2)
            except asyncio.TimeoutError:
                conn.abort("close timeout")
        self._fail_pending(ConnectionLostError(f"{self.name}: client closed"))
        self._set_state(ClientState.CLOSED)

    async def __aenter__(self) -> "RpcClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            if self._conn is None:
                try:
                    await self.connect()
                    attempt = 0
                except (OSError, RpcConnectionError) as exc:
                    attempt += 1
                    delay = self._backoff(attempt)
                    log.info("%s: connect failed (%s), retry in %.2f s", self.name, exc, delay)
                    await asyncio.sleep(delay)
                    continue
            conn = self._conn
            if conn is not None:
                await asyncio.shield(conn.closed)
            # Lost: come back after a short jittered pause (not all at once).
            attempt += 1
            await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: _ClientConnection(self), self.host, self.port, ssl=self.ssl_context,
            server_hostname=self.server_hostname or self.host,
            ssl_handshake_timeout=self.connect_timeout_s)
        assert isinstance(conn, _ClientConnection) and conn.transport is not None
        try:
            if self.expected_fingerprint is not None:
                got = peer_fingerprint(conn.transport.get_extra_info("ssl_object"))
                if got != self.expected_fingerprint:
                    raise HandshakeError(
                        f"{self.name}: peer certificate fingerprint {got} is not the "
                        f"enrolled {self.expected_fingerprint}")
            # Pipelined like vdsm-jsonrpc-java: CONNECT then SUBSCRIBEs at once.
            connect = Frame.build("CONNECT", {
                "accept-version": "1.2", "host": self.server_hostname or self.host,
                "heart-beat": format_heartbeat(self.heartbeat_ms)})
            conn.write(conn.codec.send(connect, loop.time()))
            for dest, sub_id in self._subs.items():
                conn.write(self._subscribe_frame(dest, sub_id))
            await conn.ready
        except BaseException:
            conn.abort("handshake failed")
            raise
        self._conn = conn
        self.connects += 1
        self.last_error = None
        log.info("%s: connected", self.name)

    @staticmethod
    def _subscribe_frame(dest: str, sub_id: str) -> bytes:
        return (f"SUBSCRIBE\ndestination:{escape(dest)}\nid:{escape(sub_id)}\nack:auto\n\n\0"
                .encode())

    def _on_connection_closed(self, conn: _ClientConnection) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        reason = conn.close_reason or "connection closed"
        self.last_error = reason
        self._fail_pending(ConnectionLostError(f"{self.name}: {reason}"))
        if not self._closing:
            log.warning("%s: link lost (%s)", self.name, reason)
            self._set_state(ClientState.DISCONNECTED, reason)

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)

    # --------------------------------------------------------------- calls
    async def call(self, method: str, params: dict[str, Any] | list[Any] | None = None, *,
                   timeout_s: float | None = None, flow_id: str | None = None) -> Any:
        """Call a verb and return its result; JsonRpcError for a wire error."""
        conn = self._conn
        if conn is None or self.state is not ClientState.CONNECTED:
            raise NotConnectedError(f"{self.name}: not connected"
                                    + (f" ({self.last_error})" if self.last_error else ""))
        msg_id = next(self._ids)
        body = dumps({"jsonrpc": "2.0", "method": method,
                      "params": {} if params is None else params, "id": msg_id})
        fut: asyncio.Future[Any] = conn.loop.create_future()
        self._pending[msg_id] = fut
        flow = flow_id or current_flow_id.get()
        head = self._send_head
        if flow:
            head += f"ovirtCorrelationId:{escape(flow)}\n".encode()
        conn.write(b"%bcontent-length:%d\n\n%b\0" % (head, len(body), body))
        timeout = self.call_timeout_s if timeout_s is None else timeout_s
        timer = conn.loop.call_later(timeout, self._expire, msg_id, method, timeout)
        try:
            return await fut
        finally:
            timer.cancel()
            self._pending.pop(msg_id, None)

    def _expire(self, msg_id: int, method: str, timeout: float) -> None:
        fut = self._pending.pop(msg_id, None)
        if fut is not None and not fut.done():
            fut.set_exception(CallTimeoutError(
                f"{self.name}: {method} got no answer within {timeout} s"))

    def subscribe(self, destination: str, handler: Callable[[Frame], None]) -> None:
        """Receive raw MESSAGE frames of `destination`; restored after reconnect."""
        sub_id = f"sub-{len(self._subs)}"
        self._subs[destination] = sub_id
        self._sub_handlers[sub_id] = handler
        if self._conn is not None:
            self._conn.write(self._subscribe_frame(destination, sub_id))

    def _on_message(self, frame: Frame) -> None:
        sub = frame.get("subscription")
        if sub == "reply":
            self._on_reply(frame.body)
        elif sub == "events":
            self._on_event_body(frame.body)
        else:
            handler = self._sub_handlers.get(sub or "")
            if handler is not None:
                handler(frame)

    def _on_reply(self, body: bytes) -> None:
        try:
            items, _ = parse(body)
        except JsonRpcError as exc:
            log.warning("%s: unparsable response: %s", self.name, exc)
            return
        for item in items:
            if isinstance(item, Response):
                fut = self._pending.get(item.id)  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_result(item.result)
            elif isinstance(item, ErrorResponse):
                fut = self._pending.get(item.id)  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_exception(item.error)
                elif item.id is None:
                    log.warning("%s: error without id: %s", self.name, item.error)

    def _on_event_body(self, body: bytes) -> None:
        try:
            items, _ = parse(body)
        except JsonRpcError as exc:
            log.warning("%s: unparsable event: %s", self.name, exc)
            return
        for item in items:
            if isinstance(item, Request) and isinstance(item.params, dict):
                if self.on_event is not None:
                    try:
                        self.on_event(item.method, item.params)
                    except Exception:
                        log.exception("%s: event handler failed for %s", self.name,
                                      item.method)
