"""StoragePool.connectStorageServer / disconnectStorageServer on this machine:
local directories are linked, a shared directory (posixfs, vfs_type none) is
bind-mounted under the agent's repository, as vdsm mounts an export."""

from __future__ import annotations

from pathlib import Path

from ovagent.storage.connections import mounted_targets_blocking
from ovagent.storage.metadata import transform_path
from tests.fixtures.agent import StartAgent
from tests.fixtures.storage import (
    BLANK_UUID,
    LOCALFS,
    POSIXFS,
    StorageDriver,
    new_uuid,
    require_root,
)


async def test_local_directory_is_linked(start_agent: StartAgent, tmp_path: Path) -> None:
    agent = await start_agent("fake")
    d = StorageDriver(agent)
    export = tmp_path / "my_export"
    export.mkdir()
    con = await d.connect(LOCALFS, str(export) + "/")
    link = agent.agent.storage.mnt_root / transform_path(str(export))
    assert link.is_symlink() and link.resolve() == export
    params = {"storagepoolID": BLANK_UUID, "domainType": LOCALFS,
              "connectionParams": [{"id": con, "connection": str(export)}]}
    assert await d.call("StoragePool.connectStorageServer", params) == [{"id": con,
                                                                         "status": 0}]
    assert await d.call("StoragePool.disconnectStorageServer", params) == [{"id": con,
                                                                            "status": 0}]
    assert not link.exists() and export.is_dir()
    # not a directory: vdsm's 453, per connection, the call itself succeeds
    missing = new_uuid()
    assert await d.call("StoragePool.connectStorageServer", {
        "storagepoolID": BLANK_UUID, "domainType": LOCALFS,
        "connectionParams": [{"id": missing, "connection": str(tmp_path / "nope")}]}) == [
        {"id": missing, "status": 453}]


async def test_shared_directory_is_bind_mounted(start_agent: StartAgent, tmp_path: Path,
                                                mount_cleanup: Path) -> None:
    require_root("bind mounts")
    agent = await start_agent("fake")
    d = StorageDriver(agent)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("hi")
    con = await d.connect(POSIXFS, str(shared), vfs_type="none")
    target = agent.agent.storage.mnt_root / transform_path(str(shared))
    assert str(target) in mounted_targets_blocking()
    assert not target.is_symlink() and (target / "hello").read_text() == "hi"
    params = {"storagepoolID": BLANK_UUID, "domainType": POSIXFS,
              "connectionParams": [{"id": con, "connection": str(shared),
                                    "vfs_type": "none"}]}
    assert (await d.call("StoragePool.disconnectStorageServer", params))[0]["status"] == 0
    assert str(target) not in mounted_targets_blocking() and not target.exists()
    # a mount that cannot work: vdsm's 477 for that connection
    bad = new_uuid()
    assert await d.call("StoragePool.connectStorageServer", {
        "storagepoolID": BLANK_UUID, "domainType": POSIXFS,
        "connectionParams": [{"id": bad, "connection": "/dev/does-not-exist",
                              "vfs_type": "ext4"}]}) == [{"id": bad, "status": 477}]
