"""``create_app(settings)``: the FastAPI application of the service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text

from computenet.api import errors
from computenet.api.batcher import SubmitBatcher
from computenet.api.deps import ServiceState
from computenet.api.errors import error_json
from computenet.api.routers import (
    admin,
    carbon_aware,
    datasets,
    grid,
    inference,
    jobs,
    market,
    quotas,
    sites,
)
from computenet.api.schemas import Health
from computenet.control.leader import Leadership, describe
from computenet.control.lifecycle import STATES
from computenet.control.metrics import LoopMetrics
from computenet.control.sites import build_site_executors
from computenet.settings import Settings
from computenet.store.repository import Repository, migrate, open_engine

log = logging.getLogger("computenet.api")


class BodyLimit:
    """Pure ASGI middleware: bodies over ``limit`` bytes answer 413 before parsing."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Any, receive: Any, send: Any) -> None:
        resp = error_json(413, "too_large", f"request body over {self.limit} bytes")
        await resp(scope, receive, send)


class CountRequests:
    """Pure ASGI middleware counting responses by method and status (``BaseHTTPMiddleware``
    would cost a task and a queue per request on the hot path)."""

    def __init__(self, app: Any, counter: Any) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.counter.labels(scope["method"], str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


class _TooLarge(Exception):
    pass


def load_network_or_none(
    name: str, green_supply: str = "declared", carbon_model: str = "annual"
) -> Any:
    """The network for sites and planning. None (logged) if there is no catalog at all;
    an unknown name or a malformed file raises (the operator must fix ``--network``)."""
    import computenet.catalog

    load = getattr(computenet.catalog, "load_network", None)
    if load is None:
        log.warning("no network catalog; sites are empty and jobs run here, unplanned")
        return None
    return load(name, green_supply=green_supply, carbon_model=carbon_model)


def install_network_enums(app: FastAPI, network: Any) -> None:
    """Name the loaded network's site ids and accelerator types in /openapi.json, so the
    schema itself tells a client (and a schema-driven fuzzer) which values exist."""
    base = app.openapi
    sites = sorted(s.id for s in network.sites)
    accs = sorted(network.accelerators)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        comps = schema["components"]["schemas"]
        comps["JobIn"]["properties"]["accelerator_types"]["items"]["enum"] = accs
        comps["DatasetIn"]["properties"]["home_site"]["enum"] = sites
        comps["TenantIn"]["properties"]["sites"]["items"]["enum"] = sites
        comps["ProviderSitesIn"]["properties"]["sites"]["items"]["enum"] = sites
        for name in ("OfferIn", "CertificateIn"):
            if name in comps:
                comps[name]["properties"]["site_id"]["enum"] = sites
                comps[name]["properties"]["accelerator"]["enum"] = accs
        for branch in comps["SiteSignalsIn"]["properties"]["capacity"]["anyOf"]:
            if branch.get("type") == "object":
                branch["propertyNames"] = {"enum": accs}
        for path, ops in schema["paths"].items():  # Carbon Aware SDK locations: site ids
            if path.startswith("/v1/carbon-aware/emissions"):
                for param in ops["get"]["parameters"]:
                    if param["name"] == "location":
                        p = param["schema"]
                        (p["items"] if p.get("type") == "array" else p)["enum"] = sites
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def check_names(settings: Settings) -> None:
    """Fail at start, not on every loop tick, on an unknown policy or executor."""
    from computenet.errors import UnknownNameError
    from computenet.executors.registry import executor_class

    executor_class(settings.executor, source="--executor")
    try:
        from computenet.engine import POLICIES
    except ImportError:  # no engine yet: the loop falls back and never reads the policy
        return
    if settings.policy not in POLICIES:
        raise UnknownNameError("policy", settings.policy, POLICIES, source="--policy")
    from computenet.engine.planner import SEGMENTED
    from computenet.errors import InputError

    if settings.policy in SEGMENTED:
        raise InputError(
            f"policy {settings.policy!r} pauses and resumes jobs, which the service's "
            "executors do not do yet (it runs in `computenet simulate`)",
            source="--policy",
            fix="use a policy that places each job in one stretch, e.g. greedy",
        )


def service_health(st: ServiceState, database: str) -> dict[str, Any]:
    """What /healthz answers: ``status`` is ``ok`` or why the service is unhealthy."""
    now = time.time()
    control = st.loop
    stale_after_s = st.settings.loop_stale_after_s
    if control is not None:
        sites = control.health.snapshot()
        last = control.last_tick_s
        age_s = now - (last if last is not None else control.started_s)
        loop = {"runs_here": True, "last_tick_s": last, "age_s": age_s}
    else:  # another process runs the loop: what it last recorded
        saved = st.repo.site_health()
        sites = [dict(v, site_id=k, reachable=v["up"]) for k, v in sorted(saved.items())]
        loop = {"runs_here": False, "last_tick_s": None, "age_s": None}
    problems = []
    if control is not None and age_s > stale_after_s:
        problems.append(f"no loop tick completed for {age_s:.0f} s (limit {stale_after_s:g} s)")
    if sites and not any(s["up"] for s in sites):
        problems.append("every site's executor is down")
    return {
        "status": "; ".join(problems) or "ok",
        "database": database,
        "loop": dict(loop, stale_after_s=stale_after_s),
        "sites": sites,
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: opens the database and applies migrations now; the batch writer and
    the live loop start with the app's lifespan."""
    settings = settings or Settings()
    check_names(settings)
    engine = open_engine(settings.db_url)
    migrate(engine)
    repo = Repository(engine)
    if settings.admin_token:
        repo.ensure_admin_token(settings.admin_token)
    batcher = SubmitBatcher(repo, settings.batch_window_s, settings.batch_max)
    st = ServiceState(repo=repo, batcher=batcher, settings=settings)
    st.network = load_network_or_none(
        settings.network, settings.green_supply, settings.carbon_model
    )
    # Built now so a bad executor kind or option stops `serve` with the site and the fix.
    st.executors = build_site_executors(st.network, settings)

    registry = CollectorRegistry()
    requests_total = Counter(
        "computenet_http_requests_total", "HTTP requests", ["method", "status"], registry=registry
    )
    jobs_by_state = Gauge("computenet_jobs", "jobs by state", ["state"], registry=registry)
    loop_metrics = LoopMetrics(registry)
    loop_leader = Gauge(
        "computenet_loop_leader",
        "1 while this process holds the leader lease and runs the control loop, else 0",
        registry=registry,
    )
    # Several processes may serve one database; only the lease holder runs the loop.
    leadership = (
        Leadership(repo, settings.leader_lease_s, settings.leader_renew_s)
        if settings.run_loop
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.group_commit:
            await batcher.start()
        loop_task = lease_task = None
        if leadership is not None:
            from computenet.control.loop import ControlLoop

            control = ControlLoop(
                repo,
                settings,
                st.network,
                executors=st.executors,
                metrics=loop_metrics,
                leadership=leadership,
            )
            st.loop = control
            lease_task = asyncio.create_task(leadership.run_forever())
            loop_task = asyncio.create_task(control.run_forever())
        try:
            yield
        finally:
            for task in (loop_task, lease_task):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if st.loop is not None:
                st.loop.close()
            if leadership is not None:  # hand the loop over now, not when the lease lapses
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(leadership.release)
            await batcher.stop()
            engine.dispose()  # the pool's connections go back to the database now

    app = FastAPI(
        title="computenet",
        version="1",
        summary="Multi-tenant job service of a computing-power network",
        lifespan=lifespan,
    )
    app.state.service = st
    errors.install(app)
    app.include_router(jobs.router)
    app.include_router(admin.router)
    app.include_router(sites.router)
    app.include_router(datasets.router)
    app.include_router(market.router)
    app.include_router(quotas.router)
    app.include_router(carbon_aware.router)
    app.include_router(grid.router)
    app.include_router(inference.router)

    from computenet.web import routes as dashboard

    dashboard.mount(app)  # the dashboard at / and its JSON at /web/api

    app.add_middleware(CountRequests, counter=requests_total)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    if st.network is not None:
        install_network_enums(app, st.network)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["ops"],
        responses={503: {"model": Health, "description": "the loop stalled or all sites down"}},
    )
    def healthz() -> JSONResponse:
        """The database answers; the loop's last completed tick (when this process runs
        it) and each site's executor. 503 when the loop has not completed a tick for
        ``loop_stale_after_s`` or when every site's executor is down."""
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        body = service_health(st, engine.dialect.name)
        body["leader"] = leadership.status() if leadership else describe(repo.leader_lease(), None)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    )
    def metrics() -> Response:
        """Prometheus metrics: HTTP responses by method and status, jobs by state, and
        whether this process runs the control loop (``computenet_loop_leader``)."""
        from sqlalchemy import func, select

        from computenet.store.models import JobRow

        with repo.sessions() as s:
            rows = s.execute(select(JobRow.state, func.count()).group_by(JobRow.state))
            counts = {state_name: int(n) for state_name, n in rows}
        for state_name in STATES:  # every state, so one that emptied reads 0, not its last value
            jobs_by_state.labels(state_name).set(counts.get(state_name, 0))
        loop_leader.set(1 if leadership is not None and leadership.leads() else 0)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
