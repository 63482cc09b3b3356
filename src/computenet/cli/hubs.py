"""``computenet hubs``: the sites of a network, their accelerators, PUE, carbon and price."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Any

import typer

from computenet.cli.app import app
from computenet.cli.checks import CARBON_MODEL_HELP, GREEN_SUPPLY_HELP, literal


def parse_at(text: str | None) -> int:
    """``--at``: an ISO 8601 time (UTC unless it carries an offset) or now."""
    if text is None:
        return int(time.time())
    from computenet.errors import InputError

    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{text!r} is not an ISO 8601 time",
            source="--at",
            fix="e.g. --at 2023-07-03T14:00+08:00 (UTC when no offset is given)",
        ) from None
    return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp())


def _describe(signal: Any) -> dict[str, Any]:
    describe = getattr(signal, "describe", None)
    if callable(describe):
        return dict(describe())
    return {"kind": type(signal).__name__, "unit": getattr(signal, "unit", "")}


def site_record(net: Any, site: Any, at_s: int) -> dict[str, Any]:
    """One site as a JSON-ready object, signals evaluated at ``at_s``."""
    band = getattr(site.price, "band_at", None)
    return {
        "id": site.id,
        "name": site.name,
        "hub": site.hub,
        "province": site.province,
        "jurisdiction": str(site.jurisdiction),
        "role": str(site.role),
        "latitude": site.latitude,
        "longitude": site.longitude,
        "utc_offset_h": site.utc_offset_h,
        "pue": site.pue,
        "security_level": site.security_level,
        "carbon_g_per_kwh": site.carbon.at(at_s),
        "carbon": _describe(site.carbon),
        "price_cny_per_kwh": site.price.at(at_s),
        "price_band": band(at_s) if callable(band) else None,
        "tariff": _describe(site.price),
        "pools": [
            {
                "accelerator": p.accelerator,
                "count": p.count,
                "assumed": p.assumed,
                "price_cny_per_h": p.price_cny_per_h,
                "host_power_w": p.host_power_w,
                "tflops_bf16": net.accelerators[p.accelerator].tflops_bf16,
            }
            for p in site.pools
        ],
        "accelerators_total": site.accelerators_total,
        # the site's own egress price, else the network's default (CNY/GB)
        "egress_cny_per_gb": site.egress_cny_per_gb
        or getattr(net.links, "egress_cny_per_gb_default", 0.0),
        "sources": dict(site.sources),
        # grid and effective (grid + applied green supply) figures side by side
        **_supply(net, site, at_s),
        "at_s": at_s,
    }


def _supply(net: Any, site: Any, at_s: int) -> dict[str, Any]:
    from computenet.signals.green import supply_record
    from computenet.signals.modelled import describe_model

    rec = supply_record(site, net.accelerators, at_s)
    rec["carbon_model"] = describe_model(site) or "annual"
    return rec


def _carbon_cell(sup: dict[str, Any]) -> str:
    """The grid factor, then the effective figure with the applied green share, or the
    declared supply not applied in parentheses (r reported, c contracted, t target,
    a assumed; pv = a modelled solar profile)."""
    lines = [
        f"{sup['grid_carbon_g_per_kwh']:.0f}" + ("~" if sup["carbon_model"] != "annual" else "")
    ]
    applied = [g for g in sup["green_supply"] if g["applied"]]
    if applied:
        tags = "".join(sorted({g["status"][0] for g in applied}))
        lines.append(
            f"→{sup['effective_carbon_g_per_kwh']:.0f} {sup['green_share_applied']:.0%}{tags}"
        )
    for g in sup["green_supply"]:
        if g["applied"]:
            continue
        if g["kind"] == "share":
            what = f"{g['share']:.0%}"
        elif g["kind"] == "contract":
            what = f"{g['contract_mw']:g}MW"
        else:
            what = f"{g['capacity_mw']:g}MWpv"
        lines.append(f"({what}{g['status'][0]})")
    return "\n".join(lines)


def _by_hub(net: Any) -> list[Any]:
    """Sites grouped by hub in catalog order, sites without a hub last."""
    order = {h: i for i, h in enumerate(net.hubs)}
    return sorted(net.sites, key=lambda s: order.get(s.hub, len(order)))


@app.command()
def hubs(
    network: Annotated[
        str, typer.Option("--network", help="Built-in network name (china) or a network file.")
    ] = "china",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of sites.")] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Time for carbon and price (ISO 8601, UTC unless offset)."),
    ] = None,
    green_supply: Annotated[
        str, typer.Option("--green-supply", help=GREEN_SUPPLY_HELP)
    ] = "declared",
    carbon_model: Annotated[str, typer.Option("--carbon-model", help=CARBON_MODEL_HELP)] = "annual",
) -> None:
    """List a network's sites: hub, province, role, accelerators, PUE, carbon, price now."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from computenet.catalog import load_network

    net = load_network(network, green_supply=green_supply, carbon_model=carbon_model)
    at_s = parse_at(at)
    sites = _by_hub(net)
    if as_json:
        typer.echo(
            json.dumps([site_record(net, s, at_s) for s in sites], indent=2, ensure_ascii=False)
        )
        return
    when = dt.datetime.fromtimestamp(at_s, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = Table(
        title=escape(f"{net.name}: {len(net.sites)} sites in {len(net.hubs)} hubs"),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),  # one space of padding plus the separator: two between columns
        caption=(
            f"Price at {when} in each site's local time (TOU band below it). Carbon: the "
            "site's grid factor as the network states it"
            + (" (~ = modelled hourly, not measured)" if carbon_model == "hourly" else "")
            + "; below it '→ effective' with the site's direct green supply applied "
            f"(--green-supply {green_supply}) and its share of consumption, or '(share)' when "
            "declared but not applied; r reported, c contracted, t policy target, a assumed. "
            "* = assumed capacity. Sources: --json, fields 'sources' and 'green_supply'."
        ),
        caption_justify="left",
    )
    table.add_column("Hub", no_wrap=True)
    table.add_column("Site", no_wrap=True)
    table.add_column("Province", min_width=8)
    table.add_column("Role", no_wrap=True)
    table.add_column("Accelerators", no_wrap=True)
    table.add_column("PUE", justify="right", no_wrap=True)
    table.add_column("gCO₂/kWh", justify="right", no_wrap=True)
    table.add_column("CNY/kWh", justify="right", no_wrap=True)
    last_hub = None
    for s in sites:
        accs = "\n".join(f"{p.count} {p.accelerator}{'*' if p.assumed else ''}" for p in s.pools)
        band = getattr(s.price, "band_at", None)
        price = f"{s.price.at(at_s):.3f}" + (f"\n{band(at_s)}" if callable(band) else "")
        sup = _supply(net, s, at_s)
        hub = s.hub if s.hub != last_hub else ""
        if hub and last_hub is not None:
            table.add_section()
        last_hub = s.hub
        # Ids, names and provinces come from the network file: shown as written.
        table.add_row(
            *(
                literal(cell)
                for cell in (
                    hub,
                    s.id,
                    s.province,
                    s.role,
                    accs or "-",
                    f"{s.pue:.2f}",
                    _carbon_cell(sup),
                    price
                    if sup["effective_price_cny_per_kwh"] == sup["grid_price_cny_per_kwh"]
                    else f"{sup['effective_price_cny_per_kwh']:.3f} (grid {price})",
                )
            )
        )
    Console(highlight=False).print(table)
