"""Each policy on small cases whose answer is known by hand, explanations, bad input."""

from __future__ import annotations

import pytest
from enginekit import T0, H, check_reply, dataset, job, network, request, site

from computenet.engine import plan
from computenet.engine.planner import POLICIES
from computenet.engine.types import Allocation
from computenet.errors import UnknownNameError
from computenet.model import Classification, Jurisdiction

CHEAP_AT_5 = [1.0] * 5 + [0.1] * 3 + [1.0] * 200  # cheap from 05:00 to 08:00


def _one(req):
    rep = plan(req)
    check_reply(req, rep)
    return rep


def test_unknown_policy_lists_the_valid_names() -> None:
    net = network(site("A"))
    valid = ", ".join(sorted(POLICIES))
    assert (
        "greedy" in valid
        and "fifo-home" in valid
        and "bound" in valid
        and "priced" in valid
        and "fair-share" in valid
    )
    with pytest.raises(UnknownNameError, match=f"use one of: {valid}"):
        plan(request(net, [job("j", 1)], policy="nope"))


def test_fifo_home_starts_at_home_at_once_greedy_moves_to_the_clean_site() -> None:
    net = network(site("A", carbon=800.0), site("B", carbon=100.0))
    ds = [dataset("ds-j", "A")]
    fifo = _one(request(net, [job("j", 2)], ds, policy="fifo-home"))
    assert (fifo.placements[0].site_id, fifo.placements[0].start_s) == ("A", T0)
    g = _one(request(net, [job("j", 2)], ds, policy="greedy", carbon_price=10_000))
    p = g.placements[0]
    assert p.site_id == "B" and p.start_s >= T0 + 1  # waits for the 10 GB copy (8 s)
    assert p.transfers and p.transfers[0].from_site == "A" and p.transfers[0].cost_cny == 5.0
    assert p.alternatives[0].site_id == "A" and "CNY more" in p.alternatives[0].reason
    # energy: 1 A100 busy training, the H100's 675.1 W scaled by 400/700 W = 385.77 W,
    # x 2 h x PUE 1.2 = 0.9258 kWh; carbon at 100 g/kWh; energy cost at 0.5 CNY/kWh
    kwh = 675.1 * 400 / 700 / 1000 * 2 * 1.2
    assert p.breakdown.energy_kwh == pytest.approx(kwh)
    assert p.breakdown.carbon_kg == pytest.approx(kwh * 0.1)
    assert p.breakdown.energy_cost_cny == pytest.approx(kwh * 0.5)
    assert p.breakdown.objective_cny == pytest.approx(kwh * 0.5 + 5.0 + kwh)
    # at 1000 CNY/t the 0.67 kg saved is worth less than the 5 CNY copy: it stays home
    g = _one(request(net, [job("j", 2)], ds, policy="greedy", carbon_price=1000))
    assert g.placements[0].site_id == "A"


@pytest.mark.parametrize("policy", ["fifo-home", "greedy", "cheapest-now", "milp"])
def test_under_a_flat_price_a_short_job_starts_at_once(policy: str) -> None:
    """Start- and end-aligned runs cost the same under a flat price: the start-aligned one
    (starting now) must win, not whichever rounding noise makes a hair cheaper."""
    net = network(site("A", {"A100": 16, "H100": 16}, price=0.45984375, carbon=537.7, pue=1.37))
    works = [0.05, 0.09, 0.11, 0.13, 0.17, 0.19, 0.21, 0.23]  # runs shorter than a slot
    jobs = [job(f"j{k}", w, 1 + k % 3) for k, w in enumerate(works)]
    rep = plan(request(net, jobs, horizon=4, policy=policy))
    assert len(rep.placements) == len(jobs)
    assert [p.start_s for p in rep.placements] == [T0] * len(jobs)


def test_wait_awhile_waits_for_the_cheap_hours_at_home() -> None:
    net = network(site("A", price=CHEAP_AT_5), site("B", price=0.01))
    rep = _one(request(net, [job("j", 3)], [dataset("ds-j", "A")], policy="wait-awhile"))
    p = rep.placements[0]
    assert (p.site_id, p.start_s) == ("A", T0 + 5 * H)
    assert p.alternatives[0].start_s == T0 and "starting now" in p.alternatives[0].reason


def test_cheapest_now_and_carbon_now_pick_their_site_and_start_at_once() -> None:
    net = network(
        site("A", price=0.9, carbon=100.0),
        site("B", price=0.2, carbon=900.0),
        site("C", price=0.5, carbon=500.0),
    )
    ds = [dataset("ds-j", "C", size_gb=0.0)]
    cheap = _one(request(net, [job("j", 1)], ds, policy="cheapest-now"))
    clean = _one(request(net, [job("j", 1)], ds, policy="carbon-now"))
    assert (cheap.placements[0].site_id, cheap.placements[0].start_s) == ("B", T0)
    assert (clean.placements[0].site_id, clean.placements[0].start_s) == ("A", T0)
    assert "kg CO2 more" in clean.placements[0].alternatives[0].reason


def test_greedy_shifts_in_space_and_time_jointly() -> None:
    net = network(site("A", price=CHEAP_AT_5), site("B", price=0.6))
    rep = _one(request(net, [job("j", 3)], [dataset("ds-j", "A", size_gb=0.0)], carbon_price=0))
    assert (rep.placements[0].site_id, rep.placements[0].start_s) == ("A", T0 + 5 * H)


def test_gang_of_three_waits_for_running_work_to_end() -> None:
    net = network(site("A", 4))
    running = [Allocation("old", "A", "A100", 2, T0 - H, T0 + 3 * H)]
    rep = _one(request(net, [job("j", 1, gpus=3)], running=running, policy="fifo-home"))
    assert rep.placements[0].start_s == T0 + 3 * H


def test_core_data_stays_home_and_the_rule_is_named() -> None:
    net = network(site("A", carbon=900.0), site("B", carbon=10.0))
    rep = _one(request(net, [job("j", 2)], [dataset("ds-j", "A", Classification.CORE)]))
    p = rep.placements[0]
    assert p.site_id == "A"
    assert any("violates data rule" in a.reason and a.site_id == "B" for a in p.alternatives)


@pytest.mark.parametrize(
    ("j", "ds", "constraint"),
    [
        (job("j", 1, gpus=9), None, "gang"),
        (job("j", 1, speeds={"TPU": 1.0}), None, "accelerator-type"),
        (job("j", 1, datasets=("missing",)), [], "dataset"),
        (job("j", 1, start_h=5, deadline_h=2), None, "deadline"),
        (job("j", 10, deadline_h=5), None, "deadline"),
        (job("j", 1, gpus=0), None, "gang"),
    ],
)
def test_bad_jobs_are_infeasible_with_the_constraint(j, ds, constraint) -> None:
    net = network(site("A", 4), site("B", 8 if constraint != "gang" else 2))
    datasets = [dataset("ds-j", "A")] if ds is None else [dataset("other", "A")]
    for pol in ("greedy", "fifo-home", "milp", "cheapest-now"):
        rep = _one(request(net, [j], datasets, policy=pol))
        assert [i.constraint for i in rep.infeasible] == [constraint], pol
        assert rep.infeasible[0].reason


def test_personal_data_abroad_is_a_data_rule_infeasibility() -> None:
    net = network(site("A", 1, jurisdiction=Jurisdiction.MAINLAND), site("B", 8))
    hk = network(site("A", 1), site("K", 8, jurisdiction=Jurisdiction.HONG_KONG))
    d = dataset("ds-j", "A", Classification.PERSONAL, individuals=500_000)
    rep = _one(request(hk, [job("j", 1, gpus=4)], [d]))
    assert rep.infeasible[0].constraint == "data-rule"
    assert "personal" in rep.infeasible[0].reason
    assert _one(request(net, [job("j", 1, gpus=4)], [d])).placements[0].site_id == "B"


def test_down_sites_are_avoided_and_all_down_is_transient() -> None:
    net = network(site("A"), site("B"))
    rep = _one(request(net, [job("j", 1)], down=frozenset({"A"})))
    assert rep.placements[0].site_id == "B"
    rep = _one(request(net, [job("j", 1)], down=frozenset({"A", "B"})))
    assert rep.infeasible[0].constraint == "down"
    rep = _one(request(net, [job("j", 1)], down=frozenset({"A"}), policy="fifo-home"))
    assert rep.infeasible[0].constraint == "down"


def test_full_capacity_defers_or_names_capacity() -> None:
    net = network(site("A", 1))
    running = [Allocation("old", "A", "A100", 1, T0, T0 + 100 * H)]
    far = _one(request(net, [job("j", 1, deadline_h=200)], running=running))
    assert far.deferred and "no room" in far.deferred[0].reason
    near = _one(request(net, [job("j", 1, deadline_h=20)], running=running))
    assert near.infeasible[0].constraint == "capacity"


def test_faster_accelerators_shorten_the_run() -> None:
    net = network(site("A", {"A100": 2, "H100": 2}, price=0.5))
    j = job("j", 4, speeds={"H100": 2.0, "A100": 1.0})
    p = _one(request(net, [j], carbon_price=0)).placements[0]
    # H100: 2 h x 700 W = 1.4 kWh beats A100: 4 h x 400 W = 1.6 kWh
    assert p.accelerator == "H100" and p.end_s - p.start_s == 2 * H


def test_priority_goes_first_when_capacity_is_short() -> None:
    net = network(site("A", 1, price=CHEAP_AT_5))
    jobs = [job("low", 3), job("high", 3, priority=5)]
    rep = _one(request(net, jobs, carbon_price=0))
    by = {p.job_id: p.start_s for p in rep.placements}
    assert by["high"] == T0 + 5 * H and by["low"] != T0 + 5 * H


def test_same_request_same_reply() -> None:
    net = network(site("A", 2, price=CHEAP_AT_5), site("B", 2, carbon=100.0))
    jobs = [job(f"j{i}", 1 + i % 3, 1 + i % 2, start_h=i % 4) for i in range(12)]
    for pol in ("greedy", "milp", "fifo-home", "wait-awhile", "cheapest-now", "carbon-now"):
        req = request(net, jobs, policy=pol)
        assert plan(req) == plan(req)
