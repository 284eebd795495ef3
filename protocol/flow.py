"""The flow id of the current operation (oVirt's correlation id) and its logging.

STOMP carries it in the `ovirtCorrelationId` header, REST in `Correlation-Id`.
It lives in a contextvar, so asyncio tasks inherit it; work sent to threads
must run under `contextvars.copy_context()` (asyncio.to_thread does that).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import uuid
from typing import Iterator, TextIO

__all__ = ["flow_id", "new_flow_id", "using_flow_id", "FlowIdFilter", "configure_logging",
           "LOG_FORMAT"]

flow_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("flow_id", default=None)

LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(flow_id)s] %(name)s: %(message)s"


def new_flow_id() -> str:
    return str(uuid.uuid4())[:8]


@contextlib.contextmanager
def using_flow_id(value: str | None) -> Iterator[None]:
    token = flow_id.set(value)
    try:
        yield
    finally:
        flow_id.reset(token)


class FlowIdFilter(logging.Filter):
    """Adds `record.flow_id` ("-" outside any flow) for the LOG_FORMAT."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.flow_id = flow_id.get() or "-"
        return True


def configure_logging(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Root logging for a daemon (stderr by default): every line carries the flow id."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(FlowIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
