"""What the structured reasons cost: ``plan`` with and without ``engine.why.attach``.

    python bench/reasons.py --json            # one JSON object on stdout
    python bench/reasons.py --jobs 20000      # a larger request

The request is the planner benchmark's speed instance (``bench/planner.py``: jobs drawn
from the Alibaba openb trace on the 100-site zone network, 168 hourly slots), planned with
``greedy``. Baseline in the same run: the same request planned by the policy alone (what
``plan`` did before reasons were attached), best of ``--repeat`` runs each, alternating.
``overhead`` = (with reasons - without) / without. Target: overhead <= 0.5 (the reasons,
one to four per placement, cost less than half the placing).
JSON keys: ``jobs``, ``placements``, ``plan_s``, ``policy_only_s``, ``attach_s``,
``overhead``, ``reasons``, ``checks``.
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

import planner as base  # noqa: E402
from _data import OPENB  # noqa: E402
from computenet.engine import reasons, why  # noqa: E402
from computenet.engine.planner import policy_fn  # noqa: E402
from computenet.engine.problem import Problem  # noqa: E402
from computenet.sim.traces import load_openb  # noqa: E402

TARGET_OVERHEAD = 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print only the JSON object")
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not OPENB.exists():
        print(f"skipped: the openb trace is not at {OPENB}", file=sys.stderr)
        sys.exit(0)
    req = replace(
        base.make_request(load_openb(OPENB), args.jobs, 100, 168, args.seed + 1),
        policy="greedy",
    )
    fn = policy_fn("greedy")
    fn(Problem(replace(req, jobs=req.jobs[:64])))  # compiles greedy's loop, untimed
    best_policy = best_plan = best_attach = float("inf")
    rep = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        pb = Problem(req)
        bare = fn(pb)
        best_policy = min(best_policy, time.perf_counter() - t)
        t = time.perf_counter()
        pb = Problem(req)
        bare = fn(pb)
        mid = time.perf_counter()
        rep = why.attach(pb, bare)
        end = time.perf_counter()
        best_plan = min(best_plan, end - t)
        best_attach = min(best_attach, end - mid)
    assert rep is not None
    counted = sum(len(reasons.of_decision(p)) for p in rep.placements)
    counted += len(rep.deferred) + len(rep.infeasible)
    every = all(p.why and all(a.why for a in p.alternatives) for p in rep.placements) and all(
        d.why for d in (*rep.deferred, *rep.infeasible)
    )
    overhead = (best_plan - best_policy) / best_policy
    out = {
        "jobs": args.jobs,
        "placements": len(rep.placements),
        "plan_s": round(best_plan, 3),
        "policy_only_s": round(best_policy, 3),
        "attach_s": round(best_attach, 3),
        "overhead": round(overhead, 3),
        "reasons": counted,
        "checks": {
            "every_decision_has_a_reason": every,
            f"overhead_at_most_{TARGET_OVERHEAD}": overhead <= TARGET_OVERHEAD,
        },
    }
    if not args.json:
        print(
            f"{args.jobs} jobs, {len(rep.placements)} placed: plan {best_plan:.3f} s, policy "
            f"alone {best_policy:.3f} s, reasons {best_attach:.3f} s (+{overhead:.0%})",
            file=sys.stderr,
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
