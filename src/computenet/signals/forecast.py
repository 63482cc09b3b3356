"""Forecasts of a signal issued at a time: what a planner could have known then.

``forecast(signal, mode, issued_s)`` returns a ``Signal`` that equals the truth before
``issued_s`` (the past is known) and, from ``issued_s`` on:

* ``perfect`` — the truth itself (perfect foresight);
* ``persistence`` — the truth of the same time of day on the day before issue: the value
  at ``t`` is the true value at ``t - k x 24 h`` for the smallest ``k`` that lands before
  ``issued_s``, so it never looks past the issue time. The day before issue is kept on the
  series' own grid when the issue time is on it, else at a 15-minute resolution (exact for
  hourly, 15-minute and time-of-use signals issued on a quarter hour);
* ``noisy`` — the truth times ``1 + rel_error x z`` with ``z`` standard normal, one draw per
  hour after issue (floored at zero), seeded: the same seed gives the same forecast.

All are cheap to build (a simulator issues one per site per hour) and answer ``window`` with
numpy, not per-hour Python loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from computenet.errors import InputError, UnknownNameError
from computenet.model import DAY_S, HOUR_S, FloatArray, Signal
from computenet.signals.base import ConstantSignal, SeriesSignal, _steps

FORECAST_MODES = ("perfect", "persistence", "noisy")
PERSISTENCE_STEP_S = 900  # resolution at which the day before issue is kept
NOISE_CHUNK_H = 168  # noise is drawn a week at a time, each week from its own seed


@dataclass(frozen=True, eq=False)
class PersistenceForecast:
    """Truth before ``issued_s``; afterwards the day before issue, repeated."""

    truth: Signal
    issued_s: int
    day: SeriesSignal  # starts at issued_s, one day long, wraps
    unit: str = ""

    def at(self, t_s: int) -> float:
        return self.truth.at(t_s) if t_s < self.issued_s else self.day.at(t_s)

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        n = _steps(start_s, end_s, step_s)
        stop = start_s + n * step_s
        if n == 0:
            return np.zeros(0, dtype=np.float64)
        if stop <= self.issued_s:
            return self.truth.window(start_s, end_s, step_s)
        if start_s >= self.issued_s:
            return self.day.window(start_s, end_s, step_s)
        # Steps wholly before issue come from the truth, the rest from the repeated day;
        # the one step that straddles the issue time mixes both, weighted by time.
        k = (self.issued_s - start_s) // step_s
        head = self.truth.window(start_s, start_s + k * step_s, step_s) if k else np.zeros(0)
        mid_start = start_s + k * step_s
        parts = [head]
        if mid_start < self.issued_s:
            mid_end = mid_start + step_s
            before = self.truth.mean(mid_start, self.issued_s) * (self.issued_s - mid_start)
            after = self.day.mean(self.issued_s, mid_end) * (mid_end - self.issued_s)
            parts.append(np.array([(before + after) / step_s]))
            mid_start = mid_end
        if mid_start < stop:
            parts.append(self.day.window(mid_start, stop, step_s))
        return np.asarray(np.concatenate(parts), dtype=np.float64)

    def mean(self, start_s: int, end_s: int) -> float:
        if end_s <= start_s:
            return self.at(start_s)
        if end_s <= self.issued_s:
            return self.truth.mean(start_s, end_s)
        if start_s >= self.issued_s:
            return self.day.mean(start_s, end_s)
        before = self.truth.mean(start_s, self.issued_s) * (self.issued_s - start_s)
        after = self.day.mean(self.issued_s, end_s) * (end_s - self.issued_s)
        return (before + after) / (end_s - start_s)

    def describe(self) -> dict[str, object]:
        return {"kind": "forecast", "mode": "persistence", "issued_s": self.issued_s}


@dataclass(frozen=True, eq=False)
class NoisyForecast:
    """Truth before ``issued_s``; afterwards truth x seeded per-hour noise factors.

    Hour ``k`` after issue (``[issued_s + k h, issued_s + (k+1) h)``) is scaled by
    ``max(0, 1 + rel_error x z_k)``; ``z`` comes in weekly chunks, chunk ``c`` from the seed
    sequence ``(seed, c)``, so any horizon is deterministic and costs only what is asked.
    """

    truth: Signal
    issued_s: int
    rel_error: float
    seed: int
    unit: str = ""
    _chunks: dict[int, FloatArray] = field(default_factory=dict, init=False, repr=False)

    def _factors(self, k: np.ndarray) -> FloatArray:
        """Noise factor of each hour index ``k`` since issue (1 for hours before issue)."""
        out = np.ones(k.shape, dtype=np.float64)
        after = k >= 0
        if not after.any():
            return out
        kk = k[after]
        chunk, pos = np.divmod(kk, NOISE_CHUNK_H)
        vals = np.empty(kk.shape, dtype=np.float64)
        for c in np.unique(chunk):
            arr = self._chunks.get(int(c))
            if arr is None:
                seq = np.random.SeedSequence([self.seed % 2**64, int(c)])
                z = np.random.default_rng(seq).standard_normal(NOISE_CHUNK_H)
                arr = np.maximum(0.0, 1.0 + self.rel_error * z)
                self._chunks[int(c)] = arr
            sel = chunk == c
            vals[sel] = arr[pos[sel]]
        out[after] = vals
        return out

    def _hour_index(self, t: np.ndarray) -> np.ndarray:
        return np.asarray((t.astype(np.int64) - self.issued_s) // HOUR_S)

    def at(self, t_s: int) -> float:
        v = self.truth.at(t_s)
        if t_s < self.issued_s:
            return v
        return v * float(self._factors(self._hour_index(np.array([t_s])))[0])

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        n = _steps(start_s, end_s, step_s)
        if n == 0:
            return np.zeros(0, dtype=np.float64)
        stop = start_s + n * step_s
        if stop <= self.issued_s:
            return self.truth.window(start_s, end_s, step_s)
        # A fine grid on which every cell lies inside one hour after issue (or before it):
        # its step divides the step, the hour, and the offset of the start from the issue.
        fine = math.gcd(step_s, HOUR_S, (start_s - self.issued_s) % HOUR_S)
        cells = np.arange(n * (step_s // fine), dtype=np.int64) * fine + start_s
        base = self.truth.window(start_s, stop, fine)
        scaled = base * self._factors(self._hour_index(cells))
        return np.asarray(scaled.reshape(n, -1).mean(axis=1), dtype=np.float64)

    def mean(self, start_s: int, end_s: int) -> float:
        if end_s <= start_s:
            return self.at(start_s)
        if end_s <= self.issued_s:
            return self.truth.mean(start_s, end_s)
        # Whole forecast hours in the middle, partial hours at both ends.
        off = (start_s - self.issued_s) % HOUR_S
        h0 = start_s if off == 0 else start_s + HOUR_S - off
        h1 = end_s - (end_s - self.issued_s) % HOUR_S
        total = 0.0
        if h0 >= h1:  # within one hour, or across a single boundary
            for a, b in ((start_s, min(h0, end_s)), (max(h0, start_s), end_s)):
                if b > a:
                    f = self._factors(self._hour_index(np.array([a])))[0]
                    total += self.truth.mean(a, b) * (b - a) * f
            return total / (end_s - start_s)
        if h0 > start_s:
            f = self._factors(self._hour_index(np.array([start_s])))[0]
            total += self.truth.mean(start_s, h0) * (h0 - start_s) * f
        total += float(self.window(h0, h1, HOUR_S).sum()) * HOUR_S
        if end_s > h1:
            f = self._factors(self._hour_index(np.array([h1])))[0]
            total += self.truth.mean(h1, end_s) * (end_s - h1) * f
        return total / (end_s - start_s)

    def describe(self) -> dict[str, object]:
        return {
            "kind": "forecast",
            "mode": "noisy",
            "issued_s": self.issued_s,
            "rel_error": self.rel_error,
            "seed": self.seed,
        }


def forecast(
    signal: Signal, mode: str, issued_s: int, *, rel_error: float = 0.1, seed: int = 0
) -> Signal:
    """A forecast of ``signal`` issued at ``issued_s`` (UTC epoch s); see the module docstring.

    ``rel_error`` is the standard deviation of the relative error of ``noisy`` forecasts.
    Raises ``UnknownNameError`` for an unknown ``mode``.
    """
    if mode not in FORECAST_MODES:
        raise UnknownNameError("forecast mode", mode, FORECAST_MODES)
    unit = getattr(signal, "unit", "")
    if mode == "perfect":
        return signal
    if mode == "persistence":
        if isinstance(signal, ConstantSignal):
            return signal  # yesterday's value is today's
        step = PERSISTENCE_STEP_S
        if (
            isinstance(signal, SeriesSignal)
            and DAY_S % signal.step_s == 0
            and (issued_s - signal.start_s) % signal.step_s == 0
        ):
            step = signal.step_s  # on the series' own grid: a gather, exact
        day = signal.window(issued_s - DAY_S, issued_s, step)
        rep = SeriesSignal(issued_s, step, day, unit=unit, source="persistence")
        return cast(Signal, PersistenceForecast(signal, int(issued_s), rep, unit=unit))
    if not math.isfinite(rel_error) or rel_error < 0:
        raise InputError(
            f"relative forecast error {rel_error!r} must be a non-negative number",
            source="rel_error",
            fix="e.g. 0.1 for 10 %",
        )
    return cast(Signal, NoisyForecast(signal, int(issued_s), float(rel_error), int(seed), unit))
