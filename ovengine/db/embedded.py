"""The engine's private PostgreSQL cluster (the default when no DSN is set).

initdb + pg_ctl from the installed PostgreSQL, under the engine's state
directory, listening on a unix socket only (no TCP). PostgreSQL refuses to
run as root, so a root engine runs it as the `postgres` system user (from
Debian's postgresql package) and hands it the data directory.

If the engine dies, the cluster keeps running; the next start finds it
running and reuses it.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import pwd
import shutil
from pathlib import Path

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_pg_bindir"]

log = logging.getLogger(__name__)

DB_NAME = "ovengine"
DB_USER = "ovengine"


class EmbeddedPostgresError(Exception):
    pass


def find_pg_bindir() -> Path:
    """The newest /usr/lib/postgresql/*/bin with initdb, or initdb on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise EmbeddedPostgresError(
        "PostgreSQL server binaries not found (install postgresql-15, or configure a DSN)")


class EmbeddedPostgres:
    def __init__(self, base_dir: Path, *, fsync: bool = True, run_as: str | None = None) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.log_file = base_dir / "postgresql.log"
        self.fsync = fsync
        self.bindir = find_pg_bindir()
        if run_as is None and os.geteuid() == 0:
            run_as = "postgres"
        self.run_as = run_as
        self._uid: int | None = None
        self._gid: int | None = None
        if run_as is not None:
            try:
                entry = pwd.getpwnam(run_as)
            except KeyError:
                raise EmbeddedPostgresError(
                    f"user {run_as!r} does not exist (PostgreSQL cannot run as root)") from None
            self._uid, self._gid = entry.pw_uid, entry.pw_gid

    @property
    def dsn(self) -> str:
        return f"postgresql://{DB_USER}@/{DB_NAME}?host={self.socket_dir}"

    async def _run(self, *args: str, check: bool = True) -> tuple[int, str]:
        cmd = list(args)
        if self._uid is not None:
            # setpriv (util-linux) drops to the postgres user; it works under any
            # event loop (uvloop's subprocess has no user/group arguments).
            cmd = ["setpriv", f"--reuid={self._uid}", f"--regid={self._gid}",
                   "--clear-groups", *cmd]
        # Output goes to a file, not a pipe: pg_ctl's daemonized postmaster can
        # inherit the pipe (uvloop passes more descriptors) and EOF never comes.
        out_path = self.base_dir / "command.out"
        with open(out_path, "w+b") as out:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                cwd=str(self.base_dir), env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
            await asyncio.wait_for(proc.wait(), 120)
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        if check and proc.returncode != 0:
            raise EmbeddedPostgresError(f"{Path(args[0]).name} failed ({proc.returncode}): "
                                        f"{text.strip()[-2000:]}")
        return proc.returncode or 0, text

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.base_dir, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
            if self._uid is not None:
                os.chown(d, self._uid, self._gid or -1)
        if self._uid is not None:
            # The engine's own state directory (our parent) may be private:
            # let the postgres user pass through it (traverse, not list).
            parent = self.base_dir.resolve().parent
            if parent.stat().st_uid == os.geteuid():
                os.chmod(parent, parent.stat().st_mode | 0o001)
            # Every other parent must already be traversable by that user.
            probe = self.base_dir.resolve()
            for parent in [probe, *probe.parents]:
                st = parent.stat()
                if st.st_uid != self._uid and not st.st_mode & 0o001:
                    raise EmbeddedPostgresError(
                        f"{parent} is not reachable by user {self.run_as}: put the engine "
                        f"state directory elsewhere or allow traversal (chmod o+x {parent})")

    async def _initdb(self) -> None:
        log.info("creating the engine database cluster in %s", self.data_dir)
        await self._run(str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", DB_USER,
                        "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        conf = self.data_dir / "postgresql.conf"
        settings = (
            "\n# ov engine: private cluster, unix socket only\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "unix_socket_permissions = 0700\n"
            "max_connections = 100\n"
            f"fsync = {'on' if self.fsync else 'off'}\n"
            f"synchronous_commit = {'on' if self.fsync else 'off'}\n"
            f"full_page_writes = {'on' if self.fsync else 'off'}\n"
        )
        with open(conf, "a", encoding="utf-8") as f:
            f.write(settings)

    async def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        code, _ = await self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir),
                                  "status", check=False)
        return code == 0

    async def start(self) -> str:
        """Create (first time) and start the cluster; returns the DSN."""
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            await self._initdb()
        if await self.is_running():
            log.info("engine database already running (reusing it)")
        else:
            await self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir),
                            "-l", str(self.log_file), "-w", "-t", "60", "start")
        psql = (str(self.bindir / "psql"), "-h", str(self.socket_dir), "-U", DB_USER,
                "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qtA", "-c")
        _, exists = await self._run(
            *psql, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'")
        if exists.strip() != "1":
            await self._run(*psql, f"CREATE DATABASE {DB_NAME}")
        return self.dsn

    async def stop(self) -> None:
        if await self.is_running():
            await self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir),
                            "-m", "fast", "-w", "-t", "60", "stop")
