"""The dashboard's routes: the page at ``/``, its static files, and its JSON at ``/web/api``.

The page is public (it holds no data); every JSON call takes the same bearer token as the
REST API (``computenet.api.deps.principal``), rate limits included, and reads only what
the caller's ``Scope`` allows.
"""

from __future__ import annotations

import asyncio
import json
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from computenet.api.deps import ServiceState, principal, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import JobState
from computenet.store.repository import Principal, now_s
from computenet.web import queries, views
from computenet.web.cache import ViewCache
from computenet.web.queries import JobFilter, Scope

STATIC = Path(str(files("computenet.web") / "static"))
VENDOR_FILES = ("echarts.min.js", "china.json", "world.json")
STATIC_PREFIX = "/dashboard/static"

router = APIRouter(prefix="/web/api", tags=["dashboard"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]


def _json(body: Any) -> Response:
    # Plain json.dumps: the bodies are plain dicts of JSON types already, so FastAPI's
    # encoder pass over every value is not needed.
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


async def _scope(request: Request, who: Principal) -> tuple[ServiceState, Scope]:
    st = state(request)
    return st, await asyncio.to_thread(queries.scope_of, st.repo, who)


def _cache(request: Request) -> ViewCache:
    cache: ViewCache = request.app.state.dashboard_cache
    return cache


def _scope_key(scope: Scope) -> tuple[str | None, tuple[str, ...] | None]:
    sites = None if scope.site_ids is None else tuple(sorted(scope.site_ids))
    return scope.tenant_id, sites


def _network_body(st: ServiceState, scope: Scope, cache: ViewCache, hours: int) -> dict[str, Any]:
    """The map's view, recomputed when the data's version moves; health and the time are
    added fresh (heartbeats are not audited)."""
    t = now_s()
    key = ("network", _scope_key(scope), views.hour_floor(t), hours)
    body: dict[str, Any] = cache.get(
        key,
        queries.data_version(st.repo),
        lambda: views.network_view(st.repo, st.network, scope, {}, t, hours),
    )
    health = _health(st)
    sites = [dict(site, health=health.get(site["id"])) for site in body["sites"]]
    return dict(body, now_s=t, sites=sites)


def _totals_body(
    st: ServiceState, scope: Scope, cache: ViewCache, days_back: int, days_ahead: int
) -> dict[str, Any]:
    t = now_s()
    key = ("totals", _scope_key(scope), views.hour_floor(t), days_back, days_ahead)
    body: dict[str, Any] = cache.get(
        key,
        queries.data_version(st.repo),
        lambda: views.totals_view(st.repo, st.network, scope, t, days_back, days_ahead),
    )
    return dict(body, now_s=t)


def _health(st: ServiceState) -> dict[str, dict[str, Any]]:
    """Each site's executor health: live from the loop in this process, else as the loop
    last recorded it in the database."""
    if st.loop is not None:
        return {h["site_id"]: h for h in st.loop.health.snapshot()}
    return {k: dict(v, site_id=k, reachable=v["up"]) for k, v in st.repo.site_health().items()}


@router.get("/me")
async def me(request: Request, who: Who) -> Response:
    """Who the token belongs to and what the dashboard shows them."""
    st, scope = await _scope(request, who)
    tenants = await asyncio.to_thread(queries.tenant_names, st.repo, scope)
    name = next((t["name"] for t in tenants if t["id"] == who.tenant_id), None)
    return _json(
        {
            "tenant_id": who.tenant_id,
            "name": name,
            "role": who.role,
            "sites": None if scope.site_ids is None else sorted(scope.site_ids),
            "tenants": tenants,
            "network": st.network.name if st.network is not None else None,
        }
    )


@router.get("/network")
async def network(
    request: Request, who: Who, hours: Annotated[int, Query(ge=1, le=168)] = 48
) -> Response:
    """Sites on the map with hourly price, carbon and planned load for the next ``hours``
    hours, executor health, links and data moved. A provider sees its own sites."""
    st, scope = await _scope(request, who)
    if st.network is None:
        return _json({"network": None, "map": "world", "sites": [], "links": [], "hours": 0})
    body = await asyncio.to_thread(_network_body, st, scope, _cache(request), hours)
    return _json(body)


@router.get("/jobs")
async def jobs(
    request: Request,
    who: Who,
    state_: Annotated[JobState | None, Query(alias="state")] = None,
    tenant: Annotated[str | None, Query(max_length=40)] = None,
    site: Annotated[str | None, Query(max_length=80)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """A page of the caller's jobs (all for an admin), newest first, with cost and carbon.
    ``q`` matches part of a name or id; ``tenant`` filters (admin only)."""
    st, scope = await _scope(request, who)
    flt = JobFilter(state=state_, tenant_id=tenant, site_id=site, text=q or None)
    items, total = await asyncio.to_thread(queries.list_jobs, st.repo, scope, flt, limit, offset)
    return _json({"items": items, "total": total, "limit": limit, "offset": offset})


@router.get("/jobs/{job_id}")
async def job(job_id: str, request: Request, who: Who) -> Response:
    """One job: its fields, where and why (the explanation), its history and datasets."""
    st, scope = await _scope(request, who)
    body = await asyncio.to_thread(queries.job_detail, st.repo, scope, job_id)
    body["datasets_detail"] = views.with_data_rules(body["datasets_detail"])
    return _json(views.with_reasons(body))


@router.get("/totals")
async def totals(
    request: Request,
    who: Who,
    days_back: Annotated[int, Query(ge=0, le=90)] = 7,
    days_ahead: Annotated[int, Query(ge=0, le=14)] = 2,
) -> Response:
    """Hourly cost, carbon, energy and utilisation of the caller's placed jobs."""
    st, scope = await _scope(request, who)
    body = await asyncio.to_thread(_totals_body, st, scope, _cache(request), days_back, days_ahead)
    return _json(body)


@router.get("/audit")
async def audit(
    request: Request,
    who: Who,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Audit entries, newest first; ``q`` matches the action, object or actor. A tenant
    sees its own actions and what happened to its jobs and datasets."""
    st, scope = await _scope(request, who)
    items = await asyncio.to_thread(queries.search_audit, st.repo, scope, q, limit, offset)
    return _json({"items": items, "limit": limit, "offset": offset})


@router.get("/datasets")
async def datasets(request: Request, who: Who) -> Response:
    """The caller's datasets (all for an admin), newest first, each with its data rule."""
    st, scope = await _scope(request, who)
    items = await asyncio.to_thread(queries.datasets_of, st.repo, scope)
    return _json({"items": views.with_data_rules(items)})


@router.get("/changes")
async def changes(
    request: Request, who: Who, since: Annotated[int | None, Query(ge=0)] = None
) -> Response:
    """What changed after the audit cursor ``since``: visible jobs whose state changed,
    and the cursor to ask with next (the page polls this)."""
    st, scope = await _scope(request, who)
    return _json(await asyncio.to_thread(queries.changes_since, st.repo, scope, since))


def assets_missing() -> list[str]:
    return [name for name in VENDOR_FILES if not (STATIC / "vendor" / name).is_file()]


MISSING_PAGE = """<!doctype html><meta charset="utf-8"><title>computenet</title>
<h1>The dashboard's front-end files are missing</h1>
<p>They come from npm at install. Run <code>python hatch_build.py</code> in the source tree
(needs Node.js and npm), or reinstall with <code>pip install -e .</code>. Missing: {missing}.</p>
"""


def index_html(network: Any) -> str:
    """The page, naming the map file of the loaded network so the browser fetches it
    while the scripts load (the map kind never changes while the service runs)."""
    kind = views.map_kind(network) if network is not None else "world"
    return (STATIC / "index.html").read_text(encoding="utf-8").replace("{{map}}", kind)


def mount(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` of ``app``."""
    page = index_html(app.state.service.network)
    app.state.dashboard_cache = ViewCache()

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        missing = assets_missing()
        if missing:
            return HTMLResponse(MISSING_PAGE.format(missing=", ".join(missing)), status_code=503)
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC), name="dashboard-static")
    app.include_router(router)
