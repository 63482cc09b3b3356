"""Benchmark of demand response (issue 14): a grid event like the 2025 Phoenix demonstration
(a 25 % cut for 3 hours at the busiest hub, 1 hour's notice) on the demo network.

    python bench/grid.py --json        # figures as JSON on stdout
    python bench/grid.py               # the same, as a summary

Scenario: ``computenet demo``'s network (China's national network) and workload
(``demo_trace``, 300 jobs a day; ``--days``), each job given a flexibility class 0-3 in equal
shares (seeded). A first run with ``greedy`` and no event is the baseline: its busiest hub
is the hub whose sites drew the most energy from day 2 on, and the event covers that hub's
3-hour window with the highest draw there. The same workload is replayed with the event
(announced 1 hour ahead, answered by ``engine.grid.respond``, carried out and metered by the
simulator, ``sim.gridsim``). Figures, all modelled from the measured power profiles:

* per hour, MW asked and MW delivered (baseline plan less metered draw) and their ratio;
  ``delivered_ratio_min`` the lowest hour (target >= 1 while flexible work suffices; the
  shortfall is stated per hour when it does not);
* ``added_misses_flex``: jobs of classes >= 1 that miss their deadline with the event but
  met it without (target 0); ``added_misses`` all classes;
* energy moved out of the window at the hub and the carbon of the whole run, with and
  without the event;
* ``answer_s``: wall time of answering the event with 10,000 jobs in the system (target
  <= 5 s): the demo workload grown to 10,000 jobs, planned by ``greedy`` in one request
  across the network (placed and waiting work), the event put to ``respond`` at the
  busiest hub. Baseline in the same run: one ``greedy`` plan call of the same jobs.
  ``answer_s_sim`` is the answer's wall time inside the simulation.

The same event is replayed once more with every job flexible (classes 1-3 in shares 0.2,
0.3, 0.5: ``event_all_flexible``), to show what flexible work can deliver at that hub.

``model_validation``: the modelled hourly carbon's correlation and error per validation
zone (DE, GB, FR), from ``computenet.signals.modelled.model_validation`` (``bench/green.py``
reports it with the green-supply figures too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench._data import DATA  # noqa: E402

from computenet.catalog import load_network  # noqa: E402
from computenet.engine import plan  # noqa: E402
from computenet.engine.grid import GridEvent, GridRequest, Work, respond  # noqa: E402
from computenet.engine.types import Allocation, PlanRequest  # noqa: E402
from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T, HOUR_S, Network  # noqa: E402
from computenet.sim.gridsim import assign_flex  # noqa: E402
from computenet.sim.simulator import SimConfig, SimResult, simulate  # noqa: E402
from computenet.sim.workload import FillOptions, Workload, demo_trace, materialise  # noqa: E402

DEMO_START_S = 1_688_342_400  # 2023-07-03T00:00Z, `computenet demo`'s start
FLEX = (0.25, 0.25, 0.25, 0.25)
CUT = 0.25
HOURS = 3
NOTICE_S = HOUR_S
ANSWER_JOBS = 10_000


FLEX_ONLY = (0.0, 0.2, 0.3, 0.5)
"""A second scenario: every job flexible (classes 1-3), to show what flexible work delivers."""


def workload(
    net: Network, days: float, jobs: int, seed: int, flex: tuple[float, ...] = FLEX
) -> Workload:
    wl = materialise(
        demo_trace(days=days, jobs=jobs, seed=seed), net, DEMO_START_S, FillOptions(seed=seed)
    )
    return assign_flex(wl, flex, seed)


def busiest_window(net: Network, res: SimResult, days: float) -> tuple[str, tuple[str, ...], int]:
    """The hub that drew the most energy from day 2 on, and its 3-hour window (on whole
    hours) with the highest draw."""
    t0 = DEMO_START_S + 86400
    t1 = DEMO_START_S + int(days * 86400)
    hub_of = {s.id: s.hub for s in net.sites}
    energy: dict[str, float] = {}
    hourly: dict[tuple[str, int], float] = {}
    for g in res.segments:
        if g.end_s <= t0 or g.start_s >= t1 or g.end_s <= g.start_s:
            continue
        hub = hub_of[g.site_id]
        kw = g.energy_kwh * 3600 / (g.end_s - g.start_s)
        a, b = max(g.start_s, t0), min(g.end_s, t1)
        energy[hub] = energy.get(hub, 0.0) + kw * (b - a) / 3600
        for h in range(a - (a - t0) % HOUR_S, b, HOUR_S):
            over = min(b, h + HOUR_S) - max(a, h)
            hourly[(hub, h)] = hourly.get((hub, h), 0.0) + kw * over / HOUR_S
    hub = max(energy, key=lambda h: (energy[h], h))
    starts = range(t0, t1 - HOURS * HOUR_S, HOUR_S)
    best = max(
        starts,
        key=lambda s: (sum(hourly.get((hub, s + k * HOUR_S), 0.0) for k in range(HOURS)), -s),
    )
    return hub, tuple(s.id for s in net.sites if s.hub == hub), best


def run_event(net: Network, wl: Workload, days: float, seed: int) -> dict[str, object]:
    cfg = SimConfig(carbon_price_cny_per_t=DEFAULT_CARBON_PRICE_CNY_PER_T, seed=seed)
    base = simulate(net, wl, cfg)
    hub, sites, start = busiest_window(net, base, days)
    ev = GridEvent("phoenix-like", sites, start, start + HOURS * HOUR_S, NOTICE_S, target_share=CUT)
    withev = simulate(net, wl, replace(cfg, grid_events=(ev,)))
    (g,) = withev.grid
    cls = {j.id: j.flex_class for j in wl.jobs}
    late_before = {o.job_id for o in base.outcomes if o.late}
    added = [o.job_id for o in withev.outcomes if o.late and o.job_id not in late_before]
    r = g.response
    hours = [
        {
            "site": h.site_id,
            "start_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(h.start_s)),
            "baseline_mw": round(h.baseline_kw / 1000, 4),
            "asked_mw": round(h.asked_kw / 1000, 4),
            "committed_mw": round(c.committed_kw / 1000, 4),
            "delivered_mw": round(h.delivered_kw / 1000, 4),
            "delivered_ratio": round(h.ratio, 4),
            "shortfall_mw": round(max(0.0, h.asked_kw - h.delivered_kw) / 1000, 4),
        }
        for h, c in zip(g.hours, r.hours, strict=True)
    ]
    # The hub's hours (sums over its sites), the figure the grid reads.
    hub_hours = []
    for k in range(HOURS):
        hs = [h for h in g.hours if h.start_s == start + k * HOUR_S]
        asked = sum(h.asked_kw for h in hs)
        delivered = sum(h.delivered_kw for h in hs)
        hub_hours.append(
            {
                "start_utc": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(start + k * HOUR_S)),
                "asked_mw": round(asked / 1000, 4),
                "delivered_mw": round(delivered / 1000, 4),
                "ratio": round(delivered / asked, 4) if asked > 0 else None,
            }
        )
    ratios = [x["ratio"] for x in hub_hours if x["ratio"] is not None]
    carbon_base = sum(o.carbon_kg for o in base.outcomes)
    carbon_ev = sum(o.carbon_kg for o in withev.outcomes)
    energy_base = sum(o.energy_kwh for o in base.outcomes)
    energy_ev = sum(o.energy_kwh for o in withev.outcomes)
    actions: dict[str, int] = {}
    for a in r.affected:
        actions[str(a.action)] = actions.get(str(a.action), 0) + 1
    return {
        "hub": hub,
        "sites": list(sites),
        "window_utc": [
            time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(start)),
            time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(start + HOURS * HOUR_S)),
        ],
        "jobs": len(wl.jobs),
        "jobs_at_the_hub_when_answered": g.work,
        "hub_hours": hub_hours,
        "site_hours": hours,
        "delivered_ratio_min": min(ratios) if ratios else None,
        "delivered_ratio_min_site_hour": round(g.delivered_ratio_min, 4),
        "committed_ratio_min": round(r.delivered_ratio_min, 4),
        "shortfall_notes": list(r.notes),
        "affected": actions,
        "affected_by_class": {
            str(k): sum(1 for a in r.affected if a.flex_class == k) for k in range(4)
        },
        "added_misses": len(added),
        "added_misses_flex": sum(1 for j in added if cls[j] >= 1),
        "misses_without_event": len(late_before),
        "energy_moved_out_of_window_kwh": round(r.energy_moved_kwh, 1),
        "energy_kwh": {"without": round(energy_base, 1), "with": round(energy_ev, 1)},
        "carbon_kg": {"without": round(carbon_base, 1), "with": round(carbon_ev, 1)},
        "carbon_moved_kg_planned": round(r.carbon_moved_kg, 1),
        "answer_s_sim": round(g.answer_s, 4),
        "violations": len(withev.violations),
    }


def answer_time(net: Network, hub_sites: tuple[str, ...], seed: int) -> dict[str, object]:
    """``respond`` with 10,000 jobs in the system (see the module docstring)."""
    wl = workload(net, 14.0, ANSWER_JOBS, seed)
    now = DEMO_START_S + 7 * 86400
    jobs = tuple(
        replace(j, earliest_start_s=max(now, j.earliest_start_s - 7 * 86400)) for j in wl.jobs
    )
    req = PlanRequest(
        now_s=now,
        network=net,
        jobs=jobs,
        datasets=wl.datasets,
        carbon_price_cny_per_t=DEFAULT_CARBON_PRICE_CNY_PER_T,
        horizon_slots=7 * 24,
    )
    t0 = time.perf_counter()
    rep = plan(req)
    plan_s = time.perf_counter() - t0
    by_id = {j.id: j for j in jobs}
    answer_at = now + 6 * HOUR_S  # work started before this is running
    start = answer_at + NOTICE_S
    ev = GridEvent("stress", hub_sites, start, start + HOURS * HOUR_S, NOTICE_S, target_share=CUT)
    work, others = [], []
    for p in rep.placements:
        if p.site_id in hub_sites and p.start_s < ev.end_s and p.end_s > ev.start_s:
            work.append(
                Work(by_id[p.job_id], p.site_id, p.accelerator, p.count, p.start_s, p.end_s)
            )
        else:
            others.append(
                Allocation(p.job_id, p.site_id, p.accelerator, p.count, p.start_s, p.end_s)
            )
    base = replace(req, now_s=answer_at, jobs=(), running=tuple(others))
    t0 = time.perf_counter()
    res = respond(GridRequest(ev, base, tuple(work), frozenset(net.site_ids)))
    answer_s = time.perf_counter() - t0
    return {
        "jobs_in_the_system": len(jobs),
        "placed": len(rep.placements),
        "waiting": len(rep.deferred) + len(rep.infeasible),
        "jobs_at_the_hub_in_the_window": len(work),
        "answer_s": round(answer_s, 3),
        "baseline_plan_s": round(plan_s, 3),
        "committed_ratio_min": round(res.delivered_ratio_min, 4),
        "affected": len(res.affected),
    }


def _model_validation() -> dict[str, Any]:
    from computenet.signals.modelled import model_validation

    return {
        zone: {k: v[k] for k in ("corr", "mape", "mape_flat") if k in v}
        for zone, v in model_validation(DATA).items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    net = load_network("china")
    wl = workload(net, args.days, int(300 * args.days), args.seed)
    ev = run_event(net, wl, args.days, args.seed)
    flexible = run_event(
        net,
        workload(net, args.days, int(300 * args.days), args.seed, FLEX_ONLY),
        args.days,
        args.seed,
    )
    at = answer_time(net, tuple(ev["sites"]), args.seed)  # type: ignore[arg-type]
    out = {
        "scenario": f"demo network, {len(wl.jobs)} jobs over {args.days:g} days, flexibility "
        f"classes 0-3 in equal shares; a {int(CUT * 100)} % cut for {HOURS} h at the busiest hub "
        f"with {NOTICE_S // 60} min notice; figures modelled from measured power profiles",
        "delivered_ratio_min": ev["delivered_ratio_min"],
        "added_misses_flex": ev["added_misses_flex"],
        "answer_s": at["answer_s"],
        "model_validation": _model_validation(),
        "targets": {"delivered_ratio_min": ">= 1.0", "added_misses_flex": 0, "answer_s": "<= 5"},
        "event": ev,
        "event_all_flexible": dict(
            flexible, flex_shares=dict(zip(("0", "1", "2", "3"), FLEX_ONLY, strict=True))
        ),
        "answer_time": at,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(out["scenario"])
    w = ev["window_utc"]  # type: ignore[index]
    print(f"hub {ev['hub']} ({', '.join(ev['sites'])}), window {w[0]} .. {w[1]}")  # type: ignore[arg-type]
    for h in ev["hub_hours"]:  # type: ignore[attr-defined]
        asked, got = h["asked_mw"], h["delivered_mw"]
        print(f"  {h['start_utc']}: asked {asked:.4f} MW, delivered {got:.4f} MW ({h['ratio']})")
    print(f"delivered_ratio_min {out['delivered_ratio_min']}")
    print(f"added_misses_flex {out['added_misses_flex']}")
    print(f"answer_s {at['answer_s']} with {at['jobs_in_the_system']} jobs in the system")
    print(f"(one greedy plan of them: {at['baseline_plan_s']} s)")


if __name__ == "__main__":
    main()
