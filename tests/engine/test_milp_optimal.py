"""``milp`` finds the optimum of small instances, known by brute force.

The brute force enumerates, for every job, every start the engine's model allows — on a
quarter-hour boundary, or ending on one (the engine plans hourly requests on quarter-hour
sub-slots) — at every pool, prices each with the true signals the way the simulator
charges them (``Signal.mean`` over the run), and keeps the cheapest combination whose
whole-quarter occupancy fits every pool in every quarter.
"""

from __future__ import annotations

import itertools
import math

import pytest
from enginekit import T0, H, dataset, job, network, request, site
from hypothesis import given, settings
from hypothesis import strategies as st

from computenet.engine import plan
from computenet.model import job_power_kw
from netkit import A100


def brute_force(req) -> float | None:
    net = req.network
    ds = {d.id: d for d in req.datasets}
    options = []
    for j in req.jobs:
        opts = []
        for s in net.sites:
            for pool in s.pools:
                speed = net.speed(pool.accelerator)
                if pool.count < j.accelerators:
                    continue
                run = max(1, math.ceil(j.work_h * 3600 / speed))
                Q = H // 4
                ns = -(-run // Q)
                d = ds[j.datasets[0]]
                moved = d.home_site != s.id
                ready = math.ceil(d.size_gb * 8 / 10.0) if moved else 0
                xfer = d.size_gb * 0.5 if moved else 0.0
                for k in range(req.horizon_slots * 4):
                    for start in {T0 + k * Q, T0 + (k + ns) * Q - run}:
                        if start < max(j.earliest_start_s, T0 + ready):
                            continue
                        if start + run > j.deadline_s:
                            continue
                        kw = job_power_kw(
                            A100, j.work_kind, j.utilisation, j.accelerators, pool.host_power_w
                        )
                        e = kw * s.pue * run / 3600
                        obj = (
                            e * s.price.mean(start, start + run)
                            + j.accelerators * pool.price_cny_per_h * run / 3600
                            + xfer
                            + req.carbon_price_cny_per_t
                            * e
                            * s.carbon.mean(start, start + run)
                            / 1e6
                        )
                        opts.append((obj, s.id, pool.accelerator, k, ns, j.accelerators))
        options.append(opts)
    best = None
    for combo in itertools.product(*options):
        use: dict[tuple[str, str, int], int] = {}
        ok = True
        for _, sid, acc, k, ns, n in combo:
            for t in range(k, k + ns):
                use[(sid, acc, t)] = use.get((sid, acc, t), 0) + n
                if use[(sid, acc, t)] > net.site(sid).capacity(acc):
                    ok = False
        if ok:
            total = sum(c[0] for c in combo)
            best = total if best is None or total < best else best
    return best


@settings(max_examples=25, deadline=None)
@given(
    prices=st.lists(
        st.lists(st.floats(0.1, 1.0), min_size=12, max_size=12), min_size=2, max_size=2
    ),
    carbons=st.lists(
        st.lists(st.floats(50, 900), min_size=12, max_size=12), min_size=2, max_size=2
    ),
    works=st.lists(st.floats(0.2, 1.2), min_size=2, max_size=3),
    caps=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    homes=st.lists(st.sampled_from(["A", "B"]), min_size=3, max_size=3),
)
def test_milp_matches_brute_force(prices, carbons, works, caps, homes) -> None:
    net = network(
        site("A", caps[0], price=prices[0], carbon=carbons[0], pue=1.1),
        site("B", caps[1], price=prices[1], carbon=carbons[1], pue=1.3, host_w=50.0),
    )
    jobs = [
        job(f"j{i}", w, 1 + (i == 0 and caps == (2, 2)), deadline_h=3) for i, w in enumerate(works)
    ]
    ds = [dataset(f"ds-j{i}", homes[i], size_gb=1.0) for i in range(len(jobs))]
    req = request(net, jobs, ds, policy="milp", horizon=3)
    best = brute_force(req)
    rep = plan(req)
    if best is None:
        assert len(rep.placements) < len(jobs)
        return
    assert len(rep.placements) == len(jobs)
    assert rep.objective_cny == pytest.approx(best, rel=1e-6, abs=1e-9)
    lb = plan(request(net, jobs, ds, policy="bound", horizon=3)).lower_bound_cny
    assert lb is not None and lb <= best + 1e-9
