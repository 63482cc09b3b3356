"""What the report says, checked in the generated HTML (structure, not pixels): the headline's
objective and cost split, the baseline's misses, one colour per policy, one carbon axis,
source texts cut at words, the missed-deadline table and where core and personal data ran.

A small case with the real engine: site ``east`` is dear and dirty and rents its
accelerators dear, ``west`` is clean and cheap; core data must stay east, personal data may
move within the mainland; one job cannot meet its deadline anywhere.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from simkit import T0, dataset, job

import netkit
from computenet.model import Classification, Jurisdiction
from computenet.sim.compare import BASELINE, compare, cost_split
from computenet.sim.report import (
    CARBON_COLOUR,
    POLICY_COLOURS,
    missed_jobs,
    missed_rows,
    policy_colours,
    render,
    shorten_words,
    why_missed,
)
from computenet.sim.simulator import JobOutcome, SimConfig
from computenet.sim.workload import Workload

POLICIES = ["fifo-home", "carbon-now", "greedy"]
LONG_SOURCE = (
    "Electricity Maps hourly 2023 carbon intensity for the eastern grid, direct and "
    "life-cycle, downloaded from the public archive with every hour kept as published"
)


def _case() -> tuple[object, Workload]:
    day = [700.0 + 100 * (h % 24 < 12) for h in range(24 * 6)]
    east = replace(
        netkit.site("east", 4, carbon=day, price=0.9, price_h=6.0, pue=1.3),
        sources={"carbon": LONG_SOURCE},
    )
    west = netkit.site("west", 8, carbon=120.0, price=0.3, price_h=2.0)
    hk = netkit.site("hk", 4, carbon=500.0, jurisdiction=Jurisdiction.HONG_KONG)
    net = netkit.network(east, west, hk, accelerators=(netkit.A100,))
    jobs, datasets = [], []
    classes = [Classification.GENERAL] * 4 + [Classification.CORE, Classification.PERSONAL] * 2
    for i, cls in enumerate(classes):
        j = job(f"j{i}", i * 0.5, 3.0, 2, deadline_h=i * 0.5 + 30)
        jobs.append(j)
        datasets.append(dataset(j.id, "east", cls))
    # Three hours of work due one hour after it arrives: late under every policy.
    tight = job("tight", 1.0, 3.0, 1, deadline_h=2.0)
    jobs.append(tight)
    datasets.append(dataset("tight", "east"))
    return net, Workload(tuple(jobs), tuple(datasets), {d.id[3:]: d.home_site for d in datasets})


@pytest.fixture(scope="module")
def comp():
    net, wl = _case()
    return compare(
        net,
        wl,
        POLICIES,
        SimConfig(carbon_price_cny_per_t=200.0),
        sweep_prices=(0.0, 1000.0),
        bound=False,
        title="report content",
    )


@pytest.fixture(scope="module")
def page(comp) -> str:
    return render(comp)


def _section(page: str, name: str) -> str:
    m = re.search(rf"<section data-section='{name}'>(.*?)</section>", page, re.S)
    assert m, f"no {name} section"
    return m.group(1)


def _table_rows(page: str, name: str) -> list[list[str]]:
    m = re.search(rf"<table data-table='{name}'>(.*?)</table>", page, re.S)
    assert m, f"no table {name}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.S)
    return [
        [re.sub("<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)]
        for r in rows
    ]


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("M", "e6").replace(" ", ""))


def _chart_svg(page: str, name: str) -> ET.Element:
    m = re.search(rf"<figure class='chart' data-chart='{name}'>(<svg.*?</svg>)", page, re.S)
    assert m, f"no chart {name}"
    return ET.fromstring(m.group(1))


def _colours_in(svg: ET.Element) -> set[str]:
    text = ET.tostring(svg, encoding="unicode")
    return {c.lower() for c in re.findall(r"#[0-9a-fA-F]{6}", text)}


def test_the_case_has_what_the_report_must_show(comp) -> None:
    base, greedy = comp.metric(BASELINE), comp.metric("greedy")
    assert base.deadline_misses >= 1 and greedy.deadline_misses >= 1
    assert greedy.carbon_kg < base.carbon_kg
    assert all(m.violations == 0 for m in comp.metrics)


def test_headline_shows_the_objective_and_its_cost_split(comp, page) -> None:
    head = _section(page, "headline")
    assert "data-card='objective'" in head and "objective, greedy vs fifo-home" in head
    rows = _table_rows(head, "headline-split")
    assert rows[0][:6] == [
        "policy",
        "objective CNY",
        "cost CNY",
        "energy CNY",
        "compute CNY",
        "transfer CNY",
    ]
    by = {r[0]: r for r in rows[1:]}
    assert set(by) == {BASELINE, "greedy"}
    for pol, r in by.items():
        m, sp = comp.metric(pol), cost_split(comp.result(pol))
        # The split adds up to the cost the metrics report, and the page shows both.
        assert sp.total_cny == pytest.approx(m.cost_cny, rel=1e-9)
        assert _num(r[2]) == pytest.approx(m.cost_cny, abs=1)
        assert _num(r[3]) + _num(r[4]) + _num(r[5]) == pytest.approx(m.cost_cny, abs=3)
        assert _num(r[1]) == pytest.approx(m.objective_cny, abs=1)
    assert sp.compute_cny > 0 and sp.energy_cny > 0
    # One sentence ties a cost change to its parts and to the carbon it bought.
    why = re.search(r"data-explain='cost'>(.*?)</p>", head).group(1)
    for part in ("energy", "compute", "transfer", "CO₂", "objective"):
        assert part in why, why


def test_headline_has_the_baselines_own_deadline_misses(comp, page) -> None:
    head = _section(page, "headline")
    m = re.search(r"data-card='baseline-misses'><b>(\d+)</b><span>([^<]*)</span>", head)
    assert m, "no card for the baseline's misses"
    assert int(m.group(1)) == comp.metric(BASELINE).deadline_misses
    assert BASELINE in m.group(2)


def test_one_colour_per_policy_in_every_chart(comp, page) -> None:
    colours = policy_colours(POLICIES)
    assert len(set(colours.values())) == len(POLICIES)
    assert CARBON_COLOUR not in colours.values()
    for pol in POLICIES:
        assert colours[pol] == POLICY_COLOURS[pol]
        assert f"data-policy='{pol}' data-colour='{colours[pol]}'" in page
    for chart in ("cost-carbon", "pareto"):
        seen = _colours_in(_chart_svg(page, chart))
        assert {colours[p] for p in POLICIES} <= seen, chart
    # The load panels draw the focus policy (greedy) and the baseline in their colours.
    load = _colours_in(_chart_svg(page, "load-vs-carbon"))
    assert {colours["greedy"], colours[BASELINE], CARBON_COLOUR} <= load
    assert colours["carbon-now"] not in load
    moved = _colours_in(_chart_svg(page, "moved"))
    assert colours["greedy"] in moved
    # No chart uses a policy's colour for something else.
    others = {c for p, c in colours.items()}
    assert load & others == {colours["greedy"], colours[BASELINE]}


def test_unknown_policies_get_distinct_spare_colours() -> None:
    names = ["fifo-home", "mine", "yours", "greedy"]
    c = policy_colours(names)
    assert len(set(c.values())) == 4
    assert c["greedy"] == POLICY_COLOURS["greedy"]
    assert policy_colours(["yours", "mine"])["mine"] != policy_colours(["yours", "mine"])["yours"]


def test_carbon_panels_share_one_axis(comp, page) -> None:
    svg = _chart_svg(page, "load-vs-carbon")
    axes = [g for g in svg.iter() if (g.get("id") or "").startswith("carbon-axis-")]
    assert len(axes) == len(comp.network.sites)
    labels = [tuple(t.text for t in g.iter("{http://www.w3.org/2000/svg}text")) for g in axes]
    assert all(lab == labels[0] for lab in labels), labels
    ticks = [float(x) for x in labels[0] if x and re.fullmatch(r"[\d.]+", x)]
    # The shared top reaches the dirtiest site (east peaks at 800 g/kWh).
    assert max(ticks) >= 800


def test_source_texts_are_not_cut_mid_word(page) -> None:
    rows = _table_rows(page, "sites")
    east = next(r for r in rows if r[0] == "east")
    shown = east[rows[0].index("carbon source")]
    assert shown.endswith(" …") and len(shown) < len(LONG_SOURCE)
    kept = shown.removesuffix(" …")
    assert LONG_SOURCE.startswith(kept) and LONG_SOURCE[len(kept)] == " "


@pytest.mark.parametrize(
    ("text", "limit", "want"),
    [
        ("short text", 20, "short text"),
        ("alpha beta gamma", 12, "alpha beta …"),
        ("alpha beta gamma", 10, "alpha …"),
        ("averyveryverylongword tail", 5, "averyveryverylongword …"),
        (
            "https://example.org/averyveryverylongpath",
            10,
            "https://example.org/averyveryverylongpath",
        ),
    ],
)
def test_shorten_words(text: str, limit: int, want: str) -> None:
    assert shorten_words(text, limit) == want


def test_missed_jobs_are_tabled_with_why(comp, page) -> None:
    rows = _table_rows(page, "missed")
    head, body = rows[0], rows[1:]
    assert head[-1] == "why" and "hours late" in head
    want = {
        (r.policy, o.job_id)
        for r in comp.results
        for o in r.outcomes
        if o.late or o.state == "rejected"
    }
    assert {(r[0], r[1]) for r in body} == want
    assert ("fifo-home", "tight") in want and ("greedy", "tight") in want
    for r in body:
        assert r[-1], r
        assert float(r[7]) > 0  # hours late
    assert len(missed_jobs(comp)) == len(want)


def test_why_missed_says_what_the_record_holds() -> None:
    base = JobOutcome(
        "j",
        T0,
        T0 + 3600,
        2,
        "east",
        "rejected",
        None,
        None,
        None,
        0,
        0,
        0,
        0,
        0,
        0,
        0.0,
        False,
        False,
        reason="infeasible (data-rule): core data must stay at east",
    )
    assert why_missed(base) == "never ran: infeasible (data-rule): core data must stay at east"
    late = replace(
        base,
        state="done",
        site_id="west",
        first_start_s=T0 + 7200,
        finish_s=T0 + 3 * 3600,
        preemptions=1,
        lost_accelerator_h=1.5,
        late=True,
        reason="greedy: west now",
    )
    text = why_missed(late)
    assert "waited 2.0 h" in text and "preempted 1x" in text and "1.5 accelerator-h" in text
    assert "started after its deadline" in text and "greedy: west now" in text
    # A run longer than the whole window from arrival to deadline is said so.
    short = replace(late, preemptions=0, first_start_s=T0, finish_s=T0 + 2 * 3600)
    assert "its run of 2.0 h is longer than the 1.0 h from arrival to deadline" in why_missed(short)


def test_where_core_and_personal_data_ran(comp, page) -> None:
    rows = _table_rows(page, "sensitive-data")
    head, body = rows[0], rows[1:]
    assert head[:4] == ["data class", "policy", "site", "jurisdiction"]
    classes = {d.id[3:]: d.classification for d in comp.workload.datasets}
    for r in comp.results:
        for cls in ("core", "personal"):
            ran = [o for o in r.outcomes if classes[o.job_id] == cls and o.site_id]
            mine = [b for b in body if b[0] == cls and b[1] == r.policy]
            assert sum(int(b[4]) for b in mine) == len(ran) > 0
            for b in mine:
                assert b[3] == str(comp.network.site(b[2]).jurisdiction)
    # Core data never left its home site under any policy.
    assert all(b[2] == "east" and b[4] == b[5] for b in body if b[0] == "core")


def test_the_json_carries_each_policys_cost_split(comp) -> None:
    d = comp.to_json()
    for p in d["policies"]:
        sp = p["cost_split"]
        assert set(sp) == {"energy_cny", "compute_cny", "transfer_cny"}
        assert sum(sp.values()) == pytest.approx(p["cost_cny"], abs=1e-4)


def test_missed_rows_are_capped_per_policy_with_a_note(comp) -> None:
    rows, notes = missed_rows(comp, per_policy=0)
    assert rows == []
    assert notes == [f"{p}: 1 more missed jobs not listed here" for p in POLICIES]


def test_a_page_without_the_baseline_still_has_its_headline() -> None:
    net, wl = _case()
    one = compare(net, wl, ["greedy"], SimConfig(), sweep_policy=None, bound=False)
    page = render(one)
    head = _section(page, "headline")
    assert "data-card='baseline-misses'" not in head and "data-card='objective'" not in head
    rows = _table_rows(head, "headline-split")
    assert [r[0] for r in rows[1:]] == ["greedy"]
    assert "data-table='missed'" in page and "data-table='sensitive-data'" in page
