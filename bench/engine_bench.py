"""VM state change on an agent -> committed in the engine's database: p50/p99.

An engine (embedded PostgreSQL, fsync on) and one agent process on the libvirt
test driver with N running VMs. The benchmark itself asks the agent (over its
own mutual-TLS connection, not through the engine) to pause or resume a VM;
the agent emits VM_status, the engine applies it through reconcile() and
commits. A trigger on vm_dynamic NOTIFYs the commit, so the clock stops at
"visible in the database", not at some later poll.

    .venv/bin/python bench/engine_bench.py [--vms 20] [--changes 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import uvloop  # noqa: E402

from bench.machine import print_machine, write_result  # noqa: E402
from ovengine.config import (DatabaseConfig, EngineConfig, HostsConfig,  # noqa: E402
                             MonitoringConfig)
from ovengine.daemon import Engine  # noqa: E402
from ovengine.domain.commands import SYSTEM  # noqa: E402
from ovengine.domain.host_commands import AddHost  # noqa: E402
from ovengine.domain.vm_commands import AddVm, VmConfig  # noqa: E402
from ovengine.domain.vm_lifecycle import RunVm  # noqa: E402
from ovengine.localhosts import LocalAgent  # noqa: E402
from protocol import tls  # noqa: E402
from protocol.rpc import RpcClient  # noqa: E402

TRIGGER = """
CREATE OR REPLACE FUNCTION bench_notify() RETURNS trigger AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM pg_notify('bench_vm', NEW.vm_id::text || ' ' || NEW.status);
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_vm_status AFTER UPDATE ON vm_dynamic
  FOR EACH ROW EXECUTE FUNCTION bench_notify();
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def wait_for(pred, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not await pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def main(vms: int, changes: int) -> None:
    info = print_machine()
    base = Path(tempfile.mkdtemp(prefix="ov-engine-bench-"))
    os.chmod(base, 0o711)
    config = EngineConfig(
        state_dir=base / "engine", database=DatabaseConfig(embedded_fsync=True),
        hosts=HostsConfig(heartbeat_ms=5000),
        monitoring=MonitoringConfig(vm_stats_interval_s=15, host_stats_interval_s=15))
    engine = Engine(config, serve_api=False)
    await engine.start()
    s = engine.s
    agent = LocalAgent(base / "host0", "host0", agent_config={
        "vm": {"powering_up_s": 0.2}, "sampling": {"vm_interval_s": 15, "host_interval_s": 15}})
    try:
        cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
        enrolled = await s.runner.run(AddHost(s, SYSTEM, agent.name, agent.address, cluster,
                                              agent.certificate_request(), port=agent.port))
        agent.install_certificate(enrolled.value.certificate_pem, enrolled.value.ca_pem)
        await agent.start()

        async def host_up() -> bool:
            return all(h.status == "up" for h in s.hosts.hosts.values())
        await wait_for(host_up, 60, "host up")
        ids = []
        for i in range(vms):
            vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
                name=f"bench{i}", memory_mib=64)))).value
            await s.runner.run(RunVm(s, SYSTEM, vm))
            ids.append(vm)

        async def all_up() -> bool:
            n = await s.pool.fetchval("SELECT count(*) FROM vm_dynamic WHERE status='up'")
            return bool(n == vms)
        await wait_for(all_up, 60, "VMs up")

        listener = await asyncpg.connect(engine.pg.dsn if engine.pg else config.database.dsn)
        await listener.execute(TRIGGER)
        seen: dict[str, asyncio.Future[float]] = {}

        def on_notify(_c: object, _pid: int, _ch: str, payload: str) -> None:
            fut = seen.pop(payload, None)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())
        await listener.add_listener("bench_vm", on_notify)

        files = s.ca.files
        client = RpcClient(agent.address, agent.port, tls.client_context(
            files.engine_cert, files.engine_key, files.ca_cert), subscribe_events=False)
        await client.connect()
        latencies = []
        loop = asyncio.get_running_loop()
        for n in range(changes):
            vm = ids[n % vms]
            paused = (n // vms) % 2 == 0
            want = "paused" if paused else "up"
            fut: asyncio.Future[float] = loop.create_future()
            seen[f"{vm} {want}"] = fut
            t0 = time.perf_counter()
            await client.call("VM.pause" if paused else "VM.cont", {"vmID": vm})
            t1 = await asyncio.wait_for(fut, 10)
            latencies.append((t1 - t0) * 1000)
        await client.close()
        await listener.close()
    finally:
        await engine.stop()
        await agent.stop()

    p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
    mean = statistics.mean(latencies)
    print(f"\n{changes} VM state changes ({vms} VMs on one host), agent -> committed in "
          f"PostgreSQL (fsync on):")
    print(f"  p50 {p50:.2f} ms   p99 {p99:.2f} ms   mean {mean:.2f} ms   max "
          f"{max(latencies):.2f} ms")
    results = {"vms": vms, "changes": changes, "p50_ms": round(p50, 3),
               "p99_ms": round(p99, 3), "mean_ms": round(mean, 3),
               "max_ms": round(max(latencies), 3), "fsync": True}
    print(f"wrote {write_result('engine', results, info)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=20)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    uvloop.run(main(args.vms, args.changes))
