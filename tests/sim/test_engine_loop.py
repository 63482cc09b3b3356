"""The simulator with the real placement engine in the loop: small cases with known outcomes."""

from __future__ import annotations

import pytest
from simkit import T0, dataset, job, network, site

import computenet.engine
from computenet.model import Classification
from computenet.sim.metrics import summarise
from computenet.sim.simulator import Outage, SimConfig, simulate
from computenet.sim.workload import Workload

plan = getattr(computenet.engine, "plan", None)
pytestmark = pytest.mark.skipif(plan is None, reason="computenet.engine.plan has not landed yet")


def _wl(jobs, datasets) -> Workload:
    return Workload(tuple(jobs), tuple(datasets), {d.id[3:]: d.home_site for d in datasets})


def _two_grids():
    # Same price; A is coal-heavy (800 g/kWh), B clean (100 g/kWh).
    return network(site("A", 4, carbon=800.0), site("B", 4, carbon=100.0))


def test_greedy_moves_flexible_work_to_the_clean_site_and_fifo_stays_home() -> None:
    net = _two_grids()
    jobs = [job(f"j{i}", i, 2, deadline_h=i + 30) for i in range(3)]
    ds = [dataset(j.id, "A", Classification.PUBLIC) for j in jobs]
    fifo = simulate(net, _wl(jobs, ds), SimConfig(policy="fifo-home", carbon_price_cny_per_t=1000))
    greedy = simulate(net, _wl(jobs, ds), SimConfig(policy="greedy", carbon_price_cny_per_t=1000))
    assert {o.site_id for o in fifo.outcomes} == {"A"}
    assert {o.site_id for o in greedy.outcomes} == {"B"}
    mf, mg = summarise(fifo), summarise(greedy)
    assert mg.carbon_kg == pytest.approx(mf.carbon_kg / 8, rel=1e-6)
    assert mf.violations == mg.violations == 0
    assert mf.deadline_misses == mg.deadline_misses == 0


def test_core_data_stays_home_even_when_home_is_dirty() -> None:
    net = _two_grids()
    jobs = [job("c", 0, 2)]
    ds = [dataset("c", "A", Classification.CORE)]
    res = simulate(net, _wl(jobs, ds), SimConfig(policy="greedy", carbon_price_cny_per_t=10_000))
    assert res.outcomes[0].site_id == "A"
    assert summarise(res).violations == 0


def test_checkpointed_work_survives_an_outage_with_the_engine() -> None:
    net = network(site("A", 1, carbon=100.0), site("B", 1, carbon=800.0))
    ck = job("c", 0, 6, checkpointable=True, deadline_h=100)
    res = simulate(
        net,
        _wl([ck], [dataset("c", "A", Classification.PUBLIC)]),
        SimConfig(policy="greedy", outages=(Outage("A", T0 + 9000, T0 + 12600),)),
    )
    o = res.outcomes[0]
    assert o.state == "done" and o.preemptions == 1
    # 2 h of the 2.5 h run before the outage were checkpointed: only 0.5 h is lost
    assert o.lost_accelerator_h == pytest.approx(0.5)
    ran_h = sum(s.end_s - s.start_s for s in res.segments) / 3600
    assert ran_h == pytest.approx(6.5)
