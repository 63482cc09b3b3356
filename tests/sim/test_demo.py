"""``computenet demo`` wiring, with a small stand-in network and the reference planner.

The real demo runs on ``load_network("china")`` and the real engine; this test checks the
command's own work (workload, outages, table, report) whatever those return.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from simkit import home_first_planner, network, site
from typer.testing import CliRunner

import computenet.catalog
import computenet.engine
from computenet.cli.main import app
from computenet.model import Role


def test_demo_prints_the_comparison_and_writes_the_report(monkeypatch, tmp_path: Path) -> None:
    east = replace(site("east", 64, carbon=600.0), role=Role.EAST)
    west = replace(site("west", 64, carbon=150.0), role=Role.WEST)
    asked: list[str] = []

    def load_network(name: str, **options: str):
        asked.append(name)
        return network(east, west)

    monkeypatch.setattr(computenet.catalog, "load_network", load_network, raising=False)
    monkeypatch.setattr(computenet.engine, "plan", home_first_planner, raising=False)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        app,
        [
            "demo",
            "--days",
            "1",
            "--jobs",
            "80",
            "--policy",
            "fifo-home,greedy",
            "--sweep",
            "0,1000",
            "--report",
            str(out),
            "--json",
            str(tmp_path / "d.json"),
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert asked == ["china"]
    assert "fifo-home" in res.output and "greedy" in res.output
    page = out.read_text()
    assert "Helios" in page and "seeded site outages" in page
    assert page.count("<figure class='chart'") == 4
