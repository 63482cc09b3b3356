"""Capacity as an incremental ledger (``engine.capacity``): no fixed-size table, the same free
counts as the allocations give slot by slot, and the simulator keeps one ledger for the run
instead of listing every outstanding allocation at every plan call."""

from __future__ import annotations

import random

import numpy as np
import pytest
from enginekit import T0, H, check_reply, dataset, job, network, request, site

from computenet.engine import plan
from computenet.engine.capacity import CapacityLedger, free_grid
from computenet.engine.types import Allocation, PlanRequest
from computenet.errors import InputError


def _naive_taken(allocs: list[Allocation], pool: tuple[str, str], now: int, slot: int, n: int):
    """Per slot, accelerators of ``pool`` held by allocations touching any part of it."""
    out = []
    for k in range(n):
        a, b = now + k * slot, now + (k + 1) * slot
        out.append(
            sum(
                x.count
                for x in allocs
                if (x.site_id, x.accelerator) == pool and x.end_s > max(a, now) and x.start_s < b
            )
        )
    return np.array(out)


def test_more_than_8192_outstanding_allocations_plan() -> None:
    # A burst: 9,000 one-accelerator jobs hold a 9,001-accelerator site for one to three
    # hours. The old fixed table (8,192 rows) raised IndexError here.
    net = network(site("a", 9001), site("b", 4))
    running = [Allocation(f"r{i}", "a", "A100", 1, T0, T0 + H * (1 + i % 3)) for i in range(9000)]
    for policy in ("fifo-home", "greedy"):
        req = request(net, [job("big", 1.0, 3, deadline_h=24)], policy=policy, running=running)
        rep = plan(req)
        check_reply(req, rep)
        [p] = rep.placements
        if p.site_id == "a":  # one accelerator is free until a third of them end
            assert p.start_s >= T0 + H


def test_ledger_matches_allocations_slot_by_slot_as_they_come_and_go() -> None:
    rng = random.Random(7)
    now, slot, n = T0 + 123, 900, 60
    pools = [("a", "A100"), ("a", "H100"), ("b", "A100")]
    ledger = CapacityLedger()
    held: list[Allocation] = []
    for step in range(600):
        if held and rng.random() < 0.35:
            gone = held.pop(rng.randrange(len(held)))
            ledger.remove(gone)
        else:
            s = now + rng.randint(-5 * H, 12 * H)
            a = Allocation(
                f"j{step}", *rng.choice(pools), rng.randint(1, 4), s, s + rng.randint(1, 5 * H)
            )
            ledger.add(a)
            held.append(a)
        if step % 50 == 0:
            grid = free_grid(
                ledger,
                pools,
                np.array([100, 100, 100]),
                now,
                slot,
                n,
            )
            for i, p in enumerate(pools):
                assert (100 - grid[i] == _naive_taken(held, p, now, slot, n)).all()
    assert len(ledger) == len(held)
    assert sorted(ledger.allocations(), key=lambda a: a.job_id) == sorted(
        held, key=lambda a: a.job_id
    )


def test_ledger_peak_is_the_most_held_at_once() -> None:
    ledger = CapacityLedger(
        [
            Allocation("x", "a", "A100", 2, 0, 100),
            Allocation("y", "a", "A100", 3, 50, 150),
            Allocation("z", "a", "A100", 4, 100, 200),
        ]
    )
    assert ledger.peak("a", "A100", 0, 50) == 2
    assert ledger.peak("a", "A100", 0, 51) == 5
    assert ledger.peak("a", "A100", 100, 200) == 7  # x ended at 100
    assert ledger.peak("a", "A100", 150, 300) == 4
    assert ledger.peak("b", "A100", 0, 300) == 0
    with pytest.raises(KeyError):
        ledger.remove(Allocation("w", "a", "A100", 1, 0, 1))


def test_a_request_with_a_ledger_plans_as_with_running() -> None:
    net = network(site("a", 4), site("b", 4, price=0.9))
    running = [
        Allocation("r1", "a", "A100", 3, T0, T0 + 5 * H),
        Allocation("r2", "b", "A100", 2, T0 + H, T0 + 3 * H),
    ]
    jobs = [job("j1", 2.0, 2), job("j2", 1.0, 4)]
    base = request(net, jobs, running=running)
    with_ledger = PlanRequest(
        **{**base.__dict__, "running": (), "capacity": CapacityLedger(running)}
    )
    assert plan(base) == plan(with_ledger)
    with pytest.raises(InputError, match="ledger"):
        plan(PlanRequest(**{**base.__dict__, "capacity": CapacityLedger(running)}))


def test_the_simulator_hands_the_engine_one_ledger_not_the_list() -> None:
    # Listing every outstanding allocation at every call made a plan call's cost grow with
    # the backlog; the simulator now keeps one ledger and the request carries it.
    from computenet.sim.simulator import SimConfig, simulate
    from computenet.sim.workload import Workload

    seen: list[PlanRequest] = []

    def planner(req: PlanRequest):
        seen.append(req)
        return plan(req)

    net = network(site("a", 4), site("b", 4))
    jobs = [job(f"j{i}", 2.0, 2, start_h=i * 0.1, deadline_h=100) for i in range(12)]
    wl = Workload(tuple(jobs), tuple(dataset(f"ds-{j.id}", "a") for j in jobs))
    res = simulate(net, wl, SimConfig(policy="fifo-home"), planner=planner)
    assert not res.violations
    assert all(r.running == () and r.capacity is seen[0].capacity for r in seen)
    assert len(seen[0].capacity) == 0  # everything finished and was given back


def test_ledger_peak_matches_counting_second_by_second() -> None:
    """Several pools, allocations added and removed (many sharing start or end times):
    ``peak`` is the most held at any second of the window, pool by pool."""
    rng = random.Random(3)
    ledger = CapacityLedger()
    held: list[Allocation] = []
    pools = [("a", "A100"), ("b", "A100"), ("a", "H100")]
    for n in range(300):
        s, acc = rng.choice(pools)
        start = rng.randrange(0, 400)
        a = Allocation(f"j{n}", s, acc, rng.randint(1, 5), start, start + rng.randint(1, 80))
        ledger.add(a)
        held.append(a)
        if rng.random() < 0.3:
            ledger.remove(held.pop(rng.randrange(len(held))))
        if n % 37 == 0:
            for s2, acc2 in pools:
                lo = rng.randrange(0, 400)
                hi = lo + rng.randint(1, 100)
                want = max(
                    sum(
                        x.count
                        for x in held
                        if (x.site_id, x.accelerator) == (s2, acc2) and x.start_s <= t < x.end_s
                    )
                    for t in range(lo, hi)
                )
                assert ledger.peak(s2, acc2, lo, hi) == want


def test_ledger_keys_shared_cancelled_and_grown_match_the_allocations() -> None:
    """Allocations on a coarse grid share their start and end times, so the ledger adds to
    existing keys, drops keys whose counts cancel, and grows its arrays many times over;
    the free grid stays the one the allocations give, slot by slot, down to an empty
    ledger."""
    rng = random.Random(11)
    now, slot, n = T0, 900, 40
    pools = [("a", "A100"), ("b", "A100")]
    ledger = CapacityLedger()
    held: list[Allocation] = []
    for step in range(1500):
        if held and rng.random() < 0.45:
            ledger.remove(held.pop(rng.randrange(len(held))))
        else:
            s = now + 900 * rng.randint(-4, 30)
            a = Allocation(
                f"j{step}", *rng.choice(pools), rng.randint(1, 3), s, s + 900 * rng.randint(1, 6)
            )
            ledger.add(a)
            held.append(a)
        if step % 100 == 0 or step > 1490:
            grid = free_grid(ledger, pools, np.array([10**6, 10**6]), now + 450, slot, n)
            for i, p in enumerate(pools):
                assert (10**6 - grid[i] == _naive_taken(held, p, now + 450, slot, n)).all()
    for a in list(held):
        ledger.remove(a)
    assert len(ledger) == 0
    grid = free_grid(ledger, pools, np.array([5, 5]), now, slot, n)
    assert (grid == 5).all()


@pytest.mark.parametrize("policy", ["greedy", "fifo-home", "wait-awhile", "cheapest-now"])
def test_a_plan_call_never_lists_the_outstanding_allocations(policy, monkeypatch) -> None:
    """Issue 11, slow under a backlog: a plan call's cost grew with the number of
    outstanding allocations, read one by one at every call. With a ledger the online
    policies only query it (no pass over its allocations), however many it holds."""
    net = network(site("a", 20_000), site("b", 8))
    ledger = CapacityLedger(
        Allocation(f"r{i}", "a", "A100", 1, T0 + 60 * (i % 97), T0 + H * (1 + i % 5))
        for i in range(20_000)
    )

    def listed(self):
        raise AssertionError("the engine listed every allocation")

    monkeypatch.setattr(CapacityLedger, "allocations", listed)
    jobs = [job(f"j{i}", 1.0, 2, deadline_h=24) for i in range(70)]  # compiled loops too
    req = request(net, jobs, [dataset(f"ds-j{i}", "a") for i in range(70)], policy=policy)
    rep = plan(PlanRequest(**{**req.__dict__, "capacity": ledger}))
    assert len(rep.placements) == 70
