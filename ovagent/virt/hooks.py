"""vdsm-style hooks: executables in <hooks_dir>/<hook_name>/, run in name order.

The domain XML goes to each script in a temporary file whose path is in the
`_hook_domxml` environment variable (vdsm's convention); a script may rewrite
that file, and the next script (and the launch) sees its version. Custom VM
properties travel as environment variables too. Exit codes as in vdsm: 0 ok,
1 a warning (logged, the operation goes on), 2 or more (or a kill, or running
past the timeout) a failure: HookError, which aborts a before_* hook point;
after_* failures are only logged by the caller. stderr is always logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

__all__ = ["HookRunner", "HookError", "HOOK_POINTS"]

log = logging.getLogger(__name__)

HOOK_POINTS = (
    "before_vdsm_start", "after_vdsm_stop",
    "before_vm_start", "after_vm_start",
    "before_vm_destroy", "after_vm_destroy",
    "before_vm_migrate_source", "after_vm_migrate_source",
    "before_vm_migrate_destination", "after_vm_migrate_destination",
)


class HookError(Exception):
    pass


def _write_blocking(path: str, data: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(data)


def _read_blocking(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _scripts_blocking(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and os.access(p, os.X_OK))


class HookRunner:
    def __init__(self, hooks_dir: Path | None, timeout_s: float = 60.0) -> None:
        self.hooks_dir = hooks_dir
        self.timeout_s = timeout_s

    def inventory_blocking(self) -> dict[str, dict[str, dict[str, str]]]:
        """getCapabilities 'hooks': {hook_point: {script_name: {md5: ...}}}."""
        import hashlib

        result: dict[str, dict[str, dict[str, str]]] = {}
        if self.hooks_dir is None:
            return result
        for point in HOOK_POINTS:
            scripts = _scripts_blocking(self.hooks_dir / point)
            if scripts:
                result[point] = {
                    p.name: {"md5": hashlib.md5(p.read_bytes(), usedforsecurity=False)
                             .hexdigest()} for p in scripts}
        return result

    async def run(self, point: str, domxml: str | None = None,
                  env: dict[str, str] | None = None) -> str | None:
        """Run every script of `point`; returns the (possibly rewritten) XML."""
        if self.hooks_dir is None:
            return domxml
        scripts = await asyncio.to_thread(_scripts_blocking, self.hooks_dir / point)
        if not scripts:
            return domxml
        fd, xml_path = tempfile.mkstemp(prefix=f"ov-{point}-", suffix=".xml")
        os.close(fd)
        try:
            await asyncio.to_thread(_write_blocking, xml_path, domxml or "")
            for script in scripts:
                await self._run_one(point, script, xml_path, env or {})
            return await asyncio.to_thread(_read_blocking, xml_path) if domxml else domxml
        finally:
            try:
                os.unlink(xml_path)
            except OSError:
                pass

    async def _run_one(self, point: str, script: Path, xml_path: str,
                       env: dict[str, str]) -> None:
        full_env = dict(os.environ)
        full_env.update(env)
        full_env["_hook_domxml"] = xml_path
        full_env["_hook_point"] = point
        proc = await asyncio.create_subprocess_exec(
            str(script), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=full_env)
        try:
            _out, err = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise HookError(f"hook {point}/{script.name} timed out after {self.timeout_s} s")
        text = err.decode("utf-8", "replace").strip()
        if text:
            log.info("hook %s/%s stderr: %s", point, script.name, text[:2000])
        if proc.returncode == 1:
            log.warning("hook %s/%s returned 1 (warning), continuing", point, script.name)
        elif proc.returncode != 0:
            raise HookError(f"hook {point}/{script.name} failed with exit code "
                            f"{proc.returncode}: {text[:500] or 'no message'}")
