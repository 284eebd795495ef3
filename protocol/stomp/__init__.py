"""Sans-IO STOMP 1.2: frames, escaping, heart-beats and the connection state machine."""

from .connection import Limits, Role, StompConnection, encode_frame, error_frame
from .frame import EndOfStream, Event, Frame, HeartBeat, Violation
from .heartbeat import format_heartbeat, parse_heartbeat, vdsm_server_reply

__all__ = [
    "EndOfStream",
    "Event",
    "Frame",
    "HeartBeat",
    "Limits",
    "Role",
    "StompConnection",
    "Violation",
    "encode_frame",
    "error_frame",
    "format_heartbeat",
    "parse_heartbeat",
    "vdsm_server_reply",
]
