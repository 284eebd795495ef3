"""The REST edge: faults for every error (never HTML, never without a
Content-Type), SSO replies, content negotiation, path merging, the CA
certificate, CRUD on the admin collections, host enrollment by REST."""

from __future__ import annotations

import re

from protocol import pki

from ovengine.localhosts import LocalAgent
from tests.fixtures.engine import EngineFactory, wait_until
from tests.fixtures.rest import ApiClient, client_for


def _id(xml: str, tag: str) -> str:
    m = re.search(rf'<{tag} href="[^"]+" id="([^"]+)"', xml)
    assert m, xml[:300]
    return m.group(1)


async def test_faults_and_transport(admin: ApiClient) -> None:
    anon = admin.as_user(None)
    r = await anon.get("/vms")
    assert r.status == 401 and r.content_type.startswith("application/xml")
    assert "<fault><reason>Unauthorized</reason>" in r.text
    r = await anon.get("/vms", headers={"Authorization": "Bearer not-a-token"})
    assert r.status == 401 and "<fault>" in r.text
    for path, status in (("/nothing-here", 404), ("/vms/not-a-uuid", 404),
                         ("/events/12345678", 404)):
        r = await admin.get(path)
        assert r.status == status and "<fault>" in r.text, (path, r.status, r.text)
    r = await admin.raw("PATCH", "/ovirt-engine/api/vms")
    assert r.status == 405 and "<fault>" in r.text and r.headers.get("Allow")
    r = await admin.raw("GET", "/not-the-api")
    assert r.status == 404 and "<fault>" in r.text
    big = b"<vm>" + b"x" * (65 * 1024 * 1024) + b"</vm>"
    r = await admin.raw("POST", "/ovirt-engine/api/vms", data=big,
                        headers={"Content-Type": "application/xml"})
    assert r.status == 413 and "<fault>" in r.text
    r = await admin.post("/vms", "<vm><name>x</name")
    assert r.status == 400 and "malformed XML" in r.text
    r = await admin.post("/vms", "<!DOCTYPE x [<!ENTITY a 'b'>]><vm><name>&a;</name></vm>")
    assert r.status == 400
    r = await admin.post("/vms", "<vm><name>m</name><memory>256MiB</memory><cluster><name>"
                         "Default</name></cluster></vm>")
    assert r.status == 400 and "memory" in r.text
    r = await admin.post("/vms", "<vm><name>m</name><cluster><name>Nope</name></cluster></vm>")
    assert r.status == 400 and "cluster" in r.text
    r = await admin.get("/vms?search=nosuchfield%3Dx")
    assert r.status == 400 and "search" in r.text
    r = await admin.get("/vms?max=lots")
    assert r.status == 400 and "max" in r.text
    # '//' and a trailing '/' reach the same resource, without a redirect.
    for path in ("//vms", "/vms/", "//clusters//", "/"):
        r = await admin.get(path, allow_redirects=False)
        assert r.status == 200, (path, r.status)
    # JSON only for a client that asks for JSON and not XML.
    r = await admin.get("/clusters", headers={"Accept": "application/json"})
    assert r.content_type.startswith("application/json")
    assert r.json()["cluster"][0]["name"] == "Default"
    r = await admin.raw("GET", "/ovirt-engine/api/clusters",
                        headers=[("Accept", "application/json"),  # type: ignore[arg-type]
                                 ("Accept", "application/xml")])
    assert r.content_type.startswith("application/xml")
    r = await admin.get("/nothing", headers={"Accept": "application/json"})
    assert r.status == 404 and r.json()["reason"] == "Not Found"
    r = await admin.raw("POST", "/ovirt-engine/api/datacenters", data=b'{"data_center": '
                        b'{"name": "jsondc", "version": {"major": "4", "minor": "8"}}}',
                        headers={"Content-Type": "application/json",
                                 "Accept": "application/json"})
    assert r.status == 201 and r.json()["version"] == {"major": "4", "minor": "8"}
    # Correlation-Id becomes the command's flow id (and the event's correlation id).
    r = await admin.post("/datacenters", "<data_center><name>dc-corr</name></data_center>",
                         headers={"Correlation-Id": "corr-42"})
    assert r.status == 201
    r = await admin.get("/events?search=correlation_id%3Dcorr-42")
    assert "dc-corr" in r.text


async def test_sso_and_pki(admin: ApiClient) -> None:
    anon = admin.as_user(None)
    r = await anon.raw("POST", "/ovirt-engine/sso/oauth/token", auth=False, data={
        "grant_type": "password", "scope": "ovirt-app-api", "username": "admin@internal",
        "password": "nope"})
    assert r.content_type.startswith("application/json")
    assert r.json()["error_code"] == "access_denied" and "error" in r.json()
    r = await anon.raw("POST", "/ovirt-engine/sso/oauth/token", auth=False, data={
        "grant_type": "urn:ovirt:params:oauth:grant-type:http"})
    assert r.json()["error_code"] == "unsupported_grant_type"
    token = await anon.login()
    good = anon.as_user(token)
    assert (await good.get("")).status == 200
    r = await anon.raw("POST", "/ovirt-engine/services/sso-logout", auth=False,
                       data={"scope": "ovirt-app-api", "token": token})
    assert r.status == 200 and r.json() == {}
    assert (await good.get("")).status == 401
    r = await anon.raw("GET", "/ovirt-engine/services/pki-resource?resource=ca-certificate"
                       "&format=X509-PEM-CA", auth=False)
    assert r.status == 200 and pki.load_cert(r.body)
    assert r.body == admin.engine.s.ca.files.ca_cert.read_bytes()
    r = await anon.raw("GET", "/ovirt-engine/services/pki-resource?resource=secret", auth=False)
    assert r.status == 404 and "<fault>" in r.text
    # Basic authentication works too (curl -u).
    import base64
    cred = base64.b64encode(b"admin@internal:ov-test-admin").decode()
    r = await anon.get("/clusters", auth=False, headers={"Authorization": f"Basic {cred}"})
    assert r.status == 200 and "Default" in r.text


async def test_admin_collections_crud(admin: ApiClient) -> None:
    r = await admin.post("/datacenters", "<data_center><name>dc2</name><local>false</local>"
                         "<version><major>4</major><minor>8</minor></version></data_center>")
    assert r.status == 201, r.text
    dc = _id(r.text, "data_center")
    r = await admin.put(f"/datacenters/{dc}", "<data_center><description>second</description>"
                        "</data_center>")
    assert r.status == 200 and "<description>second</description>" in r.text
    r = await admin.get(f"/datacenters/{dc}/networks")
    assert "ovirtmgmt" in r.text
    r = await admin.post("/clusters", f'<cluster><name>c2</name><data_center id="{dc}"/>'
                         "<cpu><architecture>x86_64</architecture></cpu></cluster>")
    assert r.status == 201, r.text
    cl = _id(r.text, "cluster")
    r = await admin.post("/networks", "<network><name>blue</name><data_center><name>dc2</name>"
                         "</data_center><vlan><id>10</id></vlan></network>")
    assert r.status == 201, r.text
    net = _id(r.text, "network")
    assert (await admin.put(f"/networks/{net}", "<network><mtu>9000</mtu></network>")).status \
        == 200
    assert (await admin.delete(f"/datacenters/{dc}")).status == 409  # still has a cluster
    assert (await admin.delete(f"/clusters/{cl}")).status == 200
    assert (await admin.delete(f"/networks/{net}")).status == 200
    assert (await admin.delete(f"/datacenters/{dc}")).status == 200
    assert (await admin.get(f"/datacenters/{dc}")).status == 404
    # Roles, users, permissions.
    r = await admin.post("/roles", "<role><name>Starter</name><administrative>false"
                         "</administrative><permits><permit><name>run_vm</name></permit>"
                         "<permit id=\"1300\"/></permits></role>")
    assert r.status == 201, r.text
    role = _id(r.text, "role")
    r = await admin.get(f"/roles/{role}/permits")
    assert "<name>run_vm</name>" in r.text and "<name>login</name>" in r.text
    r = await admin.post("/users", "<user><user_name>carol@internal</user_name>"
                         "<password>carol-pw</password></user>")
    assert r.status == 201, r.text
    user = _id(r.text, "user")
    r = await admin.post("/users", "<user><user_name>dave@internal</user_name></user>")
    assert r.status == 400 and "password" in r.text
    r = await admin.post(f"/users/{user}/permissions", f'<permission><role id="{role}"/>'
                         "<cluster><name>Nope</name></cluster></permission>")
    assert r.status == 400 and "cluster" in r.text
    cluster = _id((await admin.get("/clusters")).text, "cluster")
    r = await admin.post(f"/users/{user}/permissions", f'<permission><role id="{role}"/>'
                         f'<cluster id="{cluster}"/></permission>')
    assert r.status == 201, r.text
    perm = _id(r.text, "permission")
    r = await admin.get(f"/clusters/{cluster}/permissions")
    assert perm in r.text
    assert (await admin.delete(f"/roles/{role}")).status == 409  # still granted
    assert (await admin.delete(f"/clusters/{cluster}/permissions/{perm}")).status == 200
    assert (await admin.delete(f"/roles/{role}")).status == 200
    r = await admin.get("/roles?search=name%3DSuperUser")
    assert "00000000-0000-0000-0000-000000000001" in r.text
    r = await admin.get("/permissions")
    assert "fdfc627c-d875-11e0-90f0-83df133b58cc" in r.text
    perm_admin = _id(r.text, "permission")
    assert (await admin.delete(f"/permissions/{perm_admin}")).status == 409  # the last one
    assert (await admin.delete("/users/fdfc627c-d875-11e0-90f0-83df133b58cc")).status == 409
    r = await admin.get("/jobs?max=5")
    assert r.status == 200 and "<job " in r.text
    job = _id(r.text, "job")
    assert "<step " in (await admin.get(f"/jobs/{job}/steps")).text


async def test_host_enrollment_by_rest(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    client = await client_for(engine)
    agent = LocalAgent(engines.base / "resthost", "resthost")
    engines.agents.append(agent)
    try:
        await client.login()
        csr = agent.certificate_request().decode()
        r = await client.post("/hosts", f"<host><name>resthost</name><address>{agent.address}"
                              f"</address><port>{agent.port}</port><cluster><name>Default"
                              f"</name></cluster><certificate_request>{csr}"
                              f"</certificate_request></host>")
        assert r.status == 201, r.text
        host = _id(r.text, "host")
        cert = re.search(r"<certificate><content>([^<]+)</content>", r.text).group(1)
        ca = re.search(r"<ca_certificate><content>([^<]+)</content>", r.text).group(1)
        agent.install_certificate(cert.encode(), ca.encode())
        await agent.start()
        await wait_until(lambda: engine.s.hosts.hosts[host].status == "up", 30, "host up")
        r = await client.get(f"/hosts/{host}")
        assert "<status>up</status>" in r.text and "<memory>" in r.text
        r = await client.get(f"/hosts/{host}/statistics")
        assert "memory.total" in r.text
        r = await client.post(f"/hosts/{host}/deactivate")
        assert r.status == 200 and "<status>complete</status>" in r.text and "<job " in r.text
        await wait_until(lambda: engine.s.hosts.hosts[host].status == "maintenance", 10,
                         "maintenance")
        assert (await client.post(f"/hosts/{host}/activate")).status == 200
        await wait_until(lambda: engine.s.hosts.hosts[host].status == "up", 10, "up again")
        assert (await client.delete(f"/hosts/{host}")).status == 409  # up: maintenance first
    finally:
        await client.session.close()
