"""The data-rule table: what it allows, and that it is never looser than the simulator's
independent checker."""

from __future__ import annotations

from enginekit import dataset, network, site
from hypothesis import given
from hypothesis import strategies as st

from computenet.engine import rules
from computenet.model import Classification, Jurisdiction
from computenet.sim.rules import rule_breach

J = list(Jurisdiction)
C = list(Classification)


def test_table_covers_every_class_and_cites_its_source() -> None:
    assert set(rules.RULES) == set(Classification)
    for r in rules.RULES.values():
        assert r.source


def test_core_stays_home_and_important_needs_level_3_in_the_mainland() -> None:
    home = site("H", level=3)
    low = site("L", level=2)
    hk = site("K", jurisdiction=Jurisdiction.HONG_KONG)
    core = dataset("c", "H", Classification.CORE)
    imp = dataset("i", "H", Classification.IMPORTANT)
    assert rules.breach(core, home, home) is None
    assert "home site" in (rules.breach(core, low, home) or "")
    assert "MLPS level 3" in (rules.breach(imp, low, home) or "")
    assert "may not leave mainland" in (rules.breach(imp, hk, home) or "")
    assert rules.breach(imp, site("M", level=4), home) is None


def test_personal_information_leaves_only_when_cleared_or_exempt() -> None:
    home, hk = site("H"), site("K", jurisdiction=Jurisdiction.HONG_KONG)
    big = dataset("p", "H", Classification.PERSONAL, individuals=200_000)
    assert rules.breach(big, hk, home) is not None
    cleared = dataset("p", "H", Classification.PERSONAL, individuals=200_000, cleared=True)
    assert rules.breach(cleared, hk, home) is None
    small = dataset("p", "H", Classification.PERSONAL, individuals=5_000)
    assert rules.breach(small, hk, home) is None  # 2024 Provisions exemption
    sensitive = dataset("p", "H", Classification.PERSONAL, individuals=5_000, sensitive=True)
    assert rules.breach(sensitive, hk, home) is not None


def test_general_stays_in_its_jurisdiction_public_goes_anywhere() -> None:
    home, abroad = site("H"), site("O", jurisdiction=Jurisdiction.OVERSEAS, level=1)
    assert rules.breach(dataset("g", "H", Classification.GENERAL), abroad, home) is not None
    assert rules.breach(dataset("g", "H", Classification.PUBLIC), abroad, home) is None


@given(
    cls=st.sampled_from(C),
    hj=st.sampled_from(J),
    sj=st.sampled_from(J),
    level=st.integers(1, 5),
    individuals=st.sampled_from([0, 99_999, 100_000, 2_000_000]),
    sensitive=st.booleans(),
    cleared=st.booleans(),
)
def test_never_looser_than_the_simulators_checker(
    cls, hj, sj, level, individuals, sensitive, cleared
) -> None:
    net = network(site("H", jurisdiction=hj, level=3), site("S", jurisdiction=sj, level=level))
    d = dataset("d", "H", cls, individuals=individuals, sensitive=sensitive, cleared=cleared)
    engine_ok = rules.breach(d, net.site("S"), net.site("H")) is None
    checker_ok = rule_breach(net, d, "S") is None and rule_breach(net, d, "S", copy=True) is None
    assert not engine_ok or checker_ok


def test_the_independent_reply_check_names_what_a_bad_reply_breaks() -> None:
    from dataclasses import replace

    from enginekit import dataset, job, network, request, site

    from computenet.engine import plan
    from computenet.sim.rules import reply_breaches

    net = network(site("A", pools=2))
    req = request(net, [job("j", 2, 2)], [dataset("ds-j", "A")], policy="fifo-home")
    good = plan(req)
    assert reply_breaches(req, good) == []
    p = good.placements[0]
    late = replace(p, start_s=req.jobs[0].deadline_s, end_s=req.jobs[0].deadline_s + 7200)
    found = reply_breaches(req, replace(good, placements=(late,)))
    assert any("after its deadline" in b for b in found)
    found = reply_breaches(req, replace(good, placements=(p, p)))
    assert found == ["capacity of A/A100 exceeded: 4 > 2"]
