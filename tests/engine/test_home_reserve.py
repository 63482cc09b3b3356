"""The home reserve: moved work may not take the share of a pool kept for work homed there."""

from __future__ import annotations

from dataclasses import replace

import pytest
from enginekit import check_reply, dataset, job, network, request, site

from computenet.engine import plan
from computenet.errors import InputError


def _net():
    # A is dirty, B clean; each has 4 accelerators.
    return network(site("A", carbon=800.0), site("B", carbon=100.0))


def test_moved_work_leaves_the_reserve_free_and_home_work_may_use_it() -> None:
    net = _net()
    away = [job("away", 2, 3, datasets=("ds-away",))]
    ds_away = [dataset("ds-away", "A")]
    lend_all = plan(request(net, away, ds_away, carbon_price=10_000))
    assert lend_all.placements[0].site_id == "B"
    # Half of B is kept for B's own work: 3 + 2 > 4, so the job stays home.
    req = replace(request(net, away, ds_away, carbon_price=10_000), home_reserve=0.5)
    rep = plan(req)
    check_reply(req, rep)
    assert rep.placements[0].site_id == "A"
    assert any(a.site_id == "B" for a in rep.placements[0].alternatives)
    # A job whose data lives at B may use all of B.
    home = [job("home", 2, 4, datasets=("ds-home",))]
    req = replace(request(net, home, [dataset("ds-home", "B")]), home_reserve=0.5)
    assert plan(req).placements[0].site_id == "B"


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan")])
def test_a_reserve_outside_0_1_is_refused_by_name(bad: float) -> None:
    req = replace(request(_net(), [job("j", 1)]), home_reserve=bad)
    with pytest.raises(InputError, match="home_reserve"):
        plan(req)
