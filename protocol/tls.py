"""TLS contexts for engine <-> agent links: mutual TLS only, TLS 1.2 or newer.

There is no plaintext mode: the server always requires a client certificate
issued by the configured CA, and the client always verifies the server.
The one exception is the agent's image server (like ovirt-imageio): its
clients are users' programs holding a transfer URL whose ticket id is the
credential, so it presents the host certificate and asks for none
(`server_only_context`).
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

__all__ = ["server_context", "server_only_context", "client_context", "peer_fingerprint",
           "PathLike"]

PathLike = str | Path


def _base(purpose: int) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def server_context(cert: PathLike, key: PathLike, ca: PathLike,
                   crl: PathLike | None = None) -> ssl.SSLContext:
    """Server side: present `cert`, require a client certificate signed by `ca`.

    With `crl`, client certificates listed there are refused.
    """
    ctx = _base(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(cafile=str(ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    if crl is not None and Path(crl).exists():
        ctx.load_verify_locations(cafile=str(crl))
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def server_only_context(cert: PathLike, key: PathLike) -> ssl.SSLContext:
    """Server side without client certificates (the image server: tickets
    authorize its requests)."""
    ctx = _base(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(cert: PathLike, key: PathLike, ca: PathLike,
                   check_hostname: bool = True) -> ssl.SSLContext:
    """Client side: present `cert`, verify the server against `ca` (and its name)."""
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(cafile=str(ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = check_hostname
    return ctx


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """SHA-256 of the peer's DER certificate, hex, or None without one."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else None
