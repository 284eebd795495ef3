"""Async tests here run on uvloop: the loop ovagent runs on in production."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}
