"""Sans-IO STOMP 1.2 connection: bytes in, events out; frames in, bytes out.

No sockets, no asyncio, no clock: the caller passes `now` (seconds, any
monotonic origin). Parsing is incremental and linear in the input: a partial
frame is never rescanned from its start, and consumed bytes are dropped when
the next chunk arrives, which moves at most the unfinished frame's bytes of the
previous chunk, so many small frames in one read, or one large frame in many
reads, stay O(n). The buffer never holds more than `max_header_bytes +
max_body_bytes` plus the chunk just received.

Every limit violation or malformed frame becomes a `Violation` event carrying
an encoded ERROR frame; after it the connection is closed and further input is
dropped, so a hostile peer can neither raise out of the codec nor grow memory
past `Limits`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .escaping import EscapeError, escape, unescape
from .frame import (
    CLIENT_COMMANDS,
    SERVER_COMMANDS,
    UNESCAPED_COMMANDS,
    EndOfStream,
    Event,
    Frame,
    HeartBeat,
    Violation,
)
from .heartbeat import HeartBeatError, interval_ms, parse_heartbeat

__all__ = ["Role", "Limits", "StompConnection", "encode_frame", "error_frame"]

class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class _State(enum.Enum):
    AWAIT_CONNECT = 1  # server: before CONNECT; client: before CONNECTED
    OPEN = 2
    CLOSED = 3


@dataclass(frozen=True, slots=True)
class Limits:
    # Everything before the body: command line, headers and the blank line.
    max_header_bytes: int = 64 * 1024
    max_headers: int = 128
    max_body_bytes: int = 32 * 1024 * 1024  # getAllVmStats of many VMs is large
    # A silent peer is declared dead after its negotiated interval times this.
    heartbeat_grace: float = 1.5


def encode_frame(command: str, headers: list[tuple[str, str]] | tuple[tuple[str, str], ...],
                 body: bytes = b"") -> bytes:
    """Encode a frame. Adds content-length when there is a body and none is set."""
    raw = command in UNESCAPED_COMMANDS
    parts = [command, "\n"]
    has_length = False
    for name, value in headers:
        if name == "content-length":
            has_length = True
        if raw:
            parts.append(f"{name}:{value}\n")
        else:
            parts.append(f"{escape(name)}:{escape(value)}\n")
    if body and not has_length:
        parts.append(f"content-length:{len(body)}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8") + body + b"\0"


def error_frame(message: str, detail: str = "", receipt_id: str | None = None) -> bytes:
    headers = [("message", message), ("content-type", "text/plain")]
    if receipt_id is not None:
        headers.append(("receipt-id", receipt_id))
    return encode_frame("ERROR", headers, (detail or message).encode("utf-8"))


class _ParseError(Exception):
    """Internal: turned into a Violation event, never escapes."""


class StompConnection:
    def __init__(self, role: Role, limits: Limits | None = None) -> None:
        self.role = role
        self.limits = limits or Limits()
        self._state = _State.AWAIT_CONNECT
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed input
        self._eof = False
        # Partial-frame parse state.
        self._frame_start = -1  # -1: between frames
        self._scan = 0  # header search resumes here
        self._pending_head: tuple[str, tuple[tuple[str, str], ...]] | None = None
        self._body_start = 0
        self._body_len = -1  # -1: read up to NUL
        # Heart-beats: what we announced/received, negotiated intervals (s).
        self._our_heartbeat = (0, 0)
        self._peer_heartbeat = (0, 0)
        self.send_interval_s = 0.0
        self.receive_interval_s = 0.0
        self.last_received = 0.0
        self.last_sent = 0.0

    # ----------------------------------------------------------------- state
    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def connected(self) -> bool:
        return self._state is _State.OPEN

    @property
    def peer_heartbeat(self) -> tuple[int, int]:
        """The peer's heart-beat header (from CONNECT or CONNECTED)."""
        return self._peer_heartbeat

    def close(self) -> None:
        self._state = _State.CLOSED
        self._buf = bytearray()
        self._pos = 0

    # ----------------------------------------------------------------- input
    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the peer; b"" means the peer closed."""
        if self._state is _State.CLOSED:
            return
        self.last_received = now
        if not data:
            self._eof = True
            return
        if self._pos:
            self._discard_consumed()
        self._buf += data

    def next_event(self) -> Event | None:
        """The next complete event, or None when more data is needed."""
        if self._state is _State.CLOSED:
            return None
        try:
            event = self._parse_one()
        except _ParseError as exc:
            return self._violation(str(exc))
        if event is None and self._eof:
            self.close()
            return EndOfStream()
        return event

    def _violation(self, message: str) -> Violation:
        self.close()
        return Violation(message, error_frame(message))

    def _parse_one(self) -> Event | None:
        buf = self._buf
        if self._frame_start < 0:
            # Between frames: EOLs are heart-beats.
            pos = self._pos
            n = len(buf)
            if pos >= n:
                self._compact()
                return None
            byte = buf[pos]
            if byte == 0x0A:
                self._pos = pos + 1
                return HeartBeat()
            if byte == 0x0D:
                if pos + 1 >= n:
                    return None
                if buf[pos + 1] != 0x0A:
                    raise _ParseError("bare CR between frames")
                self._pos = pos + 2
                return HeartBeat()
            self._frame_start = pos
            self._scan = pos
            self._pending_head = None
        if self._pending_head is None:
            if not self._parse_head():
                return None
        return self._parse_body()

    def _parse_head(self) -> bool:
        buf = self._buf
        start = self._frame_start
        # The blank line ending the header block must end within the limit. Only
        # whole terminators inside [start, limit) count, so the outcome does not
        # depend on how the input was split into reads.
        limit = start + self.limits.max_header_bytes
        end_lf = buf.find(b"\n\n", self._scan, limit)
        # A CRLF blank line ("\n\r\n") wins when it starts before the first "\n\n".
        end_crlf = buf.find(b"\n\r\n", self._scan, end_lf + 2 if end_lf >= 0 else limit)
        if end_crlf >= 0:
            head_end, body_start = end_crlf, end_crlf + 3
        elif end_lf >= 0:
            head_end, body_start = end_lf, end_lf + 2
        else:
            if len(buf) >= limit:
                raise _ParseError(
                    f"frame header block exceeds {self.limits.max_header_bytes} bytes")
            # Resume 2 bytes back so a terminator split across reads is found.
            self._scan = max(start, len(buf) - 2)
            return False
        try:
            head = buf[start:head_end].decode("utf-8")
        except UnicodeDecodeError:
            raise _ParseError("frame header block is not valid UTF-8") from None
        lines = head.split("\n")
        if "\r" in head:  # CRLF line ends (a CR inside a value must be escaped as \r)
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        command = lines[0]
        self._check_command(command)
        if len(lines) - 1 > self.limits.max_headers:
            raise _ParseError(f"frame has more than {self.limits.max_headers} headers")
        # CONNECT-class headers are never unescaped; others only when they hold a "\".
        unescaping = "\\" in head and command not in UNESCAPED_COMMANDS
        headers: list[tuple[str, str]] = []
        body_len = -1
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name:
                raise _ParseError(f"malformed header line {line[:80]!r}")
            if unescaping:
                try:
                    name, value = unescape(name), unescape(value)
                except EscapeError as exc:
                    raise _ParseError(str(exc)) from None
            if body_len < 0 and name == "content-length":  # the first one wins
                body_len = self._content_length(value)
            headers.append((name, value))
        self._pending_head = (command, tuple(headers))
        self._body_start = body_start
        self._body_len = body_len
        self._scan = body_start
        return True

    def _content_length(self, value: str) -> int:
        # ASCII digits only: int() would also take "+5", " 5", "1_0" and "\u0662".
        if not (value.isascii() and value.isdigit()):
            raise _ParseError(f"content-length is not a non-negative integer: {value[:40]!r}")
        # Count digits first: int() refuses more than sys.get_int_max_str_digits().
        digits = value.lstrip("0") or "0"
        if len(digits) > len(str(self.limits.max_body_bytes)):
            raise _ParseError(f"frame body of a {len(digits)}-digit length exceeds "
                              f"{self.limits.max_body_bytes}")
        length = int(digits)
        if length > self.limits.max_body_bytes:
            raise _ParseError(
                f"frame body of {length} bytes exceeds {self.limits.max_body_bytes}")
        return length

    def _check_command(self, command: str) -> None:
        allowed = CLIENT_COMMANDS if self.role is Role.SERVER else SERVER_COMMANDS
        if command not in allowed:
            side = "client" if self.role is Role.SERVER else "server"
            raise _ParseError(f"unknown or unexpected {side} command {command[:40]!r}")

    def _parse_body(self) -> Frame | None:
        buf = self._buf
        start = self._body_start
        if self._body_len >= 0:
            end = start + self._body_len
            if len(buf) <= end:
                return None
            if buf[end] != 0:
                raise _ParseError("frame body is not followed by NUL (bad content-length?)")
        else:
            limit = start + self.limits.max_body_bytes
            end = buf.find(b"\0", self._scan, limit + 1)
            if end < 0:
                if len(buf) - start > self.limits.max_body_bytes:
                    raise _ParseError(
                        f"frame body exceeds {self.limits.max_body_bytes} bytes")
                self._scan = len(buf)
                return None
        body = bytes(buf[start:end])
        assert self._pending_head is not None
        command, headers = self._pending_head
        self._pos = end + 1
        self._frame_start = -1
        self._pending_head = None
        frame = Frame(command, headers, body)
        self._on_frame_received(frame)
        self._compact()
        return frame

    def _compact(self) -> None:
        """Between frames: drop the buffer when everything in it was consumed."""
        if self._pos and self._pos >= len(self._buf):
            self._buf.clear()
            self._pos = 0
            self._scan = 0

    def _discard_consumed(self) -> None:
        """Drop the consumed prefix, shifting the offsets of a frame in progress."""
        pos = self._pos
        del self._buf[:pos]
        self._pos = 0
        self._scan = max(0, self._scan - pos)
        if self._frame_start >= 0:
            self._frame_start -= pos
            self._body_start -= pos

    # ------------------------------------------------------- frame semantics
    def _on_frame_received(self, frame: Frame) -> None:
        cmd = frame.command
        if self.role is Role.SERVER:
            if self._state is _State.AWAIT_CONNECT:
                if cmd not in ("CONNECT", "STOMP"):
                    raise _ParseError(f"expected CONNECT or STOMP as first frame, got {cmd}")
                accepted = frame.get("accept-version") or "1.0"
                versions = [v.strip() for v in accepted.split(",")]
                if "1.2" not in versions:
                    raise _ParseError(f"unsupported STOMP version(s) {accepted[:40]!r}: "
                                      "this server speaks 1.2")
                self._peer_heartbeat = self._parse_heartbeat(frame)
                self._state = _State.OPEN
                return
            if cmd in ("CONNECT", "STOMP"):
                raise _ParseError("CONNECT received on an open connection")
            if cmd == "SEND" and "destination" not in frame:
                raise _ParseError("SEND frame without destination header")
            if cmd == "SUBSCRIBE" and ("destination" not in frame or "id" not in frame):
                raise _ParseError("SUBSCRIBE frame needs destination and id headers")
            if cmd == "UNSUBSCRIBE" and "id" not in frame:
                raise _ParseError("UNSUBSCRIBE frame without id header")
        else:
            if self._state is _State.AWAIT_CONNECT:
                if cmd == "CONNECTED":
                    self._peer_heartbeat = self._parse_heartbeat(frame)
                    self._state = _State.OPEN
                    self._negotiate()
                elif cmd != "ERROR":
                    raise _ParseError(f"expected CONNECTED, got {cmd}")

    @staticmethod
    def _parse_heartbeat(frame: Frame) -> tuple[int, int]:
        try:
            return parse_heartbeat(frame.get("heart-beat"))
        except HeartBeatError as exc:
            raise _ParseError(str(exc)) from None

    def _negotiate(self) -> None:
        ours, theirs = self._our_heartbeat, self._peer_heartbeat
        self.send_interval_s = interval_ms(ours[0], theirs[1]) / 1000.0
        self.receive_interval_s = interval_ms(theirs[0], ours[1]) / 1000.0

    # ---------------------------------------------------------------- output
    def send(self, frame: Frame, now: float) -> bytes:
        """Encode a frame to send; CONNECT/CONNECTED heart-beats are noted."""
        if self._state is _State.CLOSED and frame.command != "ERROR":
            raise RuntimeError("connection is closed")
        if frame.command in ("CONNECT", "STOMP", "CONNECTED"):
            try:
                self._our_heartbeat = parse_heartbeat(frame.get("heart-beat"))
            except HeartBeatError as exc:
                raise ValueError(str(exc)) from None
            if frame.command == "CONNECTED":
                self._negotiate()
        self.last_sent = now
        return encode_frame(frame.command, frame.headers, frame.body)

    def send_raw(self, data: bytes, now: float) -> bytes:
        """Account for pre-encoded frame bytes (fast path for MESSAGE/SEND)."""
        self.last_sent = now
        return data

    def heartbeat_to_send(self, now: float) -> bytes:
        """b"\\n" when we have been quiet for half the send interval, else b""."""
        if self.send_interval_s and now - self.last_sent >= self.send_interval_s / 2:
            self.last_sent = now
            return b"\n"
        return b""

    def peer_timed_out(self, now: float) -> bool:
        return bool(self.receive_interval_s) and (
            now - self.last_received > self.receive_interval_s * self.limits.heartbeat_grace)

    def timer_interval_s(self) -> float:
        """How often the I/O shell should call heartbeat_to_send/peer_timed_out."""
        candidates = [i / 2 for i in (self.send_interval_s, self.receive_interval_s) if i]
        return min(candidates) if candidates else 0.0
