"""Recovery: the agent (a real subprocess on qemu:///system) is killed with SIGKILL
while it runs VMs; QEMU keeps them running; a restarted agent finds them again.

While it recovers it answers 99 (Host.ping2 excepted). To hold that window
open deterministically, a before_vdsm_start hook (run during recovery) waits
until the test creates a file.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator

import libvirt
import pytest

from protocol.jsonrpc import ErrorCode, JsonRpcError
from protocol.rpc import RpcClient
from tests.fixtures.agent import (
    DOMAIN_PREFIX,
    AgentPki,
    AgentProcess,
    check_result,
    destroy_leftover_domains_blocking,
    domain_xml,
    new_vm_id,
    wait_until,
    write_hook,
)

pytestmark = pytest.mark.system

PREFIX = f"{DOMAIN_PREFIX}rec-"


@pytest.fixture
async def agent_process(agent_pki: AgentPki, qemu_uri: str, tmp_path: Path
                        ) -> AsyncIterator[AgentProcess]:
    proc = AgentProcess(agent_pki, tmp_path, qemu_uri, config={
        "vm": {"powering_up_s": 0.2},
        "sampling": {"vm_interval_s": 0.2, "host_interval_s": 1.0},
        "hooks": {"timeout_s": 60.0},
    })
    try:
        yield proc
    finally:
        await proc.stop()
        await asyncio.to_thread(destroy_leftover_domains_blocking, PREFIX)


def running_domains_blocking(uri: str) -> dict[str, int]:
    conn = libvirt.open(uri)
    try:
        return {d.UUIDString(): d.state()[0] for d in conn.listAllDomains(0)
                if d.name().startswith(PREFIX)}
    finally:
        conn.close()


async def call(client: RpcClient, method: str, params: dict[str, object] | None = None
               ) -> object:
    result = await client.call(method, params or {})
    check_result(method, result)
    return result


async def test_vms_survive_a_killed_agent(agent_process: AgentProcess, qemu_uri: str) -> None:
    go = agent_process.workdir / "go"
    write_hook(agent_process.hooks_dir, "before_vdsm_start", "50_wait_for_go",
               f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.02; done\n")
    go.touch()  # the first start goes straight through
    await agent_process.start()
    client = agent_process.client()
    await client.connect()
    try:
        async def ready() -> bool:
            try:
                await client.call("Host.getVMList")
            except JsonRpcError as exc:
                assert exc.code == ErrorCode.RECOVERY_IN_PROGRESS
                return False
            return True
        await wait_until(ready, 30.0, "the first start to finish recovery")
        created_at = time.time()
        running, paused = new_vm_id(), new_vm_id()
        for vm_id in (running, paused):
            await call(client, "VM.create", {"vmID": vm_id, "vmParams": {
                "xml": domain_xml("qemu", f"{PREFIX}{vm_id[:8]}", vm_id)}})

        async def status(vm_id: str, wanted: str) -> dict[str, str] | None:
            stats = (await client.call("VM.getStats", {"vmID": vm_id}))[0]
            return stats if stats["status"] == wanted else None
        await wait_until(lambda: status(running, "Up"), 20.0, "first VM Up")
        await wait_until(lambda: status(paused, "Up"), 20.0, "second VM Up")
        await call(client, "VM.pause", {"vmID": paused})
        before = {vm_id: (await client.call("VM.getStats", {"vmID": vm_id}))[0]
                  for vm_id in (running, paused)}
        assert before[paused]["status"] == "Paused"
    finally:
        await client.close()

    await agent_process.kill9()
    domains = await asyncio.to_thread(running_domains_blocking, qemu_uri)
    assert domains == {running: libvirt.VIR_DOMAIN_RUNNING, paused: libvirt.VIR_DOMAIN_PAUSED}

    go.unlink()  # the restarted agent now waits in its before_vdsm_start hook
    await agent_process.start()
    client = agent_process.client()
    await client.connect()
    try:
        # The server listens first: liveness answers, everything else is 99.
        assert await client.call("Host.ping2") is True
        for method, params in (("Host.getVMList", {}), ("VM.getStats", {"vmID": running}),
                               ("Host.getAllVmStats", {})):
            with pytest.raises(JsonRpcError) as err:
                await client.call(method, params)
            assert err.value.code == ErrorCode.RECOVERY_IN_PROGRESS, method
        go.touch()

        async def recovered() -> list[dict[str, str]] | None:
            try:
                stats = await client.call("Host.getAllVmStats")
            except JsonRpcError as exc:
                assert exc.code == ErrorCode.RECOVERY_IN_PROGRESS
                return None
            return stats if len(stats) == 2 and all("cpuUsage" in s for s in stats) \
                else None
        after = {s["vmId"]: s for s in await wait_until(recovered, 30.0, "recovery")}
        check_result("Host.getAllVmStats", list(after.values()))
        assert after[running]["status"] == "Up"
        assert after[paused]["status"] == "Paused"
        since_create = time.time() - created_at
        for vm_id in (running, paused):
            elapsed = int(after[vm_id]["elapsedTime"])
            assert elapsed >= int(before[vm_id]["elapsedTime"])
            assert since_create - 2 <= elapsed <= since_create + 1, (elapsed, since_create)
            assert after[vm_id]["hash"] == before[vm_id]["hash"]

        # Recovered VMs are fully managed again.
        await call(client, "VM.cont", {"vmID": paused})
        await wait_until(lambda: status(paused, "Up"), 10.0, "resumed after recovery")
        for vm_id in (running, paused):
            await call(client, "VM.destroy", {"vmID": vm_id})
        assert await asyncio.to_thread(running_domains_blocking, qemu_uri) == {}
    finally:
        await client.close()
    assert await agent_process.stop() == 0, agent_process.log()
