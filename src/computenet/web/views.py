"""What the dashboard's pages draw, built from the network, the posted feeds and the jobs.

Times are UTC epoch seconds; series are hourly, each value the mean over its hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from computenet.control import feeds
from computenet.model import HOUR_S, Jurisdiction, Network, Signal, Site
from computenet.store.repository import Repository
from computenet.web import queries
from computenet.web.queries import Scope

CHINA_JURISDICTIONS = frozenset({Jurisdiction.MAINLAND, Jurisdiction.HONG_KONG})
LINKS_PER_SITE = 2
"""Each site is drawn linked to its nearest few other places (by round-trip time): the
full mesh of a 19-site network (171 pairs) would hide the map."""


def load_scope(scope: Scope) -> str:
    """Whose jobs the load and totals add up (see ``queries._aggregate_scoped``)."""
    if scope.tenant_id is None:
        return "all tenants"
    return "all tenants at your sites" if scope.role == "provider" else "your jobs"


def hour_floor(t_s: int) -> int:
    return t_s - t_s % HOUR_S


def map_kind(network: Network) -> str:
    """``china`` (a map of China's provinces) when every site is in China, else ``world``."""
    return "china" if all(s.jurisdiction in CHINA_JURISDICTIONS for s in network.sites) else "world"


def spread(
    starts: np.ndarray, ends: np.ndarray, rates: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """For each item (row) the integral over each bucket ``[edges[k], edges[k+1])`` of
    ``rates`` held over ``[starts, ends)``: shape (items, buckets), in rate x seconds."""
    if starts.size == 0:
        return np.zeros((0, max(0, edges.size - 1)))
    span = np.maximum(ends - starts, 0)[:, None]
    held = np.clip(edges[None, :] - starts[:, None], 0, span)  # seconds held by each edge
    return np.diff(held, axis=1) * rates[:, None]


def _series(signal: Signal, start_s: int, hours: int) -> list[float | None]:
    try:
        values = signal.window(start_s, start_s + hours * HOUR_S, HOUR_S)
    except (ValueError, KeyError, IndexError):  # a signal that does not cover the window
        return [None] * hours
    return [None if not np.isfinite(v) else round(float(v), 4) for v in values]


def _load(
    runs: Sequence[tuple[str, int, int, int]], site_ids: Sequence[str], edges: np.ndarray
) -> dict[str, list[float]]:
    """Mean accelerators busy at each site in each hour."""
    index = {s: i for i, s in enumerate(site_ids)}
    kept = [r for r in runs if r[0] in index]
    out = np.zeros((len(site_ids), edges.size - 1))
    if kept:
        arr = np.array([(index[r[0]], r[1], r[2], r[3]) for r in kept], dtype=np.float64)
        per_run = spread(arr[:, 2], arr[:, 3], arr[:, 1], edges) / HOUR_S
        np.add.at(out, arr[:, 0].astype(np.int64), per_run)
    return {s: [round(float(v), 3) for v in out[i]] for i, s in enumerate(site_ids)}


def _links(network: Network, sites: Sequence[Site]) -> list[dict[str, Any]]:
    """Each visible site's nearest ``LINKS_PER_SITE`` other sites, with RTT and bandwidth."""
    links = network.links
    seen: set[frozenset[str]] = set()
    out = []
    ids = [s.id for s in network.sites]
    for site in sites:
        near = sorted(
            ((links.latency(site.id, other), other) for other in ids if other != site.id),
            key=lambda pair: (pair[0].rtt_ms, pair[1]),
        )
        for est, other in near[:LINKS_PER_SITE]:
            key = frozenset((site.id, other))
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "a": min(key),
                    "b": max(key),
                    "rtt_ms": round(est.rtt_ms, 2),
                    "kind": est.kind,
                    "bandwidth_gbps": links.bandwidth_gbps(site.id, other),
                }
            )
    return sorted(out, key=lambda link: (link["a"], link["b"]))


def _site_row(site: Site, price: list[float | None], carbon: list[float | None]) -> dict[str, Any]:
    accelerators: dict[str, int] = {}
    for pool in site.pools:
        accelerators[pool.accelerator] = accelerators.get(pool.accelerator, 0) + pool.count
    return {
        "id": site.id,
        "name": site.name,
        "hub": site.hub,
        "province": site.province,
        "jurisdiction": str(site.jurisdiction),
        "role": str(site.role),
        "latitude": site.latitude,
        "longitude": site.longitude,
        "pue": site.pue,
        "capacity": site.accelerators_total,
        "accelerators": accelerators,
        "executor": site.executor,
        "price_cny_per_kwh": price,
        "carbon_g_per_kwh": carbon,
    }


def network_view(
    repo: Repository,
    network: Network,
    scope: Scope,
    health: dict[str, dict[str, Any]],
    now_s: int,
    hours: int,
) -> dict[str, Any]:
    """The map page: every visible site with its hourly price, carbon and planned load
    for the next ``hours`` hours from the current hour, its executor's health, the links
    between sites and the data the visible planned jobs move. Load counts every job for an
    admin, every job at its own sites for a provider, and a tenant's own jobs for a tenant
    (a tenant never sees another's work)."""
    start = hour_floor(now_s)
    edges = np.arange(start, start + (hours + 1) * HOUR_S, HOUR_S, dtype=np.float64)
    live, forecasts = feeds.apply(network, repo.site_feeds())
    sites = [s for s in live.sites if scope.site_ids is None or s.id in scope.site_ids]
    rows = []
    for site in sites:
        fc = forecasts.get(site.id)
        rows.append(
            _site_row(
                site,
                _series(fc.price if fc else site.price, start, hours),
                _series(fc.carbon if fc else site.carbon, start, hours),
            )
        )
    runs = queries.planned_runs(repo, scope, start, int(edges[-1]))
    load = _load(runs, [s.id for s in sites], edges)
    for row in rows:
        row["load"] = load[row["id"]]
        row["health"] = health.get(row["id"])
    visible = {s.id for s in sites}
    moves = [
        m
        for m in queries.moved_data(repo, scope)
        if m.get("from_site") in visible or m.get("to_site") in visible
    ]
    return {
        "network": network.name,
        "map": map_kind(network),
        "now_s": now_s,
        "start_s": start,
        "step_s": HOUR_S,
        "hours": hours,
        "load_scope": load_scope(scope),
        "sites": rows,
        "links": _links(network, sites),
        "transfers": moves,
        "states": queries.state_counts(repo, scope),
    }


def totals_view(
    repo: Repository,
    network: Network | None,
    scope: Scope,
    now_s: int,
    days_back: int,
    days_ahead: int,
) -> dict[str, Any]:
    """Hourly cost, carbon, energy and utilisation of the visible placed and finished
    jobs, each job's amounts spread evenly over its run (modelled by the engine at
    placement). Utilisation is busy accelerators over the visible sites' capacity."""
    start = hour_floor(now_s) - days_back * 24 * HOUR_S
    end = hour_floor(now_s) + days_ahead * 24 * HOUR_S
    edges = np.arange(start, end + HOUR_S, HOUR_S, dtype=np.float64)
    jobs = queries.placed_costs(repo, scope, start, end)
    capacity = 0
    if network is not None:
        capacity = sum(
            s.accelerators_total
            for s in network.sites
            if scope.site_ids is None or s.id in scope.site_ids
        )
    buckets = edges.size - 1
    cost = carbon = energy = busy = np.zeros(buckets)
    if jobs:
        arr = np.array([j[1:] for j in jobs], dtype=np.float64)
        starts, ends = arr[:, 1], arr[:, 2]
        length = np.maximum(ends - starts, 1.0)
        cost = spread(starts, ends, arr[:, 3] / length, edges).sum(axis=0)
        carbon = spread(starts, ends, arr[:, 4] / length, edges).sum(axis=0)
        energy = spread(starts, ends, arr[:, 5] / length, edges).sum(axis=0)
        busy = spread(starts, ends, arr[:, 0], edges).sum(axis=0) / HOUR_S
    utilisation = busy / capacity if capacity else np.zeros(buckets)
    return {
        "start_s": start,
        "step_s": HOUR_S,
        "now_s": now_s,
        "scope": load_scope(scope),
        "capacity": capacity,
        "cost_cny": [round(float(v), 3) for v in cost],
        "carbon_kg": [round(float(v), 3) for v in carbon],
        "energy_kwh": [round(float(v), 3) for v in energy],
        "utilisation": [round(float(v), 5) for v in utilisation],
        "sum": {
            "cost_cny": round(float(np.sum(cost)), 2),
            "carbon_kg": round(float(np.sum(carbon)), 2),
            "energy_kwh": round(float(np.sum(energy)), 2),
            "jobs": len(jobs),
        },
        # The live loop plans with one policy and keeps no counterfactual run of another;
        # the simulator's report compares against fifo-home.
        "baseline": None,
        "baseline_note": (
            "the live loop keeps no fifo-home baseline; `computenet simulate` compares "
            "policies against it on a trace"
        ),
        "modelled": True,
    }


def with_data_rules(datasets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each dataset with the rule that governs where it may go (``engine.rules``): how far
    it may travel after any export clearance, the MLPS level other sites need, the law."""
    from computenet.engine.rules import RULES, effective_scope
    from computenet.model import Classification, Dataset

    out = []
    for d in datasets:
        cls = Classification(d["classification"])
        rule = RULES[cls]
        model = Dataset(
            id=d["id"],
            size_gb=d["size_gb"],
            home_site=d["home_site"],
            classification=cls,
            individuals=d["individuals"],
            sensitive=d["sensitive"],
            export_cleared=d["export_cleared"],
        )
        out.append(
            dict(
                d,
                rule={
                    "may_go": str(effective_scope(model)),
                    "min_security_level": rule.min_security_level,
                    "source": rule.source,
                },
            )
        )
    return out


def with_reasons(job: dict[str, Any]) -> dict[str, Any]:
    """``job`` with its structured reasons rendered as the jobs API renders them, once the
    engine's reason codes are stored with jobs (``engine.reasons.rendered`` over the job's
    ``reasons``); until then the job is returned as it is and the page shows the engine's
    explanation text (``static/reasons.js`` reads either)."""
    import importlib

    try:  # looked up at run time: the reason codes land separately
        module = importlib.import_module("computenet.engine.reasons")
    except ImportError:
        return job
    render = getattr(module, "rendered", None)
    if render is None or "reasons" not in job:
        return job
    return dict(job, reasons=render(job.get("reasons") or ()))
