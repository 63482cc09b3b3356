"""``computenet simulate``: replay a GPU trace on a network under several policies."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from computenet.cli.app import app
from computenet.cli.checks import (
    CARBON_MODEL_HELP,
    CARBON_PRICE_HELP,
    GREEN_SUPPLY_HELP,
    carbon_price_or_default,
    known_policies,
    literal,
    number,
    writable,
)
from computenet.errors import InputError
from computenet.signals.green import check_mode
from computenet.signals.modelled import check_carbon_model

if TYPE_CHECKING:
    from computenet.model import Network
    from computenet.sim.compare import Comparison

ALL_POLICIES = "fifo-home,cheapest-now,carbon-now,wait-awhile,greedy,milp"
FORECAST_MODES = ("perfect", "persistence", "noisy")


def parse_start(text: str) -> int:
    """``2023-03-01`` or a full ISO time (UTC) to epoch seconds."""
    from computenet.sim.faults import parse_time

    return parse_time(text if "T" in text or ":" in text else text + "T00:00:00Z", source="--start")


def parse_policies(text: str) -> list[str]:
    pols = [p.strip() for p in text.split(",") if p.strip()]
    if not pols:
        raise InputError("no policy given", source="--policy", fix=f"e.g. --policy {ALL_POLICIES}")
    if len(set(pols)) != len(pols):
        raise InputError("a policy is listed twice", source="--policy")
    return pols


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for part in text.split(","):
        name, _, w = part.partition("=")
        try:
            weight = float(w)
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and weight >= 0):
            raise InputError(
                f"bad entry {part!r}", source="--class-mix", fix="write e.g. public=0.5,general=0.5"
            )
        out.append((name.strip(), weight))
    return tuple(out)


def parse_floats(text: str, source: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(
            f"{text!r} is not a comma-separated list of numbers", source=source
        ) from None


# The range of each numeric option of ``simulate`` (``checks.number``'s bounds).
OPTION_RANGES: dict[str, dict[str, float]] = {
    "--home-reserve": {"lo": 0.0, "below": 1.0},
    "--skip-days": {"lo": 0.0},
    "--days": {"above": 0.0},
    "--max-jobs": {"lo": 1},
    "--forecast-error": {"lo": 0.0},
    "--outage-rate": {"lo": 0.0},
    "--outage-hours": {"above": 0.0},
    "--deadline-slack": {"above": 0.0},
    "--min-slack-h": {"lo": 0.0},
    "--checkpointable": {"lo": 0.0, "hi": 1.0},
    "--data-gb": {"lo": 0.0},
    "--batch-minutes": {"lo": 1},
    "--arrival-rate": {"above": 0.0},
    "--capacity": {"lo": 1},
    "--walltime-f": {"lo": 0.0},
    "--checkpoint-s": {"lo": 0},
    "--restore-s": {"lo": 0},
}
UNIT_FORMATS = ("gaia", "csv")  # trace formats that take --time-unit


def check_numbers(values: dict[str, float | None]) -> None:
    """Each numeric option finite and in its ``OPTION_RANGES`` range (``None``: not given)."""
    for flag, value in values.items():
        number(value, flag, **OPTION_RANGES[flag])


def check_names(forecast: str, trace_format: str, time_unit: str | None) -> None:
    """The forecast mode, the trace format and the time unit are known names, and the
    forecasts a mode needs are installed."""
    from computenet.errors import UnknownNameError
    from computenet.sim.traces import TIME_UNITS_S, TRACE_FORMATS

    if forecast not in FORECAST_MODES:
        raise UnknownNameError("forecast mode", forecast, FORECAST_MODES, source="--forecast")
    if forecast != "perfect":
        from computenet.sim.simulator import _sibling

        _sibling("computenet.signals", "forecast", f"--forecast {forecast}")
    if trace_format not in TRACE_FORMATS:
        raise UnknownNameError("trace format", trace_format, TRACE_FORMATS, source="--trace-format")
    if time_unit is not None:
        if trace_format not in UNIT_FORMATS:
            raise InputError(
                f"--time-unit applies to {' and '.join(UNIT_FORMATS)} traces, not {trace_format}",
                source="--time-unit",
            )
        if time_unit not in TIME_UNITS_S:
            raise UnknownNameError("time unit", time_unit, TIME_UNITS_S, source="--time-unit")


def replay_window(tr: Any, skip_days: float, days: float | None, max_jobs: int | None) -> Any:
    """The jobs of ``tr`` to replay: ``--skip-days``, ``--days`` and ``--max-jobs`` applied;
    refuses an empty result."""
    if skip_days or days is not None:
        lo = int(skip_days * 86400)
        hi = lo + int(days * 86400) if days is not None else 2**62
        tr = tr.window(lo, hi)
    if max_jobs is not None:
        tr = tr.head(max_jobs)
    if not tr.jobs:
        raise InputError(
            "no jobs left to replay", source="--trace", fix="widen --days / --skip-days"
        )
    return tr


def load_network_fn() -> Any:
    """``computenet.catalog.load_network``, looked up when a network is first needed."""
    from computenet.sim.simulator import _sibling

    return _sibling("computenet.catalog", "load_network", "built-in and file networks")


def build_network(
    network: str | None,
    zones: str | None,
    carbon_dir: Path | None,
    price_dir: Path | None,
    latency: Path | None,
    capacity: int,
    zone_coords: Path | None = None,
    green_supply: str = "declared",
    carbon_model: str = "annual",
) -> tuple[Network, list[str]]:
    """The network from ``--network`` or from ``--zones`` (exactly one of them); a network
    file's declared green supply and the carbon model as ``--green-supply`` and
    ``--carbon-model`` choose (``computenet.catalog.load_network``)."""
    if zones:
        if network:
            raise InputError("give --network or --zones, not both", source="--zones")
        if carbon_dir is None or price_dir is None:
            raise InputError(
                "--zones needs --carbon-dir and --price-dir",
                source="--zones",
                fix="e.g. --carbon-dir data/carbon/greendcc_ci_2023 "
                "--price-dir data/price/greendcc_prices_2023_utc_usd",
            )
        from computenet.catalog.zones import build_zone_network

        zl = [z.strip() for z in zones.split(",") if z.strip()]
        net, info = build_zone_network(
            zl, carbon_dir, price_dir, latency=latency, capacity=capacity, zone_coords=zone_coords
        )
        return net, [*info.assumptions, *info.defaults]
    if zone_coords is not None:
        raise InputError("--zone-coords goes with --zones", source="--zone-coords")
    load_network = load_network_fn()

    net = load_network(network or "china", green_supply=green_supply, carbon_model=carbon_model)
    return net, supply_notes(net, green_supply, carbon_model)


def supply_notes(net: Network, green_supply: str, carbon_model: str) -> list[str]:
    """What the report says about the sites' power: green supply applied, carbon modelled."""
    declared = [s for s in net.sites if s.green]
    notes = []
    if declared:
        notes.append(
            f"Direct green supply (--green-supply {green_supply}): declared at "
            f"{len(declared)} sites; prices and carbon are the mix of grid and green supply"
            + (" (grid only)" if green_supply == "off" else "")
            + "; see 'Where the sites' power comes from'"
        )
    if carbon_model == "hourly":
        notes.append(
            "Carbon: modelled hourly series for mainland provinces (solar and wind capacity, "
            "clear-sky solar, scaled to the official annual factor), not a measurement"
        )
    return notes


def run_and_show(
    net: Network,
    workload: Any,
    policies: Sequence[str],
    config: Any,
    *,
    title: str,
    network_notes: Sequence[str],
    sweep: Sequence[float],
    bound: bool,
    json_path: Path | None,
    report_path: Path | None,
) -> Comparison:
    """Run the comparison with a progress bar, print the table, write JSON and report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from computenet.sim.compare import compare

    # Logs and CI capture stdout without a terminal, where Rich would assume 80 columns and
    # squeeze the table; 110 keeps every figure whole there.
    probe = Console()
    console = probe if probe.is_terminal else Console(width=110)
    with Progress(
        TextColumn("{task.description:<28}", markup=False, style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        comp = compare(
            net,
            workload,
            policies,
            config,
            sweep_policy="greedy" if sweep else None,
            sweep_prices=sweep,
            bound=bound,
            title=title,
            network_notes=network_notes,
            progress=progress,
        )
    print_table(console, comp)
    if json_path is not None:
        json_path.write_text(json.dumps(comp.to_json(), indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {json_path}", markup=False, highlight=False)
    if report_path is not None:
        from computenet.sim.report import write_report

        write_report(comp, report_path)
        console.print(
            f"wrote {report_path} (open it in a browser; it works offline)",
            markup=False,
            highlight=False,
        )
    return comp


def comp_price(comp: Comparison) -> str:
    """The carbon price the compared runs used, as printed under the table."""
    prices = sorted({m.carbon_price_cny_per_t for m in comp.metrics})
    return "/".join(f"{p:,.0f}" for p in prices) or "–"


def print_table(console: Any, comp: Comparison) -> None:
    from rich.markup import escape
    from rich.table import Table

    from computenet.sim.compare import BASELINE

    # The true FIFO baseline when it ran (``sim.uncertainty``), else fifo-home.
    base = comp.metric("fifo") or comp.metric(BASELINE)
    t = Table(title=escape(comp.title), title_justify="left", pad_edge=False, padding=(0, 1))
    heads = (
        "policy",
        "objective CNY",
        "cost CNY",
        "Δcost",
        "CO₂ t",
        "ΔCO₂",
        "miss",
        "viol",
        "wait h",
        "÷LB",
        "run s",
    )
    for col in heads:
        t.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)

    def pct(x: float, b: float) -> str:
        return "" if b == 0 else f"{100 * (x - b) / b:+.1f}%"

    def num(x: float) -> str:
        return f"{x / 1e6:.2f}M" if abs(x) >= 1e6 else f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}"

    def ratio(m: Any) -> str:
        if m.ratio_to_bound is None:
            return "–"
        # A job that ran late is outside the bound's feasible set, so the ratio of such a
        # run is not an optimality gap: flag it rather than let a value below 1 mislead.
        return f"{m.ratio_to_bound:.2f}" + ("*" if m.deadline_misses else "")

    for m in comp.metrics:
        is_base = base is None or m is base
        t.add_row(
            literal(m.policy),
            num(m.objective_cny),
            num(m.cost_cny),
            "" if is_base else pct(m.cost_cny, base.cost_cny),  # type: ignore[union-attr]
            num(m.carbon_kg / 1000),
            "" if is_base else pct(m.carbon_kg, base.carbon_kg),  # type: ignore[union-attr]
            str(m.deadline_misses),
            f"[red]{m.violations}[/]" if m.violations else "0",
            f"{m.mean_wait_h:.1f}/{m.p99_wait_h:.1f}",
            ratio(m),
            f"{m.wall_s:.1f}",
        )
    console.print(t)
    console.print(
        f"{len(comp.workload.jobs):,} jobs at {comp_price(comp)} CNY/t CO₂; objective = cost "
        "+ carbon price x tonnes; miss = finished after the deadline or never ran; viol = "
        "data-rule/capacity violations (must be 0); wait = mean/p99 hours; ÷LB = objective / "
        f"lower bound ({comp.bound_note}); * = some jobs ran late, so not an optimality gap",
        markup=False,
        style="dim",
    )
    for note in comp.network_notes:
        console.print(f"network: {note}", markup=False, highlight=False, style="dim")


@app.command()
def simulate(
    trace: Path = typer.Option(..., "--trace", help="Trace file to replay."),
    trace_format: str = typer.Option(
        ...,
        "--trace-format",
        help="openb | philly | helios | gaia | csv (see computenet.sim.traces).",
    ),
    network: str = typer.Option(
        None, "--network", help="Built-in network name (china) or a network file."
    ),
    zones: str = typer.Option(
        None, "--zones", help="Build the network from zones, e.g. SG,JP-TK,DE-LU."
    ),
    carbon_dir: Path = typer.Option(
        None, "--carbon-dir", help="Hourly carbon files <ZONE>_2023_hourly.csv."
    ),
    price_dir: Path = typer.Option(
        None, "--price-dir", help="Hourly prices <ZONE>_electricity_prices_2023.csv (USD/MWh)."
    ),
    latency: Path = typer.Option(
        None, "--latency", help="GCP RTT matrix keyed by zone code (optional)."
    ),
    zone_coords: Path = typer.Option(
        None,
        "--zone-coords",
        help="CSV zone,latitude,longitude for zones without built-in coordinates "
        "(see computenet.catalog.zones).",
    ),
    capacity: int = typer.Option(64, "--capacity", help="Accelerators per zone site (assumed)."),
    policy: str = typer.Option(
        ALL_POLICIES, "--policy", help="Comma-separated policies to compare."
    ),
    start: str = typer.Option(
        "2023-01-01",
        "--start",
        help="UTC date/time that trace time 0 maps onto (the signals' year).",
    ),
    skip_days: float = typer.Option(0.0, "--skip-days", help="Skip the trace's first days."),
    days: float = typer.Option(None, "--days", help="Replay only this many days of the trace."),
    max_jobs: int = typer.Option(None, "--max-jobs", help="Replay only the first N jobs."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of every random draw (fill, forecasts, outages)."
    ),
    carbon_price: float = typer.Option(None, "--carbon-price", help=CARBON_PRICE_HELP),
    forecast: str = typer.Option("perfect", "--forecast", help="perfect | persistence | noisy."),
    forecast_error: float = typer.Option(
        0.1, "--forecast-error", help="Relative error of noisy forecasts."
    ),
    outages: Path = typer.Option(None, "--outages", help="CSV of site,start,end outages."),
    outage_rate: float = typer.Option(
        0.0, "--outage-rate", help="Seeded outages per site per day."
    ),
    outage_hours: float = typer.Option(
        4.0, "--outage-hours", help="Mean duration of seeded outages."
    ),
    deadline_slack: float = typer.Option(
        2.0, "--deadline-slack", help="Deadline = arrival + slack x run."
    ),
    min_slack_h: float = typer.Option(
        6.0, "--min-slack-h", help="At least this much slack (hours)."
    ),
    checkpointable: float = typer.Option(
        0.7, "--checkpointable", help="Share of jobs that checkpoint."
    ),
    home: str = typer.Option(
        "auto", "--home", help="Home site choice: auto | capacity | uniform | east."
    ),
    data_gb: float = typer.Option(50.0, "--data-gb", help="Median dataset size (GB)."),
    class_mix: str = typer.Option(
        None, "--class-mix", help="e.g. public=0.3,general=0.45,important=0.1,..."
    ),
    batch_minutes: int = typer.Option(
        15, "--batch-minutes", help="milp plans the queue every N minutes."
    ),
    home_reserve: float = typer.Option(
        0.25,
        "--home-reserve",
        help="Share of each site's accelerators kept for work whose data lives there "
        "(0 lends everything to moved work).",
    ),
    philly_rate: float = typer.Option(
        60.0, "--arrival-rate", help="philly: Poisson arrivals per hour."
    ),
    time_unit: str = typer.Option(
        None,
        "--time-unit",
        help="gaia and csv traces: s (default; GAIA's pai_1k.csv), min or h (GAIA's 100k-job "
        "traces).",
    ),
    gaia_unit: str = typer.Option(None, "--gaia-time-unit", hidden=True, help="= --time-unit"),
    unit_check: bool = typer.Option(
        True,
        "--unit-check/--no-unit-check",
        help="Refuse gaia/csv times that only fit another --time-unit.",
    ),
    sweep: str = typer.Option(
        "0,100,300,1000,3000,10000",
        "--sweep",
        help="Carbon prices (CNY/t) for the Pareto sweep; '' for none.",
    ),
    bound: bool = typer.Option(
        True, "--bound/--no-bound", help="Ask the engine for the lower bound."
    ),
    json_out: Path = typer.Option(None, "--json", help="Write {'policies': [...]} here."),
    green_supply: str = typer.Option("declared", "--green-supply", help=GREEN_SUPPLY_HELP),
    carbon_model: str = typer.Option("annual", "--carbon-model", help=CARBON_MODEL_HELP),
    report: Path = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    grid_events: Path = typer.Option(
        None,
        "--grid-events",
        help="JSON file of grid events to answer and replay (format: "
        "computenet.sim.gridsim.FILE_HELP; README 'Grid events').",
    ),
    flex_mix: str = typer.Option(
        "0:0.25,1:0.25,2:0.25,3:0.25",
        "--flex-mix",
        help="Share of jobs in each flexibility class 0-3 (seeded), for --grid-events.",
    ),
    knowledge: str = typer.Option(
        "oracle",
        "--knowledge",
        help="oracle: the engine knows every run time; estimate: only the requested walltime "
        "or --estimator's prediction, and jobs stop at their walltime (computenet.sim.estimates).",
    ),
    estimator: str = typer.Option(
        "walltime",
        "--estimator",
        help="With --knowledge estimate: walltime | class-mean | auto (per policy).",
    ),
    wait_allowance: str = typer.Option(
        None,
        "--wait-allowance",
        help="Waiting allowance per length class, e.g. 2h:6h,inf:24h (GAIA's 6x24); "
        "deadline = arrival + run + allowance, in place of the slack rule.",
    ),
    deadline_from: str = typer.Option(
        "run", "--deadline-from", help="Deadline rules apply to the actual run or the walltime."
    ),
    walltime_f: float = typer.Option(
        2.0, "--walltime-f", help="Over-request factor f of the walltime model (modelled)."
    ),
    checkpoint_s: int = typer.Option(
        300, "--checkpoint-s", help="Pause and resume: seconds to write a checkpoint (modelled)."
    ),
    restore_s: int = typer.Option(
        300, "--restore-s", help="Pause and resume: seconds to restore one (modelled)."
    ),
) -> None:
    """Replay a GPU trace against real grid signals and compare placement policies."""
    from dataclasses import replace

    from computenet.sim.faults import load_outages, seeded_outages
    from computenet.sim.simulator import SimConfig
    from computenet.sim.traces import load_trace
    from computenet.sim.workload import FillOptions, materialise

    # Every option is checked before any work starts: a typo must not cost a run.
    check_names(forecast, trace_format, time_unit or gaia_unit)
    check_numbers(
        {
            "--home-reserve": home_reserve,
            "--skip-days": skip_days,
            "--days": days,
            "--max-jobs": max_jobs,
            "--forecast-error": forecast_error,
            "--outage-rate": outage_rate,
            "--outage-hours": outage_hours,
            "--deadline-slack": deadline_slack,
            "--min-slack-h": min_slack_h,
            "--checkpointable": checkpointable,
            "--data-gb": data_gb,
            "--batch-minutes": batch_minutes,
            "--arrival-rate": philly_rate,
            "--capacity": capacity,
        }
    )
    from computenet.sim import estimates
    from computenet.sim.workload import parse_wait_allowance

    estimates.estimator(knowledge, estimator)  # refuses unknown names before any work
    allowance = parse_wait_allowance(wait_allowance) if wait_allowance else ()
    check_numbers(
        {"--walltime-f": walltime_f, "--checkpoint-s": checkpoint_s, "--restore-s": restore_s}
    )
    pols = parse_policies(policy)
    known_policies(pols)
    price = carbon_price_or_default(carbon_price)
    sweep_prices = [
        carbon_price_or_default(p, "--sweep")
        for p in (parse_floats(sweep, "--sweep") if sweep else [])
    ]
    writable(json_out, "--json")
    writable(report, "--report")
    t0 = parse_start(start)
    net, notes = build_network(
        network,
        zones,
        carbon_dir,
        price_dir,
        latency,
        capacity,
        zone_coords,
        green_supply=check_mode(green_supply),
        carbon_model=check_carbon_model(carbon_model),
    )
    opts: dict[str, Any] = {"seed": seed}
    if trace_format == "philly":
        opts["arrival_rate_per_h"] = philly_rate
    if trace_format in UNIT_FORMATS:
        opts["time_unit"] = time_unit or gaia_unit or "s"
        opts["unit_check"] = unit_check
    tr = replay_window(load_trace(trace, trace_format, **opts), skip_days, days, max_jobs)
    fill = FillOptions(
        seed=seed,
        deadline_slack=deadline_slack,
        min_slack_h=min_slack_h,
        data_gb_median=data_gb,
        home=home,
        checkpointable_share=checkpointable,
        wait_allowance=allowance,
        deadline_from=deadline_from,
        walltime_f=walltime_f,
    )
    if class_mix:
        fill = replace(fill, classification_mix=parse_mix(class_mix))
    wl = materialise(tr, net, t0, fill)
    events: tuple[Any, ...] = ()
    if grid_events is not None:
        from computenet.sim.gridsim import assign_flex, check_events, load_grid_events

        events = load_grid_events(grid_events, net)
        for pol in pols:
            check_events(events, net, pol)
        wl = assign_flex(wl, parse_flex_mix(flex_mix), seed)
    horizon_end = max(j.deadline_s for j in wl.jobs)
    outs: tuple[Any, ...] = ()
    if outages is not None:
        outs += load_outages(outages, net.site_ids)
    if outage_rate > 0:
        outs += seeded_outages(
            net.site_ids,
            wl.start_s,
            horizon_end,
            rate_per_site_day=outage_rate,
            mean_hours=outage_hours,
            seed=seed,
        )
    cfg = SimConfig(
        carbon_price_cny_per_t=price,
        forecast_mode=forecast,
        forecast_rel_error=forecast_error,
        seed=seed,
        outages=tuple(sorted(outs, key=lambda o: (o.start_s, o.site_id))),
        batch_every_s=batch_minutes * 60,
        home_reserve=home_reserve,
        grid_events=events,
        knowledge=knowledge,
        estimator=estimator,
        checkpoint_s=checkpoint_s,
        restore_s=restore_s,
    )
    if knowledge == "estimate":
        notes = [
            *notes,
            f"run times: the engine plans with estimates ({estimator}), never the actual run; "
            "jobs stop at their requested walltime",
        ]
    if outs:
        notes = [
            *notes,
            f"{len(outs)} site outages ({'file' if outages else 'seeded'}"
            f"{', seeded rate ' + str(outage_rate) + '/site/day' if outage_rate else ''})",
        ]
    start_txt = dt.datetime.fromtimestamp(t0, dt.UTC).strftime("%Y-%m-%d")
    comp = run_and_show(
        net,
        wl,
        pols,
        cfg,
        title=f"{tr.format} trace {trace.name}: {len(wl.jobs):,} jobs on {net.name}, "
        f"from {start_txt}",
        network_notes=notes,
        sweep=sweep_prices,
        bound=bound,
        json_path=json_out,
        report_path=report,
    )
    print_drivers(comp)
    if events:
        from computenet.cli.gridview import add_grid_json, print_grid

        print_grid(comp)
        if json_out is not None:
            add_grid_json(comp, json_out)


def print_drivers(comp: Comparison) -> None:
    """Which signal (price or carbon, at the run's carbon price) drove each policy's shifts
    against ``fifo`` (``sim.uncertainty.signal_driver``), when ``fifo`` ran."""
    from rich.console import Console

    from computenet.sim.uncertainty import BASELINE, signal_driver

    base = comp.result(BASELINE)
    if base is None:
        return
    console = Console(width=110)
    for r in comp.results:
        if r.policy != BASELINE:
            line = signal_driver(r, base).sentence()
            console.print(line, markup=False, highlight=False, style="dim")


def parse_flex_mix(text: str) -> tuple[float, float, float, float]:
    """``"0:0.25,1:0.25,2:0.25,3:0.25"`` as the share of each class (normalised)."""
    shares = [0.0, 0.0, 0.0, 0.0]
    for part in filter(None, (p.strip() for p in text.split(","))):
        cls, _, share = part.partition(":")
        try:
            k, v = int(cls), float(share)
        except ValueError:
            k, v = -1, -1.0
        if k not in range(4) or not (v >= 0 and math.isfinite(v)):
            raise InputError(
                f"cannot read {part!r}", source="--flex-mix", fix="write CLASS:SHARE, e.g. 3:0.25"
            )
        shares[k] = v
    total = sum(shares)
    if total <= 0:
        raise InputError("the shares add up to 0", source="--flex-mix", fix="e.g. 0:0.5,3:0.5")
    return (shares[0] / total, shares[1] / total, shares[2] / total, shares[3] / total)
