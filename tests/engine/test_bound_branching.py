"""The ``bound`` policy's branching on sites: a gang that fills a pool cannot share it, so
the plain LP (which splits the gang between sites and lets another job keep half the pool)
is loose; branching on where the gang runs raises the bound, and it never passes an exact
optimum (brute force over every start the engine's model allows)."""

from __future__ import annotations

from enginekit import dataset, job, network, request, site
from hypothesis import given, settings
from hypothesis import strategies as st
from test_milp_optimal import brute_force

from computenet.engine import plan
from computenet.engine.policies import bound
from computenet.engine.problem import Problem


def _gang_request(size_small: float = 200.0, size_gang: float = 30.0):
    # Both pools hold 2; the gang needs 2 for 2.5 h and the 1-GPU job 2.5 h, both within
    # the first 3 h and both homed at A: one of them must move its data to B.
    net = network(site("A", 2, price=0.3), site("B", 2, price=0.3))
    jobs = [job("g", 2.5, 2, deadline_h=3), job("s", 2.5, 1, deadline_h=3)]
    ds = [
        dataset("ds-g", "A", size_gb=size_gang),
        dataset("ds-s", "A", size_gb=size_small),
    ]
    return request(net, jobs, ds, policy="bound", horizon=3)


def test_branching_raises_the_bound_to_the_optimum_on_a_gang_that_fills_a_pool() -> None:
    req = _gang_request()
    best = brute_force(req)
    assert best is not None
    root = bound.lower_bound(Problem(req))
    rep = plan(req)
    assert rep.lower_bound_cny is not None
    # The LP moves half the gang (half its copy cost); a real plan moves all of one job.
    assert root.value < 0.9 * best
    assert root.value < rep.lower_bound_cny <= best + 1e-9
    assert rep.lower_bound_cny >= 0.99 * best
    assert any("branched on sites" in n for n in rep.notes)


def test_no_branching_without_a_node_budget() -> None:
    req = _gang_request()
    pb = Problem(req)
    assert bound.lower_bound(pb).nodes == 0
    assert bound.lower_bound(pb, branch_nodes=4).nodes > 0


@settings(max_examples=25, deadline=None)
@given(
    prices=st.lists(st.lists(st.floats(0.1, 1.0), min_size=4, max_size=4), min_size=2, max_size=2),
    works=st.lists(st.floats(0.5, 2.8), min_size=2, max_size=3),
    gangs=st.lists(st.integers(1, 2), min_size=3, max_size=3),
    sizes=st.lists(st.floats(0.0, 300.0), min_size=3, max_size=3),
    homes=st.lists(st.sampled_from(["A", "B"]), min_size=3, max_size=3),
)
def test_branched_bound_never_exceeds_the_optimum(prices, works, gangs, sizes, homes) -> None:
    net = network(
        site("A", 2, price=prices[0], pue=1.1),
        site("B", 2, price=prices[1], pue=1.3, host_w=50.0),
    )
    jobs = [job(f"j{i}", w, gangs[i], deadline_h=3) for i, w in enumerate(works)]
    ds = [dataset(f"ds-j{i}", homes[i], size_gb=sizes[i]) for i in range(len(jobs))]
    req = request(net, jobs, ds, policy="bound", horizon=3)
    best = brute_force(req)
    if best is None:
        return
    lb = plan(req).lower_bound_cny
    assert lb is not None and lb <= best + 1e-9 * max(1.0, abs(best))
