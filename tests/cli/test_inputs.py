"""Input paths tried as a new user would (issue 11): encodings, stray fields, markup in user
text, numbers out of range, and options checked before any work starts."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app
from computenet.errors import ComputenetError, InputError

HEADER = "id,accelerators,work_h,earliest_start,deadline"
ROW = "{id},2,3,2023-07-03T00:00:00Z,2023-07-04T00:00:00Z"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def jobs_file(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "jobs.csv"
    p.write_bytes(data)
    return p


def plan(path: Path, *args: str):
    return invoke("plan", "--network", "china", "--jobs", str(path), *args)


def test_non_utf8_jobs_csv_is_one_error_naming_file_and_line(tmp_path: Path) -> None:
    cafe = ROW.format(id="caf\xe9")
    body = f"{HEADER}\n{ROW.format(id='a')}\n{cafe}\n".encode("latin-1")
    res = plan(jobs_file(tmp_path, body))
    assert isinstance(res.exception, InputError), repr(res.exception)
    assert "jobs.csv" in str(res.exception) and "line 3" in str(res.exception)
    assert "UTF-8" in str(res.exception)


def test_jobs_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    body = ("\ufeff" + f"{HEADER}\n{ROW.format(id='a')}\n").encode("utf-8")
    res = plan(jobs_file(tmp_path, body), "--json")
    assert res.exit_code == 0, repr(res.exception)
    assert json.loads(res.output)["placements"][0]["job_id"] == "a"


def test_a_row_with_more_fields_than_the_header_is_refused(tmp_path: Path) -> None:
    body = f"{HEADER}\n{ROW.format(id='a')}\n{ROW.format(id='b')},extra\n".encode()
    res = plan(jobs_file(tmp_path, body))
    assert isinstance(res.exception, InputError), repr(res.exception)
    assert "line 3" in str(res.exception) and "6 fields" in str(res.exception)


def test_a_row_with_fewer_fields_names_the_missing_ones(tmp_path: Path) -> None:
    body = f"{HEADER}\n{ROW.format(id='a')}\nb,2,3\n".encode()
    res = plan(jobs_file(tmp_path, body))
    assert isinstance(res.exception, InputError), repr(res.exception)
    assert "line 3" in str(res.exception) and "earliest_start, deadline" in str(res.exception)


def test_job_ids_with_markup_are_printed_literally(tmp_path: Path) -> None:
    body = f"{HEADER}\n{ROW.format(id='[/x]')}\n{ROW.format(id='[bold]b')}\n".encode()
    res = plan(jobs_file(tmp_path, body))
    assert res.exception is None, repr(res.exception)
    assert "[/x]" in res.output and "[bold]b" in res.output


def test_plan_bound_prints_the_bound(tmp_path: Path) -> None:
    body = f"{HEADER}\n{ROW.format(id='a')}\n{ROW.format(id='b')}\n".encode()
    res = plan(jobs_file(tmp_path, body), "--policy", "bound")
    assert res.exit_code == 0, repr(res.exception)
    got = json.loads(plan(jobs_file(tmp_path, body), "--policy", "bound", "--json").output)
    bound = got["lower_bound_cny"]
    assert bound is not None and bound > 0
    assert f"{bound:,.2f}" in res.output and "lower bound" in res.output
    assert "0 of 2 jobs placed" not in res.output


def test_error_texts_keep_their_brackets(tmp_path: Path) -> None:
    net = tmp_path / "empty.toml"
    net.write_text('name = "x"\n', encoding="utf-8")
    body = f"{HEADER}\n{ROW.format(id='a')}\n"
    jobs = jobs_file(tmp_path, body.encode())
    cmd = [sys.executable, "-m", "computenet.cli.main", "plan", "--network", str(net)]
    out = subprocess.run([*cmd, "--jobs", str(jobs)], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "[[sites]]" in out.stderr, out.stderr


def test_the_missing_dependency_hint_keeps_the_extra() -> None:
    from rich.console import Console

    from computenet.cli.main import print_error
    from computenet.errors import MissingDependencyError

    con = Console(record=True, width=200)
    print_error(MissingDependencyError("psycopg", "postgres", "PostgreSQL"), con)
    assert "pip install 'computenet[postgres]'" in con.export_text()


@pytest.mark.parametrize("value", ["nan", "inf", "-5"])
@pytest.mark.parametrize("command", ["plan", "simulate", "demo"])
def test_carbon_price_must_be_finite_and_not_negative(
    tmp_path: Path, command: str, value: str
) -> None:
    args = {
        "plan": ["--network", "china", "--jobs", str(tmp_path / "none.csv")],
        "simulate": ["--trace", str(tmp_path / "none.csv"), "--trace-format", "csv"],
        "demo": ["--days", "0.1", "--report", str(tmp_path / "r.html")],
    }[command]
    res = invoke(command, *args, f"--carbon-price={value}")
    assert isinstance(res.exception, InputError), repr(res.exception)
    assert "--carbon-price" in str(res.exception)
    assert not (tmp_path / "r.html").exists()


def test_serve_refuses_a_carbon_price_that_is_not_a_number(tmp_path: Path) -> None:
    """Refused at start (exit 2, one line), not at every tick of the loop."""
    cmd = [
        sys.executable,
        "-m",
        "computenet.cli.main",
        "serve",
        "--db",
        f"sqlite:///{tmp_path}/x.db",
    ]
    out = subprocess.run(
        [*cmd, "--port", "0", "--carbon-price", "nan"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and "--carbon-price" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x.db").exists()


def test_one_default_carbon_price_everywhere() -> None:
    from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T
    from computenet.settings import Settings
    from computenet.sim.simulator import DEFAULT_CARBON_PRICE_CNY_PER_T as sim_default

    assert Settings().carbon_price_cny_per_t == DEFAULT_CARBON_PRICE_CNY_PER_T == sim_default
    assert math.isfinite(DEFAULT_CARBON_PRICE_CNY_PER_T) and DEFAULT_CARBON_PRICE_CNY_PER_T > 0
    for command in ("plan", "simulate", "demo", "serve"):
        res = invoke(command, "--help")
        assert f"{DEFAULT_CARBON_PRICE_CNY_PER_T:,.0f}" in res.output, command


def test_plan_states_the_carbon_price_it_used(tmp_path: Path) -> None:
    from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T

    res = plan(jobs_file(tmp_path, f"{HEADER}\n{ROW.format(id='a')}\n".encode()))
    assert f"at {DEFAULT_CARBON_PRICE_CNY_PER_T:g} CNY/t" in res.output


def test_demo_refuses_an_unwritable_report_before_running(tmp_path: Path) -> None:
    res = invoke("demo", "--days", "0.1", "--report", str(tmp_path / "no/such/dir/r.html"))
    assert isinstance(res.exception, InputError), repr(res.exception)
    assert "--report" in str(res.exception)
    assert res.output == ""  # nothing ran: no progress bar, no table


def test_simulate_refuses_an_unknown_policy_before_running(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,duration_s,accelerators\n0,3600,1\n", encoding="utf-8")
    res = invoke(
        "simulate",
        "--trace",
        str(trace),
        "--trace-format",
        "csv",
        "--policy",
        "greedy,nope",
        "--json",
        str(tmp_path / "no/dir/o.json"),
    )
    assert isinstance(res.exception, ComputenetError), repr(res.exception)
    assert "nope" in str(res.exception) and res.output == ""
    res = invoke(
        "simulate",
        "--trace",
        str(trace),
        "--trace-format",
        "csv",
        "--json",
        str(tmp_path / "x/o.json"),
    )
    assert isinstance(res.exception, InputError) and "--json" in str(res.exception)
    assert res.output == ""


@pytest.mark.parametrize(
    "option",
    [
        ["--days", "nan"],
        ["--skip-days", "-1"],
        ["--home-reserve", "nan"],
        ["--checkpointable", "2"],
        ["--class-mix", "public=nan"],
        ["--sweep", "0,inf"],
        ["--time-unit", "fortnight"],
    ],
)
def test_simulate_numeric_options_are_checked_before_running(tmp_path: Path, option) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,duration_s,accelerators\n0,3600,1\n", encoding="utf-8")
    res = invoke("simulate", "--trace", str(trace), "--trace-format", "csv", *option)
    assert isinstance(res.exception, InputError), repr(res.exception)
    assert option[0] in str(res.exception) and res.output == ""
