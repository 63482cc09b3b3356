"""``--green-supply`` and ``--carbon-model`` on the command line: hubs shows grid and
effective figures side by side; bad names are refused before any work, listing the valid ones."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app

AT = "2023-07-03T11:30:00+08:00"


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})


def test_hubs_json_has_grid_and_effective_figures() -> None:
    res = run("hubs", "--json", "--at", AT)
    assert res.exit_code == 0, res.output
    sites = {s["id"]: s for s in json.loads(res.output)}
    hor = sites["horinger"]
    assert hor["grid_carbon_g_per_kwh"] == 647.9
    assert hor["effective_carbon_g_per_kwh"] == pytest.approx(647.9 * (1 - 0.8457))
    assert hor["carbon_g_per_kwh"] == hor["effective_carbon_g_per_kwh"]  # what plans use
    assert hor["green_supply"][0]["status"] == "reported" and hor["green_supply"][0]["applied"]
    assert sites["guian"]["green_supply"][0]["status"] == "target"
    assert sites["guian"]["effective_carbon_g_per_kwh"] == 568.3
    assert hor["carbon_model"] == "annual"


def test_hubs_table_side_by_side_and_the_modes() -> None:
    res = run("hubs", "--at", AT)
    assert res.exit_code == 0, res.output
    assert max(len(line) for line in res.output.splitlines()) <= 100
    assert "→100 85%r" in res.output and "(80%t)" in res.output
    targets = run("hubs", "--at", AT, "--green-supply", "targets")
    assert "→114 80%t" in targets.output  # Gui'an: 568.3 x 0.2
    off = run("hubs", "--at", AT, "--green-supply", "off")
    assert "→100" not in off.output and "(85%r)" in off.output


def test_hubs_marks_modelled_carbon() -> None:
    pytest.importorskip("pvlib")
    res = run("hubs", "--at", AT, "--carbon-model", "hourly", "--json")
    assert res.exit_code == 0, res.output
    q = next(s for s in json.loads(res.output) if s["id"] == "qingyang")
    assert q["carbon_model"].startswith("modelled")
    table = run("hubs", "--at", AT, "--carbon-model", "hourly")
    assert "~ = modelled hourly" in table.output.replace("\n", " ")


@pytest.mark.parametrize("command", ["hubs", "demo", "simulate"])
def test_bad_mode_names_are_refused_listing_the_valid_ones(command: str, tmp_path) -> None:
    extra = ["--trace", str(tmp_path / "none.csv"), "--trace-format", "openb"]
    extra = extra if command == "simulate" else []
    res = run(command, *extra, "--green-supply", "on")
    assert res.exit_code != 0
    assert "declared" in str(res.exception) and "targets" in str(res.exception)
    res = run(command, *extra, "--carbon-model", "daily")
    assert res.exit_code != 0 and "hourly" in str(res.exception)
