"""Benchmark of planning under scarcity: quotas, fair share and priority preemption.

    python bench/scarcity.py --json            # figures as JSON on stdout
    python bench/scarcity.py                   # the same, as a table

Setup. The Alibaba openb trace (``../shared/data/gpu_traces``) from the start of its busy
stretch (day 110, as ``bench/simulate.py``): a documented subset, the first ``--jobs``
(default 2,500) single-GPU jobs (98.8 % of the stretch's GPU jobs ask for one GPU), so
that four policies replay on the shared 2-core development machine in minutes. The ten
zones of ``bench/simulate.py`` each get the same number of A100s, cut until the offered
load is ``--load`` (1.5) times the capacity: offered load = the accelerators the jobs
would hold on average over the span of their arrivals had each started on arrival (runs
cut at the span's end; the trace has runs of up to 145 days). The default subset gives one
A100 per zone (10 in all) against 15.4 offered: 1.54 x. The simulator's 25 % home reserve
would round up to the whole one-A100 pool and forbid every move, so all policies run
without it.

Tenants and priorities, seeded: each job belongs to one of 4 tenants with demand shares
35/30/20/15 %; every tenant has a nominal quota of a quarter of the A100s (the remainder to
the first tenants) and may borrow half as much again. Priority classes (``engine.quotas``):
high (10 % of jobs), normal (30 %), low (60 %).

Policies: ``fifo-home`` and ``greedy`` as they are (no quotas: they ignore tenants),
``quota-fifo`` (quotas, Kueue's BestEffortFIFO admission, home placement, no preemption:
the quota baseline) and ``fair-share`` (quotas, dominant-resource fair admission, greedy
placement, preemption of lower-priority work for jobs whose deadline is at risk and of
borrowers' work for tenants within their nominal quota: the new policy), and
``fair-share-home`` (the same admission and preemption, home placement as ``fifo-home``:
no data moves).

Figures per policy: deadline misses per priority class (late or rejected), each tenant's
share against its quota — tenant t's accelerator-hours over the span of arrivals divided
by its entitlement (the hours of that span shared max-min fairly by nominal quota,
capped at t's demand), summarised by Jain's fairness index — cost, carbon and the objective
against the lower bound (``sim.metrics.lower_bound``), preemptions and the
accelerator-hours they lost, and violations (quota breaches counted by the simulator).

Targets: the new policy misses no more high-priority deadlines than ``quota-fifo``, its
fairness index is >= 0.9, and its objective is the lowest of all policies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _data import CARBON_DIR, LATENCY_FILE, OPENB, PRICE_DIR, ZONES  # noqa: E402
from computenet.catalog.zones import build_zone_network  # noqa: E402
from computenet.engine.quotas import PRIORITY_CLASSES, TenantQuota  # noqa: E402
from computenet.model import Network  # noqa: E402
from computenet.sim.metrics import lower_bound, summarise  # noqa: E402
from computenet.sim.simulator import SimConfig, SimResult, default_planner, simulate  # noqa: E402
from computenet.sim.traces import Trace, load_openb  # noqa: E402
from computenet.sim.workload import FillOptions, Workload, materialise  # noqa: E402

START_S = 1_672_531_200  # trace time 0 = 2023-01-01T00:00Z
BUSY_FROM_S = 110 * 86400
JOBS = 2500
LOAD = 1.5
TENANTS = ("t1", "t2", "t3", "t4")
DEMAND_SHARES = (0.35, 0.30, 0.20, 0.15)
BORROW_SHARE = 0.5
CLASS_SHARES = {"high": 0.1, "normal": 0.3, "low": 0.6}
POLICIES = ("fifo-home", "quota-fifo", "greedy", "fair-share", "fair-share-home")
QUOTA_POLICIES = frozenset({"quota-fifo", "fair-share", "fair-share-home"})
NEW_POLICY = "fair-share"
BASELINE = "quota-fifo"
TARGET_FAIRNESS = 0.9
SEED = 0


def subset(trace: Trace, n: int) -> Trace:
    """The first ``n`` single-GPU jobs from the start of the busy stretch, shifted to start
    at 0 (one A100 per zone cannot run a larger gang)."""
    seg = trace.window(BUSY_FROM_S, trace.span_s + 1)
    ones = [j for j in seg.jobs if j.accelerators == 1]
    jobs = tuple(ones[:n])
    share = len(ones) / max(1, len(seg.jobs))
    note = (
        f"first {len(jobs)} single-GPU jobs from day {BUSY_FROM_S // 86400} of the trace "
        f"({share:.1%} of the stretch's GPU jobs ask for one GPU)"
    )
    return replace(seg, jobs=jobs, notes=(*seg.notes, note))


def offered_a100(trace: Trace) -> float:
    """Offered load in accelerators: the accelerators the jobs would hold on average over
    the span of their arrivals had each started on arrival (runs cut at the span's end:
    the trace's runs of up to 145 days would otherwise count far beyond it)."""
    lo = min(j.arrival_s for j in trace.jobs)
    hi = max(j.arrival_s for j in trace.jobs)
    held = sum(j.accelerators * min(j.duration_s, hi - j.arrival_s) for j in trace.jobs)
    return held / max(1, hi - lo)


def capacities(total: int, zones: int) -> list[int]:
    """``total`` A100 over ``zones`` as evenly as whole accelerators allow (>= 1 each)."""
    each, extra = divmod(max(total, zones), zones)
    return [each + (1 if i < extra else 0) for i in range(zones)]


def cut(net: Network, caps: Sequence[int]) -> Network:
    sites = tuple(
        replace(s, pools=tuple(replace(p, count=c) for p in s.pools[:1]))
        for s, c in zip(net.sites, caps, strict=True)
    )
    return replace(net, sites=sites)


def with_tenants(wl: Workload, seed: int) -> Workload:
    """Each job gets a tenant (by demand share) and a priority class, seeded."""
    rng = np.random.default_rng(seed)
    n = len(wl.jobs)
    tenants = rng.choice(len(TENANTS), size=n, p=np.array(DEMAND_SHARES))
    names = list(CLASS_SHARES)
    classes = rng.choice(len(names), size=n, p=np.array(list(CLASS_SHARES.values())))
    jobs = tuple(
        replace(j, tenant=TENANTS[int(t)], priority=PRIORITY_CLASSES[names[int(c)]])
        for j, t, c in zip(wl.jobs, tenants, classes, strict=True)
    )
    return replace(wl, jobs=jobs)


def quotas(total: int) -> tuple[TenantQuota, ...]:
    each, extra = divmod(total, len(TENANTS))
    out = []
    for i, t in enumerate(TENANTS):
        nominal = each + (1 if i < extra else 0)
        borrow = max(1, round(BORROW_SHARE * nominal))
        out.append(TenantQuota(t, {"A100": nominal}, {"A100": borrow}))
    return tuple(out)


def class_of(priority: int) -> str:
    return next(name for name, p in PRIORITY_CLASSES.items() if p == priority)


def entitlements(demand: Mapping[str, float], weight: Mapping[str, float], total: float):
    """Max-min fair split of ``total`` by ``weight``, each capped at its ``demand``."""
    share = dict.fromkeys(demand, 0.0)
    open_ = {t for t in demand if demand[t] > 0}
    left = total
    while open_ and left > 1e-9:
        w = sum(weight[t] for t in open_)
        give = {t: left * weight[t] / w for t in open_}
        capped = {t for t in open_ if share[t] + give[t] >= demand[t] - 1e-9}
        if not capped:
            for t in open_:
                share[t] += give[t]
            break
        for t in capped:
            left -= demand[t] - share[t]
            share[t] = demand[t]
        open_ -= capped
    return share


def jain(xs: Sequence[float]) -> float:
    s, s2 = sum(xs), sum(x * x for x in xs)
    return (s * s) / (len(xs) * s2) if s2 > 0 else 1.0


def fairness(res: SimResult, wl: Workload, qs: Sequence[TenantQuota]) -> dict[str, object]:
    """Each tenant's accelerator-hours over the span of arrivals against its entitlement,
    and Jain's index of those ratios."""
    lo, hi = wl.start_s, wl.end_s
    tenant = {j.id: j.tenant for j in wl.jobs}
    used = dict.fromkeys(TENANTS, 0.0)
    for s in res.segments:
        overlap = max(0, min(hi, s.end_s) - max(lo, s.start_s))
        used[tenant[s.job_id]] += s.count * overlap / 3600.0
    demand = dict.fromkeys(TENANTS, 0.0)
    for j in wl.jobs:  # each job's hours within the span had it started on arrival
        demand[j.tenant] += j.accelerators * min(j.work_h * 3600.0, hi - j.earliest_start_s) / 3600
    weight = {q.tenant: float(q.nominal.get("A100", 0)) for q in qs}
    fair = entitlements(demand, weight, sum(used.values()))
    ratio = {t: (used[t] / fair[t] if fair[t] > 0 else 1.0) for t in TENANTS}
    return {
        "fairness_index": round(jain(list(ratio.values())), 4),
        "tenants": {
            t: {
                "quota_a100": int(weight[t]),
                "demand_accelerator_h": round(demand[t], 1),
                "used_accelerator_h": round(used[t], 1),
                "entitled_accelerator_h": round(fair[t], 1),
                "share_vs_entitlement": round(ratio[t], 4),
            }
            for t in TENANTS
        },
    }


def misses_by_class(res: SimResult) -> dict[str, int]:
    out = dict.fromkeys(PRIORITY_CLASSES, 0)
    for o in res.outcomes:
        if o.late or o.state == "rejected":
            out[class_of(o.priority)] += 1
    return out


def row(res: SimResult, wl: Workload, qs, bound_cny: float | None) -> dict[str, object]:
    m = summarise(res, bound_cny)
    run_h = sum(seg.count * (seg.end_s - seg.start_s) for seg in res.segments) / 3600.0
    misses = misses_by_class(res)
    fair = fairness(res, wl, qs)
    return {
        "policy": res.policy,
        "quotas": res.policy in QUOTA_POLICIES,
        "high_priority_misses": misses["high"],
        "misses_by_class": misses,
        "fairness_index": fair["fairness_index"],
        "objective_cny": round(m.objective_cny, 2),
        "accelerator_h_run": round(run_h, 1),
        "objective_cny_per_accelerator_h": round(m.objective_cny / run_h, 3) if run_h else None,
        "cost_cny": round(m.cost_cny, 2),
        "transfer_cost_cny": round(m.transfer_cost_cny, 2),
        "carbon_kg": round(m.carbon_kg, 2),
        "ratio_to_bound": None if m.ratio_to_bound is None else round(m.ratio_to_bound, 4),
        "violations": m.violations,
        "violations_by_kind": m.violations_by_kind,
        "preemptions": m.preemptions,
        "lost_accelerator_h": round(m.lost_accelerator_h, 2),
        "completed": m.completed,
        "rejected": m.rejected,
        "late": m.late,
        "mean_wait_h": round(m.mean_wait_h, 3),
        "tenants": fair["tenants"],
        "wall_s": round(res.wall_s, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--jobs", type=int, default=JOBS, help="first N jobs of the busy stretch")
    ap.add_argument("--load", type=float, default=LOAD, help="offered load / capacity")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--no-bound", action="store_true", help="skip the LP lower bound")
    args = ap.parse_args()
    if not OPENB.exists():
        print(json.dumps({"benchmark": "scarcity", "skipped": f"{OPENB} is missing"}))
        return 0
    trace = subset(load_openb(OPENB), args.jobs)
    offered = offered_a100(trace)
    total = max(len(ZONES), round(offered / args.load))
    caps = capacities(total, len(ZONES))
    net0, _ = build_zone_network(ZONES, CARBON_DIR, PRICE_DIR, latency=LATENCY_FILE, capacity=1)
    net = cut(net0, caps)
    fill = FillOptions(seed=SEED, home="uniform")
    wl = with_tenants(materialise(trace, net, START_S, fill), SEED)
    qs = quotas(sum(caps))
    # One A100 per zone: a 25 % home reserve (the simulator's default) rounds up to the
    # whole pool and would forbid every move, so the policies plan without one.
    cfg = SimConfig(seed=SEED, home_reserve=0.0)
    t0 = time.perf_counter()
    bound_cny, bound_note = (None, "not computed (--no-bound)")
    if not args.no_bound:
        bound_cny, bound_note = lower_bound(
            net, wl, default_planner(), carbon_price_cny_per_t=cfg.carbon_price_cny_per_t
        )
    bound_wall = time.perf_counter() - t0
    rows = []
    for pol in [p for p in args.policies.split(",") if p]:
        qcfg = replace(cfg, policy=pol, quotas=qs if pol in QUOTA_POLICIES else ())
        rows.append(row(simulate(net, wl, qcfg), wl, qs, bound_cny))
    by = {r["policy"]: r for r in rows}
    checks: dict[str, object] = {}
    if NEW_POLICY in by:
        new = by[NEW_POLICY]
        if BASELINE in by:
            checks["high_misses_no_more_than_quota_fifo"] = (
                new["high_priority_misses"] <= by[BASELINE]["high_priority_misses"]  # type: ignore[operator]
            )
        checks["fairness_at_least_0_9"] = new["fairness_index"] >= TARGET_FAIRNESS  # type: ignore[operator]
        checks["lowest_objective"] = all(
            new["objective_cny"] <= r["objective_cny"]  # type: ignore[operator]
            for r in rows
        )
    if NEW_POLICY in by:
        # Not a target: the raw objective rewards running less work (a job rejected costs
        # nothing), so the same comparison per accelerator-hour run is shown beside it.
        per = [r["objective_cny_per_accelerator_h"] for r in rows]
        info = {
            "lowest_objective_per_accelerator_h": by[NEW_POLICY]["objective_cny_per_accelerator_h"]
            == min(per)
        }  # type: ignore[type-var]
    checks["zero_violations"] = all(r["violations"] == 0 for r in rows)
    doc = {
        "new_policy": NEW_POLICY,
        "policies": rows,
        "checks": checks,
        "not_targets": info if NEW_POLICY in by else {},
        "lower_bound_cny": None if bound_cny is None else round(bound_cny, 2),
        "lower_bound": bound_note,
        "lower_bound_wall_s": round(bound_wall, 2),
        "setup": {
            "trace": "alibaba_v2023_openb_pod_list_default.csv",
            "subset": trace.notes[-1],
            "jobs": len(wl.jobs),
            "zones": ZONES,
            "capacity_a100": dict(zip(ZONES, caps, strict=True)),
            "offered_a100": round(offered, 2),
            "offered_load_vs_capacity": round(offered / sum(caps), 3),
            "tenants": {
                q.tenant: {
                    "demand_share": d,
                    "nominal_a100": q.nominal["A100"],
                    "borrowing_limit_a100": q.borrowing_limit["A100"],
                }
                for q, d in zip(qs, DEMAND_SHARES, strict=True)
            },
            "priority_classes": {
                k: {"priority": PRIORITY_CLASSES[k], "share": v} for k, v in CLASS_SHARES.items()
            },
            "carbon_price_cny_per_t": cfg.carbon_price_cny_per_t,
            "fill": fill.describe(),
            "quota_policies": sorted(QUOTA_POLICIES),
        },
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for r in rows:
            print(
                f"{r['policy']:<11} high misses {r['high_priority_misses']:>3} "
                f"by class {r['misses_by_class']}  fairness {r['fairness_index']:.3f}  "
                f"objective {r['objective_cny']:>12,.0f} CNY (x{r['ratio_to_bound']} bound)  "
                f"preemptions {r['preemptions']} lost {r['lost_accelerator_h']} acc-h  "
                f"violations {r['violations']}  {r['wall_s']} s"
            )
        print("checks:", checks)
    return 0 if all(bool(v) for v in checks.values()) else 1


if __name__ == "__main__":
    from computenet.errors import ComputenetError

    try:
        sys.exit(main())
    except ComputenetError as exc:
        print(json.dumps({"benchmark": "scarcity", "error": str(exc)}), file=sys.stdout)
        sys.exit(2)
