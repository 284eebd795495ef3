"""ovagent: the host agent daemon.

    ovagent [--config FILE] [--listen HOST:PORT] [--libvirt-uri URI]
            [--tls-cert F --tls-key F --tls-ca F] [--state-dir DIR] [--hooks-dir DIR]

Command-line flags override the configuration file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvloop

from protocol.configfile import ConfigError
from protocol.flow import configure_logging

from . import config as agent_config
from .daemon import run

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ovagent", description="ov host agent (vdsm-compatible)")
    p.add_argument("--config", type=Path, help="configuration file "
                   f"(default {agent_config.DEFAULT_CONFIG_PATH} when it exists)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve JSON-RPC on")
    p.add_argument("--libvirt-uri", metavar="URI", help="libvirt connection URI")
    p.add_argument("--tls-cert", type=Path, metavar="F", help="agent certificate (PEM)")
    p.add_argument("--tls-key", type=Path, metavar="F", help="agent private key (PEM)")
    p.add_argument("--tls-ca", type=Path, metavar="F", help="engine CA certificate (PEM)")
    p.add_argument("--state-dir", type=Path, metavar="DIR", help="agent state directory")
    p.add_argument("--hooks-dir", type=Path, metavar="DIR", help="hook scripts directory")
    p.add_argument("--log-level", help="debug, info, warning, error")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = args.config
    if path is None and agent_config.DEFAULT_CONFIG_PATH.exists():
        path = agent_config.DEFAULT_CONFIG_PATH
    overrides: dict[str, object] = {
        "libvirt.uri": args.libvirt_uri,
        "tls.cert": str(args.tls_cert) if args.tls_cert else None,
        "tls.key": str(args.tls_key) if args.tls_key else None,
        "tls.ca": str(args.tls_ca) if args.tls_ca else None,
        "state_dir": str(args.state_dir) if args.state_dir else None,
        "hooks.dir": str(args.hooks_dir) if args.hooks_dir else None,
        "log_level": args.log_level,
    }
    if args.listen:
        try:
            host, port = agent_config.parse_listen(args.listen)
        except ValueError as exc:
            print(f"ovagent: {exc}", file=sys.stderr)
            return 2
        overrides["listen.host"] = host
        overrides["listen.port"] = port
    try:
        cfg = agent_config.load(path, overrides)
    except ConfigError as exc:
        print(f"ovagent: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(cfg.log_level.upper())
    for f in (cfg.tls.cert, cfg.tls.key, cfg.tls.ca):
        if not Path(f).exists():
            logging.error("TLS file %s does not exist: enroll this host with the engine first",
                          f)
            return 2
    try:
        uvloop.run(run(cfg))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
