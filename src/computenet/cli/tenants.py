"""``computenet tenants``: create a tenant (admin token needed)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from computenet.cli.app import app
from computenet.cli.submit import Token, Url


@app.command()
def tenants(
    create: Annotated[str | None, typer.Option(help="create a tenant with this name")] = None,
    role: Annotated[str, typer.Option(help="tenant, provider or admin")] = "tenant",
    url: Url = None,
    token: Token = None,
) -> None:
    """List tenants, or create one with --create NAME (prints its token once)."""
    from computenet.cli.client import call

    if create:
        out = call("POST", "/v1/tenants", url, token, json={"name": create, "role": role})
    else:
        out = call("GET", "/v1/tenants", url, token)
    typer.echo(json.dumps(out, indent=2))
