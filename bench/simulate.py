"""Benchmark of the simulator: replay the Alibaba openb trace on the ten zones that have both
hourly carbon and hourly prices in ../shared/data, for every policy, and time a
100,000-job greedy replay.

    python bench/simulate.py --json            # figures as JSON on stdout
    python bench/simulate.py                   # the same, as a table

Policy figures: each policy's cost, energy, carbon, deadline misses, waits and violations,
and its change against ``fifo-home``. Checks: ``greedy`` must emit less carbon than
``fifo-home`` with no more deadline misses, and no policy may break a rule.

Speed: the openb trace's busy stretch (days 110-150 after its start, where 6,190 of its
6,203 GPU pods arrive) is concatenated back to back, each copy shifted by 40 days and its
job ids suffixed, until there are 100,000 jobs (about 17 copies, ~1.8 years of arrivals;
the 2023 signals repeat after a year). The wall time of replaying it with ``greedy`` must
stay under 60 s. Baseline in the same run: the same replay with ``fifo-home`` (home site,
first fit), so the report shows what greedy's search adds to the simulator's own cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _data import CARBON_DIR, LATENCY_FILE, OPENB, PRICE_DIR, ZONES  # noqa: E402
from computenet.catalog.zones import build_zone_network  # noqa: E402
from computenet.sim.compare import BASELINE, compare  # noqa: E402
from computenet.sim.simulator import SimConfig, simulate  # noqa: E402
from computenet.sim.traces import Trace, load_openb  # noqa: E402
from computenet.sim.workload import FillOptions, materialise  # noqa: E402

POLICIES = ["fifo-home", "cheapest-now", "carbon-now", "wait-awhile", "greedy", "milp"]
START_S = 1_672_531_200  # trace time 0 = 2023-01-01T00:00Z
CAPACITY = 16  # A100s per zone (assumed): 160 in all, about twice the trace's peak of 70 GPUs
SPEED_JOBS = 100_000
SEGMENT = (110 * 86400, 150 * 86400)


def concatenated(trace: Trace, n_jobs: int) -> Trace:
    """Copies of the trace's busy segment back to back until there are ``n_jobs`` jobs."""
    seg = trace.window(*SEGMENT)
    span = SEGMENT[1] - SEGMENT[0]
    jobs = []
    k = 0
    while len(jobs) < n_jobs:
        for j in seg.jobs:
            jobs.append(replace(j, id=f"{j.id}#{k}", arrival_s=j.arrival_s + k * span))
            if len(jobs) == n_jobs:
                break
        k += 1
    copies = f"{k} copy" if k == 1 else f"{k} copies"
    note = f"{copies} of openb days 110-150 back to back, {n_jobs} jobs"
    return replace(seg, jobs=tuple(jobs), notes=(*seg.notes, note))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--speed-jobs", type=int, default=SPEED_JOBS)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()

    net, info = build_zone_network(
        ZONES,
        CARBON_DIR,
        PRICE_DIR,
        latency=LATENCY_FILE,
        capacity=CAPACITY,
    )
    trace = load_openb(OPENB)
    fill = FillOptions(seed=0, home="uniform")
    wl = materialise(trace, net, START_S, fill)
    cfg = SimConfig(seed=0)
    pols = [p for p in args.policies.split(",") if p]
    t0 = time.perf_counter()
    comp = compare(net, wl, pols, cfg, sweep_policy=None, bound=False, title="openb on 10 zones")
    doc = comp.to_json()
    doc["replay_wall_s"] = round(time.perf_counter() - t0, 3)
    by = {m.policy: m for m in comp.metrics}
    checks: dict[str, object] = {}
    if "greedy" in by and BASELINE in by:
        g, b = by["greedy"], by[BASELINE]
        checks["greedy_cuts_carbon"] = g.carbon_kg < b.carbon_kg
        checks["greedy_carbon_change_pct"] = round(
            100 * (g.carbon_kg - b.carbon_kg) / b.carbon_kg, 3
        )
        checks["greedy_no_more_deadline_misses"] = g.deadline_misses <= b.deadline_misses
    checks["zero_violations"] = all(m.violations == 0 for m in comp.metrics)
    doc["checks"] = checks
    doc["setup"] = {
        "zones": ZONES,
        "capacity_per_zone": CAPACITY,
        "trace": "alibaba_v2023_openb_pod_list_default.csv",
        "start": "2023-01-01T00:00Z",
        "carbon_price_cny_per_t": cfg.carbon_price_cny_per_t,
        "fill": fill.describe(),
        "zone_assumptions": list(info.assumptions),
    }
    if not args.skip_speed:
        big = concatenated(trace, args.speed_jobs)
        wl_big = materialise(big, net, START_S, fill)
        res = simulate(net, wl_big, replace(cfg, policy="greedy"))
        # Baseline in the same run: the simplest policy (home site, first fit) on the same
        # 100,000 jobs — what the simulator itself costs, apart from greedy's search.
        base = simulate(net, wl_big, replace(cfg, policy=BASELINE))
        doc["speed"] = {
            "policy": "greedy",
            "jobs": len(wl_big.jobs),
            "events": res.events,
            "plan_calls": res.plan_calls,
            "wall_s": round(res.wall_s, 3),
            "events_per_s": round(res.events / res.wall_s, 1),
            "target_wall_s": 60,
            "under_target": res.wall_s < 60,
            "how": big.notes[-1],
            "baseline_policy": BASELINE,
            "baseline_wall_s": round(base.wall_s, 3),
            "baseline_events_per_s": round(base.events / base.wall_s, 1),
            "greedy_over_baseline": round(res.wall_s / base.wall_s, 2),
        }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for p in doc["policies"]:
            vs = p.get("vs_fifo_home", {})
            dc = vs.get("cost_pct", 0) or 0
            print(
                f"{p['policy']:<14} cost {p['cost_cny']:>12,.0f} CNY {dc:+7.2f}%  "
                f"carbon {p['carbon_kg']:>10,.0f} kg {vs.get('carbon_pct', 0) or 0:+7.2f}%  "
                f"misses {p['deadline_misses']:>4}  violations {p['violations']}  "
                f"wait {p['mean_wait_h']:.2f}/{p['p99_wait_h']:.2f} h  {p['wall_s']:.1f} s"
            )
        print("checks:", checks)
        if "speed" in doc:
            print("speed:", doc["speed"])
    ok = bool(checks.get("greedy_cuts_carbon", True)) and bool(
        checks.get("greedy_no_more_deadline_misses", True)
    )
    if "speed" in doc:  # the speed threshold counts like the others
        ok = ok and bool(doc["speed"]["under_target"])
    return 0 if ok and checks["zero_violations"] else 1


if __name__ == "__main__":
    from computenet.errors import ComputenetError

    try:
        sys.exit(main())
    except ComputenetError as exc:
        print(json.dumps({"benchmark": "simulate", "error": str(exc)}), file=sys.stdout)
        sys.exit(2)
