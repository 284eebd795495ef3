"""ovagent-client: call one agent verb from the command line (like vdsm-client).

    ovagent-client [-a HOST] [-p PORT] [--ca F --cert F --key F | --insecure]
                   [--timeout S] [--flow-id ID] Namespace verb [name=value ...]
    ovagent-client events                 # stream events, one JSON line each
    ovagent-client --help | NAMESPACE --help | NAMESPACE VERB --help

A value is parsed as JSON when it parses, else taken as a string (for a param
whose schema type is a string, the text is kept as it is, so password=123456
stays a string); `name=@file` reads the value (JSON or text) from a file. The
result is printed as indented JSON. A JSON-RPC error prints
`error <code>: <message>` on stderr and exits 1; bad arguments exit 2.

TLS is always on. By default the agent's own certificate (which the CA
signed) authenticates this client and the server is verified against the
CA, by name unless the host is a loopback address. `--insecure` skips the
server verification only: still TLS, still a client certificate when one is
available (the agent requires one).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import signal
import ssl
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from protocol import tls
from protocol.jsonrpc import JsonRpcError
from protocol.rpc import ClientState, RpcClient, RpcConnectionError
from protocol.schema import (
    Schema,
    Verb,
    default_schema,
    namespace_help,
    namespaces_help,
    verb_help,
)
from protocol.schema.model import AliasType, EnumType

from .config import ListenConfig, TlsConfig

__all__ = ["main", "parse_value", "parse_params", "UsageError"]

PROG = "ovagent-client"
EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad command line; the message names the bad argument."""


# ------------------------------------------------------------- arguments
def _parser(schema: Schema) -> argparse.ArgumentParser:
    tls_defaults = TlsConfig()
    p = argparse.ArgumentParser(
        prog=PROG, add_help=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Call a verb of an ov host agent (vdsm-compatible JSON-RPC over "
                    "STOMP/TLS) and print its result as JSON.",
        epilog=namespaces_help(schema) + "\n\nAlso: 'ovagent-client events' streams the "
               "agent's events, one JSON line each, until interrupted.")
    p.add_argument("-h", "--help", action="store_true", help="show help (for a namespace or "
                   "verb when given) and exit")
    p.add_argument("-a", "--host", default="localhost", help="agent address (default: "
                   "%(default)s)")
    p.add_argument("-p", "--port", type=int, default=ListenConfig().port,
                   help="agent port (default: %(default)s)")
    p.add_argument("--ca", type=Path, default=tls_defaults.ca,
                   help="CA certificate that signed the agent's (default: %(default)s)")
    p.add_argument("--cert", type=Path, default=tls_defaults.cert,
                   help="client certificate (default: %(default)s)")
    p.add_argument("--key", type=Path, default=tls_defaults.key,
                   help="client private key (default: %(default)s)")
    p.add_argument("--insecure", action="store_true",
                   help="do not verify the agent's certificate (still TLS)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds to wait for the connection and for the answer "
                        "(default: %(default)s)")
    p.add_argument("--flow-id", metavar="ID", help="correlation id logged with the call")
    p.add_argument("namespace", nargs="?", help="Host, VM, ... or 'events'")
    p.add_argument("verb", nargs="?", help="verb name, e.g. getStats")
    p.add_argument("params", nargs="*", metavar="name=value", help="verb parameters")
    return p


def parse_value(raw: str) -> Any:
    """JSON when it parses, else the text itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _is_string_type(schema: Schema, ref: Any) -> bool:
    while isinstance(ref, str):
        if ref == "string":
            return True
        t = schema.types.get(ref)
        if isinstance(t, EnumType):
            return True
        if not isinstance(t, AliasType):
            return False
        ref = t.source
    return False


def parse_params(schema: Schema, verb: Verb, args: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for arg in args:
        name, sep, raw = arg.partition("=")
        if not sep or not name:
            raise UsageError(f"argument {arg!r}: expected name=value")
        param = verb.by_name.get(name)
        if param is None:
            expected = ", ".join(p.name for p in verb.params) or "none"
            raise UsageError(f"argument {arg!r}: {verb.name} has no parameter {name!r} "
                             f"(parameters: {expected})")
        if name in params:
            raise UsageError(f"argument {arg!r}: {name} given twice")
        if raw.startswith("@"):
            path = Path(raw[1:])
            try:
                raw = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"argument {name}=@{path}: cannot read it: "
                                 f"{exc.strerror or exc}") from None
        value = parse_value(raw)
        if _is_string_type(schema, param.type) and not isinstance(value, str):
            value = raw  # password=123456 is the string "123456"
        params[name] = value
    missing = [p.name for p in verb.params if p.required and p.name not in params]
    if missing:
        raise UsageError(f"{verb.name} needs {', '.join(missing)} "
                         f"(see '{PROG} {verb.namespace} {verb.short_name} --help')")
    return params


def _find_verb(schema: Schema, namespace: str, name: str) -> Verb:
    if namespace not in schema.namespaces():
        raise UsageError(f"argument {namespace!r}: no such namespace (namespaces: "
                         f"{', '.join(schema.namespaces())})")
    verb = schema.verbs.get(f"{namespace}.{name}")
    if verb is None:
        verbs = ", ".join(v.short_name for v in schema.verbs_of(namespace))
        raise UsageError(f"argument {name!r}: {namespace} has no such verb (verbs: {verbs})")
    return verb


# -------------------------------------------------------------------- TLS
def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext:
    if args.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if args.cert.exists() and args.key.exists():
            ctx.load_cert_chain(str(args.cert), str(args.key))
        return ctx
    for option, path in (("--ca", args.ca), ("--cert", args.cert), ("--key", args.key)):
        if not path.exists():
            raise UsageError(f"{option} {path}: no such file (give it, or use --insecure)")
    return tls.client_context(args.cert, args.key, args.ca,
                              check_hostname=not _is_loopback(args.host))


# ------------------------------------------------------------------ calls
async def _call(args: argparse.Namespace, ctx: ssl.SSLContext, method: str,
                params: dict[str, Any]) -> Any:
    client = RpcClient(args.host, args.port, ctx, subscribe_events=False,
                       call_timeout_s=args.timeout, connect_timeout_s=args.timeout,
                       name=f"{args.host}:{args.port}")
    await client.connect()
    try:
        return await client.call(method, params, flow_id=args.flow_id)
    finally:
        await client.close()


async def _stream_events(args: argparse.Namespace, ctx: ssl.SSLContext) -> None:
    stop = asyncio.Event()
    lost: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def show(method: str, params: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps({"method": method, "params": params}) + "\n")
        sys.stdout.flush()

    def state(new: ClientState, reason: str | None) -> None:
        if new is ClientState.DISCONNECTED:
            lost.append(reason or "link lost")
            stop.set()

    client = RpcClient(args.host, args.port, ctx, subscribe_events=True, on_event=show,
                       connect_timeout_s=args.timeout, name=f"{args.host}:{args.port}")
    await client.connect()
    client.on_state = state
    print(f"# streaming events from {args.host}:{args.port}; Ctrl-C stops",
          file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await client.close()
    if lost:
        raise RpcConnectionError(f"{client.name}: {lost[0]}")


def _fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    schema = default_schema()
    parser = _parser(schema)
    args = parser.parse_args(argv)
    try:
        if args.help or args.namespace is None:
            if args.namespace is None or args.namespace == "events":
                parser.print_help()
            elif args.verb is None:
                if args.namespace not in schema.namespaces():
                    _find_verb(schema, args.namespace, "")
                print(namespace_help(schema, args.namespace))
            else:
                print(verb_help(schema, _find_verb(schema, args.namespace, args.verb)))
            return 0 if args.help else EXIT_USAGE
        if args.namespace == "events":
            if args.verb is not None or args.params:
                raise UsageError("argument 'events' takes no further arguments")
            ctx = ssl_context(args)
            asyncio.run(_stream_events(args, ctx))
            return 0
        if args.verb is None:
            raise UsageError(f"argument {args.namespace!r}: a verb is missing (see "
                             f"'{PROG} {args.namespace} --help')")
        verb = _find_verb(schema, args.namespace, args.verb)
        params = parse_params(schema, verb, args.params)
        ctx = ssl_context(args)
        result = asyncio.run(_call(args, ctx, verb.name, params))
    except UsageError as exc:
        _fail(str(exc), EXIT_USAGE)
    except JsonRpcError as exc:
        print(f"error {int(exc.code)}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except (RpcConnectionError, OSError, ssl.SSLError) as exc:
        _fail(f"cannot talk to {args.host}:{args.port}: {exc}", EXIT_ERROR)
    print(json.dumps(result, indent=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
