"""/events (the audit log, newest first; `from=N` for entries after N) and
/jobs (commands and their steps)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...aaa.authz import SqlParams, parse_uuid, visible_condition
from ...errors import NotFound
from ..context import ctx, ident
from ..listing import Collection, list_rows, query_int
from ..policy import LOGIN, Routes
from ..render import API, b, ref, respond, respond_collection, ts
from ..search import Field

__all__ = ["add_routes", "EVENTS", "event_dict", "JOBS"]

EVENTS = Collection(
    kind="event", select="SELECT a.* FROM audit_log a", where="TRUE", id_col="a.id",
    cols={"user": "a.user_id", "vm": "a.vm_id", "host": "a.host_id", "cluster": "a.cluster_id",
          "dc": "a.data_center_id"},
    fields={"severity": Field("a.severity", "enum"), "type": Field("a.log_type", "int"),
            "code": Field("a.log_type", "int"), "message": Field("a.message"),
            "description": Field("a.message"), "vm": Field("a.vm_name"),
            "host": Field("a.host_name"), "user": Field("a.user_name"),
            "correlation_id": Field("a.correlation_id"), "id": Field("a.id", "int")},
    order="a.id DESC", prefix="Events", what="event")

JOBS = Collection(
    kind="job", select="SELECT j.* FROM jobs j", where="TRUE", id_col="j.id",
    cols={"owner": "j.owner_id"},
    fields={"status": Field("j.status", "enum"), "description": Field("j.description"),
            "correlation_id": Field("j.correlation_id"), "id": Field("j.id::text")},
    order="j.start_time DESC", prefix="Jobs", what="job")


def event_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    return {"href": f"{API}/events/{i}", "id": i, "description": r["message"],
            "code": str(r["log_type"]), "correlation_id": r["correlation_id"],
            "custom_id": r["custom_id"], "flood_rate": "30", "index": i, "origin": r["origin"],
            "severity": r["severity"], "time": ts(r["log_time"]),
            "cluster": ref("clusters", r["cluster_id"]),
            "data_center": ref("datacenters", r["data_center_id"]),
            "host": ref("hosts", r["host_id"]),
            "storage_domain": ref("storagedomains", r["storage_domain_id"]),
            "template": ref("templates", r["template_id"]),
            "user": ref("users", r["user_id"]), "vm": ref("vms", r["vm_id"])}


async def list_events(request: web.Request) -> web.Response:
    since = query_int(request, "from")
    if since is not None:
        rows = await list_rows(request, EVENTS, "a.id > $1", (since,))
    else:
        rows = await list_rows(request, EVENTS)
    return respond_collection(request, "events", "event", rows, event_dict)


async def _one(request: web.Request, coll: Collection, key: Any) -> Any:
    p = SqlParams()
    conds = [f"{coll.id_col} = {p(key)}"]
    who = ident(request)
    if who.filtered:
        conds.append(visible_condition(coll.kind, who.visibility(), p, coll.cols))
    return await ctx(request).s.pool.fetchrow(f"{coll.select} WHERE {' AND '.join(conds)}",
                                              *p.values)


async def get_event(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"event {raw} does not exist")
    row = await _one(request, EVENTS, int(raw))
    if row is None:
        raise NotFound(f"event {raw} does not exist")
    return respond(request, "event", event_dict(row))


def job_dict(r: Any) -> dict[str, Any]:
    i = str(r["id"])
    h = f"{API}/jobs/{i}"
    return {"href": h, "id": i, "description": r["description"],
            "link": [{"href": f"{h}/steps", "rel": "steps"}],
            "auto_cleared": b(r["auto_cleared"]), "end_time": ts(r["end_time"]),
            "external": b(r["external"]), "last_updated": ts(r["last_update"]),
            "start_time": ts(r["start_time"]), "status": r["status"],
            "owner": ref("users", r["owner_id"])}


def step_dict(r: Any) -> dict[str, Any]:
    i, job = str(r["id"]), str(r["job_id"])
    return {"href": f"{API}/jobs/{job}/steps/{i}", "id": i, "description": r["description"],
            "end_time": ts(r["end_time"]), "external": "false", "number": str(r["step_number"]),
            "start_time": ts(r["start_time"]), "status": r["status"], "type": r["step_type"],
            "job": ref("jobs", job)}


async def list_jobs(request: web.Request) -> web.Response:
    rows = await list_rows(request, JOBS)
    return respond_collection(request, "jobs", "job", rows, job_dict)


async def get_job(request: web.Request) -> web.Response:
    row = await _one(request, JOBS, parse_uuid(request.match_info["id"], "job"))
    if row is None:
        raise NotFound(f"job {request.match_info['id']} does not exist")
    return respond(request, "job", job_dict(row))


async def list_steps(request: web.Request) -> web.Response:
    job = await _one(request, JOBS, parse_uuid(request.match_info["id"], "job"))
    if job is None:
        raise NotFound(f"job {request.match_info['id']} does not exist")
    rows = await ctx(request).s.pool.fetch(
        "SELECT * FROM steps WHERE job_id = $1 ORDER BY step_number", job["id"])
    return respond_collection(request, "steps", "step", rows, step_dict)


def add_routes(r: Routes) -> None:
    api = "/ovirt-engine/api"
    r.get(f"{api}/events", list_events, LOGIN)
    r.get(f"{api}/events/{{id:\\d+}}", get_event, LOGIN)
    r.get(f"{api}/jobs", list_jobs, LOGIN)
    r.get(f"{api}/jobs/{{id}}", get_job, LOGIN)
    r.get(f"{api}/jobs/{{id}}/steps", list_steps, LOGIN)


