"""``computenet sweep`` and ``computenet.sim.sweep``: the grid, load levels, the same figures
for the same point, the summary against fifo-home, the page and the command's checks.

Tiny grids on a two-site network with the real engine; the Ray runner's test is in
``test_sweep_ray.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from simkit import dataset, job
from typer.testing import CliRunner

import computenet.catalog
import netkit
from computenet.cli.main import app
from computenet.errors import ComputenetError, InputError
from computenet.model import Classification
from computenet.sim.compare import BASELINE
from computenet.sim.report import POLICY_COLOURS
from computenet.sim.simulator import SimConfig
from computenet.sim.sweep import (
    Grid,
    LocalRunner,
    at_load,
    build_scenario,
    check_ray_address,
    deterministic_figures,
    iter_cells,
    offered_load,
    run_point,
    run_sweep,
)
from computenet.sim.sweep_report import render_sweep
from computenet.sim.workload import Workload

POLICIES = ("fifo-home", "greedy")


def _net():
    dirty = netkit.site("dirty", 8, carbon=800.0, price=0.8)
    clean = netkit.site("clean", 8, carbon=100.0, price=0.5)
    return netkit.network(dirty, clean, accelerators=(netkit.A100,))


def _workload(seed: int) -> Workload:
    jobs = [
        job(f"s{seed}j{i}", i * 0.5, 2.0 + seed + (i % 3), 2 + 2 * (i % 2), deadline_h=i * 0.5 + 24)
        for i in range(8)
    ]
    ds = [dataset(j.id, "dirty", Classification.GENERAL) for j in jobs]
    return Workload(tuple(jobs), tuple(ds), {d.id[3:]: d.home_site for d in ds})


def _scenarios(grid: Grid):
    net = _net()
    return [
        build_scenario(net, _workload(seed), seed=seed, load=load, config=SimConfig())
        for seed, load in iter_cells(grid)
    ]


GRID = Grid(POLICIES, (0.0, 1000.0), (0, 1), (1.0, 2.0))


@pytest.fixture(scope="module")
def swept():
    return run_sweep(_scenarios(GRID), GRID, LocalRunner(), title="tiny sweep")


def test_every_grid_point_runs_once_in_grid_order(swept) -> None:
    want = [(p.policy, p.carbon_price_cny_per_t, p.seed, p.load) for p in GRID.points()]
    got = [(r["policy"], r["carbon_price_cny_per_t"], r["seed"], r["load"]) for r in swept.points]
    assert got == want and len(got) == 2 * 2 * 2 * 2
    assert all(r["violations"] == 0 for r in swept.points)


def test_the_same_point_gives_the_same_figures(swept) -> None:
    scen = {(s.seed, s.load): s for s in swept.scenarios}
    for row in swept.points[:4]:
        again = run_point(
            scen[(row["seed"], row["load"])], row["policy"], row["carbon_price_cny_per_t"]
        )
        assert deterministic_figures(again) == deterministic_figures(row)
    # and a rebuilt scenario gives them too
    fresh = _scenarios(GRID)[0]
    row = swept.points[0]
    assert deterministic_figures(
        run_point(fresh, row["policy"], row["carbon_price_cny_per_t"])
    ) == (deterministic_figures(row))


def test_worker_processes_give_the_same_figures(swept) -> None:
    again = run_sweep(list(swept.scenarios), GRID, LocalRunner(workers=2))
    assert [deterministic_figures(r) for r in again.points] == [
        deterministic_figures(r) for r in swept.points
    ]


def test_load_level_cuts_every_pool_and_raises_the_offered_load() -> None:
    net, wl = _net(), _workload(0)
    same, rho1 = at_load(net, wl, 1.0)
    assert [p.count for s in same.sites for p in s.pools] == [8, 8]
    assert rho1 == pytest.approx(offered_load(net, wl))
    half, rho2 = at_load(net, wl, 2.0)
    assert [p.count for s in half.sites for p in s.pools] == [4, 4]
    assert rho2 == pytest.approx(2 * rho1)
    # never below the widest gang (4 here), so every job still fits somewhere
    tiny, rho8 = at_load(net, wl, 8.0)
    assert [p.count for s in tiny.sites for p in s.pools] == [4, 4]
    assert rho8 == pytest.approx(rho2)
    acc_h = sum(j.accelerators * j.work_h for j in wl.jobs)
    assert rho1 == pytest.approx(acc_h / ((wl.end_s - wl.start_s) / 3600) / 16)
    with pytest.raises(InputError, match="load level"):
        at_load(net, wl, 0.0)


def test_the_cut_is_felt_fifo_home_waits_longer_at_twice_the_load(swept) -> None:
    # fifo-home starts each job at its home site as soon as its gang fits, so halving the
    # home site's accelerators must lengthen its waits (greedy may wait for cheap hours).
    rows = swept.summary()
    w = {r["load"]: r["mean_wait_h"] for r in rows if r["policy"] == BASELINE}
    assert w[2.0] > w[1.0], w


def test_summary_means_over_seeds_and_compares_with_fifo_home(swept) -> None:
    rows = swept.summary()
    assert len(rows) == 2 * 2 * 2  # loads x prices x policies
    for r in rows:
        mine = [
            p
            for p in swept.points
            if (p["policy"], p["load"], p["carbon_price_cny_per_t"])
            == (r["policy"], r["load"], r["carbon_price_cny_per_t"])
        ]
        assert r["seeds"] == len(mine) == 2
        assert r["objective_cny"] == pytest.approx(sum(p["objective_cny"] for p in mine) / 2)
        split = r["energy_cost_cny"] + r["compute_cost_cny"] + r["transfer_cost_cny"]
        assert split == pytest.approx(r["cost_cny"], rel=1e-6)
        if r["policy"] == BASELINE:
            assert "objective_vs_fifo_home_pct" not in r
        else:
            base = next(
                b
                for b in rows
                if b["policy"] == BASELINE
                and (b["load"], b["carbon_price_cny_per_t"])
                == (r["load"], r["carbon_price_cny_per_t"])
            )
            want = 100 * (r["objective_cny"] - base["objective_cny"]) / base["objective_cny"]
            assert r["objective_vs_fifo_home_pct"] == pytest.approx(want, abs=1e-3)


def test_json_keeps_every_point_and_the_grid(swept) -> None:
    d = json.loads(json.dumps(swept.to_json()))
    assert d["grid"] == {
        "policies": list(POLICIES),
        "carbon_prices_cny_per_t": [0.0, 1000.0],
        "seeds": [0, 1],
        "loads": [1.0, 2.0],
    }
    assert d["runner"] == "local" and len(d["points"]) == 16 and len(d["scenarios"]) == 4
    assert {s["accelerators"] for s in d["scenarios"]} == {16, 8}
    for p in d["points"]:
        assert {"objective_cny", "energy_cost_cny", "deadline_misses", "wall_s"} <= set(p)


def test_the_page_compares_every_cell_in_policy_colours(swept) -> None:
    page = render_sweep(swept)
    assert page.startswith("<!DOCTYPE html>") and "<link" not in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
    assert page.count("<figure class='chart'") == 2
    table = re.search(r"<table data-table='sweep-summary'>(.*?)</table>", page, re.S).group(1)
    assert table.count("<tr") == 1 + 8
    chart = re.search(r"data-chart='sweep'>(<svg.*?</svg>)", page, re.S).group(1)
    for pol in POLICIES:
        assert POLICY_COLOURS[pol] in chart
        assert f"data-policy='{pol}' data-colour='{POLICY_COLOURS[pol]}'" in page
    assert "run in one process" in page


@pytest.mark.parametrize(
    "axes",
    [
        ((), (0.0,), (0,), (1.0,)),
        (("greedy", "greedy"), (0.0,), (0,), (1.0,)),
        (("greedy",), (0.0,), (0,), (-1.0,)),
    ],
)
def test_a_bad_grid_is_refused(axes) -> None:
    with pytest.raises(InputError):
        Grid(*axes)


@pytest.mark.parametrize("good", ["127.0.0.1:6379", "head.example:6390", "ray://h:10001", "auto"])
def test_ray_addresses_ray_init_takes(good: str) -> None:
    assert check_ray_address(good) == good


@pytest.mark.parametrize("bad", ["http://127.0.0.1:8265", "127.0.0.1", "h:port", ":6379"])
def test_other_ray_addresses_are_refused_with_the_fix(bad: str) -> None:
    with pytest.raises(InputError, match=r"--ray.*HOST:PORT"):
        check_ray_address(bad)


# --------------------------------------------------------------------------- the command


@pytest.fixture
def two_sites(monkeypatch):
    """``--network china`` answered by a two-site network of 64 A100s each (the demo
    workload's widest gang is 64), so the command's own work is what is tested."""
    east = replace(netkit.site("east", 64, carbon=600.0), role=computenet.model.Role.EAST)
    west = netkit.site("west", 64, carbon=150.0)
    asked: list[str] = []

    def load_network(name: str, **options: object):
        asked.append(name)
        return netkit.network(east, west, accelerators=(netkit.A100,))

    monkeypatch.setattr(computenet.catalog, "load_network", load_network, raising=False)
    return asked


def sweep_args(tmp_path: Path, *more: str) -> list[str]:
    return [
        "sweep",
        "--policy",
        "fifo-home,greedy",
        "--carbon-prices",
        "0,1000",
        "--seeds",
        "0-1",
        "--loads",
        "1,4",
        "--days",
        "0.25",
        "--jobs-per-day",
        "40",
        "--json",
        str(tmp_path / "s.json"),
        "--report",
        str(tmp_path / "s.html"),
        *more,
    ]


def test_sweep_runs_here_with_a_progress_bar(two_sites, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, sweep_args(tmp_path))
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert two_sites == ["china"]
    assert "grid points (local)" in res.output and "16/16" in res.output
    assert "fifo-home" in res.output and "greedy" in res.output
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["runner"] == "local" and len(d["points"]) == 16
    assert {s["jobs"] for s in d["scenarios"]} == {10}
    assert all(p["violations"] == 0 for p in d["points"])
    page = (tmp_path / "s.html").read_text()
    assert "data-table='sweep-summary'" in page and page.count("<figure class='chart'") == 2


@pytest.mark.parametrize(
    ("more", "flag"),
    [
        (["--policy", "greedy,nope"], "nope"),
        (["--seeds", "0,0"], "--seeds"),
        (["--seeds", "3-1"], "--seeds"),
        (["--seeds", "-1"], "--seeds"),
        (["--seeds", "0-99999999"], "--seeds"),
        (["--loads", "1,0"], "--loads"),
        (["--carbon-prices", "-5"], "--carbon-prices"),
        (["--ray", "http://127.0.0.1:8265"], "--ray"),
        (["--trace-format", "openb"], "--trace"),
        (["--trace", "no-such-trace.csv", "--trace-format", "csv"], "--trace"),
        (["--forecast", "psychic"], "--forecast"),
        (["--home-reserve", "1.5"], "--home-reserve"),
        (["--jobs-per-day", "0"], "--jobs-per-day"),
        (["--workers", "0"], "--workers"),
        (["--workers", "2", "--ray", "127.0.0.1:6379"], "--workers"),
    ],
)
def test_bad_options_are_refused_before_any_run(
    two_sites, tmp_path: Path, more: list[str], flag: str
) -> None:
    res = CliRunner().invoke(app, sweep_args(tmp_path, *more))
    assert isinstance(res.exception, ComputenetError), repr(res.exception)
    assert flag in str(res.exception)
    assert res.output == ""  # nothing ran
    assert not (tmp_path / "s.json").exists()


def test_output_paths_are_checked_before_any_run(two_sites, tmp_path: Path) -> None:
    args = sweep_args(tmp_path)
    args[args.index("--report") + 1] = str(tmp_path / "no/such/dir/s.html")
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, InputError) and "--report" in str(res.exception)
    args = sweep_args(tmp_path)
    args[args.index("--report") + 1] = str(tmp_path / "s.json")
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, InputError) and "same file" in str(res.exception)
    assert res.output == "" and two_sites == []


def test_help_names_every_axis_and_ray() -> None:
    res = CliRunner().invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for flag in (
        "--policy",
        "--carbon-prices",
        "--seeds",
        "--loads",
        "--ray",
        "--json",
        "--report",
    ):
        assert flag in res.output


@pytest.mark.browser
def test_the_sweep_page_draws_its_charts_in_headless_chromium(swept, tmp_path: Path) -> None:
    import shutil
    import subprocess

    from computenet.sim.sweep_report import write_sweep_report

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    page = write_sweep_report(swept, tmp_path / "sweep.html")
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    m = re.search(r'data-charts="(\d+)" data-charts-drawn="(\d+)"', dom)
    assert m and m.group(1) == m.group(2) == "2", m


def test_sweep_replays_a_trace_file(two_sites, tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    rows = [f"{i * 1800},{3600 * (1 + i % 3)},{1 + i % 4}" for i in range(12)]
    trace.write_text("arrival_s,duration_s,accelerators\n" + "\n".join(rows) + "\n")
    args = [a for a in sweep_args(tmp_path) if a not in ("--jobs-per-day", "40")]
    args[args.index("--days") + 1] = "1"
    res = CliRunner().invoke(app, [*args, "--trace", str(trace), "--trace-format", "csv"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    d = json.loads((tmp_path / "s.json").read_text())
    assert {s["jobs"] for s in d["scenarios"]} == {12}
    assert "csv trace t.csv" in d["title"]
    assert len(d["points"]) == 16 and all(p["violations"] == 0 for p in d["points"])


def test_a_ray_address_where_nothing_listens_is_refused_at_once() -> None:
    import socket

    from computenet.sim.sweep import RayRunner

    pytest.importorskip("ray")
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ComputenetError, match=rf"--ray: nothing answers at 127.0.0.1:{port}"):
        RayRunner(f"127.0.0.1:{port}").connect()
