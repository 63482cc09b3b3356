"""``computenet sweep``: a grid of simulations (policies x carbon prices x seeds x load levels),
here with a progress bar or on a Ray cluster (``--ray``), written as one JSON and one HTML
comparison. The grid points are the same function on either runner
(``computenet.sim.sweep.run_point``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from computenet.cli.app import app
from computenet.cli.checks import carbon_price_or_default, known_policies, literal, writable
from computenet.cli.simulate import (
    build_network,
    check_names,
    check_numbers,
    parse_floats,
    parse_policies,
    parse_start,
    replay_window,
)
from computenet.errors import InputError

if TYPE_CHECKING:
    from computenet.model import Network
    from computenet.sim.sweep import Grid, Runner, Scenario, SweepResult

SWEEP_POLICIES = "fifo-home,carbon-now,wait-awhile,greedy"
SWEEP_PRICES = "0,1000"  # CNY per tonne CO2
SWEEP_LOADS = "1,2,4"
DEMO_START = "2023-07-03"  # as ``computenet demo``: a summer Monday
MAX_SEEDS = 10_000  # a typo such as 0-1000000 must not build a million-point grid


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or a range ``0-4`` (both ends included)."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if dash else (int(part), int(part))
            if not (0 <= a <= b < 2**32) or b - a >= MAX_SEEDS:
                raise ValueError
            out.extend(range(a, b + 1))
        except ValueError:
            raise InputError(
                f"{part!r} is not a seed or a range of seeds",
                source="--seeds",
                fix=f"write e.g. 0,1,2 or 0-4 (seeds 0 to 2**32-1, at most {MAX_SEEDS:,})",
            ) from None
        if len(out) > MAX_SEEDS:
            raise InputError(f"more than {MAX_SEEDS:,} seeds", source="--seeds")
    if not out:
        raise InputError("no seed given", source="--seeds", fix="write e.g. 0,1,2 or 0-4")
    if len(set(out)) != len(out):
        raise InputError("a seed is listed twice", source="--seeds")
    return out


def parse_loads(text: str) -> list[float]:
    loads = parse_floats(text, "--loads")
    if not loads:
        raise InputError("no load level given", source="--loads", fix="write e.g. 1,2,4")
    for x in loads:
        if not (x > 0 and x < float("inf")):
            raise InputError(
                f"{x:g} is not a load level", source="--loads", fix="give numbers above 0"
            )
    if len(set(loads)) != len(loads):
        raise InputError("a load level is listed twice", source="--loads")
    return loads


def parse_prices(text: str) -> list[float]:
    prices = [
        carbon_price_or_default(p, "--carbon-prices") for p in parse_floats(text, "--carbon-prices")
    ]
    if not prices:
        raise InputError("no carbon price given", source="--carbon-prices", fix="e.g. 0,1000")
    if len(set(prices)) != len(prices):
        raise InputError("a carbon price is listed twice", source="--carbon-prices")
    return prices


class ScenarioBuilder:
    """Builds the scenario of each (seed, load level): the workload of that seed, the
    network scaled to that load, that seed's outages."""

    def __init__(
        self,
        net: Network,
        workload_of: Any,
        *,
        outage_rate: float,
        config: Any,
    ) -> None:
        self.net = net
        self.workload_of = workload_of  # seed -> Workload
        self.outage_rate = outage_rate
        self.config = config
        self._workloads: dict[int, Any] = {}  # one workload per seed, shared by its loads

    def build(self, seed: int, load: float) -> Scenario:
        from computenet.sim.sweep import build_scenario

        if seed not in self._workloads:
            self._workloads[seed] = self.workload_of(seed)
        return build_scenario(
            self.net,
            self._workloads[seed],
            seed=seed,
            load=load,
            config=self.config,
            outage_rate_per_site_day=self.outage_rate,
        )


def progress_console() -> Any:
    from rich.console import Console

    # As ``simulate``: without a terminal Rich would assume 80 columns and squeeze the table.
    probe = Console()
    return probe if probe.is_terminal else Console(width=110)


def run_with_bar(
    console: Any,
    scenarios: list[Scenario],
    grid: Grid,
    runner: Runner,
    title: str,
    notes: list[str],
) -> SweepResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from computenet.sim.sweep import run_sweep

    total = len(grid.points())
    with Progress(
        TextColumn("{task.description:<28}", markup=False, style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"grid points ({runner.name})", total=total)
        return run_sweep(
            scenarios,
            grid,
            runner,
            title=title,
            notes=notes,
            done=lambda i: bar.advance(task),
        )


def print_summary(console: Any, sweep: SweepResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(sweep.title), title_justify="left", pad_edge=False, padding=(0, 1))
    for col in (
        "load",
        "CNY/t",
        "policy",
        "objective CNY",
        "Δobj",
        "cost CNY",
        "CO₂ t",
        "miss",
        "viol",
    ):
        t.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for r in sweep.summary():
        d = r.get("objective_vs_fifo_home_pct")
        t.add_row(
            f"{r['load']:g}",
            f"{r['carbon_price_cny_per_t']:,.0f}",
            literal(r["policy"]),
            f"{r['objective_cny']:,.0f}",
            "" if d is None else f"{d:+.1f}%",
            f"{r['cost_cny']:,.0f}",
            f"{r['carbon_kg'] / 1000:,.2f}",
            f"{r['deadline_misses']:.1f}",
            f"[red]{r['violations']}[/]" if r["violations"] else "0",
        )
    console.print(t)
    console.print(
        f"means over {len(sweep.grid.seeds)} seed(s); load L = every pool cut to 1/L of its "
        "accelerators (rho: offered load / accelerators, in the JSON); Δobj against "
        "fifo-home at the same load and price; "
        "miss = deadline misses per run; viol = rule/capacity violations, all seeds (must be 0)",
        markup=False,
        style="dim",
    )


@app.command()
def sweep(
    policy: str = typer.Option(SWEEP_POLICIES, "--policy", help="Comma-separated policies."),
    carbon_prices: str = typer.Option(
        SWEEP_PRICES,
        "--carbon-prices",
        help="Carbon prices (CNY per tonne CO2), comma-separated.",
    ),
    seeds: str = typer.Option(
        "0,1", "--seeds", help="Seeds of workload, fill, forecasts and outages: 0,1,2 or 0-4."
    ),
    loads: str = typer.Option(
        SWEEP_LOADS,
        "--loads",
        help="Load levels: each cuts every pool to 1/LEVEL of its accelerators (1: as it is; "
        "never below the widest gang), so each accelerator meets LEVEL x the demand.",
    ),
    ray_address: str = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="Run each grid point as a Ray task on this cluster (HOST:PORT of the head, "
        "ray://HOST:PORT or auto); without it, here. Needs Ray (the ray extra of computenet).",
    ),
    workers: int = typer.Option(
        1, "--workers", help="Without --ray: grid points run at once on this machine (processes)."
    ),
    cpus_per_task: float = typer.Option(
        1.0, "--cpus-per-task", help="With --ray: CPUs Ray reserves for each grid point."
    ),
    trace: Path = typer.Option(
        None, "--trace", help="Trace file to replay; without it, the built-in demo workload."
    ),
    trace_format: str = typer.Option(
        None, "--trace-format", help="With --trace: openb | philly | helios | gaia | csv."
    ),
    time_unit: str = typer.Option(None, "--time-unit", help="gaia and csv traces: s, min or h."),
    days: float = typer.Option(
        None, "--days", help="Days of arrivals (demo workload: default 1; trace: all)."
    ),
    skip_days: float = typer.Option(0.0, "--skip-days", help="With --trace: skip its first days."),
    max_jobs: int = typer.Option(
        None, "--max-jobs", help="With --trace: replay only its first N jobs."
    ),
    jobs_per_day: int = typer.Option(
        100, "--jobs-per-day", help="Demo workload: jobs arriving per day."
    ),
    network: str = typer.Option(
        None, "--network", help="Built-in network name (china, the default) or a network file."
    ),
    zones: str = typer.Option(None, "--zones", help="Build the network from zones instead."),
    carbon_dir: Path = typer.Option(None, "--carbon-dir", help="With --zones: carbon files."),
    price_dir: Path = typer.Option(None, "--price-dir", help="With --zones: price files."),
    latency: Path = typer.Option(None, "--latency", help="With --zones: RTT matrix (optional)."),
    capacity: int = typer.Option(
        64, "--capacity", help="With --zones: accelerators per zone site before scaling."
    ),
    start: str = typer.Option(
        None,
        "--start",
        help=f"UTC date trace time 0 maps onto (default {DEMO_START} for the demo workload, "
        "2023-01-01 for a trace).",
    ),
    forecast: str = typer.Option("perfect", "--forecast", help="perfect | persistence | noisy."),
    outage_rate: float = typer.Option(
        0.0, "--outage-rate", help="Seeded outages per site per day."
    ),
    deadline_slack: float = typer.Option(
        2.0, "--deadline-slack", help="Deadline = arrival + slack x run."
    ),
    home_reserve: float = typer.Option(
        0.25, "--home-reserve", help="Share of each site kept for work whose data lives there."
    ),
    json_out: Path = typer.Option(
        Path("sweep.json"), "--json", help="Where to write every point's figures as JSON."
    ),
    report: Path = typer.Option(
        Path("sweep.html"), "--report", help="Where to write the HTML comparison."
    ),
) -> None:
    """Run a grid of simulations (policies x carbon prices x seeds x load levels) and compare."""
    from computenet.sim.sweep import Grid, LocalRunner, RayRunner, check_ray_address, iter_cells

    # Every option is checked before any work starts: a typo must not cost a sweep.
    pols = parse_policies(policy)
    known_policies(pols)
    grid = Grid(
        tuple(pols),
        tuple(parse_prices(carbon_prices)),
        tuple(parse_seeds(seeds)),
        tuple(parse_loads(loads)),
    )
    _check_workload_options(trace, trace_format, time_unit, skip_days, max_jobs, jobs_per_day)
    check_names(forecast, trace_format or "csv", time_unit)
    check_numbers(
        {
            "--skip-days": skip_days,
            "--days": days,
            "--max-jobs": max_jobs,
            "--outage-rate": outage_rate,
            "--deadline-slack": deadline_slack,
            "--home-reserve": home_reserve,
            "--capacity": capacity,
        }
    )
    if not (cpus_per_task > 0):
        raise InputError("must be above 0", source="--cpus-per-task")
    if workers < 1:
        raise InputError("must be at least 1", source="--workers")
    if workers > 1 and ray_address is not None:
        raise InputError(
            "--workers is for a sweep on this machine; with --ray, the cluster runs the "
            "points (--cpus-per-task)",
            source="--workers",
        )
    _check_outputs(json_out, report)
    address = check_ray_address(ray_address) if ray_address is not None else None
    t0 = parse_start(start or ("2023-01-01" if trace is not None else DEMO_START))
    net, notes = build_network(network, zones, carbon_dir, price_dir, latency, capacity)
    workload_of, what = _workloads(
        net,
        t0,
        trace,
        trace_format,
        time_unit,
        skip_days,
        days,
        max_jobs,
        jobs_per_day,
        deadline_slack,
    )
    runner: Runner = (
        LocalRunner(workers) if address is None else RayRunner(address, cpus_per_task=cpus_per_task)
    )
    if isinstance(runner, RayRunner):
        runner.connect()  # a cluster that is not there is found before the scenarios are built
    try:
        builder = ScenarioBuilder(
            net, workload_of, outage_rate=outage_rate, config=_config(forecast, home_reserve)
        )
        scenarios = [builder.build(seed, load) for seed, load in iter_cells(grid)]
        start_txt = dt.datetime.fromtimestamp(t0, dt.UTC).strftime("%Y-%m-%d")
        title = f"sweep of {len(grid.points())} runs: {what} on {net.name} from {start_txt}"
        console = progress_console()
        result = run_with_bar(console, scenarios, grid, runner, title, notes)
    finally:
        if isinstance(runner, RayRunner):
            runner.close()
    print_summary(console, result)
    json_out.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {json_out}", markup=False, highlight=False)
    from computenet.sim.sweep_report import write_sweep_report

    write_sweep_report(result, report)
    console.print(
        f"wrote {report} (open it in a browser; it works offline)", markup=False, highlight=False
    )


def _check_workload_options(
    trace: Path | None,
    trace_format: str | None,
    time_unit: str | None,
    skip_days: float,
    max_jobs: int | None,
    jobs_per_day: int,
) -> None:
    """The trace options go together, and with a trace that is there."""
    if trace is not None and trace_format is None:
        raise InputError("--trace needs --trace-format", source="--trace-format")
    if trace is None and (trace_format or time_unit or skip_days or max_jobs is not None):
        raise InputError(
            "--trace-format, --time-unit, --skip-days and --max-jobs go with --trace",
            source="--trace",
        )
    if trace is not None and not trace.is_file():
        raise InputError(f"no file {trace}", source="--trace")
    if jobs_per_day < 1:
        raise InputError("must be at least 1", source="--jobs-per-day")


def _check_outputs(json_out: Path, report: Path) -> None:
    """Both files can be written, and they are two files."""
    writable(json_out, "--json")
    writable(report, "--report")
    if json_out.resolve() == report.resolve():
        raise InputError("--json and --report name the same file", source="--report")


def _config(forecast: str, home_reserve: float) -> Any:
    from computenet.sim.simulator import SimConfig

    return SimConfig(forecast_mode=forecast, home_reserve=home_reserve)


def _workloads(
    net: Network,
    t0: int,
    trace: Path | None,
    trace_format: str | None,
    time_unit: str | None,
    skip_days: float,
    days: float | None,
    max_jobs: int | None,
    jobs_per_day: int,
    deadline_slack: float,
) -> tuple[Any, str]:
    """A function seed -> workload, and what it is in words."""
    from computenet.sim.traces import load_trace
    from computenet.sim.workload import FillOptions, demo_trace, materialise

    if trace is None:
        d = days if days is not None else 1.0
        n = max(1, round(jobs_per_day * d))

        def demo(seed: int) -> Any:
            tr = demo_trace(days=d, jobs=n, seed=seed)
            return materialise(tr, net, t0, FillOptions(seed=seed, deadline_slack=deadline_slack))

        return demo, f"{n:,} demo GPU jobs over {d:g} days"

    def replay(seed: int) -> Any:
        opts: dict[str, Any] = {"seed": seed}
        if trace_format in ("gaia", "csv"):
            opts["time_unit"] = time_unit or "s"
        assert trace is not None and trace_format is not None
        tr = replay_window(load_trace(trace, trace_format, **opts), skip_days, days, max_jobs)
        return materialise(tr, net, t0, FillOptions(seed=seed, deadline_slack=deadline_slack))

    return replay, f"{trace_format} trace {trace.name}"
