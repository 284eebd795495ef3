"""Fuzzing the JSON API with Hypothesis, driven by the OpenAPI description
the engine serves (/ovirt-engine/api/openapi.json): every operation, path
ids that exist and ids that do not, random search/max queries, bodies built
from the schemas and then mutated, and raw garbage. No response may be a 5xx,
and every error must be a JSON fault.

Runs without hosts: a 500 that reports a host-side failure (OperationFailed)
is not a fuzzing target, and without hosts no command reaches a host. The
event stream (long-lived) is left out.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.fixtures.rest import ApiClient

SKIP_PATHS = {"/ovirt-engine/api/events/stream"}
JUNK = ["", "Default", "Blank", "0", "-1", "true", "false", "x" * 300, "9" * 30, "<a>", "&",
        "name=*", "status=up or name=x", "'; DROP TABLE vms; --", "\u0000", "ü", "1.5",
        "00000000-0000-0000-0000-000000000000"]


def _scalar(ids: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.text(max_size=40), st.sampled_from(JUNK + ids),
                     st.integers(min_value=-2**63, max_value=2**63 - 1), st.booleans(), st.none(),
                     st.floats(allow_nan=False))


def _from_schema(schema: dict[str, Any], ids: list[str], depth: int = 0) -> Any:
    if depth > 4:
        return _scalar(ids)
    kind = schema.get("type")
    if kind == "object":
        props = {k: _from_schema(v, ids, depth + 1)
                 for k, v in schema.get("properties", {}).items()}
        return st.one_of(st.fixed_dictionaries({}, optional=props), _scalar(ids),
                         st.lists(_scalar(ids), max_size=2)) if depth else \
            st.fixed_dictionaries({}, optional=props)
    if kind == "array":
        return st.one_of(st.lists(_from_schema(schema.get("items", {}), ids, depth + 1),
                                  max_size=3), _scalar(ids))
    return _scalar(ids)


async def _known_ids(admin: ApiClient) -> list[str]:
    pool = admin.engine.s.pool
    rows = await pool.fetch("""
        SELECT id::text FROM clusters UNION ALL SELECT id::text FROM data_centers
        UNION ALL SELECT id::text FROM vm_static UNION ALL SELECT id::text FROM roles
        UNION ALL SELECT id::text FROM users UNION ALL SELECT id::text FROM networks
        UNION ALL SELECT id::text FROM permissions UNION ALL SELECT id::text FROM jobs""")
    return [r[0] for r in rows] + [str(i) for i in range(1, 5)]


async def test_fuzz_json_api(admin: ApiClient) -> None:
    loop = asyncio.get_running_loop()
    # Some state to hit: a VM with a snapshot, a role, a user.
    for xml in ("<vm><name>fz</name><cluster><name>Default</name></cluster></vm>",):
        assert (await admin.post("/vms", xml)).status == 201
    r = await admin.get("/openapi.json")
    assert r.status == 200
    doc = r.json()
    ops = [(method.upper(), path, op) for path, item in doc["paths"].items()
           for method, op in item.items() if path not in SKIP_PATHS]
    assert len(ops) > 60
    ids = await _known_ids(admin)
    json_headers = {"Accept": "application/json", "Content-Type": "application/json"}
    seen: dict[int, int] = {}

    def call(method: str, path: str, **kw: Any) -> Any:
        fut = asyncio.run_coroutine_threadsafe(admin.raw(method, path, **kw), loop)
        return fut.result(timeout=60)

    @settings(max_examples=int(os.environ.get("OV_FUZZ_EXAMPLES", "700")), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        method, path, op = data.draw(st.sampled_from(ops), label="operation")
        concrete = path
        for p in op.get("parameters", []):
            if p["in"] == "path":
                value = data.draw(st.one_of(st.sampled_from(ids), st.uuids().map(str),
                                            st.text(alphabet="abc123-_.%~", min_size=1,
                                                    max_size=20)), label=p["name"])
                concrete = concrete.replace("{" + p["name"] + "}", value)
        query = {}
        for p in op.get("parameters", []):
            if p["in"] == "query" and data.draw(st.booleans()):
                query[p["name"]] = str(data.draw(_scalar(ids)))
        kw: dict[str, Any] = {"headers": dict(json_headers), "params": query,
                              # public routes (SSO) get no token: logout would end ours
                              "auth": op.get("security") != []}
        body_schema = op.get("requestBody", {}).get("content", {}).get(
            "application/json", {}).get("schema")
        if method in ("POST", "PUT"):
            choice = data.draw(st.integers(0, 3))
            if body_schema is not None and choice < 3:
                body = data.draw(_from_schema(body_schema, ids), label="body")
                kw["data"] = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS) \
                    if choice < 2 else orjson.dumps({"wrapped": body})
            else:
                kw["data"] = data.draw(st.binary(max_size=300), label="raw body")
                kw["headers"]["Content-Type"] = data.draw(st.sampled_from(
                    ["application/xml", "application/json", "text/plain"]))
        r = call(method, concrete, **kw)
        seen[r.status] = seen.get(r.status, 0) + 1
        assert r.status < 500, (method, concrete, kw, r.status, r.text[:400])
        if r.status >= 400:
            assert r.content_type.startswith("application/json"), (method, concrete, r.text)
            fault = r.json()
            if "/sso/" in path:  # SSO errors have the SSO shape the SDK reads
                assert set(fault) == {"error_code", "error"}, fault
            else:
                assert set(fault) == {"reason", "detail"}, fault

    await asyncio.to_thread(fuzz)
    assert seen.get(200, 0) + seen.get(201, 0) > 20, seen
    assert (await admin.get("")).status == 200
    assert await admin.engine.s.pool.fetchval("SELECT count(*) FROM entity_locks") == 0
    assert uuid  # ids above are uuids
