"""``computenet plan``: a CSV of jobs on the built-in network, JSON out, and bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app
from computenet.errors import InputError

HEADER = "id,accelerators,work_h,earliest_start,deadline,dataset,data_gb,classification,home_site"


def _run(tmp_path: Path, rows: list[str], *args: str):
    f = tmp_path / "jobs.csv"
    f.write_text("\n".join([HEADER, *rows]) + "\n")
    return CliRunner().invoke(app, ["plan", "--network", "china", "--jobs", str(f), *args])


def test_plan_prints_json_with_reasons_and_keeps_core_data_home(tmp_path: Path) -> None:
    res = _run(
        tmp_path,
        [
            "a,8,4,2023-07-03T00:00:00Z,2023-07-04T00:00:00Z,corpus,100,public,shanghai",
            "c,2,2,2023-07-03T00:00:00Z,2023-07-03T20:00:00Z,med,10,core,beijing",
            "big,9999,1,2023-07-03T00:00:00Z,2023-07-04T00:00:00Z,,,,",
        ],
        "--json",
        "--policy",
        "greedy",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    placed = {p["job_id"]: p for p in out["placements"]}
    assert placed["c"]["site_id"] == "beijing"
    assert placed["a"]["alternatives"] and placed["a"]["reason"].startswith("greedy:")
    assert placed["a"]["breakdown"]["cost_cny"] > 0
    big = out["infeasible"][0]
    assert big["job_id"] == "big" and big["constraint"] == "gang"
    assert big["why"]["code"] == "gang" and big["why"]["message"] == big["reason"]
    assert big["reasons"] == [big["why"]]
    rule = [r for r in placed["c"]["reasons"] if r["code"] == "data_rule"]
    assert rule and all(r["classification"] == "core" and r["dataset_id"] == "med" for r in rule)
    assert placed["a"]["reasons"][0]["role"] == "placed"


def test_plan_table_names_the_rejected_sites(tmp_path: Path) -> None:
    res = _run(tmp_path, ["c,2,2,2023-07-03T00:00:00Z,2023-07-03T20:00:00Z,med,10,core,beijing"])
    assert res.exit_code == 0, res.output
    assert "violates data rule" in res.output


@pytest.mark.parametrize(
    ("row", "where"),
    [
        ("x,2,abc,2023-07-03,2023-07-04,,,,", "line 2, work_h"),
        ("x,0,1,2023-07-03,2023-07-04,,,,", "line 2, accelerators"),
        ("x,1,1,yesterday,2023-07-04,,,,", "line 2, earliest_start"),
        ("x,1,1,2023-07-03,2023-07-04,d,,,beijing", "line 2, data_gb"),
        ("x,1,1,2023-07-03,2023-07-04,d,5,secret,beijing", "line 2, classification"),
        ("x,1,1,2023-07-03,2023-07-04,d,5,core,mars", "line 2, home_site"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path: Path, row: str, where: str) -> None:
    res = _run(tmp_path, [row])
    assert isinstance(res.exception, InputError)
    assert where in str(res.exception)


def test_missing_column_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "jobs.csv"
    f.write_text("id,accelerators\nx,1\n")
    res = CliRunner().invoke(app, ["plan", "--network", "china", "--jobs", str(f)])
    assert isinstance(res.exception, InputError)
    assert "missing column" in str(res.exception)


def test_work_kind_column_sets_the_power_and_bad_kinds_are_named(tmp_path: Path) -> None:
    """Issue 11: jobs carry their kind of work; inference draws less power than training
    on the same gang, hours and site, and a bad kind names its line and the allowed ones."""
    f = tmp_path / "jobs.csv"
    head = "id,accelerators,work_h,earliest_start,deadline,work_kind,dataset,data_gb,home_site"
    rows = [
        "t,2,3,2023-07-03T00:00:00Z,2023-07-05T00:00:00Z,training,d,1,beijing",
        "i,2,3,2023-07-03T00:00:00Z,2023-07-05T00:00:00Z,Inference,d,1,beijing",
        "o,2,3,2023-07-03T00:00:00Z,2023-07-05T00:00:00Z,,d,1,beijing",
    ]
    f.write_text("\n".join([head, *rows]) + "\n")
    cmd = ["plan", "--network", "china", "--jobs", str(f), "--policy", "fifo-home", "--json"]
    res = CliRunner().invoke(app, cmd)
    assert res.exit_code == 0, res.output
    kwh = {p["job_id"]: p["breakdown"]["energy_kwh"] for p in json.loads(res.output)["placements"]}
    assert kwh["i"] < kwh["t"]
    assert kwh["o"] == pytest.approx(kwh["t"])  # empty: training
    f.write_text("\n".join([head, rows[0], rows[1].replace("Inference", "gaming")]) + "\n")
    res = CliRunner().invoke(app, cmd)
    assert isinstance(res.exception, InputError)
    text = str(res.exception)
    assert "line 3, work_kind" in text and "gaming" in text
    assert "training, inference, other" in text


def test_plan_prints_each_reason_with_its_code_and_user_text_as_written(tmp_path: Path) -> None:
    """Ids are the user's text: a dataset named like Rich markup shows up in the data rule's
    message exactly as written, next to the reason code."""
    res = _run(
        tmp_path,
        ["[b]j[/b],2,2,2023-07-03T00:00:00Z,2023-07-03T20:00:00Z,[red]d[/red],10,core,beijing"],
    )
    assert res.exit_code == 0, res.output
    assert "[b]j[/b]: [cost] greedy: beijing" in res.output
    assert ": [data_rule] violates data rule: core data [red]d[/red] may not leave its home" in (
        " ".join(res.output.split())
    )
