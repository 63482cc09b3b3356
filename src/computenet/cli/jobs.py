"""``computenet jobs``: list your jobs on a running service."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from computenet.cli.app import app
from computenet.cli.checks import literal
from computenet.cli.submit import Token, Url


@app.command()
def jobs(
    state: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
    limit: Annotated[int, typer.Option(help="page size")] = 50,
    offset: Annotated[int, typer.Option(help="page start")] = 0,
    url: Url = None,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List jobs, newest first."""
    from rich.console import Console
    from rich.table import Table

    from computenet.cli.client import call

    params: dict[str, object] = {"limit": limit, "offset": offset}
    if state:
        params["state"] = state
    page = call("GET", "/v1/jobs", url, token, params=params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    table = Table("id", "name", "state", "site", "acc", "exit", "why")
    for j in page["items"]:
        # Names are the user's text: shown as written, never read as markup.
        table.add_row(
            *(
                literal(cell)
                for cell in (
                    j["id"],
                    j["name"],
                    j["state"],
                    j["site_id"] or "-",
                    j["accelerators"],
                    "-" if j["exit_code"] is None else j["exit_code"],
                    _why(j.get("reasons") or []),
                )
            )
        )
    Console(highlight=False).print(table)
    typer.echo(f"{len(page['items'])} of {page['total']} jobs")


def _why(reasons: list[dict[str, object]]) -> str:
    """The job's own decision in one cell: the first reason's code (the API lists the
    decision first; ``computenet explain JOB`` prints every message); ``-`` before it is
    planned."""
    return str(reasons[0]["code"]) if reasons else "-"
