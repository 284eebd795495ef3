"""ovengine: the engine daemon and its tools.

    ovengine [run] [--config FILE] [--log-level L]
    ovengine demo [--state-dir DIR] [--api-port N] [--hosts N] [--qemu] [--no-storage]
    ovengine lab up [--state-dir DIR] [--api-port N] [--hosts N] [--qemu]
    ovengine lab down
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from protocol.configfile import ConfigError
from protocol.flow import configure_logging

from . import config as engine_config

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ovengine", description="ov engine (oVirt-compatible)")
    p.add_argument("--config", type=Path, help="configuration file (default "
                   f"{engine_config.DEFAULT_CONFIG_PATH} when it exists)")
    p.add_argument("--log-level", help="debug, info, warning, error")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("run", help="run the engine (the default)")
    demo = sub.add_parser("demo", help="engine + embedded PostgreSQL + local hosts")
    demo.add_argument("--state-dir", type=Path, default=Path("/var/lib/ov/demo"),
                      help="where everything lives (default /var/lib/ov/demo)")
    demo.add_argument("--api-port", type=int, default=8443, help="HTTPS port (default 8443)")
    demo.add_argument("--hosts", type=int, default=2, help="number of local hosts (default 2)")
    demo.add_argument("--qemu", action="store_true",
                      help="hosts run real VMs with libvirtd + QEMU (default: libvirt's "
                           "test driver)")
    demo.add_argument("--no-storage", action="store_true",
                      help="no sanlock daemons and no data domain")
    lab = sub.add_parser("lab", help="engine + hosts in network namespaces (needs root)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="bring the lab up and keep it up until Ctrl-C")
    up.add_argument("--state-dir", type=Path, default=Path("/var/lib/ov/lab"))
    up.add_argument("--api-port", type=int, default=8443)
    up.add_argument("--hosts", type=int, default=3)
    up.add_argument("--qemu", action="store_true", help="hosts use libvirtd + QEMU")
    lab_sub.add_parser("down", help="remove every lab namespace, link and bridge left behind")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = args.config
    if path is None and engine_config.DEFAULT_CONFIG_PATH.exists():
        path = engine_config.DEFAULT_CONFIG_PATH
    try:
        cfg = engine_config.load(path, {"log_level": args.log_level})
    except ConfigError as exc:
        print(f"ovengine: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg.log_level.upper())
    try:
        if args.command == "demo":
            if args.hosts < 0 or not 0 < args.api_port < 65536:
                print("ovengine demo: --hosts must be >= 0 and --api-port 1..65535",
                      file=sys.stderr)
                return 2
            from .demo import run_demo

            uvloop.run(run_demo(args.state_dir, args.api_port, args.hosts, args.qemu, cfg,
                                storage=not args.no_storage))
        elif args.command == "lab":
            from .lab.cli import lab_down, lab_up

            if args.lab_command == "down":
                uvloop.run(lab_down())
            else:
                uvloop.run(lab_up(args.state_dir, args.api_port, args.hosts, args.qemu, cfg))
        else:
            from .daemon import run

            uvloop.run(run(cfg))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
