"""``computenet quotas`` (set, list, delete) and ``computenet priorities`` (set, list):
tenants' quotas of accelerators and the named priority classes (setting needs an admin
token; a tenant's token lists its own quota only)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from computenet.cli.app import app
from computenet.cli.submit import Token, Url
from computenet.cli.tenants import _tenant_id
from computenet.errors import InputError

quotas_app = typer.Typer(help="Tenants' quotas of accelerators per type.", no_args_is_help=True)
priorities_app = typer.Typer(help="Named priority classes.", no_args_is_help=True)
app.add_typer(quotas_app, name="quotas")
app.add_typer(priorities_app, name="priorities")


def parse_counts(values: list[str] | None, flag: str) -> dict[str, int]:
    """``["A100=8", "H100=2"]`` -> ``{"A100": 8, "H100": 2}``, with an error naming the
    flag."""
    out: dict[str, int] = {}
    for v in values or []:
        kind, sep, count = v.partition("=")
        if not sep or not kind or not count.strip().isdigit():
            raise InputError(
                f"{v!r} is not TYPE=COUNT", source=flag, fix=f"e.g. {flag} A100=8 (repeat per type)"
            )
        out[kind.strip()] = int(count)
    return out


@quotas_app.command("set")
def set_quota(
    tenant: Annotated[str, typer.Argument(help="tenant name or id")],
    nominal: Annotated[
        list[str], typer.Option(help="TYPE=COUNT accelerators it is guaranteed (repeat)")
    ],
    borrow: Annotated[
        list[str] | None,
        typer.Option(help="TYPE=COUNT more it may borrow while others' quota is idle (repeat)"),
    ] = None,
    weight: Annotated[float, typer.Option(help="fair-share weight")] = 1.0,
    url: Url = None,
    token: Token = None,
) -> None:
    """Set a tenant's quota (admin), e.g. ``quotas set acme --nominal A100=8 --borrow A100=4``."""
    from computenet.cli.client import call

    body = {
        "nominal": parse_counts(nominal, "--nominal"),
        "borrowing_limit": parse_counts(borrow, "--borrow"),
        "weight": weight,
    }
    tenant_id = _tenant_id(call("GET", "/v1/tenants", url, token), tenant)
    out = call("PUT", f"/v1/admin/quotas/{tenant_id}", url, token, json=body)
    typer.echo(json.dumps(out, indent=2))


@quotas_app.command("list")
def list_quotas(
    url: Url = None,
    token: Token = None,
    mine: Annotated[bool, typer.Option(help="only the caller's own (any token)")] = False,
) -> None:
    """Every quota with each tenant's usage (admin); with --mine, the caller's own."""
    from computenet.cli.client import call

    out: Any = call("GET", "/v1/quotas" if mine else "/v1/admin/quotas", url, token)
    typer.echo(json.dumps(out, indent=2))


@quotas_app.command("delete")
def delete_quota(
    tenant: Annotated[str, typer.Argument(help="tenant name or id")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Remove a tenant's quota (admin): its work is no longer quota-managed."""
    from computenet.cli.client import call

    tenant_id = _tenant_id(call("GET", "/v1/tenants", url, token), tenant)
    call("DELETE", f"/v1/admin/quotas/{tenant_id}", url, token)
    typer.echo(f"quota of {tenant_id} removed")


@priorities_app.command("set")
def set_priority(
    name: Annotated[str, typer.Argument(help="class name, e.g. high")],
    priority: Annotated[int, typer.Argument(help="the priority its jobs get (-1000..1000)")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Define or change a priority class (admin)."""
    from computenet.cli.client import call

    out = call("PUT", f"/v1/admin/priority-classes/{name}", url, token, json={"priority": priority})
    typer.echo(json.dumps(out, indent=2))


@priorities_app.command("list")
def list_priorities(url: Url = None, token: Token = None) -> None:
    """The priority classes a submission may name (--priority-class), lowest first."""
    from computenet.cli.client import call

    typer.echo(json.dumps(call("GET", "/v1/priority-classes", url, token), indent=2))
