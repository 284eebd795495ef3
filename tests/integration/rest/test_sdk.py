"""The official oVirt SDK (ovirtsdk4, unchanged) against a running engine with
a host up: the whole VM flow, errors as the SDK's exception classes, events,
logout. The SDK is synchronous: it runs in a thread while the engine runs in
the test's event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, TypeVar

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest

from tests.fixtures.engine import ADMIN_PASSWORD, EngineFactory, wait_until
from tests.fixtures.rest import api_base

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kw), timeout=60)


def connect(engine: Any, password: str = ADMIN_PASSWORD, url_suffix: str = "") -> sdk.Connection:
    return sdk.Connection(url=f"{api_base(engine)}/ovirt-engine/api{url_suffix}",
                          username="admin@internal", password=password,
                          ca_file=str(engine.s.ca.files.ca_cert), timeout=30)


async def sdk_wait(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    async def check() -> Any:
        return await in_thread(fn)
    return await wait_until(check, timeout_s, what, interval_s=0.2)


async def test_sdk_vm_flow(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    await engines.add_hosts(engine, 1)
    # A trailing slash makes the SDK send '//' paths: the engine merges them.
    conn = connect(engine, url_suffix="/")
    try:
        assert await in_thread(conn.test, raise_exception=True)
        system = conn.system_service()
        api = await in_thread(system.get)
        assert api.product_info.name == "oVirt Engine"
        assert api.product_info.version.major == 4
        assert api.special_objects.blank_template.id == "00000000-0000-0000-0000-000000000000"
        assert api.summary.hosts.active == 1
        assert api.time is not None
        assert api.authenticated_user.id == "fdfc627c-d875-11e0-90f0-83df133b58cc"

        clusters = await in_thread(system.clusters_service().list, search="name=Default")
        assert [c.name for c in clusters] == ["Default"]
        hosts = await in_thread(system.hosts_service().list)
        assert len(hosts) == 1 and hosts[0].status == types.HostStatus.UP
        templates = await in_thread(system.templates_service().list, search="name=Blank")
        assert [t.id for t in templates] == ["00000000-0000-0000-0000-000000000000"]

        vms_service = system.vms_service()
        name = f"sdk-{int(time.time() * 1000) % 100000}"
        assert await in_thread(vms_service.list, search=f"name={name}") == []
        vm = await in_thread(vms_service.add, types.Vm(
            name=name, description="created by the SDK test", memory=256 * 2**20,
            memory_policy=types.MemoryPolicy(guaranteed=256 * 2**20, max=256 * 2**20),
            cluster=types.Cluster(name="Default"), template=types.Template(name="Blank")))
        assert vm.status == types.VmStatus.DOWN and vm.memory == 256 * 2**20
        found = await in_thread(vms_service.list, search="name=sdk-* and status=down",
                                case_sensitive=False, max=10)
        assert [v.id for v in found] == [vm.id]
        vm_service = vms_service.vm_service(vm.id)
        got = await in_thread(vm_service.get)
        assert got.name == name and got.cluster.id == clusters[0].id

        await in_thread(vm_service.start)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.UP, 30, "VM up")
        up = await in_thread(vm_service.get)
        assert up.host is not None and up.host.id == hosts[0].id
        assert [v.id for v in await in_thread(vms_service.list, search=f"host={hosts[0].name}")] \
            == [vm.id]

        snaps = vm_service.snapshots_service()
        snap = await in_thread(snaps.add, types.Snapshot(description="before stop",
                                                         persist_memorystate=False))
        assert snap.snapshot_status in (types.SnapshotStatus.LOCKED, types.SnapshotStatus.OK)
        await sdk_wait(lambda: snaps.snapshot_service(snap.id).get().snapshot_status
                       == types.SnapshotStatus.OK, 20, "snapshot ok")
        kinds = sorted(s.snapshot_type.value for s in await in_thread(snaps.list))
        assert kinds == ["active", "regular"]

        # suspend pauses the VM (in memory, until storage lands); start resumes it.
        await in_thread(vm_service.suspend)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.PAUSED, 20, "paused")
        await in_thread(vm_service.start)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.UP, 20, "resumed")

        await in_thread(vm_service.stop)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.DOWN, 30, "VM down")
        await in_thread(vm_service.remove)
        with pytest.raises(sdk.NotFoundError):
            await in_thread(vm_service.get)
        with pytest.raises(sdk.NotFoundError):
            await in_thread(vms_service.vm_service("00000000-1111-2222-3333-444444444444").get)

        events_service = system.events_service()
        events = await in_thread(events_service.list, max=50)
        assert events and all(int(e.id) for e in events)
        ids = [int(e.id) for e in events]
        assert ids == sorted(ids, reverse=True)
        assert any(e.code == 36 for e in events)  # USER_REMOVE_VM
        newer = await in_thread(events_service.list, from_=ids[5])
        assert sorted(int(e.id) for e in newer) == sorted(i for i in ids if i > ids[5])
    finally:
        await in_thread(conn.close)  # logout: the token is revoked
    assert await engine.s.pool.fetchval(
        "SELECT count(*) FROM sso_tokens WHERE NOT revoked") == 0


async def test_sdk_errors(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    bad = connect(engine, password="wrong")
    with pytest.raises(sdk.AuthError) as err:
        await in_thread(bad.system_service().get)
    assert "access_denied" in str(err.value)
    await in_thread(bad.close, logout=False)
    conn = connect(engine)
    try:
        vms = conn.system_service().vms_service()
        with pytest.raises(sdk.Error) as err:  # 400 naming the field
            await in_thread(vms.add, types.Vm(name="no-cluster",
                                              template=types.Template(name="Blank")))
        assert err.value.code == 400 and "cluster" in str(err.value)
        vm = await in_thread(vms.add, types.Vm(name="twice", cluster=types.Cluster(
            name="Default"), template=types.Template(name="Blank"), memory=128 * 2**20))
        with pytest.raises(sdk.Error) as err:  # 409: the name is taken
            await in_thread(vms.add, types.Vm(name="twice", cluster=types.Cluster(
                name="Default"), template=types.Template(name="Blank")))
        assert err.value.code == 409
        with pytest.raises(sdk.Error) as err:  # no host up: stopping a down VM is a conflict
            await in_thread(vms.vm_service(vm.id).stop)
        assert err.value.code == 409
        hosts = conn.system_service().hosts_service()
        with pytest.raises(sdk.Error) as err:  # the SDK's SSH deployment is not ov's way
            await in_thread(hosts.add, types.Host(name="h", address="127.0.0.1",
                                                  root_password="x",
                                                  cluster=types.Cluster(name="Default")))
        assert err.value.code == 400 and "certificate_request" in str(err.value)
        # A revoked token: the SDK logs in again by itself and goes on.
        await engine.s.pool.execute("UPDATE sso_tokens SET revoked = true")
        assert [v.name for v in await in_thread(vms.list)] == ["twice"]
    finally:
        await in_thread(conn.close)
