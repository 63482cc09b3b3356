"""Time-of-use electricity tariffs: hour bands of the *local* day, each a multiple of a flat
price, optionally only in some months (seasonal or critical-peak bands).

Chinese provincial tariffs (NDRC 发改价格〔2021〕1093号 and the provincial notices, see
``CHINA_FACTS.md`` §2) are written this way: peak, flat and valley hours with a ratio to the
flat price, plus a critical peak in summer (or winter) months. A tariff here is:

* ``flat_cny_per_kwh`` — the flat-period price;
* bands without ``months`` — they must cover the 24 hours of the local day exactly once;
* bands with ``months`` — they replace the general band at their hours in those months
  (e.g. critical peak 11-12 and 15-17 in July-September); two of them may not claim the
  same hour of the same month.

Hours are whole local hours ``[start, end)``; ``start > end`` wraps past midnight (``23-7``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from computenet.errors import InputError
from computenet.model import DAY_S, HOUR_S, FloatArray
from computenet.signals.base import _steps

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# Month (0-11) of every day from 1970-01-01 to 2199-12-31: a gather instead of a calendar
# conversion on every window (the engine asks for one per site per planning round).
_BLOCK_H = 8192  # local hours computed and kept at a time (about 11 months)
_MONTH_OF_DAY = (
    np.arange(np.datetime64("1970-01-01"), np.datetime64("2200-01-01"))
    .astype("datetime64[M]")
    .astype(np.int64)
    % 12
).astype(np.int8)


def band_hours(start: int, end: int) -> tuple[int, ...]:
    """The local hours ``[start, end)`` covers, wrapping past midnight when ``start > end``."""
    length = (end - start) % 24
    if length == 0:
        length = 24 if (start, end) == (0, 24) else 0
    return tuple((start + i) % 24 for i in range(length))


@dataclass(frozen=True)
class TouBand:
    """One band of a time-of-use tariff.

    ``hours`` are local ``(start, end)`` hour ranges; ``multiplier`` scales the flat price;
    ``months`` (1-12) restricts the band to those months, empty means every month.
    """

    name: str
    hours: tuple[tuple[int, int], ...]
    multiplier: float
    months: tuple[int, ...] = ()

    def covered(self) -> tuple[int, ...]:
        """Every local hour (0-23) this band claims, in order of its ranges."""
        return tuple(h for a, b in self.hours for h in band_hours(a, b))


def _fmt_hour(h: int) -> str:
    return f"{h:02d}:00-{h + 1:02d}:00"


def _fmt_hours(hours: list[int]) -> str:
    """Sorted hours as runs: [0, 1, 2, 22, 23] -> "00:00-03:00, 22:00-24:00"."""
    runs: list[list[int]] = []
    for h in sorted(hours):
        if runs and runs[-1][1] == h:
            runs[-1][1] = h + 1
        else:
            runs.append([h, h + 1])
    return ", ".join(f"{a:02d}:00-{b:02d}:00" for a, b in runs)


def _check_band(i: int, band: TouBand) -> None:
    where = f"bands[{i}]"
    if not band.name:
        raise InputError("a band needs a name", where=f"{where}.name", fix='e.g. name = "peak"')
    m = band.multiplier
    if isinstance(m, bool) or not isinstance(m, int | float) or not math.isfinite(m) or m < 0:
        raise InputError(
            f"multiplier {m!r} of band {band.name!r} is not a non-negative number",
            where=f"{where}.multiplier",
            fix="give the band's price as a multiple of the flat price, e.g. 1.7",
        )
    if not band.hours:
        raise InputError(
            f"band {band.name!r} has no hours",
            where=f"{where}.hours",
            fix="list [start, end] local hour ranges, e.g. hours = [[10, 12], [14, 19]]",
        )
    for j, rng in enumerate(band.hours):
        ok = (
            len(rng) == 2
            and all(isinstance(h, int) and not isinstance(h, bool) for h in rng)
            and 0 <= rng[0] <= 23
            and 0 <= rng[1] <= 24
            and band_hours(rng[0], rng[1])
        )
        if not ok:
            raise InputError(
                f"hour range {list(rng)!r} of band {band.name!r} is not [start, end] with whole "
                "hours 0 <= start <= 23, 0 <= end <= 24 and start != end",
                where=f"{where}.hours[{j}]",
                fix="use e.g. [10, 12] for 10:00-12:00, or [23, 7] to wrap past midnight",
            )
    bad_months = [mo for mo in band.months if not isinstance(mo, int) or not 1 <= mo <= 12]
    if bad_months or len(set(band.months)) != len(band.months):
        raise InputError(
            f"months {list(band.months)!r} of band {band.name!r} must be distinct numbers 1-12",
            where=f"{where}.months",
            fix="e.g. months = [7, 8, 9] for July to September",
        )
    hours = band.covered()
    if len(set(hours)) != len(hours):
        dup = next(h for h in hours if hours.count(h) > 1)
        raise InputError(
            f"band {band.name!r} lists hour {_fmt_hour(dup)} twice",
            where=f"{where}.hours",
            fix="make its hour ranges disjoint",
        )


@dataclass(frozen=True, eq=False)
class TouTariff:
    """A time-of-use price in CNY/kWh, evaluated in local time (UTC + ``utc_offset_h``).

    Raises ``InputError`` (with ``where`` inside the tariff, e.g. ``bands[2].hours``) when the
    general bands do not cover each hour of the day exactly once, or a band is malformed.
    """

    flat_cny_per_kwh: float
    bands: tuple[TouBand, ...]
    utc_offset_h: float = 8.0
    name: str = ""
    source: str = ""
    unit: str = "CNY/kWh"
    _price: FloatArray = field(init=False, repr=False)  # [month 0-11, local hour 0-23]
    _band: np.ndarray = field(init=False, repr=False)  # band index, same shape
    _offset_s: int = field(init=False, repr=False)
    _blocks: dict[int, FloatArray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        flat = self.flat_cny_per_kwh
        if isinstance(flat, bool) or not isinstance(flat, int | float) or not math.isfinite(flat):
            raise InputError(
                f"flat price {flat!r} is not a number",
                where="flat_cny_per_kwh",
                fix="give the flat-period price in CNY/kWh, e.g. 0.6",
            )
        off = self.utc_offset_h
        if not -14 <= off <= 14 or (off * 3600) % 1:
            raise InputError(
                f"UTC offset {off!r} h is not a whole number of seconds within +-14 h",
                where="utc_offset_h",
                fix="e.g. 8 for China Standard Time",
            )
        if not self.bands:
            raise InputError(
                "a tariff needs at least one band",
                where="bands",
                fix='e.g. one band name = "flat", hours = [[0, 24]], multiplier = 1',
            )
        for i, band in enumerate(self.bands):
            _check_band(i, band)
        owner: list[int | None] = [None] * 24
        for i, band in enumerate(self.bands):
            if band.months:
                continue
            for h in band.covered():
                prev = owner[h]
                if prev is not None:
                    raise InputError(
                        f"hour {_fmt_hour(h)} is in both band {self.bands[prev].name!r} and "
                        f"band {band.name!r}",
                        where=f"bands[{i}].hours",
                        fix="every hour of the day must be in exactly one band without months",
                    )
                owner[h] = i
        missing = [h for h in range(24) if owner[h] is None]
        if missing:
            raise InputError(
                f"hours {_fmt_hours(missing)} are in no band",
                where="bands",
                fix="add them to a band without months (e.g. the flat band), so that the "
                "bands cover the 24 hours of the day exactly once",
            )
        table = np.array([owner] * 12, dtype=np.int64)  # 12 x 24 band indices
        seasonal = np.full((12, 24), -1, dtype=np.int64)
        for i, band in enumerate(self.bands):
            for mo in band.months:
                for h in band.covered():
                    prev_i = int(seasonal[mo - 1, h])
                    if prev_i >= 0:
                        raise InputError(
                            f"hour {_fmt_hour(h)} of month {mo} is in both band "
                            f"{self.bands[prev_i].name!r} and band {band.name!r}",
                            where=f"bands[{i}]",
                            fix="bands with months may not overlap in the same month",
                        )
                    seasonal[mo - 1, h] = i
        table = np.where(seasonal >= 0, seasonal, table)
        mult = np.array([b.multiplier for b in self.bands], dtype=np.float64)
        price = flat * mult[table]
        price.setflags(write=False)
        table.setflags(write=False)
        object.__setattr__(self, "_price", price)
        object.__setattr__(self, "_band", table)
        object.__setattr__(self, "_offset_s", round(off * 3600))

    # -- evaluation ---------------------------------------------------------------------

    def _local(self, t_s: int) -> tuple[int, int]:
        local = int(t_s) + self._offset_s
        month = dt.date.fromordinal(_EPOCH_ORDINAL + local // DAY_S).month
        return month - 1, (local % DAY_S) // HOUR_S

    def _block(self, b: int) -> FloatArray:
        """Prices of local hours ``[b * _BLOCK_H, (b + 1) * _BLOCK_H)`` since the epoch."""
        arr = self._blocks.get(b)
        if arr is None:
            local = (b * _BLOCK_H + np.arange(_BLOCK_H, dtype=np.int64)) * HOUR_S
            days = local // DAY_S
            months: np.ndarray
            if days.min() >= 0 and days.max() < _MONTH_OF_DAY.size:
                months = _MONTH_OF_DAY[days]
            else:  # outside 1970-2199: the calendar
                months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
            arr = np.asarray(self._price[months, (local % DAY_S) // HOUR_S], dtype=np.float64)
            arr.setflags(write=False)
            self._blocks[b] = arr
        return arr

    def _hours(self, first_s: int, n: int) -> FloatArray:
        """Prices of ``n`` consecutive local hours, the first starting at ``first_s`` (UTC s,
        on a local hour boundary). Whole blocks of hours are computed once and kept, so the
        engine's many short windows are slices."""
        li = (first_s + self._offset_s) // HOUR_S
        b0, b1 = li // _BLOCK_H, (li + n - 1) // _BLOCK_H
        if b0 == b1:
            arr = self._block(b0)
        else:
            arr = np.concatenate([self._block(b) for b in range(b0, b1 + 1)])
        k = li - b0 * _BLOCK_H
        return np.array(arr[k : k + n], dtype=np.float64)

    def _integral(self, points: np.ndarray) -> FloatArray:
        """Integral of the price (CNY/kWh x s) from the first point, at every point.

        The price only changes on local hour boundaries, so the integral is linear between
        them: integrate on that grid and interpolate.
        """
        lo, hi = int(points.min()), int(points.max())
        g0 = lo - (lo + self._offset_s) % HOUR_S
        m = max(1, -(-(hi - g0) // HOUR_S))
        grid = g0 + HOUR_S * np.arange(m + 1, dtype=np.int64)
        cum = np.concatenate(([0.0], np.cumsum(self._hours(g0, m) * HOUR_S)))
        out = np.interp(points.astype(np.float64), grid.astype(np.float64), cum)
        return np.asarray(out - out[0], dtype=np.float64)

    def at(self, t_s: int) -> float:
        month, hour = self._local(t_s)
        return float(self._price[month, hour])

    def band_at(self, t_s: int) -> str:
        """Name of the band in force at ``t_s`` (e.g. ``"peak"``)."""
        month, hour = self._local(t_s)
        return self.bands[int(self._band[month, hour])].name

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        n = _steps(start_s, end_s, step_s)
        if n == 0:
            return np.zeros(0, dtype=np.float64)
        if step_s % HOUR_S == 0 and (start_s + self._offset_s) % HOUR_S == 0:
            # Steps made of whole local hours: a gather (and a row mean for longer steps).
            values = self._hours(start_s, n * (step_s // HOUR_S))
            if step_s == HOUR_S:
                return values
            return np.asarray(values.reshape(n, -1).mean(axis=1))
        edges = start_s + step_s * np.arange(n + 1, dtype=np.int64)
        return np.asarray(np.diff(self._integral(edges)) / step_s, dtype=np.float64)

    def mean(self, start_s: int, end_s: int) -> float:
        if end_s <= start_s:
            return self.at(start_s)
        # Each local hour touched, weighted by the seconds of it inside [start_s, end_s).
        g0 = start_s - (start_s + self._offset_s) % HOUR_S
        m = -(-(end_s - g0) // HOUR_S)
        starts = g0 + HOUR_S * np.arange(m, dtype=np.int64)
        inside = np.minimum(starts + HOUR_S, end_s) - np.maximum(starts, start_s)
        return float(self._hours(g0, m) @ inside / (end_s - start_s))

    def describe(self) -> dict[str, object]:
        """A JSON-ready description: flat price, bands with their prices, offset, source."""
        return {
            "kind": "tou",
            "name": self.name,
            "unit": self.unit,
            "flat_cny_per_kwh": self.flat_cny_per_kwh,
            "utc_offset_h": self.utc_offset_h,
            "bands": [
                {
                    "name": b.name,
                    "hours": [list(r) for r in b.hours],
                    "multiplier": b.multiplier,
                    "price_cny_per_kwh": round(self.flat_cny_per_kwh * b.multiplier, 6),
                    "months": list(b.months),
                }
                for b in self.bands
            ],
            "source": self.source,
        }


def flat_tariff(
    price_cny_per_kwh: float, *, utc_offset_h: float = 8.0, source: str = ""
) -> TouTariff:
    """A tariff with one band, the same price at every hour."""
    return TouTariff(
        price_cny_per_kwh,
        (TouBand("flat", ((0, 24),), 1.0),),
        utc_offset_h=utc_offset_h,
        source=source,
    )
