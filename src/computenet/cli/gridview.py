"""How the CLI shows grid events: per policy and event, the answer and what the simulation
delivered hour by hour (``sim.gridsim``), printed and added to the ``--json`` output."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from computenet.cli.checks import literal

if TYPE_CHECKING:
    from computenet.sim.compare import Comparison
    from computenet.sim.gridsim import GridOutcome


def outcome_json(g: GridOutcome) -> dict[str, Any]:
    """One event of one run as JSON (kW are facility power; MW in the keys that say so)."""
    r = g.response
    return {
        "id": g.event.id,
        "sites": list(g.event.site_ids),
        "start_s": g.event.start_s,
        "end_s": g.event.end_s,
        "answer_s": g.answer_s,
        "jobs_at_the_sites": g.work,
        "hours": [
            {
                "site": h.site_id,
                "start_s": h.start_s,
                "baseline_mw": h.baseline_kw / 1000,
                "asked_mw": h.asked_kw / 1000,
                "committed_mw": c.committed_kw / 1000,
                "delivered_mw": h.delivered_kw / 1000,
                "delivered_ratio": h.ratio,
                "shortfall_mw": max(0.0, h.asked_kw - h.delivered_kw) / 1000,
            }
            for h, c in zip(g.hours, r.hours, strict=True)
        ],
        "delivered_ratio_min": g.delivered_ratio_min,
        "committed_ratio_min": r.delivered_ratio_min,
        "affected": {a: sum(1 for x in r.affected if x.action == a) for a in _actions(g)},
        "added_misses_planned": r.added_misses,
        "energy_moved_kwh": r.energy_moved_kwh,
        "carbon_moved_kg": r.carbon_moved_kg,
        "notes": list(r.notes),
        "kind": "modelled (the simulation's runs, measured power profiles)",
    }


def _actions(g: GridOutcome) -> list[str]:
    return sorted({str(a.action) for a in g.response.affected})


def print_grid(comp: Comparison) -> None:
    """A table per run: each event's hours, asked against delivered."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for res in comp.results:
        for g in res.grid:
            t = Table(
                title=literal(f"grid event {g.event.id} under {res.policy} (modelled)"),
                title_justify="left",
            )
            for col in ("site", "hour (UTC)", "asked kW", "delivered kW", "ratio"):
                t.add_column(col, justify="left" if col in ("site", "hour (UTC)") else "right")
            for h in g.hours:
                when = dt.datetime.fromtimestamp(h.start_s, dt.UTC).strftime("%m-%d %H:%M")
                t.add_row(
                    literal(h.site_id),
                    when,
                    f"{h.asked_kw:,.1f}",
                    f"{h.delivered_kw:,.1f}",
                    f"{100 * h.ratio:.0f} %",
                )
            console.print(t)
            r = g.response
            counts = ", ".join(
                f"{sum(1 for a in r.affected if a.action == k)} {k}" for k in _actions(g)
            )
            console.print(
                f"answered in {g.answer_s:.2f} s over {g.work} jobs at the sites: "
                f"{counts or 'no job touched'}; energy moved {r.energy_moved_kwh:,.0f} kWh",
                markup=False,
                highlight=False,
            )
            for n in r.notes:
                console.print(n, markup=False, highlight=False)


def add_grid_json(comp: Comparison, path: Path) -> None:
    """Add ``grid_events`` (per policy, ``outcome_json`` of each event) to the JSON file."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["grid_events"] = {
        res.policy: [outcome_json(g) for g in res.grid] for res in comp.results if res.grid
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
