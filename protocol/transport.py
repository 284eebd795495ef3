"""asyncio shell around the sans-IO StompConnection.

`StompStream` owns one TLS connection: it feeds received bytes to the codec,
coalesces writes (everything written during one loop iteration goes out in a
single transport.write, so pipelined responses share TLS records and
syscalls), sends heart-beats and drops a peer that stays silent longer than
the negotiated interval times the grace factor.
"""

from __future__ import annotations

import asyncio
import logging

from .stomp import EndOfStream, Frame, HeartBeat, Limits, Role, StompConnection, Violation
from .stomp.escaping import escape

__all__ = ["StompStream", "REQUEST_DESTINATION", "REQUEST_DESTINATIONS", "RESPONSE_DESTINATION",
           "EVENTS_DESTINATION", "IRS_REQUEST_DESTINATION", "IRS_RESPONSE_DESTINATION",
           "message_header", "send_header"]

log = logging.getLogger(__name__)

REQUEST_DESTINATION = "jms.topic.vdsm_requests"
RESPONSE_DESTINATION = "jms.topic.vdsm_responses"
IRS_REQUEST_DESTINATION = "jms.topic.vdsm_irs_requests"
IRS_RESPONSE_DESTINATION = "jms.topic.vdsm_irs_responses"
EVENTS_DESTINATION = "jms.queue.events"
REQUEST_DESTINATIONS = (REQUEST_DESTINATION, IRS_REQUEST_DESTINATION)


def message_header(destination: str, subscription: str) -> bytes:
    """Header block of a JSON MESSAGE up to (not including) content-length."""
    return (f"MESSAGE\ndestination:{escape(destination)}\ncontent-type:application/json\n"
            f"subscription:{escape(subscription)}\n").encode()


def send_header(destination: str, reply_to: str | None) -> bytes:
    """Header block of a JSON SEND up to (not including) content-length."""
    head = f"SEND\ndestination:{escape(destination)}\ncontent-type:application/json\n"
    if reply_to:
        head += f"reply-to:{escape(reply_to)}\n"
    return head.encode()


class StompStream(asyncio.Protocol):
    """Base protocol: subclasses implement frame_received() and stream_closed()."""

    role: Role = Role.SERVER

    def __init__(self, limits: Limits | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.codec = StompConnection(self.role, limits)
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.close_reason: str | None = None

    # ------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's SSL transport is not an asyncio.Transport subclass, only alike.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        codec = self.codec
        codec.receive_data(data, self.loop.time())
        while True:
            event = codec.next_event()
            if event is None:
                return
            kind = type(event)
            if kind is Frame:
                self.frame_received(event)  # type: ignore[arg-type]
            elif kind is HeartBeat:
                continue
            elif kind is Violation:
                assert isinstance(event, Violation)
                log.warning("protocol violation from %s: %s", self.peer, event.message)
                self.close_reason = f"protocol violation: {event.message}"
                self._out.append(event.error_frame)
                self.close()
                return
            elif kind is EndOfStream:
                self.close()
                return

    def eof_received(self) -> bool | None:
        self.data_received(b"")  # codec turns EOF into EndOfStream
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.codec.close()
        self.transport = None
        if self.close_reason is None:
            self.close_reason = f"connection lost: {exc}" if exc else "connection closed"
        if not self.closed.done():
            self.closed.set_result(None)
        self.stream_closed()

    # ------------------------------------------------------------- output
    def write(self, data: bytes) -> None:
        if self.transport is None:
            return
        self._out.append(data)
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        if not out or self.transport is None or self.transport.is_closing():
            out.clear()
            return
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        self.codec.last_sent = self.loop.time()

    def close(self) -> None:
        """Flush what is queued, then close gracefully."""
        if self.transport is None or self.transport.is_closing():
            return
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._out:
            self.transport.write(b"".join(self._out))
            self._out.clear()
        self.transport.close()

    def abort(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        if self.transport is not None:
            self.transport.abort()

    # --------------------------------------------------------- heart-beats
    def start_heartbeats(self) -> None:
        if self.codec.timer_interval_s() and self._timer is None:
            self._schedule_tick()

    def _schedule_tick(self) -> None:
        c = self.codec
        deadlines = []
        if c.send_interval_s:
            deadlines.append(c.last_sent + c.send_interval_s / 2)
        if c.receive_interval_s:
            deadlines.append(c.last_received + c.receive_interval_s * c.limits.heartbeat_grace)
        delay = max(0.05, min(deadlines) - self.loop.time() + 0.001)
        self._timer = self.loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.transport is None:
            return
        now = self.loop.time()
        if self.codec.peer_timed_out(now):
            log.warning("%s silent for %.1f s (heart-beat timeout), dropping it", self.peer,
                        now - self.codec.last_received)
            self.abort("heart-beat timeout")
            return
        beat = self.codec.heartbeat_to_send(now)
        if beat:
            self.write(beat)
        self._schedule_tick()

    # ------------------------------------------------------------ for subclasses
    @property
    def peer(self) -> str:
        if self.transport is None:
            return "<closed>"
        addr = self.transport.get_extra_info("peername")
        return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)

    def frame_received(self, frame: Frame) -> None:
        raise NotImplementedError

    def stream_closed(self) -> None:
        pass
