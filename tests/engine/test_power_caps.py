"""Power as a constraint (``engine.power``): a site's facility power cap per window holds in
every slot of every plan, checked independently from the placements and the measured power
profile (``model.job_power_kw`` x PUE)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from enginekit import T0, H, check_reply, job, network, request, site
from hypothesis import given, settings
from hypothesis import strategies as st

from computenet.engine import plan
from computenet.engine.power import PowerCap, PowerDraw
from computenet.engine.types import PlanReply, PlanRequest
from computenet.errors import InputError
from computenet.model import job_power_kw


def draw_at(req: PlanRequest, rep: PlanReply, site_id: str, t: int) -> float:
    """Facility power (kW) the placements and committed draws take at ``site_id`` at ``t``."""
    net = req.network
    s = net.site(site_id)
    jobs = {j.id: j for j in req.jobs}
    total = 0.0
    for p in rep.placements:
        if p.site_id == site_id and p.start_s <= t < p.end_s:
            j = jobs[p.job_id]
            host = sum(q.host_power_w for q in s.pools if q.accelerator == p.accelerator)
            acc = net.accelerators[p.accelerator]
            total += job_power_kw(acc, j.work_kind, j.utilisation, p.count, host) * s.pue
    for d in req.power_drawn:
        if d.site_id == site_id and d.start_s <= t < d.end_s:
            total += d.kw
    return total


def assert_caps_hold(req: PlanRequest, rep: PlanReply) -> None:
    """Every cap holds at every placement start and every quarter hour of its window."""
    for c in req.power_caps:
        points = set(range(c.start_s, c.end_s, 900))
        points |= {p.start_s for p in rep.placements if c.start_s <= p.start_s < c.end_s}
        for t in sorted(points):
            total = sum(draw_at(req, rep, s, t) for s in c.sites)
            assert total <= c.limit_kw + 1e-6, (c, t)


def one_gpu_kw(pue: float = 1.2) -> float:
    from netkit import A100

    return job_power_kw(A100, "training", 1.0, 1, 0.0) * pue


def test_a_cap_moves_work_out_of_its_window_and_holds_every_slot() -> None:
    # One cheap site with 8 A100s; the cap leaves room for 2 of them over hours 0-4.
    net = network(site("a", 8, price=0.1), site("b", 8, price=0.9))
    jobs = [job(f"j{n}", 2.0, 1, deadline_h=24) for n in range(6)]
    cap = PowerCap("a", T0, T0 + 4 * H, 2 * one_gpu_kw() + 1e-3, "test")
    base = request(net, jobs)
    free = plan(base)
    assert sum(p.site_id == "a" and p.start_s < T0 + 4 * H for p in free.placements) == 6
    req = dataclasses.replace(base, power_caps=(cap,))
    rep = plan(req)
    check_reply(req, rep)
    assert_caps_hold(req, rep)
    assert len(rep.placements) == 6
    inside = [p for p in rep.placements if p.site_id == "a" and p.start_s < T0 + 4 * H]
    assert len(inside) <= 2 * 2  # two at a time over four hours of two-hour jobs


def test_committed_draws_count_against_the_cap() -> None:
    net = network(site("a", 8, price=0.1), site("b", 8, price=0.9))
    cap = PowerCap("a", T0, T0 + 6 * H, 3 * one_gpu_kw() + 1e-3)
    drawn = PowerDraw("a", T0, T0 + 6 * H, 3 * one_gpu_kw(), "running")
    req = dataclasses.replace(
        request(net, [job("x", 1.0, 1, deadline_h=3)]), power_caps=(cap,), power_drawn=(drawn,)
    )
    rep = plan(req)
    assert [p.site_id for p in rep.placements] == ["b"]  # no power left at a in time


def test_a_zero_cap_is_like_no_power_at_all_and_the_job_waits() -> None:
    net = network(site("a", 8))
    cap = PowerCap("a", T0, T0 + 3 * H, 0.0)
    req = dataclasses.replace(request(net, [job("x", 1.0, 1, deadline_h=24)]), power_caps=(cap,))
    rep = plan(req)
    assert rep.placements[0].start_s >= T0 + 3 * H


def test_a_group_cap_holds_the_sum_of_its_sites() -> None:
    net = network(site("a", 8, price=0.1), site("b", 8, price=0.2), site("c", 8, price=0.9))
    jobs = [job(f"j{n}", 2.0, 1, deadline_h=24) for n in range(12)]
    cap = PowerCap("a+b", T0, T0 + 4 * H, 3 * one_gpu_kw() + 1e-3, group=("a", "b"))
    req = dataclasses.replace(request(net, jobs), power_caps=(cap,))
    rep = plan(req)
    check_reply(req, rep)
    assert_caps_hold(req, rep)
    early = [p for p in rep.placements if p.start_s < T0 + 4 * H and p.site_id in ("a", "b")]
    assert early and len(early) < 12  # some run at a or b in the window, within the cap


def test_bad_caps_name_the_field() -> None:
    net = network(site("a", 8))
    base = request(net, [job("x", 1.0, 1)])
    with pytest.raises(InputError, match="power_caps"):
        plan(dataclasses.replace(base, power_caps=(PowerCap("nope", T0, T0 + H, 1.0),)))
    with pytest.raises(InputError, match="limit_kw"):
        plan(dataclasses.replace(base, power_caps=(PowerCap("a", T0, T0 + H, -1.0),)))
    with pytest.raises(InputError, match="power_caps"):
        plan(
            dataclasses.replace(base, policy="milp", power_caps=(PowerCap("a", T0, T0 + H, 10.0),))
        )


@settings(max_examples=25, deadline=None)
@given(
    n_jobs=st.integers(1, 80),
    gpus=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    cap_gpus=st.integers(0, 6),
    start_h=st.integers(0, 5),
    len_h=st.integers(1, 6),
    policy=st.sampled_from(["greedy", "fifo-home", "wait-awhile", "cheapest-now"]),
)
def test_caps_hold_for_any_workload(
    n_jobs: int, gpus: list[int], cap_gpus: int, start_h: int, len_h: int, policy: str
) -> None:
    net = network(site("a", 8, price=0.1), site("b", 6, price=0.3, pue=1.5))
    rng = np.random.default_rng(n_jobs)
    jobs = [
        job(
            f"j{n}",
            float(rng.uniform(0.2, 3.0)),
            gpus[n % len(gpus)],
            start_h=float(rng.uniform(0, 4)),
            deadline_h=30.0,
        )
        for n in range(n_jobs)
    ]
    caps = (
        PowerCap("a", T0 + start_h * H, T0 + (start_h + len_h) * H, cap_gpus * one_gpu_kw()),
        PowerCap("b", T0, T0 + 2 * H, cap_gpus * one_gpu_kw(1.5)),
        # Both sites together (a hub answering one event).
        PowerCap("a+b", T0 + H, T0 + 5 * H, 1.5 * cap_gpus * one_gpu_kw(), group=("a", "b")),
    )
    req = dataclasses.replace(request(net, jobs, policy=policy), power_caps=caps)
    rep = plan(req)
    check_reply(req, rep)
    assert_caps_hold(req, rep)
