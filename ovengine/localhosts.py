"""Agents running as child processes of this machine: for `ovengine demo`,
the lab and the tests.

Each LocalAgent has a directory with its key (made here, never sent), its
certificate request, the certificate the engine signed, the engine CA, its
libvirt test-driver node definition (CPUs, memory) and its log. Enrollment
uses the same AddHost command an administrator would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from protocol import pki

__all__ = ["LocalAgent", "node_xml", "ensure_libvirtd", "free_port"]

NODE_XML = """<node>
  <cpu>
    <mhz>2400</mhz>
    <model>x86_64</model>
    <nodes>1</nodes>
    <sockets>{sockets}</sockets>
    <cores>{cores}</cores>
    <threads>{threads}</threads>
    <active>{cpus}</active>
  </cpu>
  <memory>{memory_kib}</memory>
</node>
"""


def node_xml(cpus: int = 8, memory_mib: int = 32768) -> str:
    """A libvirt test-driver node: a simulated host with its own CPUs and memory."""
    sockets = 2 if cpus >= 4 and cpus % 2 == 0 else 1
    threads = 2 if (cpus // sockets) % 2 == 0 else 1
    cores = max(1, cpus // sockets // threads)
    return NODE_XML.format(sockets=sockets, cores=cores, threads=threads,
                           cpus=sockets * cores * threads, memory_kib=memory_mib * 1024)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_libvirtd() -> None:
    """Start virtlogd/libvirtd if they are not running (no systemd here).

    Also gives /dev/kvm Debian's usual root:kvm 0660: a root-only /dev/kvm
    makes libvirt re-probe QEMU on every VM start (tens of seconds each).
    """
    if not shutil.which("libvirtd"):
        raise RuntimeError("libvirtd is not installed (apt-get install libvirt-daemon-system "
                           "qemu-system-x86 qemu-utils)")
    kvm = Path("/dev/kvm")
    if kvm.exists() and os.geteuid() == 0:
        try:
            import grp

            os.chown(kvm, 0, grp.getgrnam("kvm").gr_gid)
            os.chmod(kvm, 0o660)
        except (KeyError, OSError):
            pass
    running = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode == 0
    if not running:
        if subprocess.run(["pgrep", "-x", "virtlogd"], capture_output=True).returncode != 0:
            subprocess.run(["virtlogd", "-d"], check=True)
        subprocess.run(["libvirtd", "-d"], check=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["virsh", "-c", "qemu:///system", "version"],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("libvirtd did not answer within 30 s")


@dataclass
class LocalAgent:
    directory: Path
    name: str
    address: str = "127.0.0.1"
    port: int = 0
    libvirt_uri: str = ""  # empty: the test driver on this agent's node.xml
    cpus: int = 8
    memory_mib: int = 32768
    netns: str | None = None  # run inside this network namespace (the lab)
    process: asyncio.subprocess.Process | None = None
    extra_args: tuple[str, ...] = ()
    # Written to agent.yaml and passed with --config (e.g. faster sampling in tests).
    agent_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        port_file = self.directory / "port"
        if not self.port:
            # Keep the port across runs: the engine knows the host by address:port.
            if port_file.exists():
                self.port = int(port_file.read_text())
            else:
                self.port = free_port(self.address) if self.netns is None else 54321
        port_file.write_text(f"{self.port}\n")

    # paths
    @property
    def key_file(self) -> Path:
        return self.directory / "key.pem"

    @property
    def cert_file(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def node_file(self) -> Path:
        return self.directory / "node.xml"

    @property
    def log_file(self) -> Path:
        return self.directory / "agent.log"

    @property
    def enrolled(self) -> bool:
        return self.cert_file.exists() and self.ca_file.exists()

    def certificate_request(self) -> bytes:
        """Make the host key (kept here) and a CSR for the engine to sign."""
        if self.key_file.exists():
            key = pki.load_key(self.key_file.read_bytes())
        else:
            key = pki.generate_key()
            pki.write_private(self.key_file, pki.key_to_pem(key))
        csr = pki.make_csr(key, self.name, [self.address])
        from cryptography.hazmat.primitives import serialization

        return csr.public_bytes(serialization.Encoding.PEM)

    def install_certificate(self, cert_pem: bytes, ca_pem: bytes) -> None:
        pki.write_public(self.cert_file, cert_pem)
        pki.write_public(self.ca_file, ca_pem)

    def command(self) -> list[str]:
        uri = self.libvirt_uri or f"test://{self.node_file}"
        cmd = [sys.executable, "-m", "ovagent"]
        if self.agent_config:
            cmd += ["--config", str(self.directory / "agent.yaml")]
        cmd += ["--listen", f"{self.address}:{self.port}",
               "--libvirt-uri", uri, "--tls-cert", str(self.cert_file),
               "--tls-key", str(self.key_file), "--tls-ca", str(self.ca_file),
               "--state-dir", str(self.directory / "state"),
               "--hooks-dir", str(self.directory / "hooks"), *self.extra_args]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    async def start(self) -> None:
        if not self.libvirt_uri and not self.node_file.exists():
            self.node_file.write_text(node_xml(self.cpus, self.memory_mib))
        if self.agent_config:
            (self.directory / "agent.yaml").write_text(yaml.safe_dump(self.agent_config))
        log = open(self.log_file, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        finally:
            log.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, sig)

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            self.signal(signal.SIGCONT)  # a paused agent cannot handle SIGTERM
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout_s)
            except asyncio.TimeoutError:
                self.signal(signal.SIGKILL)
                await self.process.wait()
        self.process = None

    async def kill(self) -> None:
        """kill -9: the agent gets no chance to clean up."""
        if self.process is not None and self.process.returncode is None:
            self.signal(signal.SIGKILL)
            await self.process.wait()
        self.process = None
