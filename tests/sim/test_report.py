"""The HTML report: self-contained, every chart present, and drawn in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from simkit import T0, home_first_planner

from computenet.catalog.zones import build_zone_network
from computenet.sim.compare import compare
from computenet.sim.report import render, write_report
from computenet.sim.simulator import Outage, SimConfig
from computenet.sim.traces import load_openb
from computenet.sim.workload import FillOptions, materialise

CHARTS = {"cost-carbon", "load-vs-carbon", "pareto", "moved"}


@pytest.fixture(scope="module")
def comparison(shared_data: Path):
    net, info = build_zone_network(
        ["SG", "JP-TK", "US-CAL-CISO"],
        shared_data / "carbon/greendcc_ci_2023",
        shared_data / "price/greendcc_prices_2023_utc_usd",
        capacity=4,
    )
    tr = load_openb(shared_data / "gpu_traces/alibaba_v2023_openb_pod_list_default.csv")
    tr = tr.window(120 * 86400, 122 * 86400).head(150)
    wl = materialise(tr, net, T0, FillOptions(seed=1, home="uniform"))
    return compare(
        net,
        wl,
        ["fifo-home", "greedy"],
        SimConfig(outages=(Outage("SG", T0 + 3600, T0 + 5 * 3600),)),
        planner=home_first_planner,
        sweep_prices=(0.0, 1000.0),
        bound=False,
        network_notes=info.assumptions,
        title="test report",
    )


def test_report_is_self_contained_with_every_chart(comparison) -> None:
    page = render(comparison)
    assert page.startswith("<!DOCTYPE html>")
    for name in CHARTS:
        assert f"data-chart='{name}'" in page
    assert page.count("<svg") >= len(CHARTS)
    # nothing is fetched from the network
    assert not re.search(r"""(src|href)=["']https?://""", page)
    assert "<link" not in page
    # what was filled and assumed is stated
    assert "deadline: filled for" in page and "assumed" in page
    assert "still running at the trace end" in page


def test_json_has_the_contract_keys(comparison) -> None:
    d = comparison.to_json()
    keys = {
        "policy",
        "jobs",
        "cost_cny",
        "energy_kwh",
        "carbon_kg",
        "deadline_misses",
        "violations",
        "mean_wait_h",
        "p99_wait_h",
        "wall_s",
    }
    assert [p["policy"] for p in d["policies"]] == ["fifo-home", "greedy"]
    for p in d["policies"]:
        assert keys <= set(p)
    assert "vs_fifo_home" in d["policies"][1]
    assert len(d["pareto"]["points"]) == 2


@pytest.mark.browser
def test_report_charts_are_drawn_in_headless_chromium(comparison, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    page = write_report(comparison, tmp_path / "report.html")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    m = re.search(r'data-charts="(\d+)" data-charts-drawn="(\d+)"', dom)
    assert m, "the page's script did not run"
    assert int(m.group(1)) == len(CHARTS)
    assert int(m.group(2)) == len(CHARTS), "a chart has an empty drawing"
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1400,3000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 50_000  # a blank page is a few kB


def test_load_series_averages_busy_accelerators_per_bin(comparison) -> None:
    from dataclasses import replace

    from computenet.sim.report import load_series
    from computenet.sim.simulator import Segment

    res = comparison.results[0]
    segs = (
        Segment("a", "SG", "A100", 2, T0 + 1800, T0 + 9000, 0, 0, 0, 0, True),
        Segment("b", "SG", "A100", 1, T0 + 3600, T0 + 7200, 0, 0, 0, 0, True),
        Segment("c", "JP-TK", "A100", 5, T0, T0 + 7200, 0, 0, 0, 0, True),
    )
    fake = replace(res, segments=segs)
    assert list(load_series(fake, "SG", T0, T0 + 4 * 3600, 3600)) == [1.0, 3.0, 1.0, 0.0]
    assert list(load_series(fake, "US-CAL-CISO", T0, T0 + 3600, 3600)) == [0.0]
