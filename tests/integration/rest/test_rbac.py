"""RBAC: a matrix of roles x endpoints and actions (which succeed, which get
403, which get 404 because filtering hides the object), users who cannot see
each other's VMs, delegation without escalation, and a walk over the router
that finds every route protected except SSO and the CA certificate."""

from __future__ import annotations

import re
import uuid

from ovengine.aaa.permits import (CLUSTER_ADMIN_ROLE_ID, SUPER_USER_ROLE_ID, SYSTEM_OBJECT_ID,
                                  USER_ROLE_ID, USER_VM_MANAGER_ROLE_ID, VM_CREATOR_ROLE_ID)
from ovengine.domain.commands import SYSTEM
from ovengine.domain.topology_commands import AddCluster
from ovengine.domain.vm_commands import AddVm, VmConfig
from ovengine.rest.policy import policy_of
from tests.fixtures.engine import EngineFactory
from tests.fixtures.rest import add_user, client_for, grant

ROLES = ("none", "vm_manager", "user_role", "cluster_admin", "super")


async def _vm(engine, cluster: str, name: str) -> str:  # type: ignore[no-untyped-def]
    s = engine.s
    return str((await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name=name, memory_mib=128)))).value)


async def test_rbac_matrix(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    agents = await engines.add_hosts(engine, 1)
    host = engines.host_id(engine, agents[0])
    s = engine.s
    default = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    dc = str(await s.pool.fetchval("SELECT id FROM data_centers WHERE name='Default'"))
    other = str((await s.runner.run(AddCluster(s, SYSTEM, {
        "name": "Other", "data_center_id": uuid.UUID(dc)}))).value)
    vm1, vm2, vm3 = (await _vm(engine, default, "vm1"), await _vm(engine, default, "vm2"),
                     await _vm(engine, other, "vm3"))

    users = {name: await add_user(engine, name) for name in ROLES if name != "super"}
    await grant(engine, users["vm_manager"], USER_VM_MANAGER_ROLE_ID, "vm", vm1)
    await grant(engine, users["user_role"], USER_ROLE_ID, "system", SYSTEM_OBJECT_ID)
    await grant(engine, users["cluster_admin"], CLUSTER_ADMIN_ROLE_ID, "cluster", default)
    admin = await client_for(engine)
    try:
        await admin.login()
        clients = {"super": admin}
        for name in users:
            c = admin.as_user(None)
            await c.login(f"{name}@internal", "secret-pw")
            clients[name] = c

        def stopper(vm: str):  # type: ignore[no-untyped-def]
            async def stop() -> None:
                r = await admin.post(f"/vms/{vm}/stop")
                assert r.status == 200, r.text
            return stop

        n = iter(range(1000))
        # (method, path, body, {role: status}, cleanup after a success)
        matrix = [
            ("GET", f"/vms/{vm1}", None, dict(none=404, vm_manager=200, user_role=200,
                                             cluster_admin=200, super=200), None),
            ("GET", f"/vms/{vm2}", None, dict(none=404, vm_manager=404, user_role=200,
                                             cluster_admin=200, super=200), None),
            ("GET", f"/vms/{vm3}", None, dict(none=404, vm_manager=404, user_role=200,
                                             cluster_admin=200, super=200), None),
            ("POST", f"/vms/{vm1}/start", "<action/>", dict(
                none=404, vm_manager=200, user_role=200, cluster_admin=200, super=200),
             stopper(vm1)),
            ("POST", f"/vms/{vm2}/start", "<action/>", dict(
                none=404, vm_manager=404, user_role=200, cluster_admin=200, super=200),
             stopper(vm2)),
            # Allowed but the VM is down: 409 shows the authorization passed.
            ("POST", f"/vms/{vm2}/stop", "<action/>", dict(
                none=404, vm_manager=404, user_role=409, cluster_admin=409, super=409), None),
            ("PUT", f"/vms/{vm1}", "<vm><description>edited</description></vm>", dict(
                none=404, vm_manager=200, user_role=403, cluster_admin=200, super=200), None),
            ("PUT", f"/vms/{vm3}", "<vm><description>edited</description></vm>", dict(
                none=404, vm_manager=404, user_role=403, cluster_admin=403, super=200), None),
            ("POST", f"/vms/{vm1}/snapshots", "<snapshot><description>s</description>"
             "</snapshot>", dict(none=404, vm_manager=201, user_role=403, cluster_admin=201,
                                 super=201), None),
            ("POST", "/vms", lambda: f"<vm><name>new{next(n)}</name><memory>134217728</memory>"
             "<cluster><name>Default</name></cluster><template><name>Blank</name></template>"
             "</vm>", dict(none=404, vm_manager=403, user_role=403, cluster_admin=201,
                           super=201), None),
            ("GET", f"/hosts/{host}", None, dict(none=404, vm_manager=404, user_role=200,
                                                cluster_admin=200, super=200), None),
            ("POST", f"/hosts/{host}/activate", "<action/>", dict(
                none=404, vm_manager=404, user_role=403, cluster_admin=409, super=409), None),
            ("GET", f"/clusters/{other}", None, dict(none=404, vm_manager=404, user_role=200,
                                                    cluster_admin=200, super=200), None),
            ("GET", f"/clusters/{default}", None, dict(none=404, vm_manager=200, user_role=200,
                                                      cluster_admin=200, super=200), None),
            ("POST", "/datacenters", lambda: f"<data_center><name>dc{next(n)}</name>"
             "</data_center>", dict(none=403, vm_manager=403, user_role=403,
                                    cluster_admin=403, super=201), None),
            ("POST", "/users", lambda: f"<user><user_name>u{next(n)}@internal</user_name>"
             "<password>pw-123456</password></user>", dict(
                none=403, vm_manager=403, user_role=403, cluster_admin=403, super=201), None),
            ("GET", "/permissions", None, dict(none=403, vm_manager=403, user_role=200,
                                               cluster_admin=200, super=200), None),
            ("POST", "/roles", lambda: f"<role><name>r{next(n)}</name><permits><permit>"
             "<name>login</name></permit></permits></role>", dict(
                none=403, vm_manager=403, user_role=403, cluster_admin=403, super=201), None),
            ("DELETE", f"/vms/{vm3}", None, dict(none=404, vm_manager=404, user_role=403,
                                                 cluster_admin=403, super=200), None),
        ]
        failures = []
        for method, path, body, expected, cleanup in matrix:
            for role in ROLES:
                c = clients[role]
                data = body() if callable(body) else body
                if method == "GET":
                    r = await c.get(path)
                elif method == "POST":
                    r = await c.post(path, data or "<action/>")
                elif method == "PUT":
                    r = await c.put(path, data or "")
                else:
                    r = await c.delete(path)
                if r.status != expected[role]:
                    failures.append(f"{role:14} {method} {path}: {r.status} (want "
                                    f"{expected[role]}) {r.text[:160]}")
                if r.status < 300 and cleanup is not None:
                    await cleanup()
                if r.status >= 400:
                    assert r.content_type.startswith("application/xml") and "<fault>" in r.text
        assert not failures, "\n".join(failures)

        # What each one sees in the collections (filtered views).
        async def names(role: str, coll: str, tag: str = "name") -> list[str]:
            r = await clients[role].get(f"/{coll}", headers={"Accept": "application/json"})
            assert r.status == 200 and r.content_type.startswith("application/json")
            (items,) = r.json().values() if r.json() else ([],)
            return sorted(i[tag] for i in items)
        assert await names("none", "vms") == []
        assert await names("vm_manager", "vms") == ["vm1"]
        assert "vm1" in await names("user_role", "vms")
        assert await names("none", "hosts") == []
        assert await names("vm_manager", "clusters") == ["Default"]
        assert await names("none", "users", "principal") == ["none"]
        assert len(await names("super", "users", "principal")) > 5
        # Filter: true turns even an administrator's view into the filtered one.
        r = await clients["cluster_admin"].get("/vms", headers={"Filter": "true"})
        assert "vm3" not in r.text and "vm1" in r.text
    finally:
        await admin.session.close()


async def test_users_do_not_see_each_others_vms(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    default = str(await engine.s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    admin = await client_for(engine)
    try:
        ids = {}
        clients = {}
        for who in ("ann", "ben"):
            uid = await add_user(engine, who)
            await grant(engine, uid, VM_CREATOR_ROLE_ID, "cluster", default)
            c = admin.as_user(None)
            await c.login(f"{who}@internal", "secret-pw")
            clients[who] = c
            r = await c.post("/vms", f"<vm><name>{who}-vm</name><cluster><name>Default</name>"
                             "</cluster><template><name>Blank</name></template></vm>")
            assert r.status == 201, r.text
            ids[who] = re.search(r'<vm href="[^"]+" id="([^"]+)"', r.text).group(1)
        ann, ben = clients["ann"], clients["ben"]
        assert re.findall(r"<name>([^<]*)</name>", (await ann.get("/vms")).text) == ["ann-vm"]
        assert (await ann.get(f"/vms/{ids['ben']}")).status == 404
        assert (await ann.post(f"/vms/{ids['ben']}/start")).status == 404
        assert (await ann.delete(f"/vms/{ids['ben']}")).status == 404
        assert (await ann.get(f"/vms/{ids['ben']}/snapshots")).status == 404
        # The creator manages their own VM (UserVmManager, granted on creation).
        r = await ann.post(f"/vms/{ids['ann']}/snapshots",
                           "<snapshot><description>mine</description></snapshot>")
        assert r.status == 201
        r = await ann.get(f"/vms/{ids['ann']}/permissions")
        assert USER_VM_MANAGER_ROLE_ID in r.text
        # Delegation: ann may share her VM, but only with roles she holds herself.
        ben_id = await engine.s.pool.fetchval("SELECT id FROM users WHERE principal='ben'")
        r = await ann.post(f"/vms/{ids['ann']}/permissions",
                           f'<permission><role><name>UserVmManager</name></role>'
                           f'<user id="{ben_id}"/></permission>')
        assert r.status == 201, r.text
        assert (await ben.get(f"/vms/{ids['ann']}")).status == 200
        r = await ann.post(f"/vms/{ids['ann']}/permissions",
                           f'<permission><role><name>SuperUser</name></role>'
                           f'<user id="{ben_id}"/></permission>')
        assert r.status == 403, r.text
        # Removing a user ends their sessions at once.
        r = await admin.as_user(await admin.login()).delete(f"/users/{ben_id}")
        assert r.status == 200
        assert (await ben.get("/vms")).status == 401
    finally:
        await admin.session.close()


async def test_every_route_is_protected(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    public = {"/ovirt-engine/sso/oauth/token", "/ovirt-engine/services/sso-logout",
              "/ovirt-engine/services/pki-resource"}
    client = await client_for(engine)
    try:
        assert engine.api is not None and engine.api.runner is not None
        app = engine.api.runner.app
        seen = 0
        for route in app.router.routes():
            if route.method == "HEAD":
                continue
            policy = policy_of(route.handler)
            path = getattr(route.handler, "ov_path", None)
            assert policy is not None and path is not None, f"unprotected route {route}"
            concrete = re.sub(r"\{id:[^}]*\}", "12", path)
            concrete = re.sub(r"\{\w+\}", str(uuid.uuid4()), concrete)
            r = await client.raw(route.method, concrete, data=b"<x/>",
                                 headers={"Content-Type": "application/xml"})
            if path in public:
                assert policy.kind == "public"
                assert r.status != 401, (route.method, path)
            else:
                assert policy.kind != "public", path
                assert r.status == 401, (route.method, path, r.status, r.text)
                assert "<fault>" in r.text
            seen += 1
        assert seen > 60
        # SUPER_USER is what admin@internal holds on the system.
        assert await engine.s.pool.fetchval(
            "SELECT count(*) FROM permissions WHERE role_id=$1 AND object_type='system'",
            uuid.UUID(SUPER_USER_ROLE_ID)) == 1
    finally:
        await client.session.close()
