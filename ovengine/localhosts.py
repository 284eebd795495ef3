"""Agents running as child processes of this machine: for `ovengine demo`,
the lab and the tests.

Each LocalAgent has a directory with its key (made here, never sent), its
certificate request, the certificate the engine signed, the engine CA, its
libvirt test-driver node definition (CPUs, memory) and its log. Enrollment
uses the same AddHost command an administrator would.

With `storage=True` the agent gets a storage repository of its own
(`<dir>/rhev`) and its own sanlock daemon (run directory `<dir>/sanlock`,
no watchdog, started before the agent and stopped after it), as several
agents on one machine need: each talks to its own daemon through
SANLOCK_RUN_DIR (agent config storage.sanlock_run_dir).
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

__all__ = ["LocalAgent", "SanlockDaemon", "node_xml", "ensure_libvirtd", "free_port",
           "unmount_under"]

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


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, below the kernel's ephemeral range.

    Outgoing connections take their local ports from the ephemeral range, so
    a port picked there (bind to 0) can be taken by some client's connection
    before the server that was meant to listen on it starts.
    """
    import random
    import socket

    high = _ephemeral_start() - 1
    for _ in range(200):
        port = random.randint(max(1024, high - 12000), high)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded low range: fall back to the kernel's pick
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


def unmount_under(root: Path) -> None:
    """Lazily unmount whatever is mounted below `root` (bind mounts an agent
    made in this mount namespace), deepest first."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    prefix = str(root).rstrip("/") + "/"
    targets = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            target = fields[4].replace("\\040", " ")
            if target.startswith(prefix):
                targets.append(target)
    for target in sorted(targets, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


class SanlockDaemon:
    """A sanlock daemon of one agent: its own run directory (socket), no
    watchdog, host name = the agent's name. SANLOCK_PRIVILEGED=0 keeps it from
    raising rlimits (containers often lack CAP_SYS_RESOURCE)."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.run_dir = run_dir
        self.name = name
        self.process: asyncio.subprocess.Process | None = None

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, SANLOCK_RUN_DIR=str(self.run_dir), SANLOCK_PRIVILEGED="0")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self, timeout_s: float = 15.0) -> None:
        if shutil.which("sanlock") is None:
            raise RuntimeError("sanlock is not installed (apt-get install sanlock)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir.parent / f"sanlock-{self.name}.log", "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                "sanlock", "daemon", "-D", "-w", "0", "-l", "0", "-h", "0", "-U", "root",
                "-G", "root", "-L", "-1", "-S", "-1", "-e", self.name, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self.process.returncode is not None:
                raise RuntimeError(f"sanlock daemon {self.name} exited "
                                   f"({self.process.returncode})")
            probe = await asyncio.create_subprocess_exec(
                "sanlock", "client", "status", env=self.env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            if await asyncio.wait_for(probe.wait(), timeout_s) == 0:
                return
            if loop.time() > deadline:
                raise RuntimeError(f"sanlock daemon {self.name} did not answer in "
                                   f"{timeout_s} s")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """kill -9: its leases are not released (they expire on the other hosts)."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.process.wait(), 10)
        self.process = None

    async def stop(self) -> None:
        # Its lockspaces are on test storage, and the agent that held leases is
        # gone: nothing to hand back cleanly.
        await self.kill()


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
    # Storage: a repository of its own and its own sanlock daemon.
    storage: bool = False
    sanlock_io_timeout_s: int = 10
    # Further storage.* agent configuration keys (monitor_interval_s, ...).
    storage_config: dict[str, Any] | None = None
    sanlock: SanlockDaemon | None = None

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
    def repository(self) -> Path:
        return self.directory / "rhev"

    @property
    def sanlock_run_dir(self) -> Path:
        return self.directory / "sanlock"

    def effective_config(self) -> dict[str, Any] | None:
        if not self.storage:
            return self.agent_config
        config = dict(self.agent_config or {})
        config["storage"] = {**config.get("storage", {}),
                             "repository": str(self.repository),
                             "sanlock_run_dir": str(self.sanlock_run_dir),
                             "sanlock_io_timeout_s": self.sanlock_io_timeout_s,
                             **(self.storage_config or {})}
        return config

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
        if self.effective_config():
            cmd += ["--config", str(self.directory / "agent.yaml")]
        cmd += ["--listen", f"{self.address}:{self.port}",
               "--libvirt-uri", uri, "--tls-cert", str(self.cert_file),
               "--tls-key", str(self.key_file), "--tls-ca", str(self.ca_file),
               "--state-dir", str(self.directory / "state"),
               "--hooks-dir", str(self.directory / "hooks"), *self.extra_args]
        if self.netns and self.storage:
            # Only the network namespace: the storage mounts the agent makes must
            # be visible to its sanlock daemon (`ip netns exec` would give the
            # agent a mount namespace of its own).
            cmd = ["nsenter", f"--net=/run/netns/{self.netns}", "--", *cmd]
        elif self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    async def start(self) -> None:
        if not self.libvirt_uri and not self.node_file.exists():
            self.node_file.write_text(node_xml(self.cpus, self.memory_mib))
        config = self.effective_config()
        if config:
            (self.directory / "agent.yaml").write_text(yaml.safe_dump(config))
        if self.storage and (self.sanlock is None or self.sanlock.process is None):
            self.sanlock = SanlockDaemon(self.sanlock_run_dir, self.name)
            await self.sanlock.start()
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

    async def stop_storage(self) -> None:
        """After stop(): the sanlock daemon, and the mounts the agent left."""
        if self.sanlock is not None:
            await self.sanlock.stop()
            self.sanlock = None
        if self.storage:
            await asyncio.to_thread(unmount_under, self.repository)

    async def kill(self) -> None:
        """kill -9: the agent gets no chance to clean up."""
        if self.process is not None and self.process.returncode is None:
            self.signal(signal.SIGKILL)
            await self.process.wait()
        self.process = None

    async def kill_host(self) -> None:
        """kill -9 of the agent and of its sanlock daemon: a host that lost power.

        The daemon goes first: a sanlock daemon that outlives its client even
        briefly releases the client's leases cleanly, which a power loss never does.
        """
        if self.sanlock is not None:
            await self.sanlock.kill()
        await self.kill()
