"""``computenet sweep --ray``: the same grid on a real local Ray head (``ray_head``, started
once per test run) gives the same figures as the sweep run here, point for point.

The network comes from a network file, so the workers need nothing but computenet (which
the sweep ships to them) to read the scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.beds.ray import RayHead
from typer.testing import CliRunner

import netkit
from computenet.cli.main import app
from computenet.sim.sweep import deterministic_figures

pytestmark = pytest.mark.slow


def args(out: Path, network: str, *more: str) -> list[str]:
    return [
        "sweep",
        "--network",
        network,
        "--policy",
        "fifo-home,greedy",
        "--carbon-prices",
        "0,1000",
        "--seeds",
        "0",
        "--loads",
        "1,4",
        "--days",
        "0.25",
        "--jobs-per-day",
        "40",
        "--json",
        str(out / "s.json"),
        "--report",
        str(out / "s.html"),
        *more,
    ]


def test_sweep_on_ray_gives_the_figures_of_a_local_sweep(ray_head: RayHead, tmp_path: Path) -> None:
    # Pools of 64: the demo workload's widest gang.
    net = netkit.network_file(
        tmp_path / "net.toml", {"east": {"a100": 64, "price": 0.9}, "west": {"a100": 64}}
    )
    here, there = tmp_path / "here", tmp_path / "ray"
    here.mkdir()
    there.mkdir()
    local = CliRunner().invoke(app, args(here, net))
    assert local.exit_code == 0, local.output + repr(local.exception)
    on_ray = CliRunner().invoke(app, args(there, net, "--ray", ray_head.gcs))
    assert on_ray.exit_code == 0, on_ray.output + repr(on_ray.exception)
    assert "grid points (ray)" in on_ray.output and "8/8" in on_ray.output

    a = json.loads((here / "s.json").read_text())
    b = json.loads((there / "s.json").read_text())
    assert (a["runner"], b["runner"]) == ("local", "ray")
    assert len(a["points"]) == len(b["points"]) == 8
    for pa, pb in zip(a["points"], b["points"], strict=True):
        assert deterministic_figures(pa) == deterministic_figures(pb)
    assert a["summary"] == b["summary"] and a["scenarios"] == b["scenarios"]
    assert "run on Ray" in (there / "s.html").read_text()


def test_a_point_that_fails_on_ray_is_one_error_naming_it(
    ray_head: RayHead, tmp_path: Path
) -> None:
    from simkit import dataset, job

    from computenet.catalog import load_network
    from computenet.errors import ComputenetError
    from computenet.sim.simulator import SimConfig
    from computenet.sim.sweep import Grid, RayRunner, build_scenario, run_sweep
    from computenet.sim.workload import Workload

    # Only computenet's own types in the scenario, so the worker can read it and the
    # failure is the policy's.
    net = load_network(netkit.network_file(tmp_path / "net.toml", {"a": {"a100": 4}}))
    j = job("j", 0, 1.0)
    wl = Workload((j,), (dataset("j", "a"),), {"j": "a"})
    sc = build_scenario(net, wl, seed=0, load=1.0, config=SimConfig())
    # A policy the engine does not know (the command refuses it before; the library here
    # lets it through, so the worker's error must come back whole).
    grid = Grid(("no-such-policy",), (0.0,), (0,), (1.0,))
    with RayRunner(ray_head.gcs) as runner, pytest.raises(ComputenetError) as err:
        run_sweep([sc], grid, runner)
    text = str(err.value)
    assert "no-such-policy at 0 CNY/t, seed 0, load 1" in text and "failed on the cluster" in text
    assert "unknown policy 'no-such-policy'" in text, text
