"""``computenet explain JOB``: where a job was placed and why."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from computenet.cli.app import app
from computenet.cli.submit import Token, Url


@app.command()
def explain(
    job: Annotated[str, typer.Argument(help="job id")],
    url: Url = None,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a job's placement: site, time, cost and carbon breakdown, rejected options."""
    from computenet.cli.client import call

    e = call("GET", f"/v1/jobs/{job}/placement", url, token)
    if as_json:
        typer.echo(json.dumps(e, indent=2))
        return
    typer.echo(f"job {e['job_id']}: {e['state']}")
    if e["site_id"] is None:
        typer.echo("not placed yet" + (f": {e['message']}" if e.get("message") else ""))
        _print_reasons(e.get("reasons") or [])
        return
    typer.echo(
        f"site {e['site_id']} accelerator {e['accelerator'] or '-'} "
        f"from {e['start_s']} to {e['end_s']} (UTC epoch s)"
    )
    b = (e.get("explanation") or {}).get("breakdown")
    if b:
        typer.echo(
            f"cost {b['cost_cny']:.2f} CNY (energy {b['energy_cost_cny']:.2f}, compute "
            f"{b['compute_cost_cny']:.2f}, transfer {b['transfer_cost_cny']:.2f}); "
            f"carbon {b['carbon_kg']:.1f} kg; energy {b['energy_kwh']:.1f} kWh"
        )
    _print_reasons(e.get("reasons") or [])


def _print_reasons(reasons: list[dict[str, Any]]) -> None:
    """The reasons as the API rendered them from their codes (``engine.reasons``), in its
    order: the job's own decision ("why"), then each rejected option with its site. Plain
    text, so ids and messages print exactly as written."""
    for r in reasons:
        if r.get("role") == "rejected":
            typer.echo(f"  rejected {r.get('site_id', '-')} [{r['code']}]: {r['message']}")
        else:
            typer.echo(f"why [{r['code']}]: {r['message']}")
