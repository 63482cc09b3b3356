"""One self-contained HTML page for an inference comparison (``simulate-inference --html``):
the policy table, replicas and carbon by hour, replica-hours by site, and what was modelled.
Charts are inline SVG drawn with matplotlib (no network, no script), as ``sim.report``."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Any

from computenet.sim.inference import PolicyResult
from computenet.sim.report import policy_colours


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def chart_by_hour(results: Sequence[PolicyResult], key: str, label: str) -> str:
    plt = _plt()
    colours = policy_colours([r.policy for r in results])
    fig, ax = plt.subplots(figsize=(8, 2.6))
    for r in results:
        ax.plot(r.by_hour[key], label=r.policy, color=colours[r.policy], linewidth=1.2)
    ax.set_xlabel("hour of the run")
    ax.set_ylabel(label)
    ax.legend(fontsize=8, frameon=False, ncols=4)
    return _svg(fig)


def chart_by_site(results: Sequence[PolicyResult]) -> str:
    plt = _plt()
    colours = policy_colours([r.policy for r in results])
    sites = sorted({k for r in results for k in r.by_site})
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(sites) + 1.2))
    height = 0.8 / max(1, len(results))
    for k, r in enumerate(results):
        values = [r.by_site.get(s, {}).get("replica_hours", 0.0) for s in sites]
        ax.barh(
            [i + k * height for i in range(len(sites))],
            values,
            height=height,
            label=r.policy,
            color=colours[r.policy],
        )
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(sites))], sites)
    ax.set_xlabel("replica-hours")
    ax.invert_yaxis()
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig)


def render(results: Sequence[PolicyResult], doc: dict[str, Any]) -> str:
    """The page (a string of HTML); every user-visible text is escaped."""
    e = html.escape
    head = ["policy", "SLO", "p50 ms", "p99 ms", "replica-h", "kWh", "kg CO2", "CNY", "violations"]
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(v))}</td>"
            for v in (
                r.policy,
                f"{r.slo_attainment:.2%}",
                f"{r.ttft_p50_ms:.0f}",
                f"{r.ttft_p99_ms:.0f}",
                f"{r.replica_hours:,}",
                f"{r.energy_kwh:,.0f}",
                f"{r.carbon_kg:,.0f}",
                f"{r.cost_cny:,.0f}",
                f"{r.violations:.0f}",
            )
        )
        + "</tr>"
        for r in results
    )
    service = doc.get("service", {})
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>computenet inference</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "td,th{padding:.2em .6em;text-align:right}</style></head><body>"
        "<h1>Inference placement: policies on the same demand</h1>"
        f"<p>New policy: <b>{e(str(doc.get('new_policy', '')))}</b>. Target "
        f"{e(str(service.get('ttft_target_ms', '')))} ms p99 time to first token; data class "
        f"{e(str(service.get('data_class', '')))}; headroom "
        f"{float(service.get('headroom', 0.0)):.0%}.</p>"
        f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{rows}</table>"
        f"<h2>Replicas by hour</h2>{chart_by_hour(results, 'replicas', 'replicas')}"
        f"<h2>Carbon by hour</h2>{chart_by_hour(results, 'carbon_kg', 'kg CO2')}"
        f"<h2>Replica-hours by site</h2>{chart_by_site(results)}"
        "<h2>What is measured and what is modelled</h2><ul>"
        f"<li>Demand: {e(str(doc.get('demand', {}).get('rule', '')))}.</li>"
        "<li>Time to first token, power and energy are modelled from the H100 measurement "
        "(shared/data/measured); other accelerator types are scaled from it by their "
        "specifications.</li>"
        "<li>Prices and carbon are the network's signals for those hours.</li></ul>"
        "</body></html>"
    )
