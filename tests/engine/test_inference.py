"""Inference placement (``engine.inference``): exact on tiny instances against brute force,
latency targets and data rules never crossed, the same request gives the same plan."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from computenet.catalog import load_network
from computenet.engine.inference import (
    Demand,
    InferenceRequest,
    ServiceSpec,
    build_problem,
    plan_inference,
    plan_problem,
    replica_profile,
)
from computenet.engine.inference.policies import UNSERVED_CNY_PER_RPS_H, costs_for
from computenet.engine.inference.problem import Problem
from computenet.engine.inference.solvers import objective
from computenet.errors import InputError
from computenet.model import Classification
from computenet.sim.inference_national import national_instance

T0 = 1_688_342_400  # 2023-07-03T00:00:00Z
CHAT = dict(prompt_tokens_mean=1155.0, prompt_tokens_p99=4142.0, output_tokens_mean=211.0)


def spec(**kw: object) -> ServiceSpec:
    base: dict[str, object] = {"id": "chat", "ttft_target_ms": 1500.0, **CHAT}
    base.update(kw)
    return ServiceSpec(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def china():
    return load_network("china")


# --------------------------------------------------------------------------- profile


def test_h100_profile_is_the_measurement(china) -> None:
    prof = replica_profile(china.accelerators["H100"], profile="hf-eager")
    assert prof is not None and prof.kind == "measured"
    assert prof.points[0] == (1, 11.8, 142.3) and prof.points[-1] == (64, 982.0, 291.0)
    assert prof.idle_w == pytest.approx(119.2)
    assert prof.prefill_s(512 * 64) == pytest.approx(0.9749)


def test_other_types_are_scaled_and_labelled(china) -> None:
    l20 = replica_profile(china.accelerators["L20"])
    h100 = replica_profile(china.accelerators["H100"])
    assert l20 is not None and h100 is not None
    assert l20.kind == "scaled" and "scaled" in l20.source
    assert h100.kind == "modelled"
    # decode is memory bound: an L20 (864 GB/s) decodes slower than an H100 (3.35 TB/s)
    assert l20.decode_tokens_per_s < h100.decode_tokens_per_s / 3
    # about 200 tokens/s for one sequence on the H100 (the README's ceiling)
    assert 150 < h100.points[0][1] < 250


def test_a_model_too_big_for_the_memory_has_no_profile(china) -> None:
    assert replica_profile(china.accelerators["L20"], weights_gb=60.0) is None
    assert replica_profile(china.accelerators["L20"], accelerators=2, weights_gb=60.0)


def test_fuller_replicas_spend_less_energy_per_request(china) -> None:
    prof = replica_profile(china.accelerators["H100"])
    assert prof is not None
    per_request = [prof.power_w(u) / u for u in (0.1, 0.5, 1.0)]
    assert per_request == sorted(per_request, reverse=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("ttft_target_ms", 0.0), ("max_utilisation", 1.0), ("headroom", -0.1), ("profile", "x")],
)
def test_bad_service_fields_name_the_field(field: str, value: object) -> None:
    with pytest.raises(InputError) as e:
        spec(**{field: value})
    assert field in str(e.value)


def test_unknown_region_lists_the_valid_ones(china) -> None:
    d = Demand(("users-nowhere",), np.ones((1, 2)), T0)
    with pytest.raises(InputError, match="users-beijing"):
        build_problem(china, InferenceRequest(spec(), d))


# --------------------------------------------------------------------------- exact


def tiny(seed: int, n_j: int, n_t: int) -> Problem:
    """A national instance cut down to 2 regions, ``n_j`` slots of at most 3 replicas."""
    net, d = national_instance(2, n_j, n_t, T0, seed=seed, peak_rps=8.0)
    req = InferenceRequest(spec(ttft_target_ms=700.0, min_replicas=1, headroom=0.1), d)
    p = build_problem(net, req)
    return dataclasses.replace(p, max_n=np.minimum(p.max_n, 3))


def brute_force(p: Problem, policy: str) -> float:
    c = costs_for(policy, p, 1000.0)
    n_j, n_t = len(p.slots), p.hours
    demand = p.planned_rps
    best = np.inf
    for combo in itertools.product(*(range(int(m) + 1) for m in np.repeat(p.max_n, n_t))):
        n = np.array(combo, dtype=np.int64).reshape(n_j, n_t)
        if np.any(n.sum(axis=0) < p.min_replicas):
            continue
        flow = np.zeros((2, n_j, n_t))
        unserved = np.zeros((2, n_t))
        for t in range(n_t):
            pairs = np.argwhere(c.mask)
            cost = [c.marginal[j, t] + c.route[r, j] for r, j in pairs] + [
                UNSERVED_CNY_PER_RPS_H
            ] * 2
            a_eq = np.zeros((2, len(pairs) + 2))
            a_ub = np.zeros((n_j, len(pairs) + 2))
            for k, (r, j) in enumerate(pairs):
                a_eq[r, k] = 1
                a_ub[j, k] = 1
            a_eq[0, -2] = a_eq[1, -1] = 1
            res = linprog(cost, A_ub=a_ub, b_ub=p.cap_rps * n[:, t], A_eq=a_eq, b_eq=demand[:, t])
            assert res.status == 0
            for k, (r, j) in enumerate(pairs):
                flow[r, j, t] = res.x[k]
            unserved[:, t] = res.x[-2:]
        best = min(best, objective(c, n, flow, unserved, np.zeros(n_j, dtype=np.int64)))
    return best


@pytest.mark.slow  # 256 replica vectors x 2 hours of LPs each: about 3 s per case
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("policy", ["cost-carbon", "casper"])
def test_milp_matches_brute_force(seed: int, policy: str) -> None:
    p = tiny(seed, 2, 2)
    plan = plan_problem(p, InferenceRequest(spec(), Demand(p.region_ids, p.demand_rps, T0),
                                            policy=policy, method="milp"))  # fmt: skip
    assert plan.solution.method == "milp"
    assert plan.solution.objective == pytest.approx(brute_force(p, policy), rel=1e-6, abs=1e-6)


def test_heuristic_is_never_below_the_exact_optimum() -> None:
    for seed in range(4):
        p = tiny(seed, 3, 1)
        d = Demand(p.region_ids, p.demand_rps, T0)
        exact = plan_problem(p, InferenceRequest(spec(), d, method="milp")).solution
        fast = plan_problem(p, InferenceRequest(spec(), d, method="heuristic")).solution
        assert fast.objective >= exact.objective - 1e-9
        assert fast.bound <= exact.objective + 1e-9


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("method", ["milp", "heuristic"])
@pytest.mark.parametrize("policy", ["cost-carbon", "casper", "latency-only"])
@pytest.mark.parametrize("target", [400.0, 600.0, 900.0])
def test_no_region_is_served_beyond_its_latency_target(method, policy, target) -> None:
    net, d = national_instance(6, 8, 3, T0, seed=int(target), peak_rps=10.0)
    req = InferenceRequest(spec(ttft_target_ms=target), d, policy=policy, method=method)
    plan = plan_inference(net, req)
    p = plan.problem
    used = plan.solution.flow_rps.sum(axis=2) > 1e-9
    assert np.all(p.ttft_ms[used] <= target)
    # the demand that could be served was served
    reachable = p.feasible.any(axis=1)
    assert np.allclose(plan.solution.unserved_rps[reachable], 0.0)
    for rid, reasons in plan.region_reasons.items():
        for r in reasons:
            if r.code == "latency" and r.role == "placed":
                assert r.get("rtt_ms") <= r.get("limit_ms")
            if r.code == "latency" and r.role == "rejected":
                assert r.get("rtt_ms") > r.get("limit_ms"), rid


def china_demand(china, rate: float = 20.0, hours: int = 3) -> Demand:
    ids = tuple(r.id for r in china.regions)
    return Demand(ids, np.full((len(ids), hours), rate), T0)


@pytest.mark.parametrize("policy", ["cost-carbon", "carbon-only", "casper", "latency-only"])
def test_personal_prompts_stay_in_their_jurisdiction(china, policy: str) -> None:
    req = InferenceRequest(
        spec(data_class=Classification.PERSONAL), china_demand(china), policy=policy,
        method="heuristic",
    )  # fmt: skip
    plan = plan_inference(china, req)
    p = plan.problem
    flow = plan.solution.flow_rps.sum(axis=2)
    for r, j in np.argwhere(flow > 1e-9):
        assert p.slots[j].jurisdiction == p.region_jurisdictions[r]
    hk = p.region_ids.index("users-hong-kong")
    assert flow[hk].sum() > 0
    assert any(r.code == "data_rule" for r in plan.region_reasons["users-hong-kong"]) or (
        policy == "latency-only"
    )


def test_general_prompts_may_cross_so_the_rule_is_what_keeps_them(china) -> None:
    req = InferenceRequest(spec(data_class=Classification.GENERAL), china_demand(china),
                           policy="carbon-only", method="heuristic")  # fmt: skip
    plan = plan_inference(china, req)
    p = plan.problem
    hk = p.region_ids.index("users-hong-kong")
    used = np.flatnonzero(plan.solution.flow_rps.sum(axis=2)[hk] > 1e-9)
    assert any(p.slots[j].jurisdiction != "hong-kong" for j in used)


@pytest.mark.parametrize("method", ["milp", "heuristic"])
def test_the_same_request_gives_the_same_plan(china, method: str) -> None:
    req = InferenceRequest(spec(), china_demand(china, hours=2), method=method)
    a, b = plan_inference(china, req), plan_inference(china, req)
    assert np.array_equal(a.replicas, b.replicas)
    assert np.array_equal(a.solution.flow_rps, b.solution.flow_rps)
    assert [pl.reasons for pl in a.placements] == [pl.reasons for pl in b.placements]


def test_every_replica_has_a_reason(china) -> None:
    plan = plan_inference(china, InferenceRequest(spec(), china_demand(china), method="heuristic"))
    assert plan.placements
    for pl in plan.placements:
        assert pl.reasons and pl.reasons[0].role == "placed"
        assert pl.site_id in pl.reasons[0].message


def test_min_replicas_hold_without_demand(china) -> None:
    ids = tuple(r.id for r in china.regions)
    d = Demand(ids, np.zeros((len(ids), 2)), T0)
    for method in ("milp", "heuristic"):
        plan = plan_inference(china, InferenceRequest(spec(min_replicas=2), d, method=method))
        assert np.all(plan.replicas.sum(axis=0) >= 2)


def test_latency_only_keeps_its_peak_all_horizon(china) -> None:
    d = china_demand(china, hours=3)
    d = Demand(d.region_ids, d.rps * np.array([1.0, 3.0, 0.5]), T0)
    plan = plan_inference(china, InferenceRequest(spec(), d, policy="latency-only"))
    r = plan.replicas
    assert np.all(r == r[:, :1])


def test_a_region_out_of_reach_is_unserved_with_its_reason(china) -> None:
    # 100 ms p99 TTFT: no accelerator reads a 4,142-token prompt that fast
    req = InferenceRequest(spec(ttft_target_ms=100.0), china_demand(china, hours=1))
    plan = plan_inference(china, req)
    assert np.allclose(plan.solution.flow_rps, 0.0)
    assert plan.solution.unserved_rps.sum() == pytest.approx(plan.problem.planned_rps.sum())
    for reasons in plan.region_reasons.values():
        assert [r.code for r in reasons if r.role == "infeasible"] == ["latency"]


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    target=st.floats(150.0, 2000.0),
    policy=st.sampled_from(["cost-carbon", "casper", "latency-only"]),
    resident=st.booleans(),
)
def test_plans_keep_targets_and_rules_on_random_instances(seed, target, policy, resident) -> None:
    net, d = national_instance(5, 6, 2, T0, seed=seed, peak_rps=12.0)
    data_class = Classification.PERSONAL if resident else Classification.GENERAL
    req = InferenceRequest(
        spec(ttft_target_ms=target, data_class=data_class), d, policy=policy, method="heuristic"
    )
    a, b = plan_inference(net, req), plan_inference(net, req)
    p = a.problem
    used = a.solution.flow_rps.sum(axis=2) > 1e-9
    assert np.all(p.ttft_ms[used] <= target) and np.all(p.allowed[used])
    assert np.all(a.solution.replicas <= p.max_n[:, None])
    served = a.solution.flow_rps.sum(axis=0)  # J x T
    assert np.all(served <= p.cap_rps[:, None] * a.solution.replicas + 1e-6)
    assert np.array_equal(a.replicas, b.replicas)


def test_an_exact_plan_too_large_is_refused_naming_the_method() -> None:
    net, d = national_instance(30, 30, 48, T0, seed=1)
    with pytest.raises(InputError, match="method"):
        plan_inference(net, InferenceRequest(spec(), d, method="milp"))
