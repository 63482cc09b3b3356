"""The sweep's comparison page: one self-contained HTML page for a ``SweepResult`` (means over
seeds per load level and carbon price, in the policies' colours of ``report``; offline, as
the simulator's report)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from computenet.sim.compare import BASELINE
from computenet.sim.report import (
    CSS,
    SCRIPT,
    _colour_key,
    _fig,
    _fmt,
    _kg,
    _li,
    _plt,
    _svg,
    _table,
    policy_colours,
)
from computenet.sim.sweep import SweepResult


def chart_sweep(sweep: SweepResult) -> str:
    """Per carbon price (columns): mean objective against load level (top) and mean
    deadline misses against load level (bottom), one line per policy in its colour; bars
    span the lowest to the highest seed."""
    plt = _plt()
    grid = sweep.grid
    colours = policy_colours(grid.policies)
    prices = grid.carbon_prices_cny_per_t
    fig, axes = plt.subplots(
        2, len(prices), figsize=(max(6.0, 4.2 * len(prices)), 6.2), squeeze=False
    )
    by: dict[tuple[str, float, float], list[dict[str, Any]]] = {}
    for p in sweep.points:
        by.setdefault((p["policy"], p["carbon_price_cny_per_t"], p["load"]), []).append(p)
    loads = sorted(grid.loads)
    for c, price in enumerate(prices):
        for r, (key, label) in enumerate(
            (("objective_cny", "objective (CNY)"), ("deadline_misses", "deadline misses"))
        ):
            ax = axes[r][c]
            for pol in grid.policies:
                vals = [[float(p[key]) for p in by[(pol, price, load)]] for load in loads]
                mean = [sum(v) / len(v) for v in vals]
                lo = [m - min(v) for m, v in zip(mean, vals, strict=True)]
                hi = [max(v) - m for m, v in zip(mean, vals, strict=True)]
                ax.errorbar(
                    loads,
                    mean,
                    yerr=[lo, hi],
                    color=colours[pol],
                    marker="o",
                    ms=4,
                    lw=1.4,
                    capsize=2,
                    label=pol,
                )
            ax.set_xlabel("load level (demand per accelerator, x)")
            ax.set_ylabel(label)
            if r == 0:
                ax.set_title(f"carbon price {price:,.0f} CNY/t", loc="left")
            if r == 0 and c == 0:
                ax.legend(fontsize=7, frameon=False, loc="best")
    fig.tight_layout()
    return _svg(fig)


def chart_sweep_cost_carbon(sweep: SweepResult) -> str:
    """Mean cost against mean carbon of every (policy, load, price) cell, in the policy's
    colour; the marker grows with the load level."""
    plt = _plt()
    colours = policy_colours(sweep.grid.policies)
    loads = sorted(sweep.grid.loads)
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    rows = sweep.summary()
    for pol in sweep.grid.policies:
        mine = [r for r in rows if r["policy"] == pol]
        ax.scatter(
            [r["carbon_kg"] / 1000 for r in mine],
            [r["cost_cny"] for r in mine],
            s=[20 + 40 * loads.index(r["load"]) for r in mine],
            color=colours[pol],
            alpha=0.85,
            label=pol,
        )
    ax.set_xlabel("carbon (t CO₂), mean over seeds")
    ax.set_ylabel("cost (CNY), mean over seeds")
    ax.set_title("Cost–carbon of every cell (larger: higher load)", loc="left")
    ax.legend(fontsize=7, frameon=False, loc="best")
    fig.tight_layout()
    return _svg(fig)


def _sweep_summary_rows(sweep: SweepResult) -> tuple[list[list[str]], list[str]]:
    rows, classes = [], []
    for r in sweep.summary():
        d = r.get("objective_vs_fifo_home_pct")
        rows.append(
            [
                f"{r['load']:g}",
                f"{r['carbon_price_cny_per_t']:,.0f}",
                r["policy"],
                str(r["seeds"]),
                _fmt(r["objective_cny"]),
                "" if d is None else f"{d:+.1f}%",
                _fmt(r["objective_cny_sd"]),
                _fmt(r["energy_cost_cny"]),
                _fmt(r["compute_cost_cny"]),
                _fmt(r["transfer_cost_cny"]),
                _kg(r["carbon_kg"]),
                f"{r['deadline_misses']:.1f}",
                str(r["violations"]),
            ]
        )
        classes.append("base" if r["policy"] == BASELINE else "")
    return rows, classes


def _sweep_best(sweep: SweepResult) -> list[tuple[str, str, bool, str]]:
    """Headline cards: the policy with the lowest mean objective at each load level and
    carbon price, and the violations of the whole sweep."""
    cards = []
    rows = sweep.summary()
    for load in sweep.grid.loads:
        for price in sweep.grid.carbon_prices_cny_per_t:
            cell = [r for r in rows if r["load"] == load and r["carbon_price_cny_per_t"] == price]
            best = min(cell, key=lambda r: (r["objective_cny"], r["policy"]))
            base = next((r for r in cell if r["policy"] == BASELINE), None)
            d = best.get("objective_vs_fifo_home_pct")
            vs = (
                ""
                if d is None or base is None
                else (
                    f"; {d:+.1f}% vs {BASELINE}, misses {best['deadline_misses']:g} vs "
                    f"{base['deadline_misses']:g}"
                )
            )
            cards.append(
                (
                    best["policy"],
                    f"lowest objective at load {load:g}, {price:,.0f} CNY/t{vs}",
                    best["deadline_misses"] > (base["deadline_misses"] if base else 0),
                    "best",
                )
            )
    v = sum(p["violations"] for p in sweep.points)
    cards.append((str(v), "violations in all runs", v > 0, "v"))
    return cards


def render_sweep(sweep: SweepResult) -> str:
    """The sweep's comparison page as one HTML string (offline, as ``render``)."""
    grid = sweep.grid
    cards = "".join(
        f"<div class='card{' bad' if bad else ''}' data-card='{key}'><b>{html.escape(v)}</b>"
        f"<span>{html.escape(t)}</span></div>"
        for v, t, bad, key in _sweep_best(sweep)
    )
    rows, classes = _sweep_summary_rows(sweep)
    scen = [
        [
            str(s.seed),
            f"{s.load:g}",
            f"{100 * s.capacity_share:.0f}%",
            f"{s.offered_load:.3f}",
            f"{len(s.workload.jobs):,}",
            f"{s.accelerators:,}",
        ]
        for s in sweep.scenarios
    ]
    axes = (
        f"{len(grid.policies)} policies × {len(grid.carbon_prices_cny_per_t)} carbon prices × "
        f"{len(grid.seeds)} seeds × {len(grid.loads)} load levels = {len(sweep.points)} runs, "
        f"run {'on Ray' if sweep.runner == 'ray' else 'in one process'}"
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>computenet — {html.escape(sweep.title)}</title>",
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body><main>",
        f"<h1>{html.escape(sweep.title)}</h1>",
        f"<p class='sub'>{html.escape(axes)} · generated by computenet</p>",
        f"<section data-section='headline'><div class='cards'>{cards}</div></section>",
        _colour_key(list(grid.policies)),
        _fig(
            "sweep",
            chart_sweep(sweep),
            "Mean over seeds against the load level, per carbon price; bars span the seeds.",
        ),
        _fig(
            "sweep-cost-carbon",
            chart_sweep_cost_carbon(sweep),
            "Every (policy, load, carbon price) cell, mean over seeds.",
        ),
        "<h2>Means over seeds</h2>",
        _table(
            [
                "load",
                "CNY/t",
                "policy",
                "seeds",
                "objective CNY",
                f"Δ vs {BASELINE}",
                "sd objective",
                "energy CNY",
                "compute CNY",
                "transfer CNY",
                "carbon kg",
                "misses",
                "violations",
            ],
            rows,
            classes,
            name="sweep-summary",
        ),
        "<h2>Scenarios</h2>",
        "<p>One per seed and load level. Load level L cuts every pool of the network to 1/L "
        "of its accelerators (never below the widest gang of the workload, so the share kept "
        "can be more than 1/L); rho = accelerator-hours the workload asks for per hour of its "
        "arrival window ÷ accelerators left. <span class='tag'>modelled</span></p>",
        _table(
            ["seed", "load level", "capacity kept", "rho", "jobs", "accelerators"],
            scen,
            name="scenarios",
        ),
        "<h3>Notes</h3>",
        _li(
            [
                *sweep.notes,
                "Objective = cost + carbon price × tonnes CO₂, all modelled from the network's "
                "signals and prices; every figure per run is in the JSON.",
            ]
        ),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def write_sweep_report(sweep: SweepResult, path: str | Path) -> Path:
    """Write the sweep's page to ``path`` (UTF-8) and return it."""
    p = Path(path)
    p.write_text(render_sweep(sweep), encoding="utf-8")
    return p
