"""``computenet place-inference`` and ``computenet simulate-inference``: an inference
service's replicas placed hour by hour (engine ``engine.inference``) on demand spread from a
real LLM trace (``sim.inference_demand``), and the demand replayed against every policy
(``sim.inference``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from computenet.cli.app import app
from computenet.cli.checks import literal
from computenet.cli.simulate import parse_start
from computenet.errors import InputError

DEFAULT_TRACES = "../shared/data/gpu_traces"
DEFAULT_START = "2023-07-03"  # a summer Monday, as ``computenet demo``


@dataclass(frozen=True)
class Setup:
    net: Any
    spec: Any
    spread: Any
    trace: Any


def _setup(
    network: str,
    trace_dir: str,
    trace_format: str,
    start: str,
    days: float,
    peak_rps: float,
    ttft_ms: float,
    data_class: str,
    headroom: float | None,
    forecast_error: float,
    seed: int,
    profile: str,
    min_replicas: int,
) -> Setup:
    from computenet.catalog import load_network
    from computenet.engine.inference import ServiceSpec
    from computenet.model import Classification
    from computenet.sim.inference_demand import read_llm_trace, spread_demand

    if not (0 < days <= 31):
        raise InputError(f"--days {days:g} is out of range", source="--days", fix="1 to 31")
    if not (peak_rps > 0):
        raise InputError(f"--peak-rps {peak_rps:g} is not positive", source="--peak-rps")
    if not (0 <= forecast_error < 1):
        raise InputError("--forecast-error is a share in [0, 1)", source="--forecast-error")
    valid = [c.value for c in Classification]
    if data_class not in valid:
        raise InputError(
            f"data class {data_class!r} is unknown", source="--data-class", fix=" | ".join(valid)
        )
    net = load_network(network)
    if not net.regions:
        raise InputError(
            f"network {network!r} has no user regions",
            source="--network",
            fix="add [[regions]] to the network file",
        )
    trace = read_llm_trace(trace_dir, trace_format)
    max_util = 0.8
    room = trace.headroom(max_util, forecast_error) if headroom is None else headroom
    spec = ServiceSpec(
        id=f"llm-{trace_format}",
        ttft_target_ms=ttft_ms,
        prompt_tokens_mean=trace.prompt_mean,
        prompt_tokens_p99=trace.prompt_p99,
        output_tokens_mean=trace.output_mean,
        data_class=Classification(data_class),
        min_replicas=min_replicas,
        max_utilisation=max_util,
        headroom=room,
        profile=profile,
    )
    start_s = parse_start(start)
    start_s -= start_s % 3600
    spread = spread_demand(
        trace,
        net.regions,
        start_s,
        round(days * 24),
        peak_rps,
        forecast_error=forecast_error,
        seed=seed,
    )
    return Setup(net, spec, spread, trace)


NETWORK = typer.Option("china", "--network", help="built-in name or network file")
TRACE = typer.Option(DEFAULT_TRACES, "--trace", help="trace file or the gpu_traces folder")
FORMAT = typer.Option("azure-conv", "--trace-format", help="azure-conv | azure-code | mooncake")
START = typer.Option(DEFAULT_START, "--start", help="first hour (UTC)")
PEAK = typer.Option(400.0, "--peak-rps", help="requests/s over all regions at the busiest hour")
TTFT = typer.Option(1500.0, "--ttft-ms", help="p99 time-to-first-token target (ms)")
CLASS = typer.Option("personal", "--data-class", help="data class of the prompts")
HEADROOM = typer.Option(None, "--headroom", help="capacity share over forecast (default: derived)")
ERROR = typer.Option(0.05, "--forecast-error", help="daily forecast error (standard deviation)")
PROFILE = typer.Option("memory-bound", "--profile", help="memory-bound | hf-eager")
PRICE = typer.Option(None, "--carbon-price", help="CNY per tonne CO2 (default: the model's)")


@app.command("simulate-inference")
def simulate_inference(
    network: str = NETWORK,
    trace: str = TRACE,
    trace_format: str = FORMAT,
    start: str = START,
    days: float = typer.Option(7.0, "--days"),
    peak_rps: float = PEAK,
    ttft_ms: float = TTFT,
    data_class: str = CLASS,
    headroom: float | None = HEADROOM,
    forecast_error: float = ERROR,
    seed: int = typer.Option(0, "--seed"),
    profile: str = PROFILE,
    min_replicas: int = typer.Option(1, "--min-replicas"),
    carbon_price: float | None = PRICE,
    policies: str = typer.Option(
        "cost-carbon,latency-only,carbon-only,casper", "--policies", help="comma-separated"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    html_out: str | None = typer.Option(None, "--html", help="write an HTML report there"),
) -> None:
    """Replay a week of LLM demand against the inference placement policies."""
    from computenet.engine.inference import NEW_POLICY, POLICIES
    from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T
    from computenet.sim.inference import compare_policies

    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    for name in names:
        if name not in POLICIES:
            raise InputError(
                f"policy {name!r} is unknown", source="--policies", fix=" | ".join(POLICIES)
            )
    s = _setup(
        network, trace, trace_format, start, days, peak_rps, ttft_ms, data_class,
        headroom, forecast_error, seed, profile, min_replicas,
    )  # fmt: skip
    price = DEFAULT_CARBON_PRICE_CNY_PER_T if carbon_price is None else carbon_price
    results = compare_policies(
        s.net, s.spec, s.spread, s.trace.prompt_quantiles(), names, carbon_price_cny_per_t=price
    )
    doc = {
        "new_policy": NEW_POLICY,
        "service": {
            "ttft_target_ms": s.spec.ttft_target_ms,
            "data_class": str(s.spec.data_class),
            "headroom": s.spec.headroom,
            "profile": s.spec.profile,
            "prompt_tokens_mean": s.spec.prompt_tokens_mean,
            "prompt_tokens_p99": s.spec.prompt_tokens_p99,
            "output_tokens_mean": s.spec.output_tokens_mean,
        },
        "demand": {"rule": s.spread.rule, "source": s.spread.forecast.source,
                   "shares": s.spread.shares},
        "carbon_price_cny_per_t": price,
        "modelled": "TTFT, power and energy are modelled from the measured H100 profile",
        "policies": [r.to_json() for r in results],
    }  # fmt: skip
    if html_out:
        from pathlib import Path

        from computenet.sim.inference_report import render

        try:
            Path(html_out).write_text(render(results, doc), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write the report: {exc.strerror}", source="--html") from None
    if as_json:
        typer.echo(json.dumps(doc, indent=1))
        return
    _print_results(results, s)


def _print_results(results: list[Any], s: Setup) -> None:
    con = Console()
    con.print(literal(f"demand: {s.spread.rule}"))
    con.print(
        literal(
            f"target {s.spec.ttft_target_ms:g} ms p99 TTFT, headroom {s.spec.headroom:.0%}, "
            f"profile {s.spec.profile} (modelled from the measured H100)"
        )
    )
    t = Table(title="policies (modelled)")
    for col in ("policy", "SLO", "p50 ms", "p99 ms", "replica-h", "kWh", "kg CO2", "CNY", "viol."):
        t.add_column(col, justify="right" if col != "policy" else "left")
    for r in results:
        t.add_row(
            literal(r.policy),
            f"{r.slo_attainment:.2%}",
            f"{r.ttft_p50_ms:.0f}",
            f"{r.ttft_p99_ms:.0f}",
            f"{r.replica_hours:,}",
            f"{r.energy_kwh:,.0f}",
            f"{r.carbon_kg:,.0f}",
            f"{r.cost_cny:,.0f}",
            f"{r.violations:.0f}",
        )
    con.print(t)
    sites = Table(title="by site (replica-hours)")
    sites.add_column("site/type")
    for r in results:
        sites.add_column(literal(r.policy), justify="right")
    keys = sorted({k for r in results for k in r.by_site})
    for k in keys:
        row = [f"{r.by_site[k]['replica_hours']:,.0f}" if k in r.by_site else "" for r in results]
        sites.add_row(literal(k), *row)
    con.print(sites)


@app.command("place-inference")
def place_inference(
    network: str = NETWORK,
    trace: str = TRACE,
    trace_format: str = FORMAT,
    start: str = START,
    hours: int = typer.Option(24, "--hours"),
    peak_rps: float = PEAK,
    ttft_ms: float = TTFT,
    data_class: str = CLASS,
    headroom: float | None = HEADROOM,
    profile: str = PROFILE,
    min_replicas: int = typer.Option(1, "--min-replicas"),
    policy: str = typer.Option("cost-carbon", "--policy"),
    method: str = typer.Option("auto", "--method", help="auto | milp | heuristic"),
    carbon_price: float | None = PRICE,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Place an inference service's replicas hour by hour, with the reasons."""
    from computenet.engine.inference import InferenceRequest, plan_inference
    from computenet.engine.inference.plan import plan_to_json
    from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T

    if not (1 <= hours <= 24 * 31):
        raise InputError(f"--hours {hours} is out of range", source="--hours", fix="1 to 744")
    s = _setup(
        network, trace, trace_format, start, hours / 24, peak_rps, ttft_ms, data_class,
        headroom, 0.0, 0, profile, min_replicas,
    )  # fmt: skip
    price = DEFAULT_CARBON_PRICE_CNY_PER_T if carbon_price is None else carbon_price
    req = InferenceRequest(
        s.spec, s.spread.forecast, policy=policy, carbon_price_cny_per_t=price, method=method
    )
    plan = plan_inference(s.net, req)
    doc = plan_to_json(plan)
    if as_json:
        typer.echo(json.dumps(doc, indent=1))
        return
    con = Console()
    con.print(
        literal(
            f"{plan.policy} ({plan.solution.method}): objective {plan.solution.objective:,.2f}, "
            f"gap {plan.solution.gap:.2%} to the {plan.solution.bound_kind}; "
            f"headroom {plan.headroom:.0%}; {plan.replica_hours:,} replica-hours"
        )
    )
    t = Table(title="replicas by site (per hour)")
    t.add_column("site/type")
    t.add_column("replicas by hour")
    t.add_column("regions")
    t.add_column("why")
    for pl in plan.placements:
        t.add_row(
            literal(f"{pl.site_id}/{pl.accelerator}"),
            literal(" ".join(str(n) for n in pl.replicas_by_hour)),
            literal(", ".join(pl.regions)),
            literal(pl.reasons[0].message),
        )
    con.print(t)
    for rid, reasons in plan.region_reasons.items():
        for r in reasons:
            con.print(literal(f"{rid}: [{r.role}] {r.message}"))
