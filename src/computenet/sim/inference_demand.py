"""Inference demand from real LLM request traces, spread over user regions.

Traces (``../shared/data/gpu_traces``, ``TRACE_FORMATS``):

* ``azure-conv`` / ``azure-code`` — Azure LLM inference traces 2023
  (``azure_llm_inference_2023_{conv,code}.csv``: ``TIMESTAMP,ContextTokens,GeneratedTokens``),
  one hour of requests each.
* ``mooncake`` — Moonshot's Kimi conversation trace (``mooncake_conversation_trace.jsonl``:
  ``timestamp`` in ms, ``input_length``, ``output_length``), also about one hour.

What a trace gives: the request mix (prompt and output tokens: mean, p99 and the quantiles
the simulator replays) and the minute-by-minute arrival shape within an hour. What it cannot
give (no public trace here covers a day): the shape over a day. The rule used to spread a
trace over the network's user regions and a horizon of hours, and where each part is from:

1. **Regions**: each region's share is its city's resident population (``POPULATION_M``:
   China's 7th national census, 2020, NBS city figures; Hong Kong: C&SD mid-2020 estimate).
   A region not in the table gets the mean share (and is listed in ``Spread.assumed``).
2. **Hour of day**: ``DIURNAL`` (assumption, labelled modelled): a typical diurnal shape of
   Chinese internet traffic, lowest about 04:00 and highest about 21:00 local time, read at
   each region's local hour (UTC+8 for mainland and Hong Kong regions; elsewhere the nearest
   whole hour to longitude / 15).
3. **Scale**: ``peak_rps`` requests/s over all regions at the busiest hour.
4. **Within the hour**: the trace's own per-minute arrival counts, normalised to mean 1,
   each region starting at a different minute (region index x 7) so regions do not peak
   together.
5. **Forecast error**: the actual rate of each region and day is the forecast times
   (1 + e), e ~ Normal(0, ``forecast_error``) drawn from ``seed``; the plan only sees the
   forecast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from computenet.engine.inference.service import Demand
from computenet.errors import TraceFileError, UnknownNameError
from computenet.model import FloatArray, Jurisdiction, UserRegion
from computenet.textfile import CsvFile, read_text

TRACE_FILES = {
    "azure-conv": "azure_llm_inference_2023_conv.csv",
    "azure-code": "azure_llm_inference_2023_code.csv",
    "mooncake": "mooncake_conversation_trace.jsonl",
}
TRACE_FORMATS = tuple(TRACE_FILES)

POPULATION_M: dict[str, float] = {
    "Beijing": 21.89,
    "Shanghai": 24.87,
    "Guangzhou": 18.68,
    "Shenzhen": 17.56,
    "Hangzhou": 11.94,
    "Wuhan": 12.33,
    "Chengdu": 20.94,
    "Xi'an": 12.95,
    "Hong Kong": 7.47,
}
"""Resident population (millions) by city: 7th national census 2020 (NBS, city bulletins);
Hong Kong: Census and Statistics Department, mid-2020."""

DIURNAL: tuple[float, ...] = (
    0.55, 0.40, 0.30, 0.24, 0.22, 0.25, 0.35, 0.52, 0.70, 0.85, 0.93, 0.95,
    0.88, 0.85, 0.90, 0.92, 0.90, 0.86, 0.85, 0.90, 0.97, 1.00, 0.92, 0.75,
)  # fmt: skip
"""Share of the daily peak by local hour 0..23 (assumption, modelled: see the module)."""

QUANTILES = 100


@dataclass(frozen=True)
class RequestTrace:
    name: str
    source: str
    arrival_s: FloatArray  # from the first request
    prompt_tokens: FloatArray
    output_tokens: FloatArray

    @property
    def prompt_mean(self) -> float:
        return float(self.prompt_tokens.mean())

    @property
    def prompt_p99(self) -> float:
        return float(np.percentile(self.prompt_tokens, 99))

    @property
    def output_mean(self) -> float:
        return float(self.output_tokens.mean())

    def prompt_quantiles(self, n: int = QUANTILES) -> FloatArray:
        """Prompt tokens at the midpoints of ``n`` equal-mass buckets."""
        return np.percentile(self.prompt_tokens, (np.arange(n) + 0.5) * 100.0 / n)

    def minute_shape(self) -> FloatArray:
        """Arrivals per minute over the trace's whole minutes (at most its first hour),
        normalised to mean 1 and repeated to fill 60 values."""
        whole = int(min(60, max(1, self.arrival_s[-1] // 60)))
        minute = (self.arrival_s // 60).astype(np.int64)
        counts = np.bincount(minute[minute < whole], minlength=whole).astype(np.float64)
        shape = counts / counts.mean()
        return shape[np.arange(60) % whole]

    def headroom(self, max_utilisation: float, forecast_error: float) -> float:
        """Capacity to keep above the forecast so the busiest minute of a day 2 standard
        deviations above its forecast still fits at full batch:
        ``max_utilisation x peak minute x (1 + 2 forecast_error) - 1`` (at least 0)."""
        peak = float(self.minute_shape().max())
        return max(0.0, max_utilisation * peak * (1.0 + 2.0 * forecast_error) - 1.0)


def _bad(path: Path, where: str, fix: str) -> TraceFileError:
    return TraceFileError("cannot read the trace", source=str(path), where=where, fix=fix)


def _azure(path: Path, name: str) -> RequestTrace:
    import datetime as dt

    table = CsvFile(path)
    want = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
    if [h.strip() for h in table.header[:3]] != want:
        raise _bad(path, "line 1", "the header must read TIMESTAMP,ContextTokens,GeneratedTokens")
    ts, prompt, out = [], [], []
    for line, row in table.rows():
        try:
            stamp = dt.datetime.fromisoformat(row[0].strip()[:26])
            ts.append(stamp.replace(tzinfo=dt.UTC).timestamp())
            prompt.append(float(row[1]))
            out.append(float(row[2]))
        except ValueError:
            raise _bad(path, f"line {line}", "a timestamp and two token counts") from None
    return _trace(path, name, ts, prompt, out, "Azure LLM inference trace 2023")


def _mooncake(path: Path, name: str) -> RequestTrace:
    ts, prompt, out = [], [], []
    for k, text in enumerate(read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            rec = json.loads(text)
            ts.append(float(rec["timestamp"]) / 1000.0)
            prompt.append(float(rec["input_length"]))
            out.append(float(rec["output_length"]))
        except (ValueError, KeyError, TypeError):
            raise _bad(path, f"line {k}", "timestamp (ms), input_length, output_length") from None
    return _trace(path, name, ts, prompt, out, "Mooncake conversation trace (Kimi)")


def _trace(
    path: Path, name: str, ts: list[float], prompt: list[float], out: list[float], what: str
) -> RequestTrace:
    if not ts:
        raise _bad(path, "rows", "the trace has no requests")
    t = np.array(ts)
    order = np.argsort(t, kind="stable")
    return RequestTrace(
        name,
        f"{what}: {path.name} ({len(ts)} requests)",
        t[order] - t[order][0],
        np.array(prompt)[order],
        np.array(out)[order],
    )


def read_llm_trace(path: str | Path, fmt: str) -> RequestTrace:
    """Read an LLM request trace in one of ``TRACE_FORMATS``."""
    if fmt not in TRACE_FILES:
        raise UnknownNameError("LLM trace format", fmt, TRACE_FORMATS)
    p = Path(path)
    if p.is_dir():
        p = p / TRACE_FILES[fmt]
    if not p.is_file():
        raise TraceFileError(
            "trace file not found", source=str(p), fix="pass the file or ../shared/data/gpu_traces"
        )
    return _mooncake(p, fmt) if fmt == "mooncake" else _azure(p, fmt)


def utc_offset_h(region: UserRegion) -> int:
    """Rule 2 of the module docstring."""
    if region.jurisdiction in (Jurisdiction.MAINLAND, Jurisdiction.HONG_KONG):
        return 8
    return round(region.longitude / 15.0)


@dataclass(frozen=True)
class Spread:
    """The forecast ``Demand`` and the actual per-minute rates (R x T x 60)."""

    forecast: Demand
    actual_rps: FloatArray
    shares: dict[str, float]
    assumed: tuple[str, ...]
    rule: str


def spread_demand(
    trace: RequestTrace,
    regions: tuple[UserRegion, ...],
    start_s: int,
    hours: int,
    peak_rps: float,
    *,
    forecast_error: float = 0.05,
    seed: int = 0,
) -> Spread:
    """Demand per region and hour from ``trace`` (rules 1-5 of the module docstring)."""
    if not regions:
        raise UnknownNameError("user region", "(none)", ["a network with [[regions]]"])
    known = [POPULATION_M[r.name] for r in regions if r.name in POPULATION_M]
    fill = float(np.mean(known)) if known else 1.0
    pop = np.array([POPULATION_M.get(r.name, fill) for r in regions])
    share = pop / pop.sum()
    utc_hour = (start_s // 3600 + np.arange(hours)) % 24
    diurnal = np.array([[DIURNAL[(h + utc_offset_h(r)) % 24] for h in utc_hour] for r in regions])
    forecast = peak_rps * share[:, None] * diurnal
    rng = np.random.default_rng(seed)
    days = math.ceil(hours / 24)
    error = 1.0 + forecast_error * rng.standard_normal((len(regions), days))
    hourly = forecast * np.maximum(0.0, np.repeat(error, 24, axis=1)[:, :hours])
    shape = trace.minute_shape()
    minute = (np.arange(60)[None, :] + 7 * np.arange(len(regions))[:, None]) % 60
    actual = hourly[:, :, None] * shape[minute][:, None, :]
    ids = tuple(r.id for r in regions)
    return Spread(
        forecast=Demand(ids, forecast, start_s, source=trace.source),
        actual_rps=actual,
        shares={r.id: float(s) for r, s in zip(regions, share, strict=True)},
        assumed=tuple(r.id for r in regions if r.name not in POPULATION_M),
        rule=(
            "regions by 2020 census city population; hour of day by a modelled diurnal "
            f"shape at local time; minutes by the {trace.name} trace; forecast error "
            f"{forecast_error:.0%} per region-day (seed {seed})"
        ),
    )
