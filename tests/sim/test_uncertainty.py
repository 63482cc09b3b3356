"""Plan without knowing the future (issue 17): the true ``fifo`` baseline, run-time
estimates (no policy reads a job's actual run time; a job at its walltime is stopped),
waiting allowances by class, and pause and resume."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from simkit import T0, dataset, job, network, site

from computenet.engine import plan
from computenet.engine.types import PlanReply, PlanRequest
from computenet.errors import InputError
from computenet.model import Classification
from computenet.sim import estimates
from computenet.sim.simulator import SimConfig, SimResult, simulate
from computenet.sim.traces import TraceJob
from computenet.sim.uncertainty import signal_driver, starts_on_arrival
from computenet.sim.workload import (
    Workload,
    allowance_s,
    materialise,
    parse_wait_allowance,
)

DAYS = 10
# Clean and cheap from 02:00 to 06:00 and 14:00 to 16:00 every day, dirty otherwise.
CARBON = [100.0 if h % 24 in (2, 3, 4, 5, 14, 15) else 800.0 for h in range(24 * DAYS)]
PRICE = [0.2 if h % 24 in (2, 3, 4, 5, 14, 15) else 1.0 for h in range(24 * DAYS)]
POLICIES = [
    "fifo",
    "fifo-home",
    "cheapest-now",
    "carbon-now",
    "wait-awhile",
    "greedy",
    "suspend-resume",
    "ecovisor",
]


def wl(jobs, datasets, walltime_h=None) -> Workload:
    return Workload(
        tuple(jobs),
        tuple(datasets),
        {d.id[3:]: d.home_site for d in datasets},
        walltime_h=dict(walltime_h or {}),
    )


def two_sites():
    return network(
        site("A", 4, carbon=CARBON, price=PRICE),
        site("B", 2, carbon=[800.0 - c / 2 for c in CARBON], price=PRICE),
    )


# ------------------------------------------------------------------ fifo


def test_fifo_starts_on_arrival_to_the_second() -> None:
    net = network(site("A", 2))
    jobs = [job("a", 0.1, 1.0), job("b", 0.37, 1.0), job("c", 0.61, 0.5)]
    res = simulate(
        net, wl(jobs, [dataset(j.id, "A") for j in jobs]), SimConfig(policy="fifo", seed=0)
    )
    o = {x.job_id: x for x in res.outcomes}
    assert o["a"].first_start_s == T0 + 360  # no slot rounding
    assert o["b"].first_start_s == T0 + int(0.37 * 3600)
    # The pool is full at c's arrival: c starts the second a finishes, not at a retry.
    assert o["c"].first_start_s == o["a"].finish_s == T0 + 360 + 3600
    assert starts_on_arrival(res) == (2, 3)
    assert not res.violations


def test_fifo_ignores_price_and_carbon() -> None:
    net = network(site("A", 4, carbon=CARBON, price=PRICE))
    jobs = [job(f"j{i}", 7.3 + i, 2.0, deadline_h=100) for i in range(3)]
    for price in (0.0, 10_000.0):
        res = simulate(
            net,
            wl(jobs, [dataset(j.id, "A") for j in jobs]),
            SimConfig(policy="fifo", carbon_price_cny_per_t=price),
        )
        assert all(o.wait_s == 0 for o in res.outcomes)


# ------------------------------------------------------------------ estimates


def spy_planner(seen: list[tuple[str, float]], replies: list[PlanReply]):
    def planner(req: PlanRequest) -> PlanReply:
        for j in req.jobs:
            seen.append((j.id, j.work_h))
        rep = plan(req)
        replies.append(rep)
        return rep

    return planner


def _decisions(actual_h: float, policy: str) -> tuple[list[tuple[str, float]], list]:
    net = two_sites()
    jobs = [
        job("x", 1.0, actual_h, deadline_h=40, checkpointable=True),
        job("y", 1.5, actual_h / 2, deadline_h=40, checkpointable=True),
    ]
    seen: list[tuple[str, float]] = []
    replies: list[PlanReply] = []
    simulate(
        net,
        wl(jobs, [dataset("x", "A"), dataset("y", "A")], {"x": 6.0, "y": 6.0}),
        SimConfig(policy=policy, knowledge="estimate", estimator="walltime"),
        planner=spy_planner(seen, replies),
    )
    placed = [
        (p.job_id, p.site_id, p.start_s, p.end_s, p.segments) for r in replies for p in r.placements
    ]
    return seen, placed


@pytest.mark.parametrize("policy", POLICIES)
def test_no_policy_reads_the_actual_run_time(policy: str) -> None:
    """Jobs whose actual run (1 h, or 3 h) differs from their walltime (6 h): the engine
    is only ever told the walltime, and its decisions are the same whatever the actual run
    (the first decision of each job, before any finish could tell it anything)."""
    seen_1, placed_1 = _decisions(1.0, policy)
    _seen_3, placed_3 = _decisions(3.0, policy)
    assert seen_1 and {h for _, h in seen_1 if _ == "x"} <= {6.0}
    assert all(h <= 6.0 for _, h in seen_1)
    first = {}
    for p in placed_1:
        first.setdefault(p[0], p)
    first_3 = {}
    for p in placed_3:
        first_3.setdefault(p[0], p)
    assert first["x"] == first_3["x"]


def test_a_job_at_its_walltime_is_stopped() -> None:
    net = network(site("A", 1))
    jobs = [job("long", 0.0, 3.0), job("next", 0.5, 1.0)]
    res = simulate(
        net,
        wl(jobs, [dataset("long", "A"), dataset("next", "A")], {"long": 2.0, "next": 2.0}),
        SimConfig(policy="fifo", knowledge="estimate"),
    )
    o = {x.job_id: x for x in res.outcomes}
    assert o["long"].state == "timeout"
    assert o["long"].finish_s == T0 + 2 * 3600  # stopped at 2 h of its 3 h of work
    assert "walltime" in o["long"].reason
    charged = sum(s.end_s - s.start_s for s in res.segments if s.job_id == "long")
    assert charged == 2 * 3600
    # The next one finishes early (1 h of a 2 h walltime) and is done.
    assert o["next"].state == "done"
    assert o["next"].finish_s - o["next"].first_start_s == 3600


def test_oracle_runs_the_same_workload_to_completion() -> None:
    net = network(site("A", 1))
    jobs = [job("long", 0.0, 3.0)]
    res = simulate(net, wl(jobs, [dataset("long", "A")], {"long": 2.0}), SimConfig(policy="fifo"))
    assert res.outcomes[0].state == "done"
    assert res.outcomes[0].finish_s == T0 + 3 * 3600


def test_an_early_end_frees_capacity_at_once() -> None:
    net = network(site("A", 1))
    jobs = [job("a", 0.0, 1.0), job("b", 0.5, 1.0)]
    res = simulate(
        net,
        wl(jobs, [dataset("a", "A"), dataset("b", "A")], {"a": 4.0, "b": 4.0}),
        SimConfig(policy="fifo", knowledge="estimate"),
    )
    o = {x.job_id: x for x in res.outcomes}
    assert o["a"].finish_s == T0 + 3600  # reserved for 4 h, ran 1 h
    assert o["b"].first_start_s == T0 + 3600  # not at T0 + 4 h


def test_class_mean_learns_and_an_overrun_is_extended() -> None:
    est = estimates.ClassMean()
    assert est.predict(2.0, 0.0) == 2.0  # no history: the walltime
    est.observe(2.0, 0.5)
    est.observe(3.0, 1.5)
    assert est.predict(2.0, 0.0) == pytest.approx(1.0)  # the mean of its class (<= 4 h)
    assert est.predict(2.0, 0.25) == pytest.approx(0.75)
    assert est.predict(30.0, 0.0) == 30.0  # another class, no history
    # In the simulator: later jobs are predicted at the class mean (0.5 h) and run 1.5 h:
    # their reservations are extended, nothing overlaps, every one finishes its work.
    net = network(site("A", 1))
    jobs = [job("a", 0.0, 0.5), job("b", 1.0, 1.5), job("c", 1.2, 1.5)]
    res = simulate(
        net,
        wl(jobs, [dataset(j.id, "A") for j in jobs], {j.id: 2.0 for j in jobs}),
        SimConfig(policy="fifo", knowledge="estimate", estimator="class-mean"),
    )
    o = {x.job_id: x for x in res.outcomes}
    assert all(x.state == "done" for x in o.values())
    assert o["b"].finish_s - o["b"].first_start_s == int(1.5 * 3600)
    assert o["c"].first_start_s >= o["b"].finish_s
    assert not res.violations


def test_unknown_knowledge_and_estimator_are_refused() -> None:
    with pytest.raises(InputError, match="knowledge"):
        estimates.estimator("psychic", "walltime")
    with pytest.raises(InputError, match="estimator"):
        estimates.estimator("estimate", "crystal-ball")


def test_walltime_model_over_requests_to_round_values() -> None:
    rng = np.random.default_rng(0)
    actual = rng.integers(60, 3 * 86400, size=500).astype(float)
    wall = estimates.requested_walltime_s(actual, rng.random(500), 2.0)
    assert (wall >= actual).all()
    assert (wall <= np.array([estimates.round_up_s(3 * a) for a in actual])).all()
    assert set(wall.tolist()) <= set(estimates.ROUND_VALUES_S) | {d * 86400 for d in range(1, 40)}


def test_materialise_fills_walltime_and_keeps_a_given_one() -> None:
    net = network(site("A", 4))
    tr = [TraceJob("t1", 0, 1000, 1), TraceJob("t2", 10, 1000, 1, walltime_s=7200)]
    w = materialise(tr, net, T0)
    assert w.walltime_h["t2"] == 2.0
    assert w.walltime_h["t1"] * 3600 >= 1000
    assert any(f.startswith("walltime: filled for 1 of 2") for f in w.filled)


# ------------------------------------------------------------------ wait allowances


def test_wait_allowance_by_class() -> None:
    classes = parse_wait_allowance("2h:6h,inf:24h")
    assert classes == ((7200.0, 21600.0), (math.inf, 86400.0))
    assert allowance_s(classes, 3600) == 21600
    assert allowance_s(classes, 7201) == 86400
    net = network(site("A", 4))
    tr = [TraceJob("short", 0, 3600, 1), TraceJob("long", 0, 5 * 3600, 1)]
    from computenet.sim.workload import FillOptions

    w = materialise(tr, net, T0, FillOptions(wait_allowance=classes))
    d = {j.id: j.deadline_s - j.earliest_start_s for j in w.jobs}
    assert d == {"short": 3600 + 6 * 3600, "long": 5 * 3600 + 24 * 3600}
    for bad in ("2h:6h", "2h:6h,1h:3h,inf:1h", "2x:6h,inf:1h", "inf:inf"):
        with pytest.raises(InputError, match="wait-allowance"):
            parse_wait_allowance(bad)


# ------------------------------------------------------------------ pause and resume


def _pause_run(policy: str, cls: Classification = Classification.GENERAL) -> SimResult:
    net = two_sites()
    jobs = [
        job("p", 6.0, 5.0, deadline_h=6 + 30, checkpointable=True),
        job("q", 6.5, 4.5, deadline_h=6.5 + 30, checkpointable=True),
        job("n", 6.0, 2.0, deadline_h=6 + 30),  # cannot checkpoint: one window
    ]
    ds = [dataset("p", "A", cls), dataset("q", "A", cls), dataset("n", "A", cls)]
    return simulate(net, wl(jobs, ds), SimConfig(policy=policy, checkpoint_s=300, restore_s=300))


@pytest.mark.parametrize("policy", ["suspend-resume", "ecovisor"])
def test_segments_never_overlap_and_resume_from_the_checkpoint(policy: str) -> None:
    res = _pause_run(policy)
    assert not res.violations
    o = {x.job_id: x for x in res.outcomes}
    assert all(x.state == "done" and not x.late for x in o.values())
    for jid, work_h in (("p", 5.0), ("q", 4.5)):
        segs = sorted((s for s in res.segments if s.job_id == jid), key=lambda s: s.start_s)
        assert len(segs) >= 2, f"{jid} ran in one stretch"
        for a, b in itertools.pairwise(segs):
            assert a.end_s <= b.start_s  # never overlap
            assert not a.completed
        assert segs[-1].completed and segs[-1].end_s == o[jid].finish_s
        assert {s.site_id for s in segs} == {"A"}  # home, where the data is
        # Resumed from the last checkpoint: the work done is the run time exactly, once
        # each pause's checkpoint and restore time is taken off.
        wall = sum(s.end_s - s.start_s for s in segs)
        assert wall - (len(segs) - 1) * 600 == pytest.approx(work_h * 3600, abs=1)
    n = [s for s in res.segments if s.job_id == "n"]
    assert len(n) == 1


@pytest.mark.parametrize("policy", ["suspend-resume", "ecovisor"])
def test_segments_keep_data_rules(policy: str) -> None:
    res = _pause_run(policy, Classification.CORE)
    assert not [v for v in res.violations if v.kind == "data-rule"]
    assert {s.site_id for s in res.segments} == {"A"}


def test_pause_and_resume_saves_carbon_against_one_window() -> None:
    window = _pause_run("wait-awhile")
    split = _pause_run("suspend-resume")
    kg = {r.policy: sum(s.carbon_kg for s in r.segments) for r in (window, split)}
    assert kg["suspend-resume"] < kg["wait-awhile"]
    assert sum(o.late for o in split.outcomes) <= sum(o.late for o in window.outcomes)


def test_simulator_refuses_overlapping_segments() -> None:
    net = network(site("A", 2))
    jobs = [job("p", 0.0, 2.0, checkpointable=True), job("n", 0.0, 2.0)]

    def planner(req: PlanRequest) -> PlanReply:
        rep = plan(replace(req, policy="fifo"))
        out = []
        for p in rep.placements:
            s = p.start_s
            out.append(replace(p, segments=((s, s + 5000), (s + 4000, s + 9000))))
        return replace(rep, placements=tuple(out))

    res = simulate(
        net,
        wl(jobs, [dataset("p", "A"), dataset("n", "A")]),
        SimConfig(policy="fifo", max_late_s=3600),
        planner=planner,
    )
    kinds = {(v.job_id, v.kind) for v in res.violations}
    assert ("p", "segments") in kinds and ("n", "segments") in kinds
    assert not res.segments


def test_signal_driver_names_price_or_carbon() -> None:
    base = _pause_run("fifo")
    for price, want in ((0.0, "price"), (1e7, "carbon")):
        r = simulate(
            two_sites(),
            wl(
                [job("p", 6.0, 5.0, deadline_h=36, checkpointable=True)],
                [dataset("p", "A")],
            ),
            SimConfig(policy="suspend-resume", carbon_price_cny_per_t=price),
        )
        b = simulate(
            two_sites(),
            wl(
                [job("p", 6.0, 5.0, deadline_h=36, checkpointable=True)],
                [dataset("p", "A")],
            ),
            SimConfig(policy="fifo", carbon_price_cny_per_t=price),
        )
        d = signal_driver(r, b)
        assert d.signal == want, d
        assert d.carbon_kg_saved > 0
    assert base.outcomes


# ------------------------------------------------------------------ the CLI


def test_simulate_cli_with_estimates_and_allowances(tmp_path) -> None:
    import json

    from test_zones import write_zone
    from typer.testing import CliRunner

    from computenet.cli.main import app

    cdir, pdir = tmp_path / "c", tmp_path / "p"
    for zone, carbon, usd in (("KR", 430.0, 90.0), ("AU-VIC", 700.0, 60.0)):
        write_zone(cdir, pdir, zone, carbon, usd)
    trace = tmp_path / "t.csv"
    rows = ["arrival_s,duration_s,accelerators,home_site,walltime_s,checkpointable"]
    rows += [f"{i * 900},3600,1,{('KR', 'AU-VIC')[i % 2]},7200,1" for i in range(8)]
    trace.write_text("\n".join(rows) + "\n")
    out = tmp_path / "o.json"
    base = [
        "simulate", "--trace", str(trace), "--trace-format", "csv",
        "--zones", "KR,AU-VIC", "--carbon-dir", str(cdir), "--price-dir", str(pdir),
        "--capacity", "4", "--sweep", "", "--no-bound",
    ]  # fmt: skip
    res = CliRunner().invoke(
        app,
        [
            *base,
            "--policy", "fifo,greedy,suspend-resume", "--knowledge", "estimate",
            "--wait-allowance", "2h:6h,inf:24h", "--json", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "plans with estimates" in res.output
    assert "greedy: " in res.output  # which signal drove its shifts, or that none did
    doc = json.loads(out.read_text())
    assert {p["policy"] for p in doc["policies"]} == {"fifo", "greedy", "suspend-resume"}
    assert any("waiting allowance" in f for f in doc["filled"])
    for flag, value in (("--knowledge", "psychic"), ("--wait-allowance", "6h")):
        bad = CliRunner().invoke(app, [*base, "--policy", "fifo", flag, value])
        assert bad.exit_code != 0
        assert flag in bad.output + str(bad.exception)


def test_auto_estimator_is_stated_per_policy() -> None:
    assert estimates.resolve("auto", "greedy") == "walltime"
    assert estimates.resolve("auto", "wait-awhile") == "class-mean"
    assert estimates.resolve("walltime", "wait-awhile") == "walltime"
    home = estimates.estimator("estimate", "auto", "suspend-resume")
    assert isinstance(home, estimates.ClassMean)
    assert type(estimates.estimator("estimate", "auto", "greedy")) is estimates.Estimator
    assert estimates.estimator("oracle", "auto", "greedy") is None


def test_the_service_refuses_pause_and_resume_policies() -> None:
    """Its executors run a placement in one stretch: a split would run through its pauses."""
    from computenet.api.app import check_names
    from computenet.settings import Settings

    with pytest.raises(InputError, match="--policy"):
        check_names(Settings(policy="suspend-resume", executor="simulated"))
    check_names(Settings(policy="fifo", executor="simulated"))
