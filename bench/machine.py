"""The machine a benchmark ran on, printed with its figures and stored in its JSON result.

Absolute timings drift between machines (and between runs on shared ones), so
every result records where it was measured; compare ratios taken in one run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "print_machine", "write_result", "RESULTS_DIR"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Processor", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    ram = _ram_bytes()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": round(ram / 2**30, 1) if ram else None,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "uvloop": _version("uvloop"),
        "orjson": _version("orjson"),
        "msgspec": _version("msgspec"),
        "openssl": __import__("ssl").OPENSSL_VERSION,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def print_machine(info: dict[str, Any] | None = None) -> dict[str, Any]:
    info = info or machine_info()
    print(f"machine: {info['cpu_model']}, {info['cores']} cores "
          f"({info['cores_usable']} usable), {info['ram_gib']} GiB RAM")
    print(f"         {info['kernel']}, {info['python']}, uvloop {info['uvloop']}, "
          f"orjson {info['orjson']}, msgspec {info['msgspec']}")
    print(f"         {info['openssl']}, {info['date']}")
    sys.stdout.flush()
    return info


def write_result(name: str, results: dict[str, Any], info: dict[str, Any] | None = None,
                 directory: Path = RESULTS_DIR) -> Path:
    """Write bench/results/<name>.json: {"machine": ..., "results": ...}."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": info or machine_info(), "results": results},
                              indent=2) + "\n")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print_machine()
