"""LDAP as a second authentication domain, against the test's own slapd:
users log in through a bind, directory groups become `groups` rows, and a
permission granted to a group applies to its members."""

from __future__ import annotations

import asyncio
import re

import ovirtsdk4 as sdk

from ovengine.config import AuthConfig, LdapConfig
from tests.fixtures.engine import ADMIN_PASSWORD, EngineFactory
from tests.fixtures.rest import LDAP_USERS, Slapd, api_base, client_for


async def test_ldap_login_groups_and_permissions(engines: EngineFactory, slapd: Slapd) -> None:
    engine = await engines.start(serve_api=True, auth=AuthConfig(
        admin_password=ADMIN_PASSWORD, ldap=(LdapConfig(**slapd.config("ldap1")),)))
    admin = await client_for(engine)
    try:
        await admin.login()
        r = await admin.post("/vms", "<vm><name>shared</name><cluster><name>Default</name>"
                             "</cluster></vm>")
        assert r.status == 201
        alice, bob = admin.as_user(None), admin.as_user(None)
        await alice.login("alice@ldap1", LDAP_USERS["alice"])
        await bob.login("bob@ldap1", LDAP_USERS["bob"])
        r = await alice.raw("POST", "/ovirt-engine/sso/oauth/token", auth=False, data={
            "grant_type": "password", "username": "alice@ldap1", "password": "wrong"})
        assert r.json()["error_code"] == "access_denied"
        r = await alice.raw("POST", "/ovirt-engine/sso/oauth/token", auth=False, data={
            "grant_type": "password", "username": "mallory@ldap1", "password": "x"})
        assert r.json()["error_code"] == "access_denied"
        assert "<vms/>" in (await alice.get("/vms")).text
        # The directory user and their groups were recorded at login.
        r = await admin.get("/users?search=name%3Dalice")
        assert "<user_name>alice@ldap1</user_name>" in r.text and "alice@ov.test" in r.text
        alice_id = re.search(r'<user href="[^"]+" id="([^"]+)"', r.text).group(1)
        r = await admin.get(f"/users/{alice_id}/groups")
        assert "<name>vm-operators</name>" in r.text

        # A group permission (UserRole on the system) applies to its members only.
        r = await admin.post("/groups", "<group><name>vm-operators</name><domain><name>ldap1"
                             "</name></domain></group>")
        assert r.status == 409  # recorded already by alice's login
        r = await admin.get("/groups?search=name%3Dvm-operators")
        gid = re.search(r'<group href="[^"]+" id="([^"]+)"', r.text).group(1)
        r = await admin.post("/groups", "<group><name>nosuch</name><domain><name>ldap1</name>"
                             "</domain></group>")
        assert r.status == 400
        r = await admin.post("/permissions", f'<permission><role><name>UserRole</name></role>'
                             f'<group id="{gid}"/></permission>')
        assert r.status == 201, r.text
        assert "<name>shared</name>" in (await alice.get("/vms")).text
        assert "<vms/>" in (await bob.get("/vms")).text

        # Adding a directory user by name looks them up; unknown names are refused.
        r = await admin.post("/users", "<user><user_name>bob@ldap1</user_name></user>")
        assert r.status == 409  # bob logged in already
        r = await admin.post("/users", "<user><user_name>nobody@ldap1</user_name></user>")
        assert r.status == 400
        r = await admin.post("/users", "<user><user_name>x@unknown</user_name></user>")
        assert r.status == 400 and "domain" in r.text

        # The official SDK logs in as a directory user as well.
        def sdk_list() -> list[str]:
            conn = sdk.Connection(url=f"{api_base(engine)}/ovirt-engine/api",
                                  username="alice@ldap1", password=LDAP_USERS["alice"],
                                  ca_file=str(engine.s.ca.files.ca_cert))
            try:
                return [v.name for v in conn.system_service().vms_service().list()]
            finally:
                conn.close()
        assert await asyncio.wait_for(asyncio.to_thread(sdk_list), 60) == ["shared"]
    finally:
        await admin.session.close()
