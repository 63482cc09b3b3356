"""One self-contained HTML page per comparison: headline numbers (the objective and its cost
split, for the focus policy and the fifo-home baseline), the policy table, charts (one
colour per policy in all of them; one carbon axis for every site), the jobs that missed
their deadline and why, where core and personal data ran, and a plain statement of what was
measured, modelled and filled.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from computenet.model import Classification
from computenet.sim.compare import BASELINE, Comparison, cost_split
from computenet.sim.faults import format_time
from computenet.sim.metrics import PolicyMetrics, moved_placements
from computenet.sim.report_supply import supply_section
from computenet.sim.simulator import JobOutcome, SimResult

PALETTE = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#3d405b", "#e07a5f"]

# One colour per policy, the same in every chart of every report (and the sweep's page).
POLICY_COLOURS: dict[str, str] = {
    BASELINE: "#7f7f7f",
    "greedy": "#1b6ca8",
    "milp": "#d1495b",
    "cheapest-now": "#edae49",
    "carbon-now": "#00798c",
    "wait-awhile": "#8d6a9f",
}
# For policies not named above, in order of first appearance.
SPARE_COLOURS = ("#66a182", "#3d405b", "#e07a5f", "#b5838d", "#6d597a", "#2a9d8f", "#9c6644")
# Carbon intensity lines: a colour no policy has.
CARBON_COLOUR = "#222222"


def policy_colours(names: Sequence[str]) -> dict[str, str]:
    """The colour of each policy in ``names``: fixed for the built-in policies, then the
    spare colours in order (cycled only past their count)."""
    out = {n: POLICY_COLOURS[n] for n in names if n in POLICY_COLOURS}
    spare = [c for c in SPARE_COLOURS if c not in out.values()]
    k = 0
    for n in names:
        if n not in out:
            out[n] = spare[k % len(spare)]
            k += 1
    return out


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


def carbon_axis_top(comp: Comparison, start_s: int, end_s: int) -> float:
    """The top of the carbon axis every site's panel shares (gCO2/kWh): the highest hourly
    intensity of any site over ``[start_s, end_s)``, plus 5 %."""
    top = 0.0
    for s in comp.network.sites:
        ci = np.asarray(s.carbon.window(start_s, max(end_s, start_s + 3600), 3600))
        if ci.size:
            top = max(top, float(np.nanmax(ci)))
    return top * 1.05 if top > 0 else 1.0


def chart_load_vs_carbon(comp: Comparison) -> str:
    """Small multiples: accelerators busy per site over time (focus policy and baseline)
    against the site's carbon intensity, on one carbon axis for every site."""
    plt = _plt()
    focus = _focus(comp)
    if focus is None:
        return ""
    colours = policy_colours([r.policy for r in comp.results])
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
    ci_top = carbon_axis_top(comp, start, start + n * bin_s)
    for i, s in enumerate(sites):
        ax = axes[i // ncols][i % ncols]
        cap = max(1, s.accelerators_total)
        busy = load_series(focus, s.id, start, end, bin_s) / cap * 100
        ax.fill_between(
            x,
            busy,
            step="post",
            color=colours[focus.policy],
            alpha=0.55,
            lw=0,
            label=f"{focus.policy} load",
        )
        if base is not None:
            b = load_series(base, s.id, start, end, bin_s) / cap * 100
            ax.step(x, b, where="post", color=colours[BASELINE], lw=0.8, label=f"{BASELINE} load")
        ax.set_ylim(0, 105)
        ax.set_ylabel("% busy")
        ax.set_title(f"{s.name}  ({cap:,} accelerators)", loc="left")
        ax2 = ax.twinx()
        ax2.set_gid(f"carbon-axis-{i}")
        ci = s.carbon.window(start, start + n * bin_s, bin_s)
        ax2.plot(x, ci, color=CARBON_COLOUR, lw=0.8, ls="--", label="carbon intensity")
        ax2.set_ylim(0, ci_top)  # one scale for every site, so panels compare by eye
        ax2.set_ylabel("gCO₂/kWh")
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
    colours = policy_colours(names)
    colors = [colours[n] for n in names]
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
            digits = 3 if top < 1 else 1 if top < 100 else 0
            ax.text(v + top * 0.01, yi, _fmt(v, digits), va="center", fontsize=8)
        ax.set_xlim(0, top * 1.18 if top > 0 else 1)
    fig.tight_layout()
    return _svg(fig)


def chart_pareto(comp: Comparison) -> str:
    plt = _plt()
    colours = policy_colours(
        [m.policy for m in comp.metrics] + ([comp.pareto_policy] if comp.pareto_policy else [])
    )
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    if comp.pareto and comp.pareto_policy:
        pts = sorted(comp.pareto, key=lambda p: p.carbon_price_cny_per_t)
        cx = [p.carbon_kg / 1000 for p in pts]
        cy = [p.cost_cny for p in pts]
        ax.plot(
            cx,
            cy,
            "-o",
            color=colours[comp.pareto_policy],
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
    for m in comp.metrics:
        ax.scatter(
            [m.carbon_kg / 1000],
            [m.cost_cny],
            marker="s",
            s=40,
            color=colours[m.policy],
            edgecolors="#000000",
            linewidths=0.5,
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
    colour = policy_colours([r.policy for r in comp.results])[focus.policy]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.2))
    labels = [f"{r.job_id}: {r.home_site} → {r.site_id}" for r in rows]
    vals = [r.saved_kg for r in rows]
    y = np.arange(len(rows))
    ax.barh(y, vals, color=colour)
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


# --------------------------------------------------------------------------- missed deadlines


def why_missed(outcome: JobOutcome) -> str:
    """Why a job missed its deadline, in words, from what the run recorded today (the
    simulator's outcome: its state, waits, preemptions and the engine's last reason).

    The one place that says why; switch it to the engine's structured reason codes
    (``engine/explain.py``) when outcomes carry them."""
    if outcome.state == "rejected":
        return f"never ran: {outcome.reason}" if outcome.reason else "never ran"
    if outcome.state not in ("done",):
        return f"still {outcome.state} when the simulation ended"
    parts = []
    window_s = outcome.deadline_s - outcome.arrival_s
    if outcome.first_start_s is not None and outcome.finish_s is not None:
        run_s = outcome.finish_s - outcome.first_start_s
        if not outcome.preemptions and run_s > window_s:
            parts.append(
                f"its run of {run_s / 3600:.1f} h is longer than the {window_s / 3600:.1f} h "
                "from arrival to deadline"
            )
    if outcome.wait_s is not None and outcome.wait_s > 0:
        parts.append(f"waited {outcome.wait_s / 3600:.1f} h for its first start")
    if outcome.preemptions:
        parts.append(
            f"preempted {outcome.preemptions}x by site outages, "
            f"{outcome.lost_accelerator_h:.1f} accelerator-h lost"
        )
    if outcome.first_start_s is not None and outcome.first_start_s >= outcome.deadline_s:
        parts.append("started after its deadline")
    if outcome.reason:
        parts.append(f"last placement: {outcome.reason}")
    return "; ".join(parts) or "ran longer than its deadline allowed"


@dataclass(frozen=True)
class MissedJob:
    policy: str
    outcome: JobOutcome
    why: str

    @property
    def hours_late(self) -> float | None:
        o = self.outcome
        return None if o.finish_s is None else (o.finish_s - o.deadline_s) / 3600.0


def missed_jobs(comp: Comparison) -> list[MissedJob]:
    """Every job that finished after its deadline or never ran, per policy in the order of
    the comparison, latest first (never-ran jobs first of all)."""
    out = []
    for r in comp.results:
        misses = [o for o in r.outcomes if o.late or o.state == "rejected"]
        misses.sort(
            key=lambda o: (
                o.finish_s is not None,
                -(o.finish_s or 0) + o.deadline_s,
                o.job_id,
            )
        )
        out += [MissedJob(r.policy, o, why_missed(o)) for o in misses]
    return out


def missed_rows(comp: Comparison, per_policy: int = 50) -> tuple[list[list[str]], list[str]]:
    """Table rows of ``missed_jobs`` (at most ``per_policy`` a policy) and notes on what
    was left out."""
    rows, notes = [], []
    count: dict[str, int] = {}
    for mj in missed_jobs(comp):
        count[mj.policy] = count.get(mj.policy, 0) + 1
        if count[mj.policy] > per_policy:
            continue
        o = mj.outcome
        late = mj.hours_late
        rows.append(
            [
                mj.policy,
                o.job_id,
                str(o.accelerators),
                o.home_site,
                o.site_id or "–",
                format_time(o.deadline_s),
                "never ran" if o.finish_s is None else format_time(o.finish_s),
                "–" if late is None else f"{late:.1f}",
                mj.why,
            ]
        )
    for pol, n in count.items():
        if n > per_policy:
            notes.append(f"{pol}: {n - per_policy} more missed jobs not listed here")
    return rows, notes


# --------------------------------------------------------------------------- sensitive data

WATCHED_CLASSES = (Classification.CORE, Classification.PERSONAL)


def sensitive_placements(comp: Comparison) -> list[list[str]]:
    """Where jobs reading core or personal data ran, per policy and site: the site's
    jurisdiction, the jobs, how many of them at their data's home site, and the copies of
    such data made to that site."""
    ds = {d.id: d for d in comp.workload.datasets}
    job_class: dict[str, str] = {}
    for j in comp.workload.jobs:
        for cls in WATCHED_CLASSES:
            if any(d in ds and ds[d].classification == cls for d in j.datasets):
                job_class[j.id] = str(cls)
                break
    sites = {s.id: s for s in comp.network.sites}
    rows = []
    for r in comp.results:
        cells: dict[tuple[str, str], list[int]] = {}
        for o in r.outcomes:
            name = job_class.get(o.job_id)
            if name is None or o.site_id is None or o.first_start_s is None:
                continue
            c = cells.setdefault((name, o.site_id), [0, 0, 0])
            c[0] += 1
            c[1] += o.site_id == o.home_site
        for t in r.transfers:
            d = ds.get(t.dataset_id)
            if d is not None and d.classification in WATCHED_CLASSES:
                cells.setdefault((str(d.classification), t.to_site), [0, 0, 0])[2] += 1
        for (name, sid), (jobs, home, copies) in sorted(cells.items()):
            site = sites.get(sid)
            rows.append(
                [
                    name,
                    r.policy,
                    sid,
                    str(site.jurisdiction) if site else "?",
                    str(jobs),
                    str(home),
                    str(copies),
                ]
            )
    return rows


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
td{overflow-wrap:break-word}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#fafafa}
tr.base td{color:#666;font-style:italic}
figure{margin:14px 0}figure svg{width:100%;height:auto}
figure[data-chart=pareto] svg{max-width:720px}figure[data-chart=moved] svg{max-width:900px}
figcaption{color:#555;font-size:13px;margin-top:4px}
ul.notes li{margin:2px 0}
.tag{display:inline-block;background:#edae4933;border-radius:4px;padding:0 6px;font-size:12px}
.ok{color:#2a7a3b;font-weight:bold}.warn{color:#d1495b;font-weight:bold}
.key{display:flex;flex-wrap:wrap;gap:14px;font-size:13px;margin:6px 0}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;
  vertical-align:-1px}
p.explain{background:#f3f7fa;border-radius:8px;padding:8px 12px}
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


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    classes: Sequence[str] = (),
    name: str = "",
) -> str:
    """An HTML table; columns whose cells are all numbers are right-aligned. ``name``
    becomes its ``data-table`` attribute."""
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
    tag = f" data-table='{html.escape(name)}'" if name else ""
    return f"<table{tag}><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _li(items: Sequence[str]) -> str:
    return "<ul class='notes'>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>"


def _fig(name: str, svg: str, caption: str) -> str:
    if not svg:
        return f"<p class='warn'>No data for the {html.escape(name)} chart.</p>"
    return (
        f"<figure class='chart' data-chart='{html.escape(name)}'>{svg}"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _colour_key(names: Sequence[str]) -> str:
    """The policy colours, as a key shown once above the charts."""
    colours = policy_colours(names)
    items = "".join(
        f"<span data-policy='{html.escape(n)}' data-colour='{colours[n]}'>"
        f"<i class='swatch' style='background:{colours[n]}'></i>{html.escape(n)}</span>"
        for n in names
    )
    return f"<div class='key' data-key='policies'>{items}</div>"


def shorten_words(text: str, limit: int = 120) -> str:
    """``text`` whole if it fits in ``limit`` characters, else cut at the last space before
    the limit, with an ellipsis; a single word longer than the limit is kept whole."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    if cut <= 0:
        cut = text.find(" ", limit)
        return text if cut < 0 else text[:cut] + " …"
    return text[:cut] + " …"


def _money(x: float) -> str:
    return f"{x:,.0f} CNY" if abs(x) >= 100 else f"{x:,.2f} CNY"


def _delta(x: float) -> str:
    return ("+" if x >= 0 else "−") + _money(abs(x))


def explain_cost(comp: Comparison, fm: PolicyMetrics, base: PolicyMetrics) -> str:
    """One sentence: how the focus policy's objective differs from the baseline's, through
    its cost split and its carbon (so a cost rise next to a carbon cut is explained)."""
    fr, br = comp.result(fm.policy), comp.result(base.policy)
    if fr is None or br is None:
        return ""
    f, b = cost_split(fr), cost_split(br)
    price = fm.carbon_price_cny_per_t
    d_kg = fm.carbon_kg - base.carbon_kg
    carbon_cny = price * d_kg / 1000.0
    d_co2 = f"{abs(d_kg) / 1000:,.2f} t" if abs(d_kg) >= 1000 else f"{abs(d_kg):,.1f} kg"
    d_co2 = ("+" if d_kg >= 0 else "−") + d_co2
    return (
        f"{fm.policy} against {BASELINE}: cost {_delta(fm.cost_cny - base.cost_cny)} "
        f"(energy {_delta(f.energy_cny - b.energy_cny)}, compute "
        f"{_delta(f.compute_cny - b.compute_cny)}, transfer "
        f"{_delta(f.transfer_cny - b.transfer_cny)}); carbon {d_co2} CO₂, worth "
        f"{_delta(carbon_cny)} at "
        f"{price:,.0f} CNY/t; objective {_delta(fm.objective_cny - base.objective_cny)} "
        f"({_pct(fm.objective_cny, base.objective_cny)})."
    )


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


def _headline(comp: Comparison) -> str:
    """Cards (objective, cost, carbon, misses of the focus policy and of the baseline), the
    cost split of both and the sentence that ties them together."""
    ms = list(comp.metrics)
    base = comp.metric(BASELINE)
    focus = _focus(comp)
    fm = comp.metric(focus.policy) if focus is not None else None
    cards: list[tuple[str, str, bool, str]] = []
    if fm is not None and base is not None and fm is not base:
        for key, label, x, b in (
            ("objective", "objective", fm.objective_cny, base.objective_cny),
            ("carbon", "carbon", fm.carbon_kg, base.carbon_kg),
            ("cost", "cost", fm.cost_cny, base.cost_cny),
        ):
            cards.append((_pct(x, b), f"{label}, {fm.policy} vs {BASELINE}", x > b, key))
    if fm is not None:
        cards.append((_money(fm.objective_cny), f"objective under {fm.policy}", False, "obj"))
        co2 = f"{fm.carbon_kg / 1000:,.1f} t" if fm.carbon_kg >= 1000 else f"{fm.carbon_kg:,.1f} kg"
        cards.append((co2, f"CO₂ emitted under {fm.policy}", False, "co2"))
        cards.append(
            (
                str(fm.deadline_misses),
                f"deadline misses under {fm.policy}",
                fm.deadline_misses > 0,
                "misses",
            )
        )
    if base is not None and base is not fm:
        cards.append(
            (
                str(base.deadline_misses),
                f"deadline misses under {BASELINE} (the baseline)",
                base.deadline_misses > 0,
                "baseline-misses",
            )
        )
    total_v = sum(m.violations for m in ms)
    cards.append(
        (str(total_v), "data-rule and capacity violations, all policies", total_v > 0, "v")
    )
    cards.append(
        (f"{len(comp.workload.jobs):,}", f"jobs on {len(comp.network.sites)} sites", False, "jobs")
    )
    card_html = "".join(
        f"<div class='card{' bad' if bad else ''}' data-card='{key}'><b>{html.escape(v)}</b>"
        f"<span>{html.escape(t)}</span></div>"
        for v, t, bad, key in cards
    )
    shown = [m for m in (base, fm) if m is not None]
    if len(shown) == 2 and shown[0] is shown[1]:
        shown = shown[:1]  # the focus is the baseline
    split_rows = []
    for m in shown:
        r = comp.result(m.policy)
        sp = cost_split(r) if r is not None else None
        split_rows.append(
            [
                m.policy,
                _fmt(m.objective_cny),
                _fmt(m.cost_cny),
                "–" if sp is None else _fmt(sp.energy_cny),
                "–" if sp is None else _fmt(sp.compute_cny),
                "–" if sp is None else _fmt(sp.transfer_cny),
                _fmt(m.carbon_price_cny_per_t * m.carbon_kg / 1000.0),
                _kg(m.carbon_kg),
                str(m.deadline_misses),
            ]
        )
    why = (
        explain_cost(comp, fm, base)
        if fm is not None and base is not None and fm is not base
        else ""
    )
    return (
        "<section data-section='headline'>"
        f"<div class='cards'>{card_html}</div>"
        + _table(
            [
                "policy",
                "objective CNY",
                "cost CNY",
                "energy CNY",
                "compute CNY",
                "transfer CNY",
                "carbon price × t CNY",
                "carbon kg",
                "deadline misses",
            ],
            split_rows,
            ["base" if r[0] == BASELINE else "" for r in split_rows],
            name="headline-split",
        )
        + (f"<p class='explain' data-explain='cost'>{html.escape(why)}</p>" if why else "")
        + "<p class='sub'>Objective = cost + carbon price × tonnes CO₂; cost = energy "
        "(electricity at the site's hourly price) + compute (accelerator rental) + transfer "
        "(data moved between sites). All modelled from the signals and the network's prices."
        "</p></section>"
    )


def _policy_rows(comp: Comparison) -> tuple[list[list[str]], list[str]]:
    base = comp.metric(BASELINE)
    rows, classes = [], []
    for m in comp.metrics:
        rows.append(
            [
                m.policy,
                f"{m.jobs:,}",
                _fmt(m.objective_cny),
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
    return rows, classes


POLICY_HEAD = [
    "policy",
    "jobs",
    "objective CNY",
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


def _split_table(comp: Comparison) -> str:
    rows = []
    for r in comp.results:
        sp = cost_split(r)
        rows.append(
            [
                r.policy,
                _fmt(sp.energy_cny),
                _fmt(sp.compute_cny),
                _fmt(sp.transfer_cny),
                _fmt(sp.total_cny),
            ]
        )
    return _table(
        ["policy", "energy CNY", "compute CNY", "transfer CNY", "cost CNY"],
        rows,
        ["base" if r[0] == BASELINE else "" for r in rows],
        name="cost-split",
    )


def _modelled(comp: Comparison) -> list[str]:
    ms = comp.metrics
    price = ms[0].carbon_price_cny_per_t if ms else 0.0
    return [
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


def _sites_table(comp: Comparison) -> str:
    w0 = comp.workload.start_s
    w1 = max(comp.workload.end_s, w0 + 3600)
    rows = [
        [
            s.id,
            s.name,
            str(s.accelerators_total) + (" (assumed)" if any(p.assumed for p in s.pools) else ""),
            f"{s.pue:g}",
            f"{s.price.mean(w0, w1):.3f}",
            f"{s.carbon.mean(w0, w1):.0f}",
            shorten_words(s.sources.get("carbon", "")) if s.sources else "",
            shorten_words(s.sources.get("price", "")) if s.sources else "",
        ]
        for s in comp.network.sites
    ]
    return _table(
        [
            "id",
            "name",
            "accelerators",
            "PUE",
            "mean CNY/kWh",
            "mean gCO₂/kWh",
            "carbon source",
            "price source",
        ],
        rows,
        name="sites",
    )


def _missed_section(comp: Comparison) -> list[str]:
    rows, notes = missed_rows(comp)
    out = [
        "<h2>Jobs that missed their deadline</h2>",
        "<p>Every job that finished after its deadline or never ran, per policy, and why "
        "(from the run's record: waits, preemptions, the engine's last reason).</p>",
    ]
    if not rows:
        return [*out, "<p class='ok' data-table='missed'>No job missed its deadline.</p>"]
    head = ["policy", "job", "GPUs", "home", "ran at", "deadline UTC", "finished UTC"]
    return [
        *out,
        _table([*head, "hours late", "why"], rows, name="missed"),
        _li(notes) if notes else "",
    ]


def _sensitive_section(comp: Comparison) -> list[str]:
    rows = sensitive_placements(comp)
    out = [
        "<h2>Where core and personal data ran</h2>",
        "<p>Jobs reading core data (which must stay at its home site) or personal information "
        "(which must stay in the mainland unless cleared for export), per policy and the site "
        "they ran at; copies are the datasets of these classes moved to that site.</p>",
    ]
    if not rows:
        return [
            *out,
            "<p data-table='sensitive-data'>No job read core or personal data in this run.</p>",
        ]
    head = ["data class", "policy", "site", "jurisdiction", "jobs", "at data's home", "copies"]
    return [*out, _table(head, rows, name="sensitive-data")]


def render(comp: Comparison) -> str:
    """The report page as one HTML string."""
    ms = list(comp.metrics)
    focus = _focus(comp)
    util_head = ["site", *[m.policy for m in ms]]
    util_rows = [
        [s.id, *[f"{100 * m.utilisation.get(s.id, 0):.1f}%" for m in ms]]
        for s in comp.network.sites
    ]
    moved_svg, moved_rows = chart_moved(comp)
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
    names = [m.policy for m in ms]
    rows, classes = _policy_rows(comp)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>computenet — {html.escape(comp.title)}</title>",
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body><main>",
        f"<h1>{html.escape(comp.title)}</h1>",
        f"<p class='sub'>{html.escape(period)} · {len(comp.network.sites)} sites · "
        f"{len(ms)} policies · generated by computenet</p>",
        _headline(comp),
        "<h2>Policies compared</h2>",
        "<p>Every policy saw the same jobs, the same grid signals and the same outages. "
        "“Misses” counts jobs that finished after their deadline or never ran; violations are "
        "recomputed by the simulator from the data rules and capacities, "
        "independently of the engine, "
        "and must be zero.</p>",
        _table(POLICY_HEAD, rows, classes, name="policies"),
        "<h3>Cost split</h3>",
        _split_table(comp),
        _colour_key(names),
        _fig(
            "cost-carbon",
            chart_cost_carbon(ms),
            "Total cost and carbon of each policy, in each policy's colour (the key above).",
        ),
        "<h2>Where and when the work ran</h2>",
        _fig(
            "load-vs-carbon",
            chart_load_vs_carbon(comp),
            "Share of each site's accelerators busy over time (filled: "
            + (focus.policy if focus else "")
            + f"; line: {BASELINE}) against the site's hourly carbon intensity "
            "(dashed, right axis, the same scale for every site). "
            "Flexible work should pile up where and when the dashed line is low.",
        ),
        "<h3>Utilisation per site</h3>",
        _table(util_head, util_rows, name="utilisation"),
        "<h2>Cost–carbon trade-off</h2>",
        _fig(
            "pareto",
            chart_pareto(comp),
            "Each point on the line is a full re-run with a different carbon price "
            "in the objective; "
            "squares are the policies above.",
        ),
        "<h2>Placements that moved the most carbon</h2>",
        _fig(
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
            name="moved",
        )
        if moved_rows
        else "",
        *_missed_section(comp),
        *_sensitive_section(comp),
        *_grid_section(comp),
        "<h2>What was measured, modelled and filled</h2>",
        "<h3>Workload</h3>",
        _li([comp.workload.source or "workload given directly", *comp.workload.notes]),
        "<h3>Filled where the trace is silent <span class='tag'>assumption</span></h3>",
        _li(list(comp.workload.filled)),
        "<h3>Model <span class='tag'>modelled</span></h3>",
        _li(_modelled(comp)),
        "<h3>Sites</h3>",
        _sites_table(comp),
        *supply_section(
            comp.network, comp.workload.start_s, comp.workload.end_s
        ),  # report_supply.py: grid vs green supply
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
