"""Random bytes and random rows fed to every loader and to the commands that read files
(issue 11): the outcome is a result or one deliberate ``ComputenetError`` (which the CLI
prints as one line and exit code 2), never another exception (a traceback).

50 examples per loader (30 per simulate format) keep this file near 20 s; FUZZ_EXAMPLES=300
runs a deeper search (about 2.5 min)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from computenet.catalog import load_network
from computenet.cli.main import app
from computenet.errors import ComputenetError
from computenet.signals import load_series
from computenet.sim.traces import load_trace

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Cells a user's file may hold: numbers in and out of range, times, markup, quotes,
# separators, control characters and text in other scripts. (No deadline decades away: until
# the engine bounds its planning horizon, one such job costs `plan` 15 s and 9 GB.)
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "3600",
            "1e309",
            "nan",
            "-inf",
            "0.5",
            "2023-07-03T00:00:00Z",
            "2023-01-01 00:00:00",
            "2023-08-01T00:00:00Z",
            "[/x]",
            "[bold]",
            '"',
            ",",
            "\x00",
            "\r",
            "true",
            "A100",
            "china",
            "shanghai",
            "core",
            "数据",
        ]
    ),
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

HEADERS = {
    "jobs": "id,accelerators,work_h,earliest_start,deadline,dataset,data_gb,home_site",
    "csv": "id,arrival_s,duration_s,accelerators,deadline_s,data_gb,checkpointable",
    "gaia": "arrival_time,length,cpus",
    "philly": "runtime",
    "openb": "name,num_gpu,gpu_milli,pod_phase,creation_time,deletion_time,scheduled_time",
    "helios": "time,submit_gpu_job,submit_gpu_num",
    "emaps-carbon": "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct)",
    "usd-mwh": "Datetime (UTC),Datetime (Local),Price (USD/MWh)",
    "cn-spot-15min": "day,time,demand,clearing price (CNY/MWh)",
}


# Valid rows of each format, so that random rows reach past the parser into the engine and
# the simulator (``valid_rows_for`` spoils one cell of them at random).
def _cells(*columns: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.tuples(*(st.sampled_from(c) for c in columns))


DATASETS = st.sampled_from([("", "", ""), ("d1", "10", "shanghai"), ("d2", "5000", "guian")])
VALID: dict[str, st.SearchStrategy[tuple[str, ...]]] = {
    "jobs": st.builds(
        lambda head, ds: (*head, *ds),
        _cells(
            ("a", "b", "[/x]", "数据", "c"),
            ("1", "8", "100000"),
            ("0.5", "3", "400"),
            ("2023-07-03T00:00:00Z", "1688342400"),
            ("2023-07-04T00:00:00Z", "2023-08-01T00:00:00Z", "2023-07-02T00:00:00Z"),
        ),
        DATASETS,
    ),
    "csv": _cells(
        ("", "j1", "[/x]", "j2"),
        ("0", "3600", "86400"),
        ("60", "3600", "360000"),
        ("1", "4", "64"),
        ("", "90000", "1"),
        ("", "10", "0"),
        ("", "true", "0"),
    ),
    "gaia": _cells(("0", "60", "3600", "0.5"), ("1", "3600", "7200", "0.2"), ("1", "4")),
}


def _file(header: str, rows: list[tuple[str, ...]], bom: bool) -> bytes:
    text = "\n".join([header, *(",".join(r) for r in rows), ""])
    return (("\ufeff" if bom else "") + text).encode("utf-8", "surrogatepass")


def rows_for(kind: str) -> st.SearchStrategy[bytes]:
    """The header, then up to 8 rows of random cells (one row in four with a field too many
    or too few)."""
    header = HEADERS[kind]
    width = header.count(",") + 1
    sizes = st.sampled_from([width] * 6 + [max(1, width - 1), width + 1])
    row = sizes.flatmap(lambda n: st.tuples(*(CELLS for _ in range(n))))
    return st.builds(_file, st.just(header), st.lists(row, max_size=8), st.booleans())


def valid_rows_for(kind: str) -> st.SearchStrategy[bytes]:
    """Rows of valid cells (``VALID``), one of them with one cell replaced by a random one,
    so that examples reach past the parser into the engine and the simulator."""
    header, row = HEADERS[kind], VALID[kind]

    def spoil(rows: list[tuple[str, ...]], k: int, col: int, cell: str) -> list[tuple[str, ...]]:
        if not rows or k < 0:
            return rows
        r = list(rows[k % len(rows)])
        r[col % len(r)] = cell
        return [*rows[: k % len(rows)], tuple(r), *rows[k % len(rows) + 1 :]]

    spoilt = st.builds(
        spoil,
        st.lists(row, min_size=1, max_size=8, unique_by=lambda r: r[0]),
        st.integers(-3, 7),
        st.integers(0, 7),
        CELLS,
    )
    return st.builds(_file, st.just(header), spoilt, st.booleans())


def content(kind: str) -> st.SearchStrategy[bytes]:
    options = [st.binary(max_size=300), rows_for(kind)]
    if kind in VALID:
        options.append(valid_rows_for(kind))
    return st.one_of(*options)


def outcome_is_clear(fn: Callable[[Path], Any], data: bytes, name: str = "f.csv") -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        try:
            fn(p)
        except ComputenetError as exc:
            assert str(exc), "an error without a message"


def cli_is_clear(args: Callable[[Path], list[str]], data: bytes, name: str = "f.csv") -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        res = CliRunner().invoke(app, args(p))
        exc = res.exception
        if exc is None or isinstance(exc, SystemExit):
            return
        assert isinstance(exc, ComputenetError), f"traceback: {exc!r}"
        assert str(exc)


# --------------------------------------------------------------------------- loaders


@pytest.mark.parametrize("fmt", ["csv", "gaia", "philly", "openb", "helios"])
@FUZZ
@given(data=st.data())
def test_trace_loaders(fmt: str, data: st.DataObject) -> None:
    outcome_is_clear(lambda p: load_trace(p, fmt), data.draw(content(fmt)))


@pytest.mark.parametrize("fmt", ["emaps-carbon", "usd-mwh", "cn-spot-15min"])
@FUZZ
@given(data=st.data())
def test_signal_loaders(fmt: str, data: st.DataObject) -> None:
    outcome_is_clear(lambda p: load_series(p, fmt), data.draw(content(fmt)))


TOML_LINES = st.sampled_from(
    [
        'name = "x"',
        "[[sites]]",
        'id = "a"',
        'id = "[/x]"',
        "latitude = 30.0",
        "latitude = 1e400",
        "longitude = 120",
        'role = "east"',
        "pue = 1.2",
        "pue = -1",
        'price = { kind = "constant", value = 0.5 }',
        'carbon = { kind = "constant", value = -5 }',
        'carbon = { kind = "constant", value = 400 }',
        'pools = [{ accelerator = "A100", count = 8 }]',
        'pools = [{ accelerator = "Z9", count = -1 }]',
        'extends = "china"',
        "usd_to_cny = nan",
        "[signals.t]",
        'kind = "tou"',
        "\ufeff",
        "\x00",
        "=",
    ]
)
TOML = st.one_of(
    st.binary(max_size=300),
    st.lists(TOML_LINES, max_size=16).map(lambda ls: "\n".join(ls).encode("utf-8")),
)


@FUZZ
@given(TOML)
def test_network_loader(data: bytes) -> None:
    outcome_is_clear(lambda p: load_network(str(p)), data, "net.toml")


# --------------------------------------------------------------------------- commands


@FUZZ
@given(content("jobs"))
def test_plan_command(data: bytes) -> None:
    cli_is_clear(lambda p: ["plan", "--network", "china", "--jobs", str(p)], data)


@FUZZ
@given(TOML)
def test_hubs_command(data: bytes) -> None:
    cli_is_clear(lambda p: ["hubs", "--network", str(p)], data, "net.toml")


@pytest.mark.parametrize("fmt", ["csv", "gaia"])
@settings(FUZZ, max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")))
@given(data=st.data())
def test_simulate_command(fmt: str, data: st.DataObject) -> None:
    cli_is_clear(
        lambda p: [
            "simulate",
            "--trace",
            str(p),
            "--trace-format",
            fmt,
            "--policy",
            "fifo-home",
            "--no-bound",
            "--sweep",
            "",
            "--max-jobs",
            "4",
        ],
        data.draw(content(fmt)),
    )
