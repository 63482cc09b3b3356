"""Outage input, seeded outages, and how the lower bound is assembled."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from simkit import T0, dataset, job, network, site

from computenet.engine.types import PlanReply, PlanRequest
from computenet.errors import InputError
from computenet.sim.faults import load_outages, seeded_outages
from computenet.sim.metrics import lower_bound
from computenet.sim.simulator import Outage
from computenet.sim.workload import Workload


def test_outage_file_accepts_iso_and_epoch(tmp_path: Path) -> None:
    f = tmp_path / "out.csv"
    f.write_text(
        "site,start,end\nB,1677628800,1677632400\nA,2023-03-01T02:00:00Z,2023-03-01T03:30:00Z\n"
    )
    assert load_outages(f, ["A", "B"]) == (
        Outage("B", T0, T0 + 3600),
        Outage("A", T0 + 7200, T0 + 12600),
    )
    f.write_text("site,start,end\nC,0,10\n")
    with pytest.raises(InputError, match=r"line 2.*unknown site 'C'"):
        load_outages(f, ["A", "B"])
    f.write_text("site,start,end\nA,20,10\n")
    with pytest.raises(InputError, match="not after start"):
        load_outages(f, ["A"])


def test_seeded_outages_are_reproducible_and_at_the_rate() -> None:
    a = seeded_outages(["A", "B"], 0, 1000 * 86400, rate_per_site_day=0.1, mean_hours=2, seed=4)
    assert a == seeded_outages(
        ["A", "B"], 0, 1000 * 86400, rate_per_site_day=0.1, mean_hours=2, seed=4
    )
    assert a != seeded_outages(
        ["A", "B"], 0, 1000 * 86400, rate_per_site_day=0.1, mean_hours=2, seed=5
    )
    per_site = len(a) / 2
    assert 70 < per_site < 130  # 100 expected
    mean_h = sum(o.end_s - o.start_s for o in a) / len(a) / 3600
    assert 1.5 < mean_h < 2.6
    for s in ("A", "B"):  # a site's outages never overlap
        mine = [o for o in a if o.site_id == s]
        assert all(x.end_s <= y.start_s for x, y in itertools.pairwise(mine))
    assert seeded_outages(["A"], 0, 86400, rate_per_site_day=0) == ()


def test_lower_bound_adds_chunk_bounds() -> None:
    net = network(site("A", 2))
    jobs = [job(f"j{i}", i, 1) for i in range(7)]
    wl = Workload(tuple(jobs), tuple(dataset(j.id, "A") for j in jobs))
    calls: list[int] = []

    def fake(req: PlanRequest) -> PlanReply:
        assert req.policy == "bound" and req.now_s <= min(j.earliest_start_s for j in req.jobs)
        calls.append(len(req.jobs))
        return PlanReply("bound", (), lower_bound_cny=10.0 * len(req.jobs))

    lb, note = lower_bound(net, wl, fake, carbon_price_cny_per_t=0, chunk_jobs=3)
    assert calls == [3, 3, 1] and lb == pytest.approx(70.0)
    assert "sum of 3" in note

    def none(req: PlanRequest) -> PlanReply:
        return PlanReply("bound", ())

    assert lower_bound(net, wl, none, carbon_price_cny_per_t=0)[0] is None
