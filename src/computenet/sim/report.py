"""One self-contained HTML page per comparison: headline numbers, the policy table, charts
and a plain statement of what was measured, modelled and filled.

Charts are drawn with matplotlib (Agg backend) into inline SVG, so the page needs no
network, no CDN and no JavaScript library; it opens offline in any browser. A few lines of
inline script only mark, after layout, how many charts have a non-empty drawing (used by
the browser test).
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from computenet.sim.compare import BASELINE, Comparison
from computenet.sim.faults import format_time
from computenet.sim.metrics import PolicyMetrics, moved_placements
from computenet.sim.simulator import SimResult

PALETTE = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#3d405b", "#e07a5f"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titleweight": "bold",
            "axes.titlesize": 10,
        }
    )
    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype


def _fmt(x: float, digits: int = 0) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.{max(digits, 2)}f} M"
    return f"{x:,.{digits}f}"


def _pct(x: float, base: float) -> str:
    if base == 0:
        return "–"
    v = 100.0 * (x - base) / base
    return f"{v:+.1f}%"


def _kg(x: float) -> str:
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:.3f}"


# --------------------------------------------------------------------------- load series


def load_series(
    result: SimResult, site_id: str, start_s: int, end_s: int, bin_s: int
) -> np.ndarray:
    """Mean accelerators busy at ``site_id`` in each ``bin_s`` bin of ``[start_s, end_s)``."""
    segs = [s for s in result.segments if s.site_id == site_id]
    n = max(1, -(-(end_s - start_s) // bin_s))
    if not segs:
        return np.zeros(n)
    t = np.array([s.start_s for s in segs] + [s.end_s for s in segs], dtype=np.float64)
    d = np.array([s.count for s in segs] + [-s.count for s in segs], dtype=np.float64)
    order = np.lexsort((d, t))
    t, d = t[order], d[order]
    level = np.cumsum(d)
    integral = np.concatenate(([0.0], np.cumsum(level[:-1] * np.diff(t))))
    edges = start_s + bin_s * np.arange(n + 1, dtype=np.float64)
    k = np.searchsorted(t, edges, side="right") - 1
    at_edges = np.where(
        k >= 0,
        integral[np.maximum(k, 0)] + level[np.maximum(k, 0)] * (edges - t[np.maximum(k, 0)]),
        0.0,
    )
    return np.asarray(np.diff(at_edges) / bin_s)


def _focus(comp: Comparison) -> SimResult | None:
    by = {r.policy: r for r in comp.results}
    for name in ("greedy", "milp", "carbon-now", "wait-awhile", "cheapest-now"):
        if name in by:
            return by[name]
    others = [r for r in comp.results if r.policy != BASELINE]
    return others[0] if others else (comp.results[0] if comp.results else None)


# --------------------------------------------------------------------------- charts


def chart_load_vs_carbon(comp: Comparison) -> str:
    """Small multiples: accelerators busy per site over time (focus policy and baseline)
    against the site's carbon intensity."""
    plt = _plt()
    focus = _focus(comp)
    if focus is None:
        return ""
    base = next((r for r in comp.results if r.policy == BASELINE and r is not focus), None)
    start = comp.workload.start_s - comp.workload.start_s % 3600
    end = max(r.end_s for r in comp.results)
    span_h = max(1, (end - start) // 3600)
    bin_s = 3600 * max(1, math.ceil(span_h / 600))  # at most ~600 points per panel
    sites = list(comp.network.sites)
    ncols = 2 if len(sites) > 1 else 1
    nrows = math.ceil(len(sites) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(12, 2.1 * nrows + 0.6), squeeze=False, sharex=True
    )
    n = max(1, -(-(end - start) // bin_s))
    x = np.array([dt.datetime.fromtimestamp(start + i * bin_s, dt.UTC) for i in range(n)])
    for i, s in enumerate(sites):
        ax = axes[i // ncols][i % ncols]
        cap = max(1, s.accelerators_total)
        busy = load_series(focus, s.id, start, end, bin_s) / cap * 100
        ax.fill_between(
            x, busy, step="post", color=PALETTE[0], alpha=0.55, lw=0, label=f"{focus.policy} load"
        )
        if base is not None:
            b = load_series(base, s.id, start, end, bin_s) / cap * 100
            ax.step(x, b, where="post", color="#555", lw=0.7, alpha=0.8, label=f"{BASELINE} load")
        ax.set_ylim(0, 105)
        ax.set_ylabel("% busy")
        ax.set_title(f"{s.name}  ({cap:,} accelerators)", loc="left")
        ax2 = ax.twinx()
        ci = s.carbon.window(start, start + n * bin_s, bin_s)
        ax2.plot(x, ci, color=PALETTE[1], lw=0.9, label="carbon intensity")
        ax2.set_ylabel("gCO₂/kWh", color=PALETTE[1])
        ax2.tick_params(axis="y", colors=PALETTE[1])
        ax2.spines["right"].set_visible(True)
        if i == 0:
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=7, frameon=False, ncol=3)
    for j in range(len(sites), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _svg(fig)


def chart_cost_carbon(metrics: Sequence[PolicyMetrics]) -> str:
    plt = _plt()
    names = [m.policy for m in metrics]
    colors = ["#888" if n == BASELINE else PALETTE[i % len(PALETTE)] for i, n in enumerate(names)]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 0.45 * len(names) + 1.4))
    y = np.arange(len(names))
    cost = [m.cost_cny for m in metrics]
    carbon = [m.carbon_kg / 1000 for m in metrics]
    a1.barh(y, cost, color=colors)
    a1.set_yticks(y, names)
    a1.invert_yaxis()
    a1.set_title("Cost (CNY)", loc="left")
    a2.barh(y, carbon, color=colors)
    a2.set_yticks(y, names)
    a2.invert_yaxis()
    a2.set_title("Carbon (t CO₂)", loc="left")
    for ax, vals in ((a1, cost), (a2, carbon)):
        top = max(vals) if vals else 1
        for yi, v in zip(y, vals, strict=True):
            ax.text(v + top * 0.01, yi, _fmt(v, 1 if top < 100 else 0), va="center", fontsize=8)
        ax.set_xlim(0, top * 1.18 if top > 0 else 1)
    fig.tight_layout()
    return _svg(fig)


def chart_pareto(comp: Comparison) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    if comp.pareto:
        pts = sorted(comp.pareto, key=lambda p: p.carbon_price_cny_per_t)
        cx = [p.carbon_kg / 1000 for p in pts]
        cy = [p.cost_cny for p in pts]
        ax.plot(
            cx,
            cy,
            "-o",
            color=PALETTE[0],
            lw=1.5,
            ms=5,
            label=f"{comp.pareto_policy}, carbon price swept",
        )
        for p, xx, yy in zip(pts, cx, cy, strict=True):
            ax.annotate(
                f"{p.carbon_price_cny_per_t:g} CNY/t",
                (xx, yy),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=7,
            )
    for i, m in enumerate(comp.metrics):
        ax.scatter(
            [m.carbon_kg / 1000],
            [m.cost_cny],
            marker="s",
            s=40,
            color="#888" if m.policy == BASELINE else PALETTE[(i + 1) % len(PALETTE)],
            zorder=3,
            label=m.policy,
        )
    ax.set_xlabel("carbon (t CO₂)")
    ax.set_ylabel("cost (CNY)")
    ax.set_title("Cost–carbon trade-off", loc="left")
    ax.legend(fontsize=7, frameon=False, loc="best")
    fig.tight_layout()
    return _svg(fig)


def chart_moved(comp: Comparison) -> tuple[str, list[list[str]]]:
    plt = _plt()
    focus = _focus(comp)
    if focus is None:
        return "", []
    rows = [r for r in moved_placements(focus, top=10) if r.saved_kg > 0]
    if not rows:
        return "", []
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.2))
    labels = [f"{r.job_id}: {r.home_site} → {r.site_id}" for r in rows]
    vals = [r.saved_kg for r in rows]
    y = np.arange(len(rows))
    ax.barh(y, vals, color=[PALETTE[4] if v >= 0 else PALETTE[1] for v in vals])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"kg CO₂ saved against home site, start on arrival ({focus.policy})")
    ax.set_title("Placements that moved the most carbon", loc="left")
    fig.tight_layout()
    table = [
        [
            r.job_id,
            str(r.accelerators),
            r.home_site,
            r.site_id,
            f"{(r.start_s - r.arrival_s) / 3600:.1f}",
            f"{r.run_h:.1f}",
            _kg(r.home_now_carbon_kg),
            _kg(r.carbon_kg),
            _kg(r.saved_kg),
        ]
        for r in rows
    ]
    return _svg(fig), table


# --------------------------------------------------------------------------- page

CSS = """
body{font:15px/1.5 -apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;
  margin:0;color:#222;background:#f6f5f2}
main{max-width:1180px;margin:0 auto;padding:28px 32px 60px;background:#fff;
  box-shadow:0 0 24px #0001}
h1{font-size:28px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 8px;border-bottom:2px solid #eee;padding-bottom:4px}
.sub{color:#666;margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:14px;margin:18px 0}
.card{background:#f3f7fa;border-radius:10px;padding:14px 16px}
.card b{display:block;font-size:26px;color:#1b6ca8}
.card.bad b{color:#d1495b}.card span{color:#555;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th,td{padding:5px 8px;text-align:left;border-bottom:1px solid #eee}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#fafafa}
tr.base td{color:#666;font-style:italic}
figure{margin:14px 0}figure svg{width:100%;height:auto}
figure[data-chart=pareto] svg{max-width:720px}figure[data-chart=moved] svg{max-width:900px}
figcaption{color:#555;font-size:13px;margin-top:4px}
ul.notes li{margin:2px 0}
.tag{display:inline-block;background:#edae4933;border-radius:4px;padding:0 6px;font-size:12px}
.ok{color:#2a7a3b;font-weight:bold}.warn{color:#d1495b;font-weight:bold}
"""

SCRIPT = """
document.addEventListener('DOMContentLoaded',function(){
  var figs=document.querySelectorAll('figure.chart'),drawn=0;
  figs.forEach(function(f){var s=f.querySelector('svg');
    if(s){var b=s.getBoundingClientRect();
      var shapes=s.querySelectorAll('path,rect,polyline,line,use').length;
      if(b.width>50&&b.height>50&&shapes>5){drawn++;f.setAttribute('data-drawn','yes');}}});
  document.body.setAttribute('data-charts',figs.length);document.body.setAttribute('data-charts-drawn',drawn);
});
"""


_NUMERIC = re.compile(r"^[-+–]?[\d.,]+\s*(%|M|t|h|\(assumed\))?$|^[-–]$")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    """An HTML table; columns whose cells are all numbers are right-aligned."""
    ncol = len(head)
    numeric = [
        bool(rows) and all(_NUMERIC.match(r[c]) or not r[c] for r in rows) for c in range(ncol)
    ]
    h = "".join(
        f"<th{' class=n' if numeric[i] else ''}>{html.escape(x)}</th>" for i, x in enumerate(head)
    )
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(
            f"<td{' class=n' if numeric[c] else ''}>{html.escape(v)}</td>" for c, v in enumerate(r)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _li(items: Sequence[str]) -> str:
    return "<ul class='notes'>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>"


def _grid_section(comp: Comparison) -> list[str]:
    """Grid events (``sim.gridsim``), if the runs answered any: per policy and event, each
    hour's ask against what the simulation delivered (modelled), and what the answer did."""
    out: list[str] = []
    for res in comp.results:
        for g in res.grid:
            if not out:
                out.append("<h2>Grid events <span class='tag'>modelled</span></h2>")
            r = g.response
            out.append(f"<h3>{html.escape(g.event.id)} under {html.escape(res.policy)}</h3>")
            rows = [
                [
                    h.site_id,
                    dt.datetime.fromtimestamp(h.start_s, dt.UTC).strftime("%Y-%m-%d %H:%M"),
                    _fmt(h.baseline_kw, 1),
                    _fmt(h.asked_kw, 1),
                    _fmt(h.delivered_kw, 1),
                    f"{100 * h.ratio:.0f} %",
                ]
                for h in g.hours
            ]
            head = ["site", "hour UTC", "before kW", "asked kW", "delivered kW", "ratio"]
            out.append(_table(head, rows))
            actions: dict[str, int] = {}
            for a in r.affected:
                actions[str(a.action)] = actions.get(str(a.action), 0) + 1
            done = ", ".join(f"{n} {k}" for k, n in sorted(actions.items())) or "no job touched"
            out.append(
                _li(
                    [
                        f"answered in {g.answer_s:.2f} s over {g.work} jobs at the sites: {done}",
                        f"energy moved out of the window {r.energy_moved_kwh:,.0f} kWh; "
                        f"deadline misses the answer adds: {r.added_misses}",
                        *r.notes,
                    ]
                )
            )
    return out


def render(comp: Comparison) -> str:
    """The report page as one HTML string."""
    ms = list(comp.metrics)
    base = comp.metric(BASELINE)
    focus = _focus(comp)
    fm = comp.metric(focus.policy) if focus is not None else None
    cards = []
    if fm is not None and base is not None and fm is not base:
        cards += [
            (
                _pct(fm.carbon_kg, base.carbon_kg),
                f"carbon, {fm.policy} vs {BASELINE}",
                fm.carbon_kg > base.carbon_kg,
            ),
            (
                _pct(fm.cost_cny, base.cost_cny),
                f"cost, {fm.policy} vs {BASELINE}",
                fm.cost_cny > base.cost_cny,
            ),
        ]
    if fm is not None:
        cards += [
            (
                f"{fm.carbon_kg / 1000:,.1f} t"
                if fm.carbon_kg >= 1000
                else f"{fm.carbon_kg:,.1f} kg",
                f"CO₂ emitted under {fm.policy}",
                False,
            ),
            (f"{fm.deadline_misses}", f"deadline misses under {fm.policy}", fm.deadline_misses > 0),
        ]
    total_v = sum(m.violations for m in ms)
    cards.append((str(total_v), "data-rule and capacity violations, all policies", total_v > 0))
    cards.append(
        (f"{len(comp.workload.jobs):,}", f"jobs on {len(comp.network.sites)} sites", False)
    )
    card_html = "".join(
        f"<div class='card{' bad' if bad else ''}'><b>{html.escape(v)}</b>"
        f"<span>{html.escape(t)}</span></div>"
        for v, t, bad in cards
    )
    head = [
        "policy",
        "jobs",
        "cost CNY",
        "Δcost",
        "energy kWh",
        "carbon kg",
        "Δcarbon",
        "misses",
        "violations",
        "mean wait h",
        "p99 wait h",
        "p99 done h",
        "moved GB",
        "÷ bound",
        "wall s",
    ]
    rows, classes = [], []
    for m in ms:
        rows.append(
            [
                m.policy,
                f"{m.jobs:,}",
                _fmt(m.cost_cny),
                "" if base is None or m is base else _pct(m.cost_cny, base.cost_cny),
                _fmt(m.energy_kwh),
                _fmt(m.carbon_kg),
                "" if base is None or m is base else _pct(m.carbon_kg, base.carbon_kg),
                str(m.deadline_misses),
                str(m.violations),
                f"{m.mean_wait_h:.2f}",
                f"{m.p99_wait_h:.2f}",
                f"{m.p99_completion_h:.1f}",
                _fmt(m.data_moved_gb),
                "–" if m.ratio_to_bound is None else f"{m.ratio_to_bound:.3f}",
                f"{m.wall_s:.1f}",
            ]
        )
        classes.append("base" if m.policy == BASELINE else "")
    util_head = ["site", *[m.policy for m in ms]]
    util_rows = [
        [s.id, *[f"{100 * m.utilisation.get(s.id, 0):.1f}%" for m in ms]]
        for s in comp.network.sites
    ]
    load_svg = chart_load_vs_carbon(comp)
    cc_svg = chart_cost_carbon(ms)
    pareto_svg = chart_pareto(comp)
    moved_svg, moved_rows = chart_moved(comp)
    price = ms[0].carbon_price_cny_per_t if ms else 0.0
    modelled = [
        f"Network: {comp.network.name} — {comp.network.source or 'built in'}",
        *comp.network_notes,
        f"Carbon price in the objective: {price:g} CNY per tonne CO₂",
        "Energy = accelerators × (board power + host power) × hours × PUE, board power from "
        "idle to busy by kind of work as measured on an H100 (other types scaled by board "
        "power); "
        "charged with the "
        "true hourly price and carbon intensity of the site over the hours each job actually ran",
        f"Forecasts the engine planned with: {ms[0].forecast_mode if ms else 'perfect'}",
        f"Lower bound: {comp.bound_note}",
        *comp.notes,
    ]
    w0 = comp.workload.start_s
    w1 = max(comp.workload.end_s, w0 + 3600)
    sites_rows = [
        [
            s.id,
            s.name,
            str(s.accelerators_total) + (" (assumed)" if any(p.assumed for p in s.pools) else ""),
            f"{s.pue:g}",
            f"{s.price.mean(w0, w1):.3f}",
            f"{s.carbon.mean(w0, w1):.0f}",
            s.sources.get("carbon", "")[:70] if s.sources else "",
        ]
        for s in comp.network.sites
    ]
    fig = lambda name, svg, cap: (  # noqa: E731
        f"<figure class='chart' data-chart='{name}'>{svg}"
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        if svg
        else f"<p class='warn'>No data for the {html.escape(name)} chart.</p>"
    )
    viol_list = []
    for r in comp.results:
        for v in r.violations[:20]:
            when = format_time(v.time_s)
            viol_list.append(f"{r.policy}: {when} {v.job_id} [{v.kind}] {v.detail}")
    last = max((r.end_s for r in comp.results), default=comp.workload.end_s)
    # Arrivals span the workload; the run goes on until its last event (work finishing,
    # or a deadline passing for work that never ran).
    period = (
        f"arrivals {format_time(comp.workload.start_s)} to {format_time(comp.workload.end_s)} UTC, "
        f"simulated until {format_time(last)} UTC"
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>computenet — {html.escape(comp.title)}</title>",
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body><main>",
        f"<h1>{html.escape(comp.title)}</h1>",
        f"<p class='sub'>{html.escape(period)} · {len(comp.network.sites)} sites · "
        f"{len(ms)} policies · generated by computenet</p>",
        f"<div class='cards'>{card_html}</div>",
        "<h2>Policies compared</h2>",
        "<p>Every policy saw the same jobs, the same grid signals and the same outages. "
        "“Misses” counts jobs that finished after their deadline or never ran; violations are "
        "recomputed by the simulator from the data rules and capacities, "
        "independently of the engine, "
        "and must be zero.</p>",
        _table(head, rows, classes),
        fig(
            "cost-carbon",
            cc_svg,
            "Total cost and carbon of each policy (grey: the fifo-home baseline).",
        ),
        "<h2>Where and when the work ran</h2>",
        fig(
            "load-vs-carbon",
            load_svg,
            "Share of each site's accelerators busy over time (blue: "
            + (focus.policy if focus else "")
            + f"; grey line: {BASELINE}) against the site's hourly carbon intensity "
            "(red, right axis). "
            "Flexible work should pile up where and when the red line is low.",
        ),
        "<h3>Utilisation per site</h3>",
        _table(util_head, util_rows),
        "<h2>Cost–carbon trade-off</h2>",
        fig(
            "pareto",
            pareto_svg,
            "Each point on the line is a full re-run with a different carbon price "
            "in the objective; "
            "squares are the policies above.",
        ),
        "<h2>Placements that moved the most carbon</h2>",
        fig(
            "moved",
            moved_svg,
            "Against the counterfactual of running at the job's home site on arrival.",
        ),
        _table(
            [
                "job",
                "GPUs",
                "home",
                "ran at",
                "delay h",
                "run h",
                "home kg",
                "actual kg",
                "saved kg",
            ],
            moved_rows,
        )
        if moved_rows
        else "",
        *_grid_section(comp),
        "<h2>What was measured, modelled and filled</h2>",
        "<h3>Workload</h3>",
        _li([comp.workload.source or "workload given directly", *comp.workload.notes]),
        "<h3>Filled where the trace is silent <span class='tag'>assumption</span></h3>",
        _li(list(comp.workload.filled)),
        "<h3>Model <span class='tag'>modelled</span></h3>",
        _li(modelled),
        "<h3>Sites</h3>",
        _table(
            ["id", "name", "accelerators", "PUE", "mean CNY/kWh", "mean gCO₂/kWh", "carbon source"],
            sites_rows,
        ),
    ]
    if viol_list:
        parts += ["<h3 class='warn'>Violations</h3>", _li(viol_list)]
    else:
        parts.append("<p class='ok'>No rule or capacity violations in any policy.</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write_report(comp: Comparison, path: str | Path) -> Path:
    """Write the report to ``path`` (UTF-8) and return it."""
    p = Path(path)
    p.write_text(render(comp), encoding="utf-8")
    return p
