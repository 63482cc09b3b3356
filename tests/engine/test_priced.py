"""``priced`` (LP-guided, capacity-priced greedy with exchanges) and ``repair.improve``:
never worse than greedy, never more misses, never a broken constraint; and the exchange
that greedy's myopia calls for on a small scarce case."""

from __future__ import annotations

from dataclasses import replace

from enginekit import check_reply, dataset, job, network, request, site
from hypothesis import given, settings
from hypothesis import strategies as st

from computenet.engine import plan
from computenet.engine.explain import costs_more
from computenet.engine.planner import POLICIES
from computenet.engine.policies import greedy, repair
from computenet.engine.problem import Problem


def _myopic():
    """One A100 at A (cheap in hour 1, dearer after) and one at B. ``early`` (small data)
    may run any time in 6 h and comes first in greedy's order, so it takes hour 1 at A;
    ``late`` (200 GB at A) can only run in hour 1, so greedy moves its data to B. Both at
    A — ``early`` an hour later — costs far less."""
    net = network(
        site("A", 1, price=[0.5, 0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
        site("B", 1, price=0.5),
    )
    jobs = [
        job("early", 1.0, start_h=0.0, deadline_h=6.0),
        job("late", 1.0, start_h=1.0, deadline_h=2.0),
    ]
    ds = [dataset("ds-early", "A", size_gb=1.0), dataset("ds-late", "A", size_gb=200.0)]
    return request(net, jobs, ds, horizon=8)


def test_priced_is_registered() -> None:
    assert POLICIES["priced"] == "computenet.engine.policies.priced"


def test_exchange_undoes_greedys_myopia() -> None:
    req = _myopic()
    g = plan(req)
    where = {p.job_id: p.site_id for p in g.placements}
    assert where == {"early": "A", "late": "B"}  # the case is what it claims
    pb = Problem(req)
    rep = greedy.plan(pb)
    better, kept = repair.improve(pb, rep, costs_more())
    assert kept == 1
    assert {p.job_id: p.site_id for p in better.placements} == {"early": "A", "late": "A"}
    assert better.objective_cny < g.objective_cny - 50.0  # no 200 GB copy
    check_reply(req, better)
    p = plan(replace(req, policy="priced"))
    assert p.objective_cny <= better.objective_cny + 1e-9
    check_reply(req, p)


@settings(max_examples=15, deadline=None)
@given(
    prices=st.lists(st.lists(st.floats(0.1, 1.0), min_size=8, max_size=8), min_size=2, max_size=2),
    works=st.lists(st.floats(0.3, 3.0), min_size=2, max_size=5),
    gangs=st.lists(st.integers(1, 2), min_size=5, max_size=5),
    sizes=st.lists(st.floats(0.0, 300.0), min_size=5, max_size=5),
    homes=st.lists(st.sampled_from(["A", "B"]), min_size=5, max_size=5),
    starts=st.lists(st.floats(0.0, 3.0), min_size=5, max_size=5),
)
def test_priced_never_worse_than_greedy(prices, works, gangs, sizes, homes, starts) -> None:
    net = network(site("A", 2, price=prices[0]), site("B", 2, price=prices[1], pue=1.3))
    jobs = [
        job(f"j{i}", w, gangs[i], start_h=starts[i], deadline_h=starts[i] + max(2 * w, w + 1.0))
        for i, w in enumerate(works)
    ]
    ds = [dataset(f"ds-j{i}", homes[i], size_gb=sizes[i]) for i in range(len(jobs))]
    req = request(net, jobs, ds, horizon=8)
    g = plan(req)
    p = plan(replace(req, policy="priced"))
    check_reply(req, p)
    g_miss = len(g.deferred) + len(g.infeasible)
    p_miss = len(p.deferred) + len(p.infeasible)
    assert p_miss <= g_miss
    if p_miss == g_miss:
        assert p.objective_cny <= g.objective_cny + 1e-9 * max(1.0, g.objective_cny)
