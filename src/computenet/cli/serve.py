"""``computenet serve``: the REST API and the live scheduling loop in one process."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from computenet.cli.app import app
from computenet.cli.checks import (
    CARBON_MODEL_HELP,
    CARBON_PRICE_HELP,
    GREEN_SUPPLY_HELP,
    carbon_price_or_default,
)


@app.command()
def serve(
    db: Annotated[
        str | None,
        typer.Option(help="database URL; default sqlite in $COMPUTENET_HOME (see README)"),
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    network: Annotated[str, typer.Option(help="network name or TOML path")] = "china",
    no_loop: Annotated[bool, typer.Option("--no-loop", help="API only, no scheduling")] = False,
    batch_window_ms: Annotated[
        float, typer.Option(help="group-commit window for submissions, milliseconds")
    ] = 2.0,
    group_commit: Annotated[
        bool,
        typer.Option(help="commit submissions that arrive together in one transaction"),
    ] = True,
    policy: Annotated[
        str, typer.Option(help="placement policy (greedy shifts work in time; cheapest-now not)")
    ] = "greedy",
    carbon_price: Annotated[float | None, typer.Option(help=CARBON_PRICE_HELP)] = None,
    executor: Annotated[
        str,
        typer.Option(
            help="executor of the sites whose network file says `simulated` (all built-in "
            "sites): `simulated` runs nothing; `local` runs their jobs' commands on this machine"
        ),
    ] = "simulated",
    heartbeat_interval: Annotated[
        float, typer.Option(help="seconds between heartbeats to each site's executor")
    ] = 10.0,
    site_down_after: Annotated[
        float,
        typer.Option(help="seconds without a heartbeat before a site is down and its jobs move"),
    ] = 30.0,
    leader_lease: Annotated[
        float,
        typer.Option(
            help="seconds the loop's leader lease lasts unrenewed; with several serve processes "
            "on one database a killed leader is replaced within lease + renew interval"
        ),
    ] = 10.0,
    leader_renew: Annotated[
        float, typer.Option(help="seconds between renewals of the leader lease (and tries)")
    ] = 2.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
    green_supply: Annotated[
        str, typer.Option("--green-supply", help=GREEN_SUPPLY_HELP)
    ] = "declared",
    carbon_model: Annotated[str, typer.Option("--carbon-model", help=CARBON_MODEL_HELP)] = "annual",
) -> None:
    """Start the service: applies database migrations, then serves /v1 and runs the loop.

    Several serve processes may share one PostgreSQL database: all answer the API, the one
    holding the leader lease runs the loop (see /healthz "leader").

    The first admin token comes from COMPUTENET_ADMIN_TOKEN, or `computenet admin-token`.
    """
    import uvicorn

    from computenet.api.app import create_app
    from computenet.settings import Settings, data_dir, default_db_url

    # Checked before anything starts: a bad price would otherwise fail every loop tick.
    price = carbon_price_or_default(carbon_price)
    from computenet.signals.green import check_mode
    from computenet.signals.modelled import check_carbon_model

    check_mode(green_supply)
    check_carbon_model(carbon_model)
    home = data_dir()
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        db_url=db or default_db_url(),
        home=Path(home),
        network=network,
        green_supply=green_supply,
        carbon_model=carbon_model,
        run_loop=not no_loop,
        batch_window_s=batch_window_ms / 1000.0,
        group_commit=group_commit,
        policy=policy,
        carbon_price_cny_per_t=price,
        executor=executor,
        heartbeat_interval_s=heartbeat_interval,
        site_down_after_s=site_down_after,
        leader_lease_s=leader_lease,
        leader_renew_s=leader_renew,
    )
    application = create_app(settings)
    # Everything built so far (framework, ORM, the network with its hourly series) lives as
    # long as the process: moving it out of the collector's sight turns the full collections
    # that stalled every request for 100-150 ms under load into short ones.
    gc.collect()
    gc.freeze()
    typer.echo(
        f"computenet serving on http://{host}:{port} (database {settings.db_url}; "
        f"carbon price {price:,.0f} CNY/t CO2)"
    )
    typer.echo(f"dashboard: http://{host}:{port}/ (sign in with an API token)")
    uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)


@app.command("admin-token")
def admin_token(
    db: Annotated[str | None, typer.Option(help="database URL (as for serve)")] = None,
) -> None:
    """Create a new admin token in the database and print it (shown once)."""
    from computenet.settings import data_dir, default_db_url
    from computenet.store.repository import Repository, migrate, new_token, open_engine

    data_dir().mkdir(parents=True, exist_ok=True)
    engine = open_engine(db or default_db_url())
    migrate(engine)
    token = new_token()
    Repository(engine).ensure_admin_token(token)
    typer.echo(token)
