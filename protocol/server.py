"""The agent side: a STOMP broker over mutual TLS that serves JSON-RPC verbs.

Destinations follow vdsm (see the wire doc): a SEND to a request destination
(or `<destination>.<suffix>`) is a JSON-RPC request; its response goes back to
the connection that sent it, on the subscription matching its `reply-to`
(vdsm broadcasts to every subscriber; we do not). Events go to every
connection subscribed to `jms.queue.events`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, Callable

from .dispatch import Dispatcher
from .flow import flow_id
from .jsonrpc import encode_notification
from .stomp import Frame, Limits, Role, encode_frame, error_frame, vdsm_server_reply
from .stomp.heartbeat import format_heartbeat
from .tls import peer_fingerprint
from .transport import (
    EVENTS_DESTINATION,
    REQUEST_DESTINATIONS,
    RESPONSE_DESTINATION,
    StompStream,
    message_header,
)

__all__ = ["RpcServer", "ServerConnection"]

log = logging.getLogger(__name__)


class ServerConnection(StompStream):
    role = Role.SERVER

    def __init__(self, server: "RpcServer") -> None:
        super().__init__(server.limits)
        self.server = server
        self.subscriptions: dict[str, str] = {}  # subscription id -> destination
        self._sub_by_dest: dict[str, str] = {}  # destination -> subscription id
        self._headers: dict[str, bytes] = {}  # destination -> encoded MESSAGE head
        self._tasks: set[asyncio.Task[None]] = set()
        self._reading_paused = False
        self.client_fingerprint: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.client_fingerprint = peer_fingerprint(transport.get_extra_info("ssl_object"))
        self.server.connections.add(self)
        log.info("client %s connected", self.peer)

    def stream_closed(self) -> None:
        self.server.connections.discard(self)
        for task in self._tasks:
            task.cancel()
        log.info("client connection closed (%s)", self.close_reason)

    # -------------------------------------------------------------- frames
    def frame_received(self, frame: Frame) -> None:
        cmd = frame.command
        if cmd == "SEND":
            if not self._on_send(frame):
                return  # refused with an ERROR that carries the receipt-id
        elif cmd in ("CONNECT", "STOMP"):
            self._on_connect(frame)
        elif cmd == "SUBSCRIBE":
            sub_id, dest = frame["id"], frame["destination"]
            self.subscriptions[sub_id] = dest
            self._sub_by_dest[dest] = sub_id
            self._headers.pop(dest, None)
        elif cmd == "UNSUBSCRIBE":
            gone = self.subscriptions.pop(frame["id"], None)
            if gone is not None and self._sub_by_dest.get(gone) == frame["id"]:
                del self._sub_by_dest[gone]
                self._headers.pop(gone, None)
        elif cmd == "DISCONNECT":
            self._receipt(frame)
            self.close_reason = "client disconnected"
            self.close()
            return
        # ACK, NACK, BEGIN, COMMIT, ABORT: accepted and ignored (no transactions).
        self._receipt(frame)

    def _receipt(self, frame: Frame) -> None:
        receipt = frame.get("receipt")
        if receipt is not None:
            self.write(encode_frame("RECEIPT", [("receipt-id", receipt)]))

    def _on_connect(self, frame: Frame) -> None:
        client_hb = self.codec.peer_heartbeat
        reply = vdsm_server_reply(client_hb, self.server.heartbeat_min_ms)
        connected = Frame.build("CONNECTED", {"version": "1.2",
                                              "heart-beat": format_heartbeat(reply)})
        self.write(self.codec.send(connected, self.loop.time()))
        self.start_heartbeats()

    def _on_send(self, frame: Frame) -> bool:
        """Start serving a request; False when refused with an ERROR frame."""
        dest = frame["destination"]
        if not self.server.is_request_destination(dest):
            # Not fatal: tell the client which destination was wrong and carry on.
            self.write(error_frame(f"unknown destination {dest[:200]}",
                                   f"SEND to {dest!r}: this server accepts requests on "
                                   f"{', '.join(self.server.request_destinations)}",
                                   frame.get("receipt")))
            return False
        reply_to = frame.get("reply-to") or RESPONSE_DESTINATION
        task = self.loop.create_task(
            self._serve(frame.body, reply_to, frame.get("ovirtCorrelationId")))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if len(self._tasks) >= self.server.max_inflight and not self._reading_paused:
            # Back-pressure: stop reading until some calls finish, so a client that
            # floods requests cannot grow our memory without bound.
            assert self.transport is not None
            self.transport.pause_reading()
            self._reading_paused = True
        return True

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._reading_paused and len(self._tasks) < self.server.max_inflight // 2:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    async def _serve(self, body: bytes, reply_to: str, correlation: str | None) -> None:
        if correlation:
            flow_id.set(correlation)
        reply = await self.server.dispatcher.handle(body)
        if reply is not None:
            self.send_message(reply_to, reply)

    def send_message(self, destination: str, body: bytes) -> bool:
        """Send a MESSAGE on this connection's subscription to `destination`."""
        head = self._headers.get(destination)
        if head is None:
            sub = self._sub_by_dest.get(destination)
            if sub is None:
                log.warning("dropping message to %s: %s is not subscribed to it",
                            destination, self.peer)
                return False
            head = self._headers[destination] = message_header(destination, sub)
        self.write(b"%bcontent-length:%d\n\n%b\0" % (head, len(body), body))
        return True

    def is_subscribed(self, destination: str) -> bool:
        return destination in self._sub_by_dest


class RpcServer:
    def __init__(self, dispatcher: Dispatcher, ssl_context: ssl.SSLContext, *,
                 limits: Limits | None = None,
                 request_destinations: tuple[str, ...] = REQUEST_DESTINATIONS,
                 heartbeat_min_ms: int = 1000, max_inflight: int = 1000,
                 handshake_timeout_s: float = 10.0) -> None:
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError("RpcServer requires an SSLContext: there is no plaintext mode")
        self.dispatcher = dispatcher
        self.ssl_context = ssl_context
        self.limits = limits or Limits()
        self.request_destinations = request_destinations
        self.heartbeat_min_ms = heartbeat_min_ms
        self.max_inflight = max_inflight
        self.handshake_timeout_s = handshake_timeout_s
        self.connections: set[ServerConnection] = set()
        self._server: asyncio.AbstractServer | None = None

    def is_request_destination(self, dest: str) -> bool:
        for queue in self.request_destinations:
            if dest == queue or dest.startswith(queue + "."):
                return True
        return False

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        factory: Callable[[], ServerConnection] = lambda: ServerConnection(self)  # noqa: E731
        self._server = await loop.create_server(
            factory, host, port, ssl=self.ssl_context,
            ssl_handshake_timeout=self.handshake_timeout_s, reuse_address=True)
        sock = self._server.sockets[0]
        bound: int = sock.getsockname()[1]
        log.info("serving JSON-RPC over STOMP/TLS on %s:%d", host, bound)
        return bound

    def publish(self, destination: str, body: bytes) -> int:
        """Send a MESSAGE to every connection subscribed to `destination`."""
        sent = 0
        for conn in list(self.connections):
            if conn.is_subscribed(destination):
                conn.send_message(destination, body)
                sent += 1
        return sent

    def publish_event(self, method: str, params: dict[str, Any]) -> int:
        """A JSON-RPC notification (vdsm event) to every events subscriber."""
        return self.publish(EVENTS_DESTINATION, encode_notification(method, params))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        if conns:
            await asyncio.wait([c.closed for c in conns], timeout=5)
        for conn in conns:
            if not conn.closed.done():
                conn.abort("server shutting down")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
