"""JSON codecs for the wire: stdlib json vs orjson vs msgspec.

Encodes and decodes (a) a realistic Host.getAllVmStats reply for 1,000 VMs (the
engine polls it every 15 s per host; ~2 MB) and (b) a small request
(Host.ping2). Prints the best time per operation and the ratio to the stdlib,
and writes bench/results/json.json.

    .venv/bin/python bench/json_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import orjson  # noqa: E402

from bench.machine import print_machine, write_result  # noqa: E402

STATUSES = ["Up"] * 90 + ["Powering up", "Migration Source", "Paused", "Powering down",
                          "Down", "WaitForLaunch", "Up", "Up", "Up", "Up"]


def vm_stats(rng: random.Random, i: int) -> dict[str, Any]:
    """One VM's entry as vdsm reports it (numbers are often strings in vdsm)."""
    vm_id = str(uuid.UUID(int=rng.getrandbits(128)))
    disks = {}
    for dev in ("vda", "vdb", "sdc")[: rng.randint(1, 3)]:
        disks[dev] = {
            "readRate": f"{rng.uniform(0, 5e6):.1f}", "writeRate": f"{rng.uniform(0, 5e6):.1f}",
            "readOps": str(rng.randint(0, 10**7)), "writeOps": str(rng.randint(0, 10**7)),
            "readLatency": str(rng.randint(0, 10**6)), "writeLatency": str(rng.randint(0, 10**6)),
            "flushLatency": str(rng.randint(0, 10**6)),
            "readBytes": str(rng.randint(0, 10**11)), "writtenBytes": str(rng.randint(0, 10**11)),
            "truesize": str(rng.randint(10**9, 10**11)), "apparentsize": str(10**11),
            "imageID": str(uuid.UUID(int=rng.getrandbits(128))),
        }
    network = {}
    for n in range(rng.randint(1, 2)):
        network[f"vnet{i * 2 + n}"] = {
            "name": f"vnet{i * 2 + n}", "macAddr": "56:6f:%02x:%02x:00:%02x" % (i >> 8, i & 255, n),
            "speed": "1000", "state": "unknown",
            "rxRate": f"{rng.uniform(0, 100):.1f}", "txRate": f"{rng.uniform(0, 100):.1f}",
            "rxErrors": "0", "txErrors": "0", "rxDropped": "0", "txDropped": "0",
            "rx": str(rng.randint(0, 10**10)), "tx": str(rng.randint(0, 10**10)),
            "sampleTime": 4305000.12,
        }
    return {
        "vmId": vm_id,
        "status": rng.choice(STATUSES),
        "statusTime": str(4305000000 + i),
        "hash": str(rng.getrandbits(63)),
        "elapsedTime": str(rng.randint(0, 10**7)),
        "monitorResponse": "0",
        "cpuSys": f"{rng.uniform(0, 10):.2f}",
        "cpuUser": f"{rng.uniform(0, 90):.2f}",
        "cpuUsage": str(rng.randint(0, 10**13)),
        "memUsage": str(rng.randint(0, 100)),
        "memoryStats": {"mem_total": "8388608", "mem_unused": str(rng.randint(0, 8388608)),
                        "mem_free": str(rng.randint(0, 8388608)), "swap_in": "0",
                        "swap_out": "0", "majflt": "0", "minflt": str(rng.randint(0, 10**6)),
                        "pageflt": str(rng.randint(0, 10**6))},
        "balloonInfo": {"balloon_max": "8388608", "balloon_min": "1048576",
                        "balloon_cur": "8388608", "balloon_target": "8388608"},
        "disks": disks,
        "network": network,
        "displayInfo": [{"type": "vnc", "port": str(5900 + i), "tlsPort": "-1",
                         "ipAddress": "192.0.2.10"}],
        "guestFQDN": f"vm{i:04d}.example.org",
        "guestName": f"vm{i:04d}",
        "guestOs": "5.14.0-362.el9.x86_64",
        "netIfaces": [{"name": "eth0", "hw": "56:6f:00:00:00:01",
                       "inet": [f"10.{i >> 8}.{i & 255}.2"], "inet6": ["fe80::546f:ff:fe00:1"]}],
        "appsList": ["kernel-5.14.0", "qemu-guest-agent-8.0.0", "ovirt-guest-agent-1.0"],
        "username": "None",
        "session": "Unknown",
        "vcpuCount": str(rng.choice([1, 2, 4, 8])),
        "vcpuQuota": "-1", "vcpuPeriod": 100000,
        "migrationProgress": 0,
        "pauseCode": "NOERR",
        "acpiEnable": "true",
        "timeOffset": "0",
        "clientIp": "",
        "guestCPUCount": -1,
        "vmJobs": {},
        "vmName": f"vm{i:04d}",
        "vmType": "kvm",
        "kvmEnable": "true",
    }


def all_vm_stats_reply(n: int = 1000) -> dict[str, Any]:
    rng = random.Random(42)
    return {"jsonrpc": "2.0", "id": "6a1c3c1e-3b8e-4b6b-9c1a-6d7a4f5b2e10",
            "result": [vm_stats(rng, i) for i in range(n)]}


SMALL_REQUEST = {"jsonrpc": "2.0", "method": "Host.ping2", "params": {},
                 "id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}


def best_time(fn: Callable[[], Any], seconds: float) -> tuple[float, int]:
    """Best time of one call over ~`seconds` of repeats (in batches for tiny calls)."""
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    batch = max(1, int(0.002 / max(once, 1e-9)))
    best = float("inf")
    runs = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or runs < 5:
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        best = min(best, (time.perf_counter() - t) / batch)
        runs += batch
    return best, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 0.3 if args.quick else 2.0

    info = print_machine()
    payloads = {"getAllVmStats_1000": all_vm_stats_reply(), "small_request": SMALL_REQUEST}
    ms_encoder, ms_decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    codecs: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
        "json": (lambda o: json.dumps(o, separators=(",", ":")).encode(),
                 lambda b: json.loads(b)),
        "orjson": (orjson.dumps, orjson.loads),
        "msgspec": (ms_encoder.encode, ms_decoder.decode),
    }
    results: dict[str, Any] = {}
    for pname, payload in payloads.items():
        wire = orjson.dumps(payload)
        for enc, dec in codecs.values():  # every codec round-trips the payload
            assert dec(enc(payload)) == payload
        results[pname] = {"bytes": len(wire)}
        print(f"\n{pname}: {len(wire):,} bytes")
        print(f"  {'codec':8} {'encode':>12} {'decode':>12} {'enc x json':>11} {'dec x json':>11}")
        for cname, (enc, dec) in codecs.items():
            t_enc, _ = best_time(lambda enc=enc, payload=payload: enc(payload), seconds)
            t_dec, _ = best_time(lambda dec=dec, wire=wire: dec(wire), seconds)
            results[pname][cname] = {"encode_us": round(t_enc * 1e6, 3),
                                     "decode_us": round(t_dec * 1e6, 3)}
        base = results[pname]["json"]
        for cname in codecs:
            r = results[pname][cname]
            r["encode_speedup_vs_json"] = round(base["encode_us"] / r["encode_us"], 2)
            r["decode_speedup_vs_json"] = round(base["decode_us"] / r["decode_us"], 2)
            print(f"  {cname:8} {fmt(r['encode_us']):>12} {fmt(r['decode_us']):>12} "
                  f"{r['encode_speedup_vs_json']:>10.1f}x {r['decode_speedup_vs_json']:>10.1f}x")
    if not args.quick:
        print(f"\nwrote {write_result('json', results, info)}")


def fmt(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.2f} us"


if __name__ == "__main__":
    main()
