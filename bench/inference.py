"""Inference placement (M9): the figures of issue 15.

* One week of the Azure LLM conversation trace's demand shape (2023) on the ``china``
  network with its edge sites, spread over the user regions by population and local time
  (``computenet.sim.inference_demand``), replayed against the new policy (``cost-carbon``)
  and the baselines measured in the same run: ``latency-only`` (nearest sites, fixed
  replicas), ``carbon-only`` (cleanest, latency ignored) and ``casper`` (least carbon under
  the latency limit, no cost). Targets: the new policy reaches >= 99 % SLO attainment,
  emits >= 30 % less carbon and costs less than latency-only, with 0 data-rule violations.
* A national-scale instance (100 regions x 100 sites x 168 hours, synthetic and seeded,
  ``computenet.sim.inference_national``) placed by the heuristic in <= 10 s; its gap to the
  full-horizon LP relaxation (solved by HiGHS after the timing) is reported.

Run: ``python bench/inference.py --json`` (``--no-lp`` skips the LP bound: about a minute).
TTFT, power and energy are modelled from the measured H100 profile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import DATA

START = "2023-07-03"  # a summer Monday
PEAK_RPS = 400.0
TTFT_MS = 1500.0
FORECAST_ERROR = 0.05
NATIONAL = (100, 100, 168)
NATIONAL_LIMIT_S = 10.0


def week(days: float, peak_rps: float) -> dict[str, Any]:
    from computenet.catalog import load_network
    from computenet.cli.simulate import parse_start
    from computenet.engine.inference import NEW_POLICY, POLICIES, ServiceSpec
    from computenet.model import Classification
    from computenet.sim.inference import compare_policies
    from computenet.sim.inference_demand import read_llm_trace, spread_demand

    net = load_network("china")
    trace = read_llm_trace(DATA / "gpu_traces", "azure-conv")
    spec = ServiceSpec(
        "chat",
        ttft_target_ms=TTFT_MS,
        prompt_tokens_mean=trace.prompt_mean,
        prompt_tokens_p99=trace.prompt_p99,
        output_tokens_mean=trace.output_mean,
        data_class=Classification.PERSONAL,
        headroom=trace.headroom(0.8, FORECAST_ERROR),
    )
    spread = spread_demand(
        trace, net.regions, parse_start(START), round(days * 24), peak_rps,
        forecast_error=FORECAST_ERROR,
    )  # fmt: skip
    order = (NEW_POLICY, *(p for p in POLICIES if p != NEW_POLICY))
    t0 = time.perf_counter()
    results = compare_policies(net, spec, spread, trace.prompt_quantiles(), order)
    return {
        "new_policy": NEW_POLICY,
        "policies": [
            {k: v for k, v in r.to_json().items() if k not in ("by_hour",)} for r in results
        ],
        "week_s": time.perf_counter() - t0,
        "service": {
            "ttft_target_ms": spec.ttft_target_ms,
            "headroom": spec.headroom,
            "data_class": str(spec.data_class),
            "profile": spec.profile,
        },
        "demand_rule": spread.rule,
    }


def national(lp: bool) -> dict[str, Any]:
    from computenet.engine.inference import InferenceRequest, ServiceSpec, build_problem
    from computenet.engine.inference.plan import initial_vector, plan_problem
    from computenet.engine.inference.policies import costs_for
    from computenet.engine.inference.solvers import lp_bound
    from computenet.sim.inference_national import national_instance

    regions, sites, hours = NATIONAL
    net, demand = national_instance(regions, sites, hours, 1_688_342_400, seed=0)
    spec = ServiceSpec(
        "chat", ttft_target_ms=700.0, prompt_tokens_mean=1155.0, prompt_tokens_p99=4142.0,
        output_tokens_mean=211.0, headroom=0.3,
    )  # fmt: skip
    req = InferenceRequest(spec, demand, method="heuristic")
    t0 = time.perf_counter()
    plan = plan_problem(build_problem(net, req), req)
    placed_s = time.perf_counter() - t0
    sol = plan.solution
    out: dict[str, Any] = {
        "national_s": placed_s,
        "national_size": {"regions": regions, "sites": sites, "hours": hours},
        "national_objective": sol.objective,
        "national_relaxed_bound": sol.bound,
        "national_relaxed_gap": sol.gap,
    }
    if lp:
        t1 = time.perf_counter()
        c = costs_for(req.policy, plan.problem, req.carbon_price_cny_per_t)
        bound = lp_bound(plan.problem, c, initial_vector(plan.problem, req))
        out["national_lp_bound"] = bound
        out["national_bound_s"] = time.perf_counter() - t1
        out["national_gap"] = (sol.objective - bound) / sol.objective
    else:
        out["national_gap"] = sol.gap
        out["national_gap_kind"] = "relaxed bound (LP skipped)"
    return out


def targets(doc: dict[str, Any]) -> dict[str, bool]:
    by = {p["policy"]: p for p in doc["policies"]}
    new, base = by[doc["new_policy"]], by["latency-only"]
    return {
        "slo_at_least_99pct": new["slo_attainment"] >= 0.99,
        "carbon_30pct_below_latency_only": new["carbon_kg"] <= 0.7 * base["carbon_kg"],
        "cost_below_latency_only": new["cost_cny"] < base["cost_cny"],
        "zero_violations": new["violations"] == 0,
        "national_within_10s": doc["national_s"] <= NATIONAL_LIMIT_S,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--peak-rps", type=float, default=PEAK_RPS)
    ap.add_argument("--no-lp", action="store_true", help="skip the national LP bound")
    args = ap.parse_args()
    if not (DATA / "gpu_traces" / "azure_llm_inference_2023_conv.csv").is_file():
        print(json.dumps({"skipped": f"shared data not found at {DATA}"}))
        return
    doc = week(args.days, args.peak_rps)
    doc.update(national(not args.no_lp))
    doc["targets"] = targets(doc)
    doc["modelled"] = "TTFT, power and energy modelled from the measured H100 profile"
    if args.json:
        print(json.dumps(doc, indent=1))
        return
    for p in doc["policies"]:
        print(
            f"{p['policy']:>13}: SLO {p['slo_attainment']:.2%}  p99 {p['ttft_p99_ms']:.0f} ms  "
            f"{p['replica_hours']:,} replica-h  {p['energy_kwh']:,.0f} kWh  "
            f"{p['carbon_kg']:,.0f} kg  {p['cost_cny']:,.0f} CNY  violations {p['violations']:.0f}"
        )
    print(f"national: {doc['national_s']:.2f} s, gap {doc['national_gap']:.2%}")
    print(json.dumps(doc["targets"]))


if __name__ == "__main__":
    main()
