"""The report's "Where the sites' power comes from" section: each site's grid and effective
(grid + applied direct green supply) price and carbon side by side over the run, the declared
supply with its status and source, and which carbon series are modelled. Kept apart from
``report.py``, which calls ``supply_section`` once."""

from __future__ import annotations

import html
from collections.abc import Sequence

from computenet.model import Network
from computenet.signals.green import grid_of
from computenet.signals.modelled import describe_model


def _cell(text: str) -> str:
    return f"<td>{html.escape(text)}</td>"


def supply_section(network: Network, start_s: int, end_s: int) -> Sequence[str]:
    """HTML parts (nothing when no site declares supply or has modelled carbon)."""
    rows = []
    for s in network.sites:
        model = describe_model(s)
        if not s.green and model is None:
            continue
        grid_c = grid_of(s.carbon).mean(start_s, end_s)
        eff_c = s.carbon.mean(start_s, end_s)
        grid_p = grid_of(s.price).mean(start_s, end_s)
        eff_p = s.price.mean(start_s, end_s)
        supply = "; ".join(
            f"{g.kind} {g.share:.0%}" if g.kind == "share" else f"{g.kind}" for g in s.green
        )
        status = ", ".join(sorted({g.status for g in s.green}))
        applied = eff_c != grid_c or eff_p != grid_p
        rows.append(
            "<tr>"
            + "".join(
                _cell(x)
                for x in (
                    s.id,
                    supply or "-",
                    status or "-",
                    "yes" if applied else "no",
                    f"{grid_c:.0f}" + (" (modelled)" if model else ""),
                    f"{eff_c:.0f}",
                    f"{grid_p:.3f}",
                    f"{eff_p:.3f}",
                    "; ".join(g.source for g in s.green)[:160] or (model or ""),
                )
            )
            + "</tr>"
        )
    if not rows:
        return []
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "site",
            "green supply",
            "status",
            "applied",
            "grid gCO₂/kWh",
            "effective gCO₂/kWh",
            "grid CNY/kWh",
            "effective CNY/kWh",
            "source",
        )
    )
    return [
        "<h3 id='power-sources'>Where the sites' power comes from</h3>",
        "<p>Means over the run. Effective = the grid mixed with the site's applied direct "
        "green supply: what the engine planned with and the run was charged with. A policy "
        "target is shown but applied only with --green-supply targets. Modelled carbon is "
        "a model, not a measurement.</p>",
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
    ]
