"""Golden tests of the event loop with a transparent planner, and its invariants."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simkit import T0, dataset, home_first_planner, job, network, site

from computenet.engine.types import Breakdown, Placement, PlanReply, PlanRequest
from computenet.model import Classification, Jurisdiction
from computenet.sim.events import EventKind, EventQueue
from computenet.sim.metrics import summarise
from computenet.sim.simulator import Outage, SimConfig, simulate
from computenet.sim.workload import Workload


def workload(jobs, datasets) -> Workload:
    return Workload(tuple(jobs), tuple(datasets), {d.id[3:]: d.home_site for d in datasets})


def run(net, jobs, datasets, **cfg):
    cfg.setdefault("policy", "test")
    return simulate(net, workload(jobs, datasets), SimConfig(**cfg), planner=home_first_planner)


def test_event_queue_orders_by_time_then_priority_then_sequence() -> None:
    q = EventQueue(0)
    q.schedule(5, EventKind.START, "late-start")
    q.schedule(5, EventKind.ARRIVAL, "a1")
    q.schedule(5, EventKind.FINISH, "f")
    q.schedule(5, EventKind.ARRIVAL, "a2")
    q.schedule(1, EventKind.PLAN, "early")
    order = [q.pop().subject for _ in range(5)]
    assert order == ["early", "f", "a1", "a2", "late-start"]
    with pytest.raises(ValueError):
        q.schedule(4, EventKind.ARRIVAL)


def test_golden_two_jobs_queue_on_one_accelerator() -> None:
    # One A100 (busy training: 675.1 W x 400/700 = 385.77 W, PUE 1). a runs 0-2 h; b
    # arrives at 0.5 h and the planner's slots start at its arrival, so b waits for the
    # slot at 2.5 h and runs 1 h.
    net = network(site("X", 1, price=0.5, carbon=500.0))
    res = run(net, [job("a", 0, 2), job("b", 0.5, 1)], [dataset("a", "X"), dataset("b", "X")])
    by = {o.job_id: o for o in res.outcomes}
    assert by["a"].first_start_s == T0 and by["a"].finish_s == T0 + 7200
    assert by["b"].first_start_s == T0 + 9000 and by["b"].finish_s == T0 + 12600
    m = summarise(res)
    # energy: 0.38577 kW x 3 h; cost 0.5 CNY/kWh; carbon 500 g/kWh
    kwh = 675.1 * 400 / 700 / 1000 * 3
    assert m.energy_kwh == pytest.approx(kwh)
    assert m.cost_cny == pytest.approx(kwh * 0.5)
    assert m.carbon_kg == pytest.approx(kwh * 0.5)
    assert m.mean_wait_h == pytest.approx(1.0)  # (0 + 2) / 2
    assert m.mean_completion_h == pytest.approx(2.5)  # (2 + 3) / 2
    assert m.deadline_misses == 0 and m.violations == 0
    assert m.utilisation["X"] == pytest.approx(3 / 3.5)


def test_true_signals_are_charged_not_the_forecast() -> None:
    # Hourly carbon 100 then 900: a 2 h job from hour 0 is charged the mean, 500 g/kWh.
    net = network(site("X", 1, carbon=[100.0, 900.0, 100.0]))
    res = run(net, [job("a", 0, 2)], [dataset("a", "X")])
    assert summarise(res).carbon_kg == pytest.approx(2 * 675.1 * 400 / 700 / 1000 * 0.5)


def test_spills_to_second_site_when_home_is_full() -> None:
    net = network(site("A", 1), site("B", 1))
    res = run(net, [job("a", 0, 5), job("b", 0, 5)], [dataset("a", "A"), dataset("b", "A")])
    by = {o.job_id: o for o in res.outcomes}
    assert (by["a"].site_id, by["b"].site_id) == ("A", "B")
    assert summarise(res).utilisation == {"A": pytest.approx(1.0), "B": pytest.approx(1.0)}


def test_infeasible_job_runs_late_and_counts_as_a_miss() -> None:
    net = network(site("X", 1))
    jobs = [job("a", 0, 3), job("b", 0, 1, deadline_h=2)]
    res = run(net, jobs, [dataset("a", "X"), dataset("b", "X")])
    by = {o.job_id: o for o in res.outcomes}
    assert by["b"].state == "done" and by["b"].late and by["b"].finish_s == T0 + 4 * 3600
    m = summarise(res)
    assert m.deadline_misses == 1 and m.late == 1 and m.rejected == 0


def test_outage_keeps_checkpointed_work() -> None:
    # 10 h job, checkpoints hourly, site A fails at 3.5 h for 1 h: 3 h of work survive,
    # 0.5 h is lost; the job resumes at B (the planner's next site) with 7 h left.
    net = network(site("A", 1), site("B", 1))
    ck = job("c", 0, 10, checkpointable=True)
    res = run(net, [ck], [dataset("c", "A")], outages=(Outage("A", T0 + 12600, T0 + 16200),))
    o = res.outcomes[0]
    assert o.preemptions == 1
    assert o.lost_accelerator_h == pytest.approx(0.5)
    assert o.site_id == "B" and o.finish_s == T0 + 12600 + 7 * 3600
    run_h = sum(s.end_s - s.start_s for s in res.segments) / 3600
    assert run_h == pytest.approx(3.5 + 7)


def test_outage_restarts_non_checkpointable_job_from_zero() -> None:
    net = network(site("A", 1), site("B", 1))
    nc = job("n", 0, 10, checkpointable=False)
    res = run(net, [nc], [dataset("n", "A")], outages=(Outage("A", T0 + 12600, T0 + 16200),))
    o = res.outcomes[0]
    assert o.lost_accelerator_h == pytest.approx(3.5)
    assert o.finish_s == T0 + 12600 + 10 * 3600


def test_outage_cancels_future_reservations_and_replans_them() -> None:
    net = network(site("A", 1), site("B", 1))
    # a runs at A, b spills to B, c is reserved at A from 2 h; A fails at 1 h for 9 h.
    jobs = [job("a", 0, 2), job("b", 0, 2), job("c", 0, 2)]
    ds = [dataset(j.id, "A") for j in jobs]
    res = run(net, jobs, ds, outages=(Outage("A", T0 + 3600, T0 + 10 * 3600),))
    by = {o.job_id: o for o in res.outcomes}
    assert by["c"].site_id == "B" and by["a"].site_id == "B"
    assert all(o.state == "done" for o in res.outcomes)
    assert all(s.site_id != "A" or s.end_s <= T0 + 3600 for s in res.segments)


def test_data_rule_breach_by_the_planner_is_counted() -> None:
    # A planner that sends core data away from its home: the simulator's own check flags it.
    net = network(site("A", 1), site("B", 1, jurisdiction=Jurisdiction.OVERSEAS))

    def rogue(req: PlanRequest) -> PlanReply:
        j = req.jobs[0]
        p = Placement(
            j.id, "B", "A100", 1, req.now_s, req.now_s + 3600, Breakdown(0, 0, 0, 0, 0, 0)
        )
        return PlanReply("rogue", (p,))

    wl = workload([job("a", 0, 1)], [dataset("a", "A", Classification.CORE)])
    res = simulate(net, wl, SimConfig(policy="rogue"), planner=rogue)
    m = summarise(res)
    assert m.violations == 1 and m.violations_by_kind == {"data-rule": 1}


def test_over_capacity_placement_is_refused_and_counted() -> None:
    net = network(site("A", 1))

    def greedy_liar(req: PlanRequest) -> PlanReply:
        ps = tuple(
            Placement(
                j.id, "A", "A100", 1, req.now_s, req.now_s + 3600, Breakdown(0, 0, 0, 0, 0, 0)
            )
            for j in req.jobs
        )
        return PlanReply("liar", ps)

    wl = workload([job("a", 0, 1), job("b", 0, 1)], [dataset("a", "A"), dataset("b", "A")])
    res = simulate(net, wl, SimConfig(policy="liar", max_late_s=3600), planner=greedy_liar)
    kinds = summarise(res).violations_by_kind
    assert kinds.get("capacity", 0) >= 1


jobs_strategy = st.lists(
    st.tuples(st.integers(0, 48), st.integers(1, 12), st.sampled_from([1, 2, 4]), st.booleans()),
    min_size=1,
    max_size=25,
)


@settings(max_examples=30, deadline=None)
@given(jobs_strategy, st.integers(0, 3))
def test_capacity_is_never_exceeded_and_every_job_finishes(spec, outage_at) -> None:
    net = network(site("A", 4), site("B", 4))
    jobs = [job(f"j{i}", a, w, g, checkpointable=c) for i, (a, w, g, c) in enumerate(spec)]
    ds = [dataset(j.id, "A" if i % 2 else "B") for i, j in enumerate(jobs)]
    outages = (Outage("A", T0 + outage_at * 7200, T0 + outage_at * 7200 + 5400),)
    res = run(net, jobs, ds, outages=outages)
    assert all(o.state == "done" for o in res.outcomes)
    events = []
    for s in res.segments:
        events += [(s.start_s, 1, s.site_id, s.count), (s.end_s, 0, s.site_id, -s.count)]
    level = {"A": 0, "B": 0}
    for _, _, sid, d in sorted(events):
        level[sid] += d
        assert level[sid] <= 4
    o = outages[0]
    for s in res.segments:  # nothing runs on a down site
        assert not (s.site_id == "A" and s.start_s < o.end_s and s.end_s > o.start_s)
    # work is conserved: completed runs + checkpointed progress of preempted runs = work
    for j in jobs:
        segs = [s for s in res.segments if s.job_id == j.id]
        done = sum(s.end_s - s.start_s for s in segs if s.completed)
        assert done <= j.work_h * 3600 + 1


def test_same_seed_same_json() -> None:
    net = network(site("A", 2, carbon=[300.0, 100.0, 700.0]), site("B", 2))
    jobs = [job(f"j{i}", i * 0.7, 1 + i % 3, 1 + i % 2, checkpointable=True) for i in range(20)]
    ds = [dataset(j.id, "A") for j in jobs]

    def once() -> str:
        res = run(net, jobs, ds, outages=(Outage("A", T0 + 5000, T0 + 9000),))
        d = summarise(res).to_json()
        d.pop("wall_s")
        d.pop("events_per_s")
        return json.dumps(d, sort_keys=True)

    assert once() == once()


def test_queued_job_copies_equal_dataclass_replace() -> None:
    """The simulator copies each queued job per planning round without ``__init__``
    (``simulator._changed``): the copy equals ``dataclasses.replace``'s, field by field,
    and the original is untouched."""
    from dataclasses import replace as dc_replace

    from computenet.model import TrainingJob
    from computenet.sim.simulator import _changed

    j = TrainingJob("j", 4, 2.5, 100, 9000, datasets=("d",), accelerator_speed={"A100": 1.0})
    a = _changed(j, work_h=1.25, earliest_start_s=500, deadline_s=20_000)
    b = dc_replace(j, work_h=1.25, earliest_start_s=500, deadline_s=20_000)
    assert a == b and type(a) is TrainingJob and a.__dict__ == b.__dict__
    assert (j.work_h, j.earliest_start_s, j.deadline_s) == (2.5, 100, 9000)
