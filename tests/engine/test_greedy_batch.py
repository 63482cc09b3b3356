"""The batched greedy takes exactly the decisions of the one-job-at-a-time greedy."""

from __future__ import annotations

import numpy as np
import pytest
from enginekit import check_reply, dataset, job, network, request, site

from computenet.engine import explain
from computenet.engine.policies import greedy, greedy_batch
from computenet.engine.policies.base import run_sequential
from computenet.engine.problem import Problem
from computenet.model import Classification, Jurisdiction


@pytest.mark.parametrize("seed", range(6))
def test_batched_greedy_decides_like_sequential_greedy(seed, monkeypatch) -> None:
    monkeypatch.setattr(greedy_batch, "MIN_JOBS", 1)
    monkeypatch.setattr(greedy_batch, "TOP_M", 2 + seed)  # small lists: the fallback runs
    rng = np.random.default_rng(seed)
    sites = [
        site(
            f"S{i}",
            int(rng.integers(1, 4)),
            price=list(rng.uniform(0.1, 1.0, 60)),
            carbon=list(rng.uniform(50, 900, 60)),
            jurisdiction=[Jurisdiction.MAINLAND, Jurisdiction.HONG_KONG][i % 2],
            pue=float(rng.uniform(1.1, 1.5)),
        )
        for i in range(4)
    ]
    net = network(*sites)
    jobs, ds = [], []
    for k in range(40):
        start = float(rng.uniform(0, 10))
        work = float(rng.uniform(0.05, 4))
        jobs.append(
            job(
                f"j{k}",
                work,
                int(rng.integers(1, 3)),
                start_h=start,
                deadline_h=start + work + float(rng.uniform(0, 8)),
            )
        )
        cls = list(Classification)[int(rng.integers(0, 5))]
        ds.append(
            dataset(
                f"ds-j{k}",
                f"S{int(rng.integers(0, 4))}",
                cls,
                size_gb=float(rng.choice([0.0, 2.0, 50.0])),
            )
        )
    req = request(net, jobs, ds, horizon=16)
    a = greedy_batch.plan(Problem(req))
    b = run_sequential(Problem(req), "greedy", greedy.choose, explain.costs_more())
    check_reply(req, a)
    key = [(p.job_id, p.site_id, p.accelerator, p.start_s, p.end_s) for p in a.placements]
    assert key == [(p.job_id, p.site_id, p.accelerator, p.start_s, p.end_s) for p in b.placements]
    assert a.deferred == b.deferred and a.infeasible == b.infeasible
    assert a.objective_cny == pytest.approx(b.objective_cny, rel=1e-12)


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
