"""The flow id contextvar and its logging filter."""

from __future__ import annotations

import asyncio
import io
import logging

from protocol.flow import FlowIdFilter, LOG_FORMAT, flow_id, new_flow_id, using_flow_id


def test_using_flow_id_sets_and_restores() -> None:
    assert flow_id.get() is None
    with using_flow_id("abc"):
        assert flow_id.get() == "abc"
        with using_flow_id("inner"):
            assert flow_id.get() == "inner"
        assert flow_id.get() == "abc"
    assert flow_id.get() is None
    assert new_flow_id() != new_flow_id()


def test_filter_puts_the_flow_id_in_every_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(FlowIdFilter())
    log = logging.getLogger("test.flow")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("outside")
        with using_flow_id("f00d"):
            log.warning("inside")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert "[-] test.flow: outside" in lines[0]
    assert "[f00d] test.flow: inside" in lines[1]


async def test_tasks_and_threads_inherit_the_flow_id() -> None:
    async def in_task() -> str | None:
        return flow_id.get()

    with using_flow_id("t1"):
        task = asyncio.create_task(in_task())
        in_thread = await asyncio.to_thread(flow_id.get)
    assert await task == "t1"
    assert in_thread == "t1"
