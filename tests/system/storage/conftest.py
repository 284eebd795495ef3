"""QEMU storage tests: the agent's storage with VMs that boot the test guest.

Async tests here run on uvloop: the loop ovagent runs on in production.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

import pytest
import uvloop

from tests.fixtures.agent import StartAgent
from tests.fixtures.bootimage import BootImage, boot_image, missing_boot_image_parts
from tests.fixtures.vmdisks import DiskLab, make_disk_lab


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def guest_image() -> BootImage:
    """The test guest (kernel + initramfs), built once and cached."""
    why = missing_boot_image_parts()
    if why is not None:
        pytest.skip(why)
    for tool in ("qemu-img", "qemu-io"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (qemu-utils)")
    return boot_image()


@pytest.fixture
async def disk_lab(start_agent: StartAgent, qemu_uri: str, guest_image: BootImage,
                   tmp_path: Path) -> AsyncIterator[DiskLab]:
    """An agent on QEMU, SPM of a pool with one local domain; its VMs are
    destroyed at the end (start_agent stops the agent)."""
    agent = await start_agent("qemu", uri=qemu_uri)
    lab = await make_disk_lab(agent, tmp_path / "lab", guest_image)
    try:
        yield lab
    finally:
        await lab.close()
