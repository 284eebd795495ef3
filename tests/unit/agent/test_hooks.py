"""HookRunner: vdsm's hook conventions (order, _hook_domxml, exit codes, timeout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovagent.virt.hooks import HookError, HookRunner
from tests.fixtures.agent import write_hook


async def test_scripts_run_in_name_order_and_chain_the_xml(tmp_path: Path) -> None:
    write_hook(tmp_path, "before_vm_start", "20_second",
               '#!/bin/sh\nsed -i "s|B|B2|" "$_hook_domxml"\n')
    write_hook(tmp_path, "before_vm_start", "10_first",
               '#!/bin/sh\nsed -i "s|<domain>|<domain>B|" "$_hook_domxml"\n')
    runner = HookRunner(tmp_path, timeout_s=10)
    assert await runner.run("before_vm_start", "<domain></domain>") == "<domain>B2</domain>"
    assert await runner.run("after_vm_start", "<domain/>") == "<domain/>"  # no hooks


async def test_environment(tmp_path: Path) -> None:
    out = tmp_path / "env"
    write_hook(tmp_path, "before_vm_start", "10_env",
               f'#!/bin/sh\necho "$_hook_point $vmId $custom" > {out}\n')
    await HookRunner(tmp_path).run("before_vm_start", "<domain/>",
                                   {"vmId": "abc", "custom": "x y"})
    assert out.read_text() == "before_vm_start abc x y\n"


async def test_exit_codes(tmp_path: Path) -> None:
    runner = HookRunner(tmp_path, timeout_s=10)
    write_hook(tmp_path, "after_vm_start", "10_warn", "#!/bin/sh\nexit 1\n")
    assert await runner.run("after_vm_start", "<domain/>") == "<domain/>"
    write_hook(tmp_path, "after_vm_start", "20_fail", "#!/bin/sh\necho why >&2\nexit 2\n")
    with pytest.raises(HookError, match="after_vm_start/20_fail.*exit code 2: why"):
        await runner.run("after_vm_start", "<domain/>")


async def test_timeout_kills_the_hook(tmp_path: Path) -> None:
    write_hook(tmp_path, "before_vm_start", "10_hang", "#!/bin/sh\nexec sleep 600\n")
    with pytest.raises(HookError, match="timed out"):
        await HookRunner(tmp_path, timeout_s=0.3).run("before_vm_start", "<domain/>")


def test_inventory_lists_executables_only(tmp_path: Path) -> None:
    write_hook(tmp_path, "before_vm_start", "10_a", "#!/bin/sh\n")
    (tmp_path / "before_vm_start" / "notes.txt").write_text("x")
    (tmp_path / "not_a_hook_point").mkdir()
    write_hook(tmp_path, "not_a_hook_point", "10_b", "#!/bin/sh\n")
    inventory = HookRunner(tmp_path).inventory_blocking()
    assert list(inventory) == ["before_vm_start"]
    assert list(inventory["before_vm_start"]) == ["10_a"]
    assert HookRunner(None).inventory_blocking() == {}
