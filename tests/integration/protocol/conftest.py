"""Run every async protocol integration test on both event loops the daemons may use:
the stdlib asyncio loop and uvloop (what ovagent/ovengine run in production)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
