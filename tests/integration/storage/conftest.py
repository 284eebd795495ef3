"""Storage integration tests: one real agent (in this process, over its RPC with
mutual TLS) on a local directory domain; qemu-img and the files are real.

Async tests here run on uvloop: the loop ovagent runs on in production.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

import pytest
import uvloop

from ovagent.storage.metadata import transform_path
from tests.fixtures.agent import AgentHarness, StartAgent
from tests.fixtures.storage import LOCALFS, StorageDriver, new_uuid


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}


@dataclass
class LocalPool:
    """A connected pool whose master is a localfs domain; this host is SPM."""

    agent: AgentHarness
    driver: StorageDriver
    export: Path
    sd: str

    @property
    def domain_dir(self) -> Path:
        return self.agent.agent.storage.mnt_root / transform_path(str(self.export)) / self.sd

    def volume_path(self, img: str, vol: str, sd: str | None = None) -> Path:
        if sd is None or sd == self.sd:
            return self.domain_dir / "images" / img / vol
        return self.domain_dir.parent / sd / "images" / img / vol


@pytest.fixture
async def local_pool(start_agent: StartAgent, tmp_path: Path) -> AsyncIterator[LocalPool]:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (qemu-utils)")
    agent = await start_agent("fake")
    driver = StorageDriver(agent)
    export = tmp_path / "export"
    export.mkdir()
    await driver.connect(LOCALFS, str(export))
    sd = new_uuid()
    await driver.create_domain(sd, LOCALFS, str(export))
    await driver.create_pool(sd)
    await driver.connect_pool(sd)
    await driver.become_spm()
    yield LocalPool(agent, driver, export, sd)
