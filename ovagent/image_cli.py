"""ov-image: upload or download a disk image through a transfer URL.

    ov-image [--ca F | --insecure] [--buffer-mib N] [--quiet] upload FILE URL
    ov-image [--ca F | --insecure] [--buffer-mib N] [--quiet] download URL FILE

URL is a transfer URL of the agent's image server (ovirt-imageio's API),
https://<host>:54322/images/<ticket-id>, whose ticket the engine added
(Host.add_image_ticket). An upload sends FILE's bytes as they are (a raw
file to a raw volume, a qcow2 file to a qcow2 volume) in PUT requests of
--buffer-mib, then flushes; a download GETs the whole image into FILE. A
progress bar goes to stderr (--quiet: none). The server is verified against
--ca (by name, unless the URL's host is a loopback address); --insecure
skips that. Exit status: 0 done, 1 refused or failed (the server's reason is
printed), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import IO, NoReturn, Sequence
from urllib.parse import urlsplit

__all__ = ["main", "Progress", "TransferError"]

PROG = "ov-image"
EXIT_ERROR = 1
EXIT_USAGE = 2
MiB = 1024 * 1024


class TransferError(Exception):
    """The server refused or the connection failed; the message says why."""


class Progress:
    """A one-line progress bar on a stream, redrawn at most ten times a second."""

    def __init__(self, what: str, total: int, stream: IO[str] | None) -> None:
        self.what = what
        self.total = total
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._drawn >= 0.1 or self.done >= self.total:
            self._drawn = now
            self.draw()

    def draw(self) -> None:
        if self.stream is None:
            return
        fraction = self.done / self.total if self.total else 1.0
        width = 30
        filled = int(width * fraction)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed / MiB
        self.stream.write(f"\r{self.what} [{'#' * filled}{'-' * (width - filled)}] "
                          f"{fraction * 100:5.1f}%  {self.done / MiB:.1f}/"
                          f"{self.total / MiB:.1f} MiB  {rate:.1f} MiB/s")
        self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()


def _ssl_context(host: str, ca: Path | None, insecure: bool) -> ssl.SSLContext:
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    ctx.check_hostname = not loopback
    return ctx


class _Transfer:
    def __init__(self, url: str, ca: Path | None, insecure: bool, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or not parts.path.startswith(
                "/images/"):
            raise ValueError(f"not a transfer URL (https://host:port/images/<ticket>): {url}")
        self.url = url
        self.path = parts.path
        self.conn = http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, timeout=timeout_s,
            context=_ssl_context(parts.hostname, ca, insecure))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            return self.conn.getresponse()
        except ssl.SSLError as exc:
            raise TransferError(f"TLS with {self.conn.host}:{self.conn.port} failed: "
                                f"{exc}") from None
        except OSError as exc:
            raise TransferError(f"cannot talk to {self.conn.host}:{self.conn.port}: "
                                f"{exc}") from None
        except http.client.HTTPException as exc:
            raise TransferError(f"bad answer from {self.conn.host}:{self.conn.port}: "
                                f"{exc!r}") from None

    @staticmethod
    def refused(what: str, response: http.client.HTTPResponse) -> TransferError:
        text = response.read().decode(errors="replace").strip()
        return TransferError(f"{what} refused ({response.status} {response.reason}): {text}")

    def options(self, what: str) -> tuple[set[str], set[str]]:
        response = self.request("OPTIONS", self.path)
        if response.status != 200:
            raise self.refused(what, response)
        allow = {m.strip() for m in (response.getheader("Allow") or "").split(",")}
        try:
            features = set(json.loads(response.read() or b"{}").get("features", []))
        except ValueError:
            features = set()
        return allow, features

    def close(self) -> None:
        self.conn.close()


def upload(path: Path, url: str, *, ca: Path | None = None, insecure: bool = False,
           buffer_bytes: int = 4 * MiB, progress: IO[str] | None = None,
           timeout_s: float = 60.0) -> int:
    size = path.stat().st_size
    t = _Transfer(url, ca, insecure, timeout_s)
    try:
        allow, features = t.options("upload")
        if "PUT" not in allow:
            raise TransferError("upload refused: the ticket does not allow writing")
        bar = Progress(f"upload {path.name}", size, progress)
        flush_at_end = "flush" in features
        with open(path, "rb") as f:
            offset = 0
            while offset < size:
                data = f.read(min(buffer_bytes, size - offset))
                if not data:
                    raise TransferError(f"{path} shrank to {offset} bytes while reading")
                last = offset + len(data) >= size
                query = "?flush=n" if flush_at_end or not last else "?flush=y"
                response = t.request("PUT", t.path + query, body=data, headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(len(data)),
                    "Content-Range": f"bytes {offset}-{offset + len(data) - 1}/*"})
                if response.status != 200:
                    raise t.refused("upload", response)
                response.read()
                offset += len(data)
                bar.advance(len(data))
        if flush_at_end:
            response = t.request("PATCH", t.path, body=b'{"op": "flush"}',
                                 headers={"Content-Type": "application/json"})
            if response.status != 200:
                raise t.refused("flush", response)
            response.read()
        bar.finish()
        return size
    finally:
        t.close()


def download(url: str, path: Path, *, ca: Path | None = None, insecure: bool = False,
             buffer_bytes: int = 4 * MiB, progress: IO[str] | None = None,
             timeout_s: float = 60.0) -> int:
    t = _Transfer(url, ca, insecure, timeout_s)
    try:
        allow, _ = t.options("download")
        if "GET" not in allow:
            raise TransferError("download refused: the ticket does not allow reading")
        response = t.request("GET", t.path)
        if response.status != 200:
            raise t.refused("download", response)
        size = int(response.getheader("Content-Length") or 0)
        bar = Progress(f"download {path.name}", size, progress)
        done = 0
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as f:
            while done < size:
                try:
                    data = response.read(min(buffer_bytes, size - done))
                except OSError as exc:
                    raise TransferError(f"download broken after {done} bytes: {exc}") from None
                if not data:
                    raise TransferError(f"download ended after {done} of {size} bytes")
                f.write(data)
                done += len(data)
                bar.advance(len(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        bar.finish()
        return size
    finally:
        t.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Upload or download a disk image through a transfer URL "
        "of the agent's image server (https://host:54322/images/<ticket>).")
    parser.add_argument("--ca", type=Path, help="CA certificate to verify the server with")
    parser.add_argument("--insecure", action="store_true",
                        help="do not verify the server's certificate")
    parser.add_argument("--buffer-mib", type=int, default=4, metavar="N",
                        help="bytes per request, in MiB (default 4)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="network timeout in seconds (default 60)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="send FILE to the image behind URL")
    up.add_argument("file", type=Path)
    up.add_argument("url")
    down = sub.add_parser("download", help="save the image behind URL as FILE")
    down.add_argument("url")
    down.add_argument("file", type=Path)
    return parser


def _fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.buffer_mib < 1:
        _fail("--buffer-mib must be at least 1", EXIT_USAGE)
    if args.ca is not None and not args.ca.is_file():
        _fail(f"--ca {args.ca}: no such file", EXIT_USAGE)
    progress = None if args.quiet else sys.stderr
    buffer_bytes = args.buffer_mib * MiB
    try:
        if args.command == "upload":
            if not args.file.is_file():
                _fail(f"{args.file}: no such file", EXIT_USAGE)
            size = upload(args.file, args.url, ca=args.ca, insecure=args.insecure,
                          buffer_bytes=buffer_bytes, progress=progress, timeout_s=args.timeout)
            verb = "uploaded"
        else:
            size = download(args.url, args.file, ca=args.ca, insecure=args.insecure,
                            buffer_bytes=buffer_bytes, progress=progress,
                            timeout_s=args.timeout)
            verb = "downloaded"
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    except TransferError as exc:
        _fail(str(exc), EXIT_ERROR)
    if args.quiet:
        return 0
    print(f"{verb} {size} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
