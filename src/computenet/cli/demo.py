"""``computenet demo``: a week on China's national computing-power network, every policy.

The network is the built-in Chinese national network (``load_network("china")``); the
workload is built in (``computenet.sim.workload.demo_trace``): GPU jobs shaped like the
Helios clusters' published statistics. Prints the policy comparison and writes
``report.html``. Needs no file outside the package.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer

from computenet.cli.app import app
from computenet.cli.checks import (
    CARBON_MODEL_HELP,
    CARBON_PRICE_HELP,
    GREEN_SUPPLY_HELP,
    carbon_price_or_default,
    known_policies,
    number,
    writable,
)
from computenet.cli.simulate import (
    ALL_POLICIES,
    load_network_fn,
    parse_flex_mix,
    parse_floats,
    parse_policies,
    parse_start,
    run_and_show,
    supply_notes,
)

DEMO_START = "2023-07-03"  # a Monday in summer, when time-of-use peaks are sharpest
DEMO_JOBS_PER_DAY = 300


@app.command()
def demo(
    days: float = typer.Option(7.0, "--days", help="Days of arrivals to simulate."),
    jobs: int = typer.Option(
        None, "--jobs", help=f"Number of jobs (default {DEMO_JOBS_PER_DAY} a day)."
    ),
    policy: str = typer.Option(
        ALL_POLICIES, "--policy", help="Comma-separated policies to compare."
    ),
    start: str = typer.Option(DEMO_START, "--start", help="UTC date the week starts."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the workload, fill, forecasts and outages."
    ),
    carbon_price: float = typer.Option(None, "--carbon-price", help=CARBON_PRICE_HELP),
    outage_rate: float = typer.Option(
        0.02, "--outage-rate", help="Seeded outages per site per day."
    ),
    sweep: str = typer.Option(
        "0,300,1000,3000,10000", "--sweep", help="Carbon prices for the Pareto sweep."
    ),
    report: Path = typer.Option(
        Path("report.html"), "--report", help="Where to write the HTML report."
    ),
    json_out: Path = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    green_supply: str = typer.Option("declared", "--green-supply", help=GREEN_SUPPLY_HELP),
    carbon_model: str = typer.Option("annual", "--carbon-model", help=CARBON_MODEL_HELP),
    grid_events: Path = typer.Option(
        None, "--grid-events", help="JSON file of grid events to answer (see `simulate`)."
    ),
    flex_mix: str = typer.Option(
        "0:0.25,1:0.25,2:0.25,3:0.25",
        "--flex-mix",
        help="Share of jobs in each flexibility class 0-3 (seeded), for --grid-events.",
    ),
) -> None:
    """A week of GPU jobs on China's national network: compare every policy, write report.html."""
    load_network = load_network_fn()
    from computenet.engine.grid import GridEvent
    from computenet.errors import InputError
    from computenet.sim.faults import seeded_outages
    from computenet.sim.gridsim import assign_flex, check_events, load_grid_events
    from computenet.sim.simulator import SimConfig
    from computenet.sim.workload import FillOptions, demo_trace, materialise

    # Every option is checked before the week is simulated: a typo must not cost a run.
    if not (math.isfinite(days) and 0 < days <= 60):
        raise InputError("days must be in (0, 60]", source="--days")
    n = jobs if jobs is not None else int(DEMO_JOBS_PER_DAY * days)
    if n < 1:
        raise InputError("jobs must be at least 1", source="--jobs")
    number(outage_rate, "--outage-rate", lo=0.0)
    price = carbon_price_or_default(carbon_price)
    policies = parse_policies(policy)
    known_policies(policies)
    sweep_prices = [
        carbon_price_or_default(p, "--sweep")
        for p in (parse_floats(sweep, "--sweep") if sweep else [])
    ]
    writable(report, "--report")
    writable(json_out, "--json")
    from computenet.signals.green import check_mode
    from computenet.signals.modelled import check_carbon_model

    check_mode(green_supply)
    check_carbon_model(carbon_model)
    net = load_network("china", green_supply=green_supply, carbon_model=carbon_model)
    t0 = parse_start(start)
    trace = demo_trace(days=days, jobs=n, seed=seed)
    wl = materialise(trace, net, t0, FillOptions(seed=seed))
    events: tuple[GridEvent, ...] = ()
    if grid_events is not None:
        events = load_grid_events(grid_events, net)
        for pol in policies:
            check_events(events, net, pol)
        wl = assign_flex(wl, parse_flex_mix(flex_mix), seed)
    end = max(j.deadline_s for j in wl.jobs)
    outs = seeded_outages(
        net.site_ids, wl.start_s, end, rate_per_site_day=outage_rate, mean_hours=4.0, seed=seed
    )
    cfg = SimConfig(
        carbon_price_cny_per_t=price,
        seed=seed,
        outages=outs,
        grid_events=events,
    )
    notes = [
        f"{len(outs)} seeded site outages ({outage_rate:g} per site per day, mean 4 h): "
        "running jobs lose the work since their last checkpoint and are placed again",
        *supply_notes(net, green_supply, carbon_model),
    ]
    comp = run_and_show(
        net,
        wl,
        policies,
        cfg,
        title=(
            f"{days:g} days on China's national computing-power network: {len(wl.jobs):,} GPU jobs"
        ),
        network_notes=notes,
        sweep=sweep_prices,
        bound=True,
        json_path=json_out,
        report_path=report,
    )
    if events:
        from computenet.cli.gridview import add_grid_json, print_grid

        print_grid(comp)
        if json_out is not None:
            add_grid_json(comp, json_out)
