"""REST API: GET /vms with 10,000 VMs in the database (XML and JSON), and
requests/s with 30 concurrent clients.

The engine (uvloop, HTTPS, its own embedded PostgreSQL) runs in this process;
the clients run in a separate process, so the two share no event loop. The
VMs are inserted with COPY straight into the engine's tables.

Prints p50/p99 latency per representation and requests/s for 30 concurrent
clients (on the 10,000-VM list and on single VMs), and writes
bench/results/rest.json. Target (REST issue): p50 < 300 ms for the list.

    .venv/bin/python bench/rest_bench.py [--vms 10000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import shutil
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

import uvloop  # noqa: E402

from bench.machine import print_machine, write_result  # noqa: E402

ADMIN_PASSWORD = "bench-admin"
CONCURRENCY = 30


# ------------------------------------------------------------------ server
async def insert_vms(pool: Any, count: int) -> None:
    cluster = await pool.fetchval("SELECT id FROM clusters WHERE name='Default'")
    blank = uuid.UUID(int=0)
    now = dt.datetime.now(dt.timezone.utc)
    ids = [uuid.uuid4() for _ in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.copy_records_to_table(
            "vm_static", columns=["id", "entity_type", "name", "description", "cluster_id",
                                  "template_id", "original_template_id", "memory_mib",
                                  "memory_guaranteed_mib", "memory_max_mib", "creation_time"],
            records=[(i, "vm", f"bench-{n:05d}", f"bench VM {n}", cluster, blank, blank, 256,
                      256, 1024, now) for n, i in enumerate(ids)])
        await conn.copy_records_to_table(
            "vm_dynamic", columns=["vm_id", "status", "stop_time"],
            records=[(i, "down", now) for i in ids])
        await conn.copy_records_to_table("vm_statistics", columns=["vm_id"],
                                         records=[(i,) for i in ids])
    await pool.execute("ANALYZE")


async def serve(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    from ovengine.config import ApiConfig, AuthConfig, DatabaseConfig, EngineConfig
    from ovengine.daemon import Engine
    from ovengine.db.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(base / "postgresql", fsync=False)
    dsn = await pg.start()
    engine = Engine(EngineConfig(
        state_dir=base / "engine", database=DatabaseConfig(dsn=dsn, pool_max=20),
        api=ApiConfig(host="127.0.0.1", port=0, server_names=("localhost", "127.0.0.1")),
        auth=AuthConfig(admin_password=ADMIN_PASSWORD)))
    try:
        await engine.start()
        started = time.perf_counter()
        await insert_vms(engine.s.pool, args.vms)
        insert_s = time.perf_counter() - started
        print(f"inserted {args.vms} VMs with COPY in {insert_s:.2f} s", flush=True)
        assert engine.api is not None
        vm_ids = [str(r["id"]) for r in await engine.s.pool.fetch(
            "SELECT id FROM vm_static WHERE entity_type='vm' LIMIT 200")]
        spec = {"base": f"https://localhost:{engine.api.port}",
                "ca": str(engine.s.ca.files.ca_cert), "vm_ids": vm_ids,
                "repeats": 5 if args.quick else 30, "duration_s": 3.0 if args.quick else 10.0}
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as workers:
            results: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(
                None, workers.apply, client_main, (spec,))
        results["insert_s"] = round(insert_s, 2)
        results["vms"] = args.vms
        return results
    finally:
        await engine.stop()
        await pg.stop()


# ------------------------------------------------------------------ client
def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    return uvloop.run(_client(spec))


def _summary(latencies: list[float], elapsed: float | None = None,
             sizes: list[int] | None = None) -> dict[str, Any]:
    lat = sorted(latencies)
    out: dict[str, Any] = {
        "requests": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
    }
    if elapsed:
        out["requests_per_s"] = round(len(lat) / elapsed, 1)
    if sizes:
        out["body_mib"] = round(statistics.median(sizes) / 2**20, 2)
    return out


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    sslctx = ssl.create_default_context(cafile=spec["ca"])
    conn = aiohttp.TCPConnector(ssl=sslctx, limit=CONCURRENCY + 5)
    async with aiohttp.ClientSession(connector=conn,
                                     timeout=aiohttp.ClientTimeout(total=300)) as http:
        async with http.post(spec["base"] + "/ovirt-engine/sso/oauth/token", data={
                "grant_type": "password", "scope": "ovirt-app-api",
                "username": "admin@internal", "password": ADMIN_PASSWORD}) as r:
            token = (await r.json())["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        url = spec["base"] + "/ovirt-engine/api/vms"

        async def get(u: str, accept: str) -> tuple[float, int]:
            t = time.perf_counter()
            async with http.get(u, headers={**auth, "Accept": accept}) as resp:
                body = await resp.read()
                assert resp.status == 200, (resp.status, body[:200])
            return time.perf_counter() - t, len(body)

        results: dict[str, Any] = {}
        for name, accept in (("list_xml", "application/xml"), ("list_json", "application/json")):
            await get(url, accept)  # warm up
            runs = [await get(url, accept) for _ in range(spec["repeats"])]
            results[name] = _summary([r[0] for r in runs], sizes=[r[1] for r in runs])
            print(f"  {name}: {results[name]}", flush=True)

        async def load(name: str, urls: list[str], accept: str) -> None:
            latencies: list[float] = []
            deadline = time.perf_counter() + spec["duration_s"]

            async def worker(k: int) -> None:
                i = k
                while time.perf_counter() < deadline:
                    lat, _ = await get(urls[i % len(urls)], accept)
                    latencies.append(lat)
                    i += CONCURRENCY
            started = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
            results[name] = _summary(latencies, time.perf_counter() - started)
            print(f"  {name}: {results[name]}", flush=True)

        await load("concurrent30_list_xml", [url], "application/xml")
        await load("concurrent30_get_vm_xml", [f"{url}/{i}" for i in spec["vm_ids"]],
                   "application/xml")
        await load("concurrent30_get_vm_json", [f"{url}/{i}" for i in spec["vm_ids"]],
                   "application/json")
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter load")
    args = parser.parse_args()
    info = print_machine()
    base = Path(tempfile.mkdtemp(prefix="ov-rest-bench-"))
    os.chmod(base, 0o711)
    try:
        results = uvloop.run(serve(args, base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{'measurement':28} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8}")
    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{key:28} {value['p50_ms']:>9} {value['p99_ms']:>9} "
                  f"{value.get('requests_per_s', ''):>8}")
    results["targets_met"] = {"list_xml_p50_ms < 300": results["list_xml"]["p50_ms"] < 300,
                              "list_json_p50_ms < 300": results["list_json"]["p50_ms"] < 300}
    print(f"targets: {results['targets_met']}")
    if not args.quick:
        print(f"wrote {write_result('rest', results, info)}")


if __name__ == "__main__":
    main()
