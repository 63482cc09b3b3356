"""The compiled greedy takes exactly the decisions of the one-job-at-a-time greedy."""

from __future__ import annotations

from dataclasses import astuple, replace

import numpy as np
import pytest
from enginekit import check_reply, dataset, job, network, request, site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import instances

from computenet.engine import explain
from computenet.engine.policies import greedy, greedy_compiled
from computenet.engine.policies.base import run_sequential
from computenet.engine.problem import Problem
from computenet.engine.types import PlanReply, PlanRequest
from computenet.model import Classification, Jurisdiction


def compiled_and_sequential(req: PlanRequest) -> tuple[PlanReply, PlanReply]:
    """Both replies, after checking the compiled one keeps every hard constraint and
    decides exactly like the one-job path (placements, deferrals, infeasibles, objective)."""
    a = greedy_compiled.plan(Problem(req))
    b = run_sequential(Problem(req), "greedy", greedy.choose, explain.costs_more())
    check_reply(req, a)
    key = [(p.job_id, p.site_id, p.accelerator, p.start_s, p.end_s) for p in a.placements]
    assert key == [(p.job_id, p.site_id, p.accelerator, p.start_s, p.end_s) for p in b.placements]
    assert a.deferred == b.deferred and a.infeasible == b.infeasible
    assert a.objective_cny == pytest.approx(b.objective_cny, rel=1e-12, abs=1e-9)
    return a, b


CASES = [(seed, variant) for seed in range(4) for variant in ("plain", "reserve", "mixed")]


@pytest.mark.parametrize(("seed", "variant"), CASES)
def test_compiled_greedy_decides_like_sequential_greedy(seed, variant, monkeypatch) -> None:
    """Same placements, deferrals, infeasibles and objective as the one-job path, on random
    instances with data rules, home reserves, several accelerator speeds, a site down, jobs
    the kernel leaves to the ordinary path (two datasets, a replica) and jobs with no room."""
    monkeypatch.setattr(greedy_compiled, "MIN_JOBS", 1)
    rng = np.random.default_rng(seed)
    mixed = variant == "mixed"
    sites = [
        site(
            f"S{i}",
            {"A100": int(rng.integers(1, 4)), "H100": 1} if mixed else int(rng.integers(1, 4)),
            price=list(rng.uniform(0.1, 1.0, 60)),
            carbon=list(rng.uniform(50, 900, 60)),
            jurisdiction=[Jurisdiction.MAINLAND, Jurisdiction.HONG_KONG][i % 2],
            pue=float(rng.uniform(1.1, 1.5)),
        )
        for i in range(5)
    ]
    net = network(*sites)
    jobs, ds = [], []
    for k in range(60):
        start = float(rng.uniform(0, 10))
        work = float(rng.uniform(0.05, 4))
        two = k % 17 == 5  # two datasets: the ordinary path
        jobs.append(
            job(
                f"j{k}",
                work,
                int(rng.integers(1, 3)),
                start_h=start,
                deadline_h=start + work + float(rng.uniform(0, 8)),
                datasets=(f"ds-j{k}", f"ds-j{k - 1}") if two else None,
                speeds={"A100": 1.0, "H100": 1.7} if mixed and k % 3 else None,
                priority=int(rng.integers(0, 2)),
            )
        )
        cls = list(Classification)[int(rng.integers(0, 5))]
        ds.append(
            dataset(
                f"ds-j{k}",
                f"S{int(rng.integers(0, 5))}",
                cls,
                size_gb=float(rng.choice([0.0, 2.0, 50.0])),
            )
        )
    req = request(net, jobs, ds, horizon=16, down=frozenset({"S4"}) if seed % 2 else frozenset())
    req = replace(
        req,
        home_reserve=0.3 if variant == "reserve" else 0.0,
        # A copy elsewhere (the ordinary path) and a replica set of only the home site
        # (the simulator's way of saying "no copies yet": the kernel takes it).
        replicas={"ds-j7": frozenset({"S2"}), "ds-j8": frozenset({ds[8].home_site})},
    )
    a, b = compiled_and_sequential(req)
    for pa, pb_ in zip(a.placements, b.placements, strict=True):
        assert astuple(pa.breakdown) == pytest.approx(astuple(pb_.breakdown), rel=1e-12)
        assert pa.transfers == pb_.transfers
        assert pa.reason and pa.alternatives == pa.alternatives[:3]
        for alt in pa.alternatives:  # nothing it passed over was cheaper and still had room
            if alt.objective_cny is not None and alt.reason.startswith("costs"):
                assert alt.objective_cny >= pa.breakdown.objective_cny - 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_pricing_pools_by_lower_bound_changes_no_decision(seed, monkeypatch) -> None:
    rng = np.random.default_rng(100 + seed)
    sites = [
        site(
            f"S{i}",
            {"A100": int(rng.integers(1, 3)), "H100": 1},
            price=list(rng.uniform(0.1, 1.0, 60)),
            carbon=list(rng.uniform(50, 900, 60)),
        )
        for i in range(6)
    ]
    net = network(*sites)
    jobs = [
        job(
            f"j{k}",
            float(rng.uniform(0.1, 3)),
            1,
            start_h=float(rng.uniform(0, 6)),
            deadline_h=20,
            speeds={"A100": 1.0, "H100": 2.0} if k % 2 else None,
        )
        for k in range(25)
    ]
    ds = [
        dataset(f"ds-j{k}", f"S{k % 6}", size_gb=float(rng.choice([0.0, 1.0]))) for k in range(25)
    ]
    req = request(net, jobs, ds, horizon=12)
    monkeypatch.setattr(greedy, "PRUNE_ABOVE", 10**9)
    full = run_sequential(Problem(req), "greedy", greedy.choose, explain.costs_more())
    monkeypatch.setattr(greedy, "PRUNE_ABOVE", 1)
    pruned = run_sequential(Problem(req), "greedy", greedy.choose, explain.costs_more())
    check_reply(req, pruned)
    key = [(p.job_id, p.site_id, p.accelerator, p.start_s) for p in pruned.placements]
    assert key == [(p.job_id, p.site_id, p.accelerator, p.start_s) for p in full.placements]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.sampled_from([0.0, 0.3]))
def test_compiled_greedy_matches_sequential_on_random_instances(req, reserve) -> None:
    """The random instances of the property tests (running allocations, a site down, the
    slot offset of ``now``, mixed speeds, every data class), with and without a reserve."""
    compiled_and_sequential(replace(req, home_reserve=reserve))


@pytest.mark.parametrize("variant", ["plain", "mixed"])
def test_time_window_check_matches_the_priced_options(variant) -> None:
    """``time_ok_any`` (used to explain a job the kernel found no start for) says what the
    priced options say: some start allowed by time alone, or none."""
    rng = np.random.default_rng(7)
    mixed = variant == "mixed"
    net = network(
        *(site(f"S{i}", {"A100": 2, "H100": 1} if mixed else 2, price=[0.5] * 60) for i in range(3))
    )
    seen = set()
    for k in range(400):
        start = float(rng.uniform(-1, 30))
        work = float(rng.choice([0.05, 0.3, 1.0, 2.7, 9.0]))
        slack = float(rng.choice([0.0, 0.2, 0.9, 1.0, 3.0]))
        j = job(
            f"j{k}",
            work,
            1,
            start_h=start,
            deadline_h=start + work * slack + float(rng.uniform(0, 1)),
            speeds={"A100": 1.0, "H100": 1.7} if mixed and k % 2 else None,
        )
        pb = Problem(request(net, [j], [], horizon=24))
        v = pb.views[0]
        if not hasattr(v, "pairs"):
            continue
        o = pb.options(v)
        want = bool(o.width and o.time_ok.any())
        assert pb.time_ok_any(v) == want, j
        seen.add(want)
    assert seen == {True, False}


@pytest.mark.parametrize("policy", ["fifo-home", "wait-awhile"])
def test_home_policies_skip_pricing_only_when_nothing_fits(policy, monkeypatch) -> None:
    """Under a backlog the home policies skip pricing a job with no room at home in its
    window (``room_in_window``); the reply, explanations included, is the one they give
    pricing every job."""
    from computenet.engine import plan
    from computenet.engine.options import StartOptions

    rng = np.random.default_rng(11)
    net = network(*(site(f"S{i}", 2, price=list(rng.uniform(0.1, 1.0, 60))) for i in range(3)))
    jobs, ds = [], []
    for k in range(80):
        start = float(rng.uniform(0, 6))
        work = float(rng.choice([0.2, 1.0, 3.0, 7.0]))
        jobs.append(
            job(
                f"j{k}",
                work,
                int(rng.integers(1, 3)),
                start_h=start,
                deadline_h=start + work + float(rng.choice([0.5, 4.0, 40.0])),
            )
        )
        ds.append(dataset(f"ds-j{k}", f"S{k % 3}", Classification.PUBLIC))
    req = replace(request(net, jobs, ds, horizon=12), policy=policy)
    fast = plan(req)
    monkeypatch.setattr(StartOptions, "room_in_window", lambda self, v, rows: True)
    slow = plan(req)
    assert fast == slow
    assert fast.deferred and fast.infeasible and fast.placements


HOME_POLICIES = {"fifo-home": "fifo_home", "wait-awhile": "wait_awhile"}


def _home_both(req: PlanRequest) -> tuple[PlanReply, PlanReply]:
    """The home policy's reply with the compiled no-room loop, and one job at a time."""
    import importlib

    mod = importlib.import_module(f"computenet.engine.policies.{HOME_POLICIES[req.policy]}")
    a = mod.plan(Problem(req))
    b = run_sequential(Problem(req), req.policy, mod.choose, explain.costs_more())
    return a, b


@pytest.mark.parametrize("policy", sorted(HOME_POLICIES))
@pytest.mark.parametrize("seed", range(3))
def test_compiled_home_loop_gives_the_one_job_reply_under_a_backlog(policy, seed) -> None:
    """A backlog at home (most jobs have no room in their window), some jobs without data
    (homed at the first site, with every pool's reserve), one whose home cannot run its
    gang, jobs with their own speeds, copies elsewhere, a site down, and (seed 2) a
    network of two accelerator types, which the loop leaves to the one-job path: the
    reply, explanations included, is the one-job path's."""
    from computenet.engine.policies import home_compiled

    assert home_compiled.MIN_JOBS <= 120
    rng = np.random.default_rng(seed)
    net = network(
        *(
            site(
                f"S{i}",
                {"A100": 1, "H100": 1} if i == 2 and seed == 2 else 1,
                price=list(rng.uniform(0.1, 1, 60)),
            )
            for i in range(4)
        )
    )
    jobs, ds = [], []
    for k in range(120):
        start = float(rng.uniform(0, 6))
        work = float(rng.choice([0.2, 1.0, 3.0, 7.0]))
        jobs.append(
            job(
                f"j{k}",
                work,
                2 if k == 7 else 1,
                start_h=start,
                # Some cannot finish in time anywhere: the one-job explanation says why.
                deadline_h=start
                + (work / 2 if k % 17 == 4 else work + float(rng.choice([0.5, 4.0, 40.0]))),
                datasets=() if k % 11 == 3 else None,
                speeds={"A100": 1.0, "H100": 1.7} if k % 13 == 5 else None,
            )
        )
        ds.append(dataset(f"ds-j{k}", f"S{k % 4}", Classification.PUBLIC))
    req = replace(
        request(net, jobs, ds, horizon=12, down=frozenset({"S3"}) if seed == 1 else frozenset()),
        policy=policy,
        home_reserve=0.0 if seed == 2 else 0.3,
        replicas={"ds-j9": frozenset({"S1", "S0"})},
    )
    a, b = _home_both(req)
    assert a == b
    assert a.deferred and a.infeasible and a.placements


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.sampled_from([0.0, 0.3]), st.sampled_from(sorted(HOME_POLICIES)))
def test_compiled_home_loop_matches_one_job_path_on_random_instances(req, reserve, policy) -> None:
    from computenet.engine.policies import home_compiled

    old = home_compiled.MIN_JOBS
    home_compiled.MIN_JOBS = 1
    try:
        a, b = _home_both(replace(req, home_reserve=reserve, policy=policy))
    finally:
        home_compiled.MIN_JOBS = old
    assert a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.sampled_from([0.0, 0.3]))
def test_compiled_options_are_the_array_options_bit_for_bit(req, reserve) -> None:
    """``greedy.options`` (one compiled pass for a job with one run length) gives the
    arrays ``Problem.options`` gives, to the bit, job by job as greedy commits them."""
    pb = Problem(replace(req, home_reserve=reserve))
    pb2 = Problem(replace(req, home_reserve=reserve))
    old = greedy.COMPILED_OPTIONS_ABOVE
    greedy.COMPILED_OPTIONS_ABOVE = 0
    try:
        for n in range(len(pb.views)):
            v = pb.views[n]
            if not hasattr(v, "pairs"):
                continue
            a, b = greedy.options(pb, v), pb2.options(pb2.views[n])
            assert a.k0 == b.k0
            assert np.array_equal(a.value, b.value)
            assert np.array_equal(a.end_aligned, b.end_aligned)
            assert np.array_equal(a.time_ok, b.time_ok)
            d = greedy.choose(pb, v)
            if d.pick is not None:  # commit the same start in both, as greedy would
                for p in (pb, pb2):
                    vv = p.views[n]
                    k = d.opts.k0 + d.pick.c
                    p.commit(int(vv.pairs[d.pick.i]), k, p.footprint(vv, d.pick.i), vv.count)
    finally:
        greedy.COMPILED_OPTIONS_ABOVE = old
