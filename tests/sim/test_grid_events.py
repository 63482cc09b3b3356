"""Grid events in the simulator (``sim.gridsim``): the answer is carried out, the cap holds
in every hour as the simulation ran it (metered from the segments), work arriving after the
answer holds it too, class-0 work is never slowed, and the file format is checked."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from simkit import dataset, job, network, site

from computenet.engine.grid import GridEvent
from computenet.errors import InputError
from computenet.sim.gridsim import load_grid_events
from computenet.sim.simulator import SimConfig, simulate
from computenet.sim.workload import Workload
from netkit import T0

H = 3600
EVENT = GridEvent("ev", ("a",), T0 + 6 * H, T0 + 9 * H, notice_s=H, target_share=0.25)


def workload(classes: list[int], *, late_arrivals: int = 0) -> Workload:
    jobs = []
    for n, cls in enumerate(classes):
        j = job(f"j{n:02d}", n * 0.4, 4.0, deadline_h=40, checkpointable=n % 2 == 0)
        jobs.append(dataclasses.replace(j, flex_class=cls))
    for n in range(late_arrivals):  # arrive after the answer, into the event
        j = job(f"late{n}", 5.5 + n * 0.2, 3.0, deadline_h=40)
        jobs.append(dataclasses.replace(j, flex_class=n % 4))
    return Workload(tuple(jobs), tuple(dataset(j.id, "a") for j in jobs))


def run(wl: Workload, event: GridEvent = EVENT):
    net = network(site("a", 16, price=0.1), site("b", 16, price=0.3))
    return simulate(net, wl, SimConfig(grid_events=(event,), carbon_price_cny_per_t=0.0))


def test_the_cap_holds_in_every_hour_as_simulated_and_the_ask_is_delivered() -> None:
    res = run(workload([1 + n % 3 for n in range(16)], late_arrivals=6))
    assert not res.violations
    (g,) = res.grid
    assert g.response.affected and not g.response.notes
    for c, peak in zip(g.response.caps, g.peak_kw, strict=True):
        assert peak <= c.limit_kw + 1e-6, c
    for h in g.hours:
        assert h.asked_kw > 0
        assert h.delivered_kw >= h.asked_kw - 1e-6
    assert g.delivered_ratio_min >= 1.0 - 1e-9
    done = [o for o in res.outcomes if o.state == "done"]
    assert len(done) == len(res.outcomes)
    assert not [o for o in res.outcomes if o.late]


def test_without_an_event_the_same_hours_draw_more() -> None:
    wl = workload([1 + n % 3 for n in range(16)])
    with_event = run(wl)
    net = network(site("a", 16, price=0.1), site("b", 16, price=0.3))
    without = simulate(net, wl, SimConfig(carbon_price_cny_per_t=0.0))
    assert not without.grid

    def kwh_a(res) -> float:
        return sum(
            g.energy_kwh
            * max(0, min(EVENT.end_s, g.end_s) - max(EVENT.start_s, g.start_s))
            / (g.end_s - g.start_s)
            for g in res.segments
            if g.site_id == "a" and g.end_s > g.start_s
        )

    assert kwh_a(with_event) < 0.8 * kwh_a(without)


def test_class_0_work_is_never_slowed_in_the_simulation() -> None:
    # Work known when the event is answered; work arriving during it is placed under the
    # cap like any other (its deadline holds).
    wl = workload([0 if n % 2 else 3 for n in range(16)])
    res = run(wl)
    (g,) = res.grid
    assert all(a.flex_class == 3 for a in g.response.affected)
    net = network(site("a", 16, price=0.1), site("b", 16, price=0.3))
    base = simulate(net, wl, SimConfig(carbon_price_cny_per_t=0.0))
    before = {o.job_id: o.finish_s for o in base.outcomes}
    announced = EVENT.start_s - EVENT.notice_s
    known = [o for o in res.outcomes if o.arrival_s <= announced]
    assert len(known) >= 8
    for o in known:
        j = next(j for j in wl.jobs if j.id == o.job_id)
        if j.flex_class == 0:
            assert o.finish_s is not None and o.finish_s <= before[o.job_id]


def test_the_grid_events_file_is_read_and_bad_ones_name_the_field(tmp_path: Path) -> None:
    net = network(site("a", 16), site("b", 16))
    f = tmp_path / "events.json"
    f.write_text(
        json.dumps(
            {
                "events": [
                    {
                        "id": "phx",
                        "site": "a",
                        "start": "2023-03-01T06:00:00Z",
                        "end": "2023-03-01T09:00:00Z",
                        "target_pct": 25,
                        "notice_min": 60,
                    }
                ]
            }
        )
    )
    (ev,) = load_grid_events(f, net)
    assert ev == EVENT.__class__("phx", ("a",), T0 + 6 * H, T0 + 9 * H, H, None, 0.25)
    f.write_text(json.dumps({"events": [{"id": "x", "site": "zz", "start": 0, "end": 1}]}))
    with pytest.raises(InputError) as e:
        load_grid_events(f, net)
    assert e.value.where == "events[0].site"
    f.write_text(json.dumps({"events": [{"site": "a", "start": "2023-03-01T06:00", "end": 9}]}))
    with pytest.raises(InputError, match="time zone"):
        load_grid_events(f, net)


def test_a_two_site_event_holds_its_group_cap_with_work_arriving_into_it() -> None:
    # The event asks sites a and b together; work keeps arriving at both during it.
    net = network(site("a", 16, price=0.1), site("b", 16, price=0.1), site("c", 16, price=0.4))
    jobs = []
    for n in range(24):
        if n < 17:
            j = job(f"j{n:02d}", n * 0.3, 4.0, deadline_h=40, checkpointable=n % 2 == 0)
        else:  # arrive after the answer, into the event, with no time to wait
            at = 5.2 + (n - 17) * 0.15
            j = job(f"j{n:02d}", at, 1.0, deadline_h=at + 1.4)
        jobs.append(dataclasses.replace(j, flex_class=1 + n % 3))
    home = ["a" if n % 2 else "b" for n in range(24)]
    wl = Workload(tuple(jobs), tuple(dataset(j.id, h) for j, h in zip(jobs, home, strict=True)))
    ev = dataclasses.replace(EVENT, site_ids=("a", "b"))
    res = simulate(net, wl, SimConfig(grid_events=(ev,), carbon_price_cny_per_t=0.0))
    assert not res.violations
    (g,) = res.grid
    assert all(c.group == ("a", "b") for c in g.response.caps)
    arrived_during = [j for j in jobs if ev.start_s - ev.notice_s < j.earliest_start_s < ev.end_s]
    assert arrived_during
    for c, peak in zip(g.response.caps, g.peak_kw, strict=True):
        assert peak <= c.limit_kw + 1e-6, c
    if not g.response.notes:
        assert g.delivered_ratio_min >= 1.0 - 1e-9


def test_the_report_shows_the_event_hour_by_hour() -> None:
    from computenet.sim.compare import compare
    from computenet.sim.report import render

    net = network(site("a", 16, price=0.1), site("b", 16, price=0.3))
    wl = workload([1 + n % 3 for n in range(16)])
    cfg = SimConfig(grid_events=(EVENT,), carbon_price_cny_per_t=0.0)
    page = render(compare(net, wl, ["greedy"], cfg, bound=False, title="t"))
    assert "Grid events" in page and "ev under greedy" in page
    assert page.count("2023-03-01 0") >= 3  # one row per hour of the event
    plain = render(compare(net, wl, ["greedy"], SimConfig(), bound=False, title="t"))
    assert "Grid events" not in plain
