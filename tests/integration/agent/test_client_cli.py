"""ovagent-client, run as a subprocess against a running agent (test driver)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol.flow import FlowIdFilter
from protocol.transport import EVENTS_DESTINATION
from tests.fixtures.agent import (
    REPO,
    AgentHarness,
    AgentPki,
    StartAgent,
    check_result,
    new_vm_id,
    wait_until,
)

DEADLINE_S = 30.0


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def cli_argv(pki: AgentPki, port: int, *args: str, tls: bool = True) -> list[str]:
    argv = [sys.executable, "-m", "ovagent.client_cli", "-a", "127.0.0.1", "-p", str(port)]
    if tls:
        argv += ["--ca", str(pki.ca), "--cert", str(pki.cert("engine")),
                 "--key", str(pki.key("engine"))]
    return argv + list(args)


async def run_cli(argv: list[str]) -> Run:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def agent(start_agent: StartAgent) -> AgentHarness:
    return await start_agent("test")


async def cli(agent: AgentHarness, pki: AgentPki, *args: str, tls: bool = True) -> Run:
    return await run_cli(cli_argv(pki, agent.agent.port, *args, tls=tls))


async def test_calls_print_the_result_as_json(agent: AgentHarness, agent_pki: AgentPki,
                                              tmp_path: Path) -> None:
    caps = await cli(agent, agent_pki, "Host", "getCapabilities")
    assert caps.code == 0, caps.err
    assert caps.out.startswith("{\n    ")  # indented
    check_result("Host.getCapabilities", caps.json())

    vm_id = new_vm_id()
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"xml": agent.xml("ovtest-cli", vm_id)}))
    created = await cli(agent, agent_pki, "VM", "create", f"vmID={vm_id}",
                        f"vmParams=@{params}")
    assert created.code == 0, created.err
    assert created.json()["status"] == "WaitForLaunch"  # type: ignore[index]
    await agent.wait_status(vm_id, "Up")
    stats = await cli(agent, agent_pki, "VM", "getStats", f"vmID={vm_id}")
    assert stats.code == 0, stats.err
    check_result("VM.getStats", stats.json())
    listed = await cli(agent, agent_pki, "Host", "getVMList", "onlyUUID=true",
                       f'vmList=["{vm_id}"]')
    assert listed.json() == [vm_id]
    assert (await cli(agent, agent_pki, "Host", "ping2")).out.strip() == "true"


async def test_string_params_stay_strings_and_files_give_text(
        agent: AgentHarness, agent_pki: AgentPki, tmp_path: Path) -> None:
    vm_id = await agent.create_vm("ticket")
    await agent.wait_status(vm_id, "Up")
    password = tmp_path / "password"
    password.write_text("123456")
    # The test driver cannot set a console password: the agent's error comes back.
    run = await cli(agent, agent_pki, "VM", "setTicket", f"vmID={vm_id}",
                    f"password=@{password}", "ttl=120", "existingConnAction=keep",
                    'params={"userName": "admin"}')
    assert run.code == 1
    assert run.err.startswith("error 100: "), run.err  # past param validation: a string
    assert run.out == ""


async def test_wire_errors_exit_1(agent: AgentHarness, agent_pki: AgentPki) -> None:
    missing = new_vm_id()
    run = await cli(agent, agent_pki, "VM", "getStats", f"vmID={missing}")
    assert run.code == 1
    assert run.err.strip() == f"error 1: Virtual machine does not exist: vmId={missing}"
    bad = await cli(agent, agent_pki, "Host", "getVMList", "onlyUUID=1")
    assert bad.code == 1 and bad.err.startswith("error -32602: "), bad.err
    assert "onlyUUID" in bad.err


@pytest.mark.parametrize("args, named", [
    (["VM", "getStats", "vmID"], "'vmID'"),
    (["VM", "getStats", "bogus=1"], "'bogus'"),
    (["VM", "getStats"], "vmID"),
    (["VM", "frobnicate"], "'frobnicate'"),
    (["Nope", "ping2"], "'Nope'"),
    (["VM"], "'VM'"),
    (["VM", "create", "vmID=x", "vmParams=@/no/such/file"], "vmParams=@/no/such/file"),
    (["VM", "getStats", "vmID=a", "vmID=b"], "vmID"),
    (["events", "extra"], "'events'"),
])
async def test_bad_arguments_are_named(args: list[str], named: str, agent_pki: AgentPki
                                       ) -> None:
    run = await run_cli(cli_argv(agent_pki, 1, *args))
    assert run.code == 2
    assert run.err.startswith("ovagent-client: "), run.err
    assert named in run.err


async def test_help_comes_from_the_schema() -> None:
    top = await run_cli([sys.executable, "-m", "ovagent.client_cli", "--help"])
    assert top.code == 0
    assert "Host" in top.out and "VM" in top.out and "getCapabilities" in top.out
    ns = await run_cli([sys.executable, "-m", "ovagent.client_cli", "VM", "--help"])
    assert ns.code == 0
    assert "VM.getStats" in ns.out and "VM.setTicket" in ns.out and "vmID: UUID" in ns.out
    one = await run_cli([sys.executable, "-m", "ovagent.client_cli", "VM", "create", "--help"])
    assert one.code == 0
    assert one.out.startswith("VM.create") and "vmParams: VmParameters" in one.out
    assert "VM.getStats" not in one.out


async def test_insecure_still_needs_tls_and_a_client_certificate(
        agent: AgentHarness, agent_pki: AgentPki) -> None:
    port = str(agent.agent.port)
    base = [sys.executable, "-m", "ovagent.client_cli", "-a", "127.0.0.1", "-p", port]
    ok = await run_cli(base + ["--insecure", "--cert", str(agent_pki.cert("engine")),
                               "--key", str(agent_pki.key("engine")), "Host", "ping2"])
    assert ok.code == 0, ok.err
    # No client certificate: the agent refuses the handshake.
    refused = await run_cli(base + ["--insecure", "--cert", "/nonexistent", "--key",
                                    "/nonexistent", "--timeout", "5", "Host", "ping2"])
    assert refused.code == 1
    assert refused.err.startswith("ovagent-client: cannot talk to 127.0.0.1:"), refused.err
    # Verifying against the wrong CA fails (the engine certificate is no CA).
    wrong_ca = await run_cli(base + ["--ca", str(agent_pki.cert("engine")), "--cert",
                                     str(agent_pki.cert("engine")), "--key",
                                     str(agent_pki.key("engine")), "Host", "ping2"])
    assert wrong_ca.code == 1 and "cannot talk" in wrong_ca.err


async def test_flow_id_reaches_the_agent_log(agent: AgentHarness, agent_pki: AgentPki,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(FlowIdFilter())
    caplog.set_level(logging.INFO, logger="ovagent")
    vm_id = new_vm_id()
    run = await cli(agent, agent_pki, "--flow-id", "cli-flow-42", "VM", "create",
                    f"vmID={vm_id}",
                    "vmParams=" + json.dumps({"xml": agent.xml("ovtest-flow", vm_id)}))
    assert run.code == 0, run.err
    creating = [r for r in caplog.records if "creating VM" in r.getMessage()]
    assert creating and all(r.__dict__["flow_id"] == "cli-flow-42" for r in creating)


async def test_events_stream_until_interrupted(agent: AgentHarness, agent_pki: AgentPki
                                               ) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cli_argv(agent_pki, agent.agent.port, "events"), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        server = agent.agent.server
        await wait_until(lambda: sum(c.is_subscribed(EVENTS_DESTINATION)
                                     for c in server.connections) == 2,
                         DEADLINE_S, "the CLI subscribed to events")
        vm_id = await agent.create_vm("watched")
        seen = []
        assert proc.stdout is not None
        while "Up" not in seen:
            line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE_S)
            assert line, "event stream ended"
            event = json.loads(line)
            assert event["method"] == f"|virt|VM_status|{vm_id}"
            seen.append(event["params"][vm_id]["status"])
        assert seen == ["Powering up", "Up"]
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), DEADLINE_S) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
