"""Inference demand from the real LLM traces, its replay against plans, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import computenet.cli.main  # noqa: F401  # registers the commands
from computenet.catalog import load_network
from computenet.cli.app import app
from computenet.engine.inference import InferenceRequest, ServiceSpec, plan_inference
from computenet.errors import InputError, UnknownNameError
from computenet.sim.inference import replay
from computenet.sim.inference_demand import read_llm_trace, spread_demand

TRACES = (
    Path(
        os.environ.get(
            "COMPUTENET_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
        )
    )
    / "gpu_traces"
)
needs_traces = pytest.mark.skipif(
    not (TRACES / "azure_llm_inference_2023_conv.csv").is_file(),
    reason=f"the shared LLM traces are not at {TRACES}",
)
T0 = 1_688_342_400  # 2023-07-03T00:00:00Z


@pytest.fixture(scope="module")
def conv():
    if not (TRACES / "azure_llm_inference_2023_conv.csv").is_file():
        pytest.skip(f"the shared LLM traces are not at {TRACES}")
    return read_llm_trace(TRACES, "azure-conv")


@pytest.fixture(scope="module")
def china():
    return load_network("china")


@needs_traces
@pytest.mark.parametrize("fmt", ["azure-conv", "azure-code", "mooncake"])
def test_every_trace_reads(fmt: str) -> None:
    tr = read_llm_trace(TRACES, fmt)
    assert len(tr.arrival_s) > 1000
    assert tr.prompt_p99 > tr.prompt_mean > 0 and tr.output_mean > 0
    shape = tr.minute_shape()
    assert shape.shape == (60,) and shape.mean() == pytest.approx(1.0, rel=0.05)
    if fmt == "azure-conv":  # busy every minute: none emptied by a trace that ends early
        assert shape.min() > 0


def test_unknown_trace_format_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="azure-conv"):
        read_llm_trace(tmp_path, "azure")


def test_bad_trace_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,12,x\n")
    with pytest.raises(InputError, match="line 2"):
        read_llm_trace(f, "azure-conv")


def test_demand_follows_population_and_local_time(conv, china) -> None:
    s = spread_demand(conv, china.regions, T0, 48, 400.0, forecast_error=0.0)
    assert sum(s.shares.values()) == pytest.approx(1.0)
    assert s.shares["users-shanghai"] > s.shares["users-hong-kong"]
    total = s.forecast.rps.sum(axis=0)
    assert total.max() == pytest.approx(400.0)
    # busiest at 21:00 Beijing time (13:00 UTC), quietest at 04:00 (20:00 UTC)
    assert int(np.argmax(total[:24])) == 13 and int(np.argmin(total[:24])) == 20
    # no forecast error: the minutes average to the forecast
    assert np.allclose(s.actual_rps.mean(axis=2), s.forecast.rps, rtol=0.05)
    again = spread_demand(conv, china.regions, T0, 48, 400.0, forecast_error=0.1, seed=3)
    same = spread_demand(conv, china.regions, T0, 48, 400.0, forecast_error=0.1, seed=3)
    assert np.array_equal(again.actual_rps, same.actual_rps)


def _spec(conv, **kw) -> ServiceSpec:
    return ServiceSpec(
        "chat",
        ttft_target_ms=1500.0,
        prompt_tokens_mean=conv.prompt_mean,
        prompt_tokens_p99=conv.prompt_p99,
        output_tokens_mean=conv.output_mean,
        **{"headroom": conv.headroom(0.8, 0.05), **kw},
    )


def test_replay_counts_requests_served_outside_their_jurisdiction(conv, china) -> None:
    s = spread_demand(conv, china.regions, T0, 2, 100.0)
    req = InferenceRequest(_spec(conv, data_class="personal"), s.forecast, method="heuristic")
    plan = plan_inference(china, req)
    ok = replay(plan, req, s.actual_rps, conv.prompt_quantiles())
    assert ok.violations == 0 and ok.slo_attainment > 0.99
    assert ok.requests == pytest.approx(s.actual_rps.sum() * 60)
    # forge a plan that sends Hong Kong's prompts to a mainland site
    p, sol = plan.problem, plan.solution
    hk = p.region_ids.index("users-hong-kong")
    mainland = next(j for j, sl in enumerate(p.slots) if sl.jurisdiction == "mainland")
    flow = sol.flow_rps.copy()
    flow[hk, :, :] = 0.0
    flow[hk, mainland, :] = 1.0
    replicas = sol.replicas.copy()
    replicas[mainland] += 5
    forged = dataclasses.replace(
        plan, solution=dataclasses.replace(sol, flow_rps=flow, replicas=replicas)
    )
    bad = replay(forged, req, s.actual_rps, conv.prompt_quantiles())
    assert bad.violations == pytest.approx(s.actual_rps[hk].sum() * 60)


def test_too_few_replicas_miss_the_target(conv, china) -> None:
    s = spread_demand(conv, china.regions, T0, 2, 100.0)
    req = InferenceRequest(_spec(conv, headroom=0.0), s.forecast, method="heuristic")
    plan = plan_inference(china, req)
    starved = dataclasses.replace(
        plan, solution=dataclasses.replace(plan.solution, replicas=plan.solution.replicas // 2)
    )
    full = replay(plan, req, s.actual_rps, conv.prompt_quantiles())
    half = replay(starved, req, s.actual_rps, conv.prompt_quantiles())
    assert half.slo_attainment < full.slo_attainment
    assert half.ttft_p99_ms > full.ttft_p99_ms


@needs_traces
def test_cli_simulate_inference_json(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    res = CliRunner().invoke(
        app,
        ["simulate-inference", "--trace", str(TRACES), "--days", "1", "--peak-rps", "100",
         "--json", "--html", str(page)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    text = page.read_text()
    assert text.count("<svg") == 3 and "cost-carbon" in text
    doc = json.loads(res.output)
    assert doc["new_policy"] == "cost-carbon"
    names = [p["policy"] for p in doc["policies"]]
    assert names == ["cost-carbon", "latency-only", "carbon-only", "casper"]
    for p in doc["policies"]:
        assert {"slo_attainment", "carbon_kg", "cost_cny", "violations"} <= set(p)
        assert p["violations"] == 0


@needs_traces
def test_cli_place_inference_json() -> None:
    res = CliRunner().invoke(
        app, ["place-inference", "--trace", str(TRACES), "--hours", "2", "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["placements"] and all(p["reasons"] for p in doc["placements"])
    hk = [p for p in doc["placements"] if "users-hong-kong" in p["regions"]]
    assert hk and all(p["site_id"] == "hong-kong" for p in hk)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--data-class", "secret"], "--data-class"),
        (["--days", "0"], "--days"),
        (["--policies", "fastest"], "--policies"),
    ],
)
def test_cli_bad_input_names_the_flag(args: list[str], field: str) -> None:
    res = CliRunner().invoke(app, ["simulate-inference", "--trace", str(TRACES), *args])
    assert res.exit_code != 0
    assert field in str(res.exception) or field in res.output
