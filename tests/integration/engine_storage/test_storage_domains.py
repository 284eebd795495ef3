"""Storage domain lifecycle through REST: a second domain attached (by the
SPM) and monitored by every host, deactivated, activated, deactivated,
detached and removed with format=true; the master to maintenance (the data
center goes to maintenance, every host leaves the pool) and back."""

from __future__ import annotations

import re
import uuid

from ovengine.daemon import Engine
from ovengine.domain.storage_activation import ActivateStorageDomain, DeactivateStorageDomain
from tests.fixtures.engine import EngineFactory, wait_until
from tests.fixtures.engine_storage import (STORAGE_ENGINE, posix_data_center, require_storage,
                                           storage_hosts, wait_dc_up)
from tests.fixtures.rest import client_for


def _field(xml: str, tag: str) -> str | None:
    m = re.search(fr"<{tag}>([^<]*)</{tag}>", xml)
    return m.group(1) if m else None


async def _iso_status(engine: Engine, sd: str) -> str | None:
    value = await engine.s.pool.fetchval("SELECT status FROM storage_pool_iso_map WHERE "
                                         "storage_domain_id=$1", uuid.UUID(sd))
    return None if value is None else str(value)


async def test_domain_lifecycle_through_rest(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(serve_api=True, storage=STORAGE_ENGINE)
    s = engine.s
    hosts = await storage_hosts(engines, engine, 2)
    dc, master = await posix_data_center(engine, hosts, engines.base / "shared")
    second = engines.base / "second"
    second.mkdir()
    api = await client_for(engine)
    try:
        await api.login()
        r = await api.post("/storagedomains", f"""<storage_domain><name>data2</name>
            <type>data</type><host><name>{hosts[1].name}</name></host>
            <storage><type>posixfs</type><path>{second}</path><vfs_type>none</vfs_type>
            </storage></storage_domain>""")
        assert r.status == 201, r.text
        sd = re.search(r'<storage_domain href="[^"]+" id="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
        assert _field(r.text, "status") == "unattached"
        r = await api.post("/storagedomains", f"""<storage_domain><name>again</name>
            <host><name>{hosts[1].name}</name></host><storage><type>posixfs</type>
            <path>{second}</path><vfs_type>none</vfs_type></storage></storage_domain>""")
        assert r.status == 409 and "used by storage domain data2" in r.text

        r = await api.post(f"/datacenters/{dc}/storagedomains", f'<storage_domain id="{sd}"/>')
        assert r.status == 201, r.text
        assert _field(r.text, "status") == "active" and _field(r.text, "master") == "false"
        for h in hosts:  # every host monitors the new domain
            hid = engines.host_id(engine, h)
            await wait_until(lambda hid=hid: _sees(engine, hid, sd), 30, "domain monitored")
        r = await api.get(f"/datacenters/{dc}/storagedomains")
        assert r.text.count("<storage_domain ") == 2

        base = f"/datacenters/{dc}/storagedomains/{sd}"
        r = await api.post(f"{base}/deactivate")
        assert r.status == 200 and "<status>complete</status>" in r.text, r.text
        assert await _iso_status(engine, sd) == "maintenance"
        r = await api.post(f"{base}/activate")
        assert r.status == 200, r.text
        assert await _iso_status(engine, sd) == "active"
        r = await api.delete(base)
        assert r.status == 409  # active: maintenance first
        r = await api.post(f"{base}/deactivate")
        assert r.status == 200
        r = await api.delete(base)
        assert r.status == 200, r.text
        assert await _iso_status(engine, sd) is None
        r = await api.get(f"/storagedomains/{sd}")
        assert _field(r.text, "status") == "unattached"
        r = await api.delete(f"/storagedomains/{sd}?host={hosts[0].name}&format=true")
        assert r.status == 200, r.text
        assert not (second / sd).exists()
        assert (await api.get(f"/storagedomains/{sd}")).status == 404

        # The master to maintenance: the whole data center goes down, and back.
        mbase = f"/datacenters/{dc}/storagedomains/{master}"
        r = await api.post(f"{mbase}/deactivate")
        assert r.status == 200, r.text
        assert await _iso_status(engine, master) == "maintenance"
        await wait_until(lambda: _dc(engine, dc, "maintenance"), 20, "data center maintenance")
        for h in hosts:
            assert await s.hosts.call(engines.host_id(engine, h),
                                      "Host.getConnectedStoragePools") == []
        r = await api.post(f"{mbase}/activate")
        assert r.status == 200, r.text
        await wait_dc_up(engine, dc)
        assert await _iso_status(engine, master) == "active"
        for h in hosts:
            assert await s.hosts.call(engines.host_id(engine, h),
                                      "Host.getConnectedStoragePools") == [dc]
    finally:
        await api.session.close()


async def _sees(engine: Engine, host_id: str, sd: str) -> bool:
    v = (await engine.s.hosts.call(host_id, "Host.getStats"))["storageDomains"].get(sd)
    return bool(v and v.get("valid") and v.get("acquired"))


async def _dc(engine: Engine, dc: str, status: str) -> bool:
    return await engine.s.pool.fetchval("SELECT status FROM data_centers WHERE id=$1",
                                        uuid.UUID(dc)) == status


async def test_crash_recovery_undoes_transient_domain_states(engines: EngineFactory) -> None:
    """A domain left 'activating' or 'preparing_for_maintenance' by an engine
    that died goes back to a status from which the admin can act again."""
    require_storage()
    engine = await engines.start(storage=STORAGE_ENGINE)
    hosts = await storage_hosts(engines, engine, 1)
    dc, master = await posix_data_center(engine, hosts, engines.base / "shared")
    pool = engine.s.pool

    async def leave(status: str) -> None:
        await pool.execute("UPDATE storage_pool_iso_map SET status=$2 WHERE "
                           "storage_domain_id=$1", uuid.UUID(master), status)

    await leave("activating")
    outcome = await ActivateStorageDomain.recover(engine.s, {
        "sd_id": master, "dc_id": dc, "was": "maintenance"})
    assert "activate it again" in outcome
    assert await _iso_status(engine, master) == "maintenance"

    await leave("preparing_for_maintenance")
    outcome = await DeactivateStorageDomain.recover(engine.s, {"sd_id": master, "dc_id": dc})
    assert "inactive" in outcome
    assert await _iso_status(engine, master) == "inactive"

    await leave("active")  # only the transient status is undone
    await DeactivateStorageDomain.recover(engine.s, {"sd_id": master, "dc_id": dc})
    assert await _iso_status(engine, master) == "active"
    assert await DeactivateStorageDomain.recover(engine.s, {}) == "nothing to undo"
