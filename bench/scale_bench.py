"""Scale: one engine, 1,000 simulated hosts x 20 VMs, on this machine.

Three processes: the engine (`ovengine run`, embedded PostgreSQL with fsync
on), the host simulator (`python -m ovagent.simulator`: 1,000 real agents on
fake hypervisors, each on its own loopback address 127.1.x.y:54321 with its
own engine-signed certificate), and this driver, which measures:

1. time from engine start until every host is up (hosts start non_responsive,
   as after a long engine outage; their VMs are already running);
2. engine CPU (% of one core) and RSS in steady monitoring (60 s window);
3. p50/p99 of a VM state change on a host (the driver asks the agent to pause
   or resume a VM) until the REST API shows it (GET /vms/{id});
4. GET /vms latency with every VM listed (XML);
5. a reconnect storm: every simulated host drops its connections and stops
   listening for a few seconds; time until all are up again, and how many
   hosts were wrongly declared non_responsive (must be 0: the outage is far
   shorter than the grace period).

    .venv/bin/python bench/scale_bench.py [--hosts 1000] [--vms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import uvloop  # noqa: E402
import yaml  # noqa: E402

from bench.machine import print_machine, write_result  # noqa: E402
from ovengine.config import AuthConfig, DatabaseConfig, EngineConfig  # noqa: E402
from ovengine.daemon import Engine  # noqa: E402
from ovengine.db.embedded import EmbeddedPostgres  # noqa: E402
from ovengine.localhosts import free_port  # noqa: E402
from protocol import pki, tls  # noqa: E402
from protocol.rpc import RpcClient  # noqa: E402

PASSWORD = "scale-bench"
BLANK = uuid.UUID(int=0)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def host_address(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 1}"


async def prepare(base: Path, hosts: int, vms: int, api_port: int) -> tuple[Path, Path]:
    """Engine state (CA, database) with the hosts enrolled and their VMs known."""
    cfg_path = base / "ovengine.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "state_dir": str(base / "engine"), "log_level": "warning",
        "api": {"host": "127.0.0.1", "port": api_port},
        "auth": {"admin_password": PASSWORD},
        "hosts": {"max_concurrent_polls": 200},
    }))
    # First start creates the CA, the cluster and the schema.
    first = Engine(EngineConfig(state_dir=base / "engine",
                                database=DatabaseConfig(embedded_fsync=True),
                                auth=AuthConfig(admin_password=PASSWORD)),
                   serve_api=False)
    await first.start()
    await first.stop()
    pg = EmbeddedPostgres(base / "engine" / "postgresql")
    dsn = await pg.start()
    ca = pki.CertificateAuthority.load(base / "engine" / "pki" / "ca.pem",
                                       base / "engine" / "pki" / "private" / "ca.key")
    sim_dir = base / "sim"
    sim_dir.mkdir()
    conn = await asyncpg.connect(dsn)
    manifest_hosts = []
    try:
        cluster = await conn.fetchval("SELECT id FROM clusters WHERE name='Default'")
        host_rows, dyn_rows, vm_static, vm_dyn = [], [], [], []
        for i in range(hosts):
            name, address = f"sim{i}", host_address(i)
            issued = ca.issue(name, [address])
            assert issued.key is not None
            cert, key = sim_dir / f"{name}.pem", sim_dir / f"{name}.key"
            pki.write_public(cert, pki.cert_to_pem(issued.cert))
            pki.write_private(key, pki.key_to_pem(issued.key))
            hid = uuid.uuid4()
            host_rows.append((hid, name, address, 54321, cluster, pki.fingerprint(issued.cert),
                              issued.serial))
            dyn_rows.append((hid,))
            host_vms = []
            for j in range(vms):
                vid = uuid.uuid4()
                vname = f"sim{i}-vm{j}"
                vm_static.append((vid, vname, cluster))
                vm_dyn.append((vid, hid))
                host_vms.append({"id": str(vid), "name": vname, "memory_mib": 512})
            manifest_hosts.append({"name": name, "address": address, "port": 54321,
                                   "cert": str(cert), "key": str(key), "cpus": 32,
                                   "memory_mib": 262144, "vms": host_vms})
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO hosts (id, name, address, port, cluster_id, cert_fingerprint, "
                "cert_serial) VALUES ($1,$2,$3,$4,$5,$6,$7)", host_rows)
            await conn.executemany("INSERT INTO host_dynamic (host_id, status) "
                                   "VALUES ($1, 'non_responsive')", dyn_rows)
            await conn.executemany("INSERT INTO host_statistics (host_id) VALUES ($1)",
                                   dyn_rows)
            await conn.executemany(
                "INSERT INTO vm_static (id, entity_type, name, cluster_id, template_id, "
                "original_template_id, memory_mib, memory_guaranteed_mib) "
                f"VALUES ($1, 'vm', $2, $3, '{BLANK}', '{BLANK}', 512, 512)", vm_static)
            await conn.executemany(
                "INSERT INTO vm_dynamic (vm_id, status, run_on_host_id, start_time) "
                "VALUES ($1, 'up', $2, now())", vm_dyn)
            await conn.executemany("INSERT INTO vm_statistics (vm_id) VALUES ($1)",
                                   [(v[0],) for v in vm_static])
    finally:
        await conn.close()
    manifest = {"ca": str(base / "engine" / "pki" / "ca.pem"), "outage_s": 5.0,
                "sampling": {"vm_interval_s": 15, "host_interval_s": 15},
                "hosts": manifest_hosts}
    manifest_path = sim_dir / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    return cfg_path, manifest_path


async def wait_line(stream: asyncio.StreamReader, prefix: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(stream.readline(), deadline - time.monotonic())
        if not line:
            raise SystemExit(f"process ended before printing {prefix}")
        text = line.decode().strip()
        if text.startswith(prefix):
            return text
    raise SystemExit(f"no {prefix} within {timeout_s} s")


async def count_up(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT count(*) FROM host_dynamic WHERE status='up'"))


async def main(hosts: int, vms: int) -> None:
    info = print_machine()
    base = Path(tempfile.mkdtemp(prefix="ov-scale-"))
    os.chmod(base, 0o711)
    api_port = free_port()
    print(f"preparing {hosts} hosts x {vms} VMs in {base} ...", flush=True)
    t = time.monotonic()
    cfg_path, manifest_path = await prepare(base, hosts, vms, api_port)
    print(f"  prepared in {time.monotonic() - t:.1f} s", flush=True)
    results: dict[str, Any] = {"hosts": hosts, "vms_per_host": vms, "vms": hosts * vms}
    pg = EmbeddedPostgres(base / "engine" / "postgresql")
    dsn = await pg.start()
    db = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ovagent.simulator", str(manifest_path), cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=open(base / "sim.log", "wb"))
    engine = None
    try:
        assert sim.stdout is not None
        t = time.monotonic()
        await wait_line(sim.stdout, "READY", 600)
        results["simulator_start_s"] = round(time.monotonic() - t, 1)
        print(f"simulator: {hosts} hosts listening after {results['simulator_start_s']} s",
              flush=True)

        t0 = time.monotonic()
        engine = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ovengine", "--config", str(cfg_path), "run", cwd=str(ROOT),
            stdout=open(base / "engine.out", "wb"), stderr=open(base / "engine.log", "wb"))
        while await count_up(db) < hosts:
            if time.monotonic() - t0 > 300:
                raise SystemExit(f"only {await count_up(db)} hosts up after 300 s")
            await asyncio.sleep(0.25)
        results["all_hosts_up_s"] = round(time.monotonic() - t0, 2)
        print(f"all {hosts} hosts up {results['all_hosts_up_s']} s after engine start",
              flush=True)

        # Steady monitoring: let two poll rounds pass, then measure 60 s.
        await asyncio.sleep(30)
        c0, s0, w0 = proc_cpu_s(engine.pid), proc_cpu_s(sim.pid), time.monotonic()
        await asyncio.sleep(60)
        c1, s1, w1 = proc_cpu_s(engine.pid), proc_cpu_s(sim.pid), time.monotonic()
        results["engine_cpu_pct_of_one_core"] = round(100 * (c1 - c0) / (w1 - w0), 1)
        results["engine_rss_mib"] = round(proc_rss_mib(engine.pid), 1)
        results["simulator_cpu_pct_of_one_core"] = round(100 * (s1 - s0) / (w1 - w0), 1)
        results["simulator_rss_mib"] = round(proc_rss_mib(sim.pid), 1)
        print(f"steady monitoring: engine {results['engine_cpu_pct_of_one_core']}% of one "
              f"core, RSS {results['engine_rss_mib']} MiB; simulator "
              f"{results['simulator_cpu_pct_of_one_core']}%", flush=True)

        await rest_measurements(base, api_port, db, hosts, results)
        await storm(sim, db, hosts, results)
    finally:
        await db.close()  # before the engine stops the cluster under it
        for proc in (engine, sim):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 60)
                except asyncio.TimeoutError:
                    proc.kill()
        await pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    results["targets"] = {
        "steady monitoring < 1 core": results.get("engine_cpu_pct_of_one_core", 999) < 100,
        "all up < 60 s": results.get("all_hosts_up_s", 999) < 60,
        "state propagation p99 < 1 s": results.get("propagation_p99_ms", 9e9) < 1000,
        "0 false non_responsive": results.get("storm_false_non_responsive", 1) == 0,
    }
    print(json.dumps(results, indent=1))
    print(f"wrote {write_result('scale', results, info)}")


async def rest_measurements(base: Path, api_port: int, db: asyncpg.Pool, hosts: int,
                            results: dict[str, Any]) -> None:
    ctx = ssl.create_default_context(cafile=str(base / "engine" / "pki" / "ca.pem"))
    url = f"https://localhost:{api_port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        async with http.post(f"{url}/ovirt-engine/sso/oauth/token", data={
                "grant_type": "password", "scope": "ovirt-app-api",
                "username": "admin@internal", "password": PASSWORD},
                headers={"Accept": "application/json"}) as r:
            token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/xml"}
        times = []
        for _ in range(20):
            t = time.perf_counter()
            async with http.get(f"{url}/ovirt-engine/api/vms", headers=headers) as r:
                body = await r.read()
                assert r.status == 200, r.status
            times.append((time.perf_counter() - t) * 1000)
        results["get_vms_xml_p50_ms"] = round(pct(times, 0.5), 1)
        results["get_vms_xml_p99_ms"] = round(pct(times, 0.99), 1)
        results["get_vms_xml_bytes"] = len(body)
        print(f"GET /vms ({results['vms'] if 'vms' in results else '?'} VMs, "
              f"{len(body) / 1e6:.1f} MB XML): p50 {results['get_vms_xml_p50_ms']} ms, "
              f"p99 {results['get_vms_xml_p99_ms']} ms", flush=True)

        # State propagation: change a VM on its host, time until REST shows it.
        rows = await db.fetch("""SELECT h.address, d.vm_id FROM vm_dynamic d
                                 JOIN hosts h ON h.id = d.run_on_host_id
                                 WHERE d.status = 'up' ORDER BY random() LIMIT 50""")
        pki_dir = base / "engine" / "pki"
        client_ctx = tls.client_context(pki_dir / "engine.pem", pki_dir / "private" / "engine.key",
                                        pki_dir / "ca.pem")
        latencies = []
        for round_ in range(4):
            for row in rows:
                vm = str(row["vm_id"])
                pause = round_ % 2 == 0
                want = "paused" if pause else "up"
                client = RpcClient(row["address"], 54321, client_ctx, subscribe_events=False,
                                   call_timeout_s=30)
                await client.connect()
                try:
                    t = time.perf_counter()
                    await client.call("VM.pause" if pause else "VM.cont", {"vmID": vm})
                    while True:
                        async with http.get(f"{url}/ovirt-engine/api/vms/{vm}",
                                            headers=headers) as r:
                            text = await r.text()
                        if f"<status>{want}</status>" in text:
                            break
                        if time.perf_counter() - t > 10:
                            raise SystemExit(f"VM {vm} not {want} in REST after 10 s")
                    latencies.append((time.perf_counter() - t) * 1000)
                finally:
                    await client.close()
        results["propagation_changes"] = len(latencies)
        results["propagation_p50_ms"] = round(pct(latencies, 0.5), 1)
        results["propagation_p99_ms"] = round(pct(latencies, 0.99), 1)
        print(f"VM state change on host -> visible in REST ({len(latencies)} changes): "
              f"p50 {results['propagation_p50_ms']} ms, p99 {results['propagation_p99_ms']} ms",
              flush=True)


async def storm(sim: asyncio.subprocess.Process, db: asyncpg.Pool, hosts: int,
                results: dict[str, Any]) -> None:
    assert sim.stdout is not None
    before = await db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    sim.send_signal(signal.SIGUSR1)
    await wait_line(sim.stdout, "OUTAGE", 30)
    await wait_line(sim.stdout, "BACK", 120)
    back = time.monotonic()
    # Wait until every host has been seen disconnected and is up again.
    while True:
        lost = await db.fetchval("SELECT count(DISTINCT host_id) FROM audit_log WHERE id > $1 "
                                 "AND log_type = 9901 AND message LIKE '%to connecting%'", before)
        if lost >= hosts * 0.99 and await count_up(db) == hosts:
            break
        if time.monotonic() - back > 300:
            raise SystemExit("hosts not back within 300 s of the storm")
        await asyncio.sleep(0.25)
    results["storm_outage_s"] = 5.0
    results["storm_all_up_after_back_s"] = round(time.monotonic() - back, 2)
    results["storm_hosts_lost"] = int(lost)
    results["storm_false_non_responsive"] = int(await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE id > $1 AND log_type = 12", before))
    print(f"reconnect storm: {lost} hosts lost, all up {results['storm_all_up_after_back_s']} s "
          f"after they came back; non_responsive declared: "
          f"{results['storm_false_non_responsive']}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=20)
    args = parser.parse_args()
    uvloop.run(main(args.hosts, args.vms))
