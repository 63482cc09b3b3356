"""Invariants on random instances (hypothesis): capacity never exceeded (second by second),
no data rule broken (the simulator's own checker), every placed job meets its deadline and
every other job is answered with a reason, the same request gives the same reply, and no
policy's objective is below the bound."""

from __future__ import annotations

from dataclasses import replace

from enginekit import T0, H, check_reply, dataset, job, network, request, site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computenet.engine import plan
from computenet.engine.types import Allocation
from computenet.model import Classification, Jurisdiction

POLICIES = ["fifo-home", "cheapest-now", "carbon-now", "wait-awhile", "greedy", "milp"]


@st.composite
def instances(draw):
    n_sites = draw(st.integers(2, 4))
    horizon = draw(st.integers(4, 16))
    sites = []
    for i in range(n_sites):
        pools = {"A100": draw(st.integers(1, 4))}
        if draw(st.booleans()):
            pools["H100"] = draw(st.integers(1, 2))
        sites.append(
            site(
                f"S{i}",
                pools,
                price=draw(st.lists(st.floats(0.05, 1.5), min_size=48, max_size=48)),
                carbon=draw(st.lists(st.floats(20, 1000), min_size=48, max_size=48)),
                jurisdiction=draw(st.sampled_from(list(Jurisdiction))),
                level=draw(st.integers(1, 4)),
                pue=draw(st.floats(1.05, 1.6)),
                host_w=draw(st.sampled_from([0.0, 100.0])),
                price_h=draw(st.sampled_from([0.0, 2.0])),
            )
        )
    net = network(*sites)
    ids = [s.id for s in sites]
    jobs, dss = [], []
    for k in range(draw(st.integers(1, 7))):
        start = draw(st.floats(0, 6))
        work = draw(st.floats(0.1, 6))
        slack = draw(st.floats(0.5, 3))
        speeds = draw(st.sampled_from([None, {"A100": 1.0}, {"A100": 1.0, "H100": 2.5}]))
        j = job(
            f"j{k}",
            work,
            draw(st.integers(1, 3)),
            start_h=start,
            deadline_h=start + work * slack + draw(st.floats(0, 4)),
            speeds=speeds,
            priority=draw(st.integers(0, 1)),
        )
        jobs.append(j)
        dss.append(
            dataset(
                f"ds-j{k}",
                draw(st.sampled_from(ids)),
                draw(st.sampled_from(list(Classification))),
                size_gb=draw(st.sampled_from([0.0, 5.0, 500.0])),
                individuals=draw(st.sampled_from([1000, 500_000])),
                cleared=draw(st.booleans()),
            )
        )
    running = []
    if draw(st.booleans()):
        s = draw(st.sampled_from(sites))
        running.append(Allocation("old", s.id, "A100", 1, T0 - H, T0 + draw(st.integers(1, 8)) * H))
    down = frozenset(draw(st.lists(st.sampled_from(ids), max_size=1)))
    now = T0 + draw(st.sampled_from([0, 900]))
    return request(
        net,
        jobs,
        dss,
        horizon=horizon,
        carbon_price=draw(st.sampled_from([0.0, 1000.0, 10_000.0])),
        running=running,
        down=down,
        now_s=now,
    )


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(instances())
def test_every_policy_keeps_every_hard_constraint_and_is_deterministic(req) -> None:
    for pol in POLICIES:
        r = replace(req, policy=pol)
        rep = plan(r)
        check_reply(r, rep)
        assert plan(r) == rep
        for i in rep.infeasible:
            assert i.constraint and i.reason


@SETTINGS
@given(instances())
def test_no_policy_beats_the_bound(req) -> None:
    for pol in POLICIES:
        rep = plan(replace(req, policy=pol))
        placed = {p.job_id for p in rep.placements}
        if not placed:
            continue
        sub = replace(req, policy="bound", jobs=tuple(j for j in req.jobs if j.id in placed))
        lb = plan(sub).lower_bound_cny
        assert lb is not None
        assert lb <= rep.objective_cny + 1e-6 * max(1.0, abs(rep.objective_cny)), (pol, lb)


@SETTINGS
@given(instances())
def test_milp_is_never_worse_than_greedy_when_both_place_everything(req) -> None:
    g = plan(replace(req, policy="greedy"))
    m = plan(replace(req, policy="milp"))
    if len(g.placements) == len(req.jobs):
        assert len(m.placements) == len(req.jobs)
        assert m.objective_cny <= g.objective_cny + 1e-6 * max(1.0, abs(g.objective_cny))
