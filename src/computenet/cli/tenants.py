"""``computenet tenants``: list, create, grant and revoke (admin token needed)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from computenet.cli.app import app
from computenet.cli.submit import Token, Url
from computenet.errors import InputError


@app.command()
def tenants(
    tenant: Annotated[
        str | None, typer.Argument(help="tenant name or id to --grant or --revoke for")
    ] = None,
    create: Annotated[str | None, typer.Option(help="create a tenant with this name")] = None,
    role: Annotated[str, typer.Option(help="tenant, provider, admin or grid-operator")] = "tenant",
    grant: Annotated[
        list[str] | None,
        typer.Option(help="grant a permission (repeat), e.g. commands; with --create or TENANT"),
    ] = None,
    revoke: Annotated[
        list[str] | None, typer.Option(help="revoke a permission of TENANT (repeat)")
    ] = None,
    site: Annotated[
        list[str] | None,
        typer.Option(
            help="a site the provider owns (repeat); with --create, or with TENANT to set "
            "its complete set of sites"
        ),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """List tenants; create one with --create NAME (prints its token once); grant or revoke
    permissions with --grant commands TENANT / --revoke commands TENANT; bind a provider's
    sites with --create NAME --role provider --site ID ... or --site ID ... PROVIDER."""
    from computenet.cli.client import call

    grants, revokes, sites = list(grant or []), list(revoke or []), list(site or [])
    out: Any
    if create:
        if revokes or tenant:
            raise InputError("--create takes no TENANT and no --revoke", source="tenants")
        body = {"name": create, "role": role, "permissions": grants, "sites": sites}
        out = call("POST", "/v1/tenants", url, token, json=body)
    elif sites:
        if not tenant or grants or revokes:
            raise InputError(
                "--site sets one provider's sites",
                source="tenants",
                fix="computenet tenants --site guian --site horinger PROVIDER",
            )
        tenant_id = _tenant_id(call("GET", "/v1/tenants", url, token), tenant)
        out = call("PUT", f"/v1/tenants/{tenant_id}/sites", url, token, json={"sites": sites})
    elif grants or revokes:
        if not tenant:
            raise InputError(
                "which tenant?", source="tenants", fix="computenet tenants --grant commands NAME"
            )
        tenant_id = _tenant_id(call("GET", "/v1/tenants", url, token), tenant)
        changes = {p: True for p in grants} | {p: False for p in revokes}
        out = call("PUT", f"/v1/tenants/{tenant_id}/permissions", url, token, json=changes)
    else:
        out = call("GET", "/v1/tenants", url, token)
    typer.echo(json.dumps(out, indent=2))


def _tenant_id(listing: list[dict[str, Any]], name_or_id: str) -> str:
    for t in listing:
        if name_or_id in (t["id"], t["name"]):
            return str(t["id"])
    raise InputError(
        f"no tenant named {name_or_id!r}",
        source="tenants",
        fix="use a name or id from `computenet tenants`",
    )
