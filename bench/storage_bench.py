"""Engine storage: thin clones from a template, and upload throughput.

An engine (embedded PostgreSQL, fsync on) and one storage agent (libvirt
test driver, its own sanlock daemon) with a POSIX data domain on a local
directory, the same path the tests use. Run as root (bind mounts, sanlock).

  (1) --clones VMs from a template through the engine's command path (AddVm
      from the template: a qcow2 volume on the template's volume, made by a
      Volume.create task on the SPM; the VM is done when its disk is ok):
      total seconds and per-clone p50/p99, for each --concurrency value
      (VMs in flight).
  (2) a --size-mib file of random bytes uploaded through an engine image
      transfer (TransferDiskImage, then `ov-image upload` to the host's
      image server over TLS, with the final flush) into a raw disk, against
      `cp` of the same file to the same filesystem followed by fsync; the
      ratio ov-image / cp+fsync. The source file is in the page cache for
      both (read once before).

    .venv/bin/python bench/storage_bench.py [--clones 100] [--concurrency 1,10]
                                            [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
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
from ovengine.config import DatabaseConfig, EngineConfig, StorageConfig  # noqa: E402
from ovengine.daemon import Engine  # noqa: E402
from ovengine.domain.commands import SYSTEM  # noqa: E402
from ovengine.domain.disk_commands import AddDisk, DiskAttach  # noqa: E402
from ovengine.domain.host_commands import AddHost  # noqa: E402
from ovengine.domain.storage_commands import (AddStorageDomain,  # noqa: E402
                                              AttachStorageDomain, StorageSpec)
from ovengine.domain.template_commands import AddTemplate  # noqa: E402
from ovengine.domain.transfer_commands import (TransferDiskImage,  # noqa: E402
                                               TransferSpec, request_phase)
from ovengine.domain.vm_commands import AddVm, VmConfig  # noqa: E402
from ovengine.localhosts import LocalAgent  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def wait_for(pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def done(result: Any, timeout_s: float = 600) -> Any:
    if result.pending is not None:
        await asyncio.wait_for(asyncio.shield(result.pending), timeout_s)
    return result.value


async def setup(engine: Engine, base: Path) -> tuple[LocalAgent, str, str, str]:
    """The host, the data center up on a POSIX domain; (agent, dc, sd, cluster)."""
    s = engine.s
    agent = LocalAgent(base / "host0", "host0", storage=True, sanlock_io_timeout_s=1,
                       agent_config={"vm": {"powering_up_s": 0.2}, "imageio": {"port": 0},
                                     "sampling": {"vm_interval_s": 15, "host_interval_s": 15},
                                     "log_level": "warning"},
                       storage_config={"monitor_interval_s": 2.0})
    cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    dc = str(await s.pool.fetchval("SELECT id FROM data_centers WHERE name='Default'"))
    enrolled = await s.runner.run(AddHost(s, SYSTEM, agent.name, agent.address, cluster,
                                          agent.certificate_request(), port=agent.port))
    agent.install_certificate(enrolled.value.certificate_pem, enrolled.value.ca_pem)
    await agent.start()

    async def host_up() -> bool:
        return all(h.status == "up" for h in s.hosts.hosts.values())
    await wait_for(host_up, 60, "host up")
    host = next(iter(s.hosts.hosts))
    shared = base / "shared"
    shared.mkdir()
    sd = (await s.runner.run(AddStorageDomain(
        s, SYSTEM, "data", host, StorageSpec("posixfs", str(shared), vfs_type="none")))).value
    await done(await s.runner.run(AttachStorageDomain(s, SYSTEM, sd, dc)))

    async def dc_up() -> bool:
        return await s.pool.fetchval("SELECT status FROM data_centers WHERE id=$1",
                                     uuid.UUID(dc)) == "up"
    await wait_for(dc_up, 180, "data center up")
    return agent, dc, str(sd), cluster


async def bench_clones(engine: Engine, sd: str, cluster: str, count: int,
                       concurrency: int) -> dict[str, Any]:
    s = engine.s
    vm = (await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name=f"tpl-src-{concurrency}", memory_mib=64)))).value
    await done(await s.runner.run(AddDisk(s, SYSTEM, sd, GiB, fmt="cow", alias="tpl-disk",
                                          attach=DiskAttach(vm, bootable=True))))
    tpl = await done(await s.runner.run(AddTemplate(s, SYSTEM, vm, f"tpl-{concurrency}")))
    sem = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def clone(n: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            await done(await s.runner.run(AddVm(s, SYSTEM, cluster, tpl, config=VmConfig(
                name=f"clone-{concurrency}-{n:03d}", memory_mib=64))))
            times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(clone(n) for n in range(count)))
    total = time.perf_counter() - t0
    ok = await s.pool.fetchval(
        "SELECT count(*) FROM disks d JOIN images i ON i.id = d.image_id "
        "JOIN disk_attachments a ON a.disk_id = d.id JOIN vm_static v ON v.id = a.vm_id "
        "WHERE d.status='ok' AND v.name LIKE $1 "
        "AND i.template_volume_id <> '00000000-0000-0000-0000-000000000000'",
        f"clone-{concurrency}-%")
    if ok != count:
        raise SystemExit(f"only {ok} of {count} thin clone disks are ok")
    return {"clones": count, "concurrency": concurrency, "total_s": round(total, 2),
            "per_clone_p50_s": round(statistics.median(times), 3),
            "per_clone_p99_s": round(pct(times, 0.99), 3),
            "clones_per_s": round(count / total, 2),
            "task_poll_interval_s": s.config.storage.task_poll_interval_s}


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def bench_upload(engine: Engine, base: Path, sd: str, size_mib: int) -> dict[str, Any]:
    s = engine.s
    size = size_mib * MiB
    src = base / "shared" / "upload.src"  # same filesystem as the domain
    with open(src, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MiB))
    fsync_path(src)
    src.read_bytes()  # in the page cache for both runs

    # baseline: cp + fsync on the same filesystem
    dst = base / "shared" / "upload.cp"
    t0 = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    cp_s = time.perf_counter() - t0
    fsync_path(dst)
    cp_sync_s = time.perf_counter() - t0
    dst.unlink()

    disk = await done(await s.runner.run(AddDisk(s, SYSTEM, sd, size, fmt="raw", sparse=True,
                                                 alias="upload")))
    t_session = time.perf_counter()
    # The command's asynchronous phase is the whole session: not awaited here.
    tid = (await s.runner.run(TransferDiskImage(s, SYSTEM, TransferSpec(
        disk, "upload", inactivity_timeout_s=600)))).value
    row: Any = None

    async def transferring() -> bool:
        nonlocal row
        row = await s.pool.fetchrow("SELECT * FROM image_transfers WHERE id=$1",
                                    uuid.UUID(tid))
        return row is not None and row["phase"] == "transferring"
    await wait_for(transferring, 60, "transferring")
    session_s = time.perf_counter() - t_session
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ovagent.image_cli", "--quiet", "--ca",
        str(s.ca.files.ca_cert), "upload", str(src), row["transfer_url"], cwd=ROOT)
    if await asyncio.wait_for(proc.wait(), 3600) != 0:
        raise SystemExit("ov-image upload failed")
    upload_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    await request_phase(s, tid, "finalizing_success", ("transferring",))

    async def finished() -> bool:
        return await s.pool.fetchval("SELECT phase FROM image_transfers WHERE id=$1",
                                     uuid.UUID(tid)) == "finished_success"
    await wait_for(finished, 120, "finished_success")
    finalize_s = time.perf_counter() - t0
    src.unlink()
    return {"size_mib": size_mib, "cp_s": round(cp_s, 3), "cp_fsync_s": round(cp_sync_s, 3),
            "cp_fsync_mib_s": round(size_mib / cp_sync_s, 1),
            "ov_image_s": round(upload_s, 3), "ov_image_mib_s": round(size_mib / upload_s, 1),
            "ratio_ov_image_vs_cp_fsync": round(upload_s / cp_sync_s, 2),
            "ratio_ov_image_vs_cp": round(upload_s / cp_s, 2),
            "session_start_s": round(session_s, 3), "finalize_s": round(finalize_s, 3)}


async def main(args: argparse.Namespace) -> None:
    if os.geteuid() != 0:
        raise SystemExit("run as root (bind mounts, sanlock)")
    info = print_machine()
    base = Path(tempfile.mkdtemp(prefix="ov-storage-bench-", dir=args.workdir))
    os.chmod(base, 0o711)
    config = EngineConfig(
        state_dir=base / "engine", database=DatabaseConfig(embedded_fsync=True),
        storage=StorageConfig(task_poll_interval_s=args.task_poll_s, spm_poll_interval_s=2.0),
        log_level="warning")
    engine = Engine(config, serve_api=False)
    await engine.start()
    agent: LocalAgent | None = None
    results: dict[str, Any] = {}
    try:
        agent, _dc, sd, cluster = await setup(engine, base)
        results["thin_clones"] = []
        for concurrency in args.concurrency:
            r = await bench_clones(engine, sd, cluster, args.clones, concurrency)
            results["thin_clones"].append(r)
            print(f"{r['clones']} thin clones from a template via AddVm ({r['concurrency']} "
                  f"in flight, task poll {r['task_poll_interval_s']} s): {r['total_s']} s "
                  f"total, per clone p50 {r['per_clone_p50_s']} s, "
                  f"p99 {r['per_clone_p99_s']} s")
        results["upload"] = u = await bench_upload(engine, base, sd, args.size_mib)
        print(f"upload {u['size_mib']} MiB random: ov-image via imageio {u['ov_image_s']} s "
              f"({u['ov_image_mib_s']} MiB/s); cp {u['cp_s']} s, cp+fsync {u['cp_fsync_s']} s "
              f"({u['cp_fsync_mib_s']} MiB/s); ratio {u['ratio_ov_image_vs_cp_fsync']}x "
              f"cp+fsync, {u['ratio_ov_image_vs_cp']}x cp (session start "
              f"{u['session_start_s']} s, finalize {u['finalize_s']} s)")
    finally:
        await engine.stop()
        if agent is not None:
            await agent.stop()
            await agent.stop_storage()
        if args.keep:
            print(f"kept {base} (agent log: {base}/host0/agent.log)")
        else:
            subprocess.run(["rm", "-rf", str(base)], check=False)
    path = write_result("storage", results, info)
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clones", type=int, default=100)
    parser.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 10], help="clones in flight, one run per value (1,10)")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--task-poll-s", type=float, default=0.2,
                        help="engine storage.task_poll_interval_s (default 2 s in ov)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (agent and engine logs)")
    parser.add_argument("--workdir", default=None, help="where the domain lives (default /tmp)")
    uvloop.run(main(parser.parse_args()))
