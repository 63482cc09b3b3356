"""Concrete signals: a constant, and a regular-step series (hourly, 15-minute, ...).

Every signal answers ``at``, ``window`` and ``mean`` in UTC epoch seconds, so the engine
never cares whether a value came from a tariff, a file or a forecast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from computenet.model import HOUR_S, FloatArray


def _steps(start_s: int, end_s: int, step_s: int) -> int:
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    return max(0, -(-(end_s - start_s) // step_s))


@dataclass(frozen=True)
class ConstantSignal:
    """The same value at every time."""

    value: float
    unit: str = ""

    def at(self, t_s: int) -> float:
        return self.value

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        return np.full(_steps(start_s, end_s, step_s), self.value, dtype=np.float64)

    def mean(self, start_s: int, end_s: int) -> float:
        return self.value

    def describe(self) -> dict[str, object]:
        """A JSON-ready description (kind, value, unit)."""
        return {"kind": "constant", "value": self.value, "unit": self.unit}


@dataclass(frozen=True, eq=False)
class SeriesSignal:
    """Values on a regular grid: ``values[k]`` holds over ``[start_s + k*step_s, ... + step_s)``.

    Outside the covered span the series repeats with its own length as the period
    (``wrap=True``, the default): a year of hourly data then serves as a typical year for any
    date, which is what a replay shifted onto the data's year needs near its ends. With
    ``wrap=False`` a time outside the span raises ``ValueError``.
    """

    start_s: int
    step_s: int
    values: FloatArray
    unit: str = ""
    source: str = ""
    wrap: bool = True
    _cumulative: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        values = np.ascontiguousarray(self.values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError("a series needs a non-empty 1-D array of values")
        if self.step_s <= 0:
            raise ValueError(f"step_s must be positive, got {self.step_s}")
        values.setflags(write=False)
        object.__setattr__(self, "values", values)
        # Prefix sums of value x step make any window mean O(1) per step.
        cum = np.concatenate(([0.0], np.cumsum(values)))
        object.__setattr__(self, "_cumulative", cum)

    @property
    def end_s(self) -> int:
        """First second after the covered span."""
        return self.start_s + self.step_s * int(self.values.size)

    @property
    def period_s(self) -> int:
        return self.step_s * int(self.values.size)

    def _integral(self, t: np.ndarray) -> np.ndarray:
        """Integral of the signal from ``start_s`` to ``t`` (value x seconds), vectorised."""
        n = self.values.size
        rel = t.astype(np.int64) - self.start_s
        if self.wrap:
            periods, rel = np.divmod(rel, self.period_s)
        else:
            if np.any(rel < 0) or np.any(rel > self.period_s):
                raise ValueError(
                    f"time outside the series {self.source or ''} span "
                    f"[{self.start_s}, {self.end_s}); pass wrap=True to repeat it"
                )
            periods = np.zeros_like(rel)
        k, frac = np.divmod(rel, self.step_s)
        k = np.minimum(k, n)  # rel == period_s only without wrap
        inside = self._cumulative[k] * self.step_s
        partial = np.where(k < n, self.values[np.minimum(k, n - 1)] * frac, 0.0)
        total = self._cumulative[n] * self.step_s
        return periods * total + inside + partial

    def at(self, t_s: int) -> float:
        rel = int(t_s) - self.start_s
        if self.wrap:
            rel %= self.period_s
        elif not 0 <= rel < self.period_s:
            raise ValueError(
                f"time {t_s} outside the series {self.source or ''} span "
                f"[{self.start_s}, {self.end_s}); pass wrap=True to repeat it"
            )
        return float(self.values[rel // self.step_s])

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        n = _steps(start_s, end_s, step_s)
        if n == 0:
            return np.zeros(0, dtype=np.float64)
        edges = start_s + step_s * np.arange(n + 1, dtype=np.int64)
        if step_s == self.step_s and (start_s - self.start_s) % self.step_s == 0:
            # Aligned fast path: a gather, no integration.
            idx = (edges[:-1] - self.start_s) // self.step_s
            if self.wrap:
                idx %= self.values.size
            elif idx.min() < 0 or idx.max() >= self.values.size:
                raise ValueError("window outside the series span; pass wrap=True to repeat it")
            return np.asarray(self.values[idx], dtype=np.float64)
        integral = self._integral(edges)
        return np.asarray(np.diff(integral) / step_s, dtype=np.float64)

    def _integral_at(self, t_s: int) -> float:
        """``_integral`` at one time, in plain Python: the simulator charges every run with
        two of these, where numpy's per-call overhead would cost more than the arithmetic.
        Same operations in the same order, so the same float as the vectorised form."""
        n = int(self.values.size)
        rel = int(t_s) - self.start_s
        periods = 0
        if self.wrap:
            periods, rel = divmod(rel, self.period_s)
        elif rel < 0 or rel > self.period_s:
            raise ValueError(
                f"time outside the series {self.source or ''} span "
                f"[{self.start_s}, {self.end_s}); pass wrap=True to repeat it"
            )
        k, frac = divmod(rel, self.step_s)
        k = min(k, n)
        cum = self._cumulative
        inside = float(cum[k]) * self.step_s
        partial = float(self.values[k]) * frac if k < n else 0.0
        total = float(cum[n]) * self.step_s
        return periods * total + inside + partial

    def mean(self, start_s: int, end_s: int) -> float:
        if end_s <= start_s:
            return self.at(start_s)
        return (self._integral_at(end_s) - self._integral_at(start_s)) / (end_s - start_s)

    def describe(self) -> dict[str, object]:
        """A JSON-ready description (kind, grid, span, unit, source file)."""
        return {
            "kind": "series",
            "unit": self.unit,
            "start_s": self.start_s,
            "step_s": self.step_s,
            "points": int(self.values.size),
            "mean": float(self.values.mean()),
            "source": self.source,
        }
