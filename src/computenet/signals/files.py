"""Loaders for the public series formats in ``../shared/data``, each to a ``SeriesSignal`` in
UTC with its unit in the name of the loader:

* ``emaps-carbon`` — Electricity Maps hourly CSV (``data/carbon/greendcc_ci_2023``):
  ``Datetime (UTC)`` (naive, UTC) and ``Carbon Intensity gCO₂eq/kWh (direct)`` or ``(LCA)``;
  gCO2eq/kWh.
* ``usd-mwh`` — hourly wholesale prices (``data/price/greendcc_prices_2023_utc_usd``):
  ``Datetime (UTC)`` with offset, ``Datetime (Local)`` and ``Price (USD/MWh)``; converted to
  CNY/kWh with an explicit ``usd_to_cny`` rate (the network file states it).
* ``cn-spot-15min`` — the Chinese provincial spot series
  (``data/price/datawhale2024_cn_province_spot_15min_demand_clearing_price.csv``): ``day``
  (``2021/12/1``), ``time`` (``0:15`` .. ``24:00:00``, the *end* of each 15-minute
  interval, local time), ``demand`` (MW) and ``clearing price (CNY/MWh)``; prices as
  CNY/kWh. The source publishes prices only up to 2023-06-30 and leaves the cells after
  that empty: a price series ends at its last value.
* ``csv`` — any regular series: an ISO 8601 time column (naive means UTC) and a value
  column, multiplied by ``scale``.

Every file must be a gap-free series at one step with strictly increasing times; otherwise
``SignalFileError`` names the file, the line and what to change.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from computenet.errors import SignalFileError, UnknownNameError
from computenet.model import HOUR_S
from computenet.signals.base import SeriesSignal
from computenet.textfile import CsvFile

EMAPS_TIME = "Datetime (UTC)"
EMAPS_CARBON = {
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
    "lca": "Carbon Intensity gCO₂eq/kWh (LCA)",
}
PRICE_TIME = "Datetime (UTC)"
PRICE_LOCAL = "Datetime (Local)"
PRICE_USD = "Price (USD/MWh)"
SPOT_COLUMNS = ("day", "time", "demand", "clearing price (CNY/MWh)")
SPOT_STEP_S = 900


def _fail(path: Path, message: str, line: int | None, fix: str | None = None) -> SignalFileError:
    return SignalFileError(
        message, source=str(path), where=f"line {line}" if line is not None else None, fix=fix
    )


def _open_rows(
    path: Path, required: tuple[str, ...]
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and the data rows with their line numbers; checks the file exists, is
    UTF-8 (a byte-order mark is dropped), has the required columns, and that every row has
    as many fields as the header (``computenet.textfile``)."""
    if not path.is_file():
        raise _fail(
            path,
            "file not found",
            None,
            "check the path (relative paths in a network file are relative to that file)",
        )
    table = CsvFile(path, error=SignalFileError)
    missing = [c for c in required if c not in table.header]
    if missing:
        raise _fail(
            path,
            f"wrong header: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(repr(h) for h in table.header) or 'an empty line'}",
            1,
            f"the first line must name the columns {', '.join(repr(c) for c in required)}",
        )
    return table.header, table.rows()


def _parse_iso_utc(text: str) -> int:
    t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp())


def _check_time(
    path: Path, line: int, t: int, prev: int | None, step: int | None, label: str
) -> None:
    """Strictly increasing, no duplicates, and (when ``step`` is known) no gaps."""
    if prev is None:
        return
    if t == prev:
        raise _fail(
            path,
            f"time {label} repeats the time of line {line - 1}",
            line,
            "remove the duplicate row (each time may appear once)",
        )
    if t < prev:
        raise _fail(
            path,
            f"time {label} is earlier than the time of line {line - 1}",
            line,
            "sort the rows by time, oldest first",
        )
    if step is not None and t - prev != step:
        gap = f"time {label} is {t - prev} s after line {line - 1}, not the step of {step} s"
        missing = (t - prev) // step - 1
        raise _fail(
            path,
            f"{gap}: a gap of {missing} missing row(s)" if missing > 0 else gap,
            line,
            f"the series must be gap-free at a step of {step} s: add the missing rows "
            "(e.g. with the previous value) or resample the file",
        )


def _value(path: Path, line: int, cell: str, column: str, minimum: float | None = None) -> float:
    text = cell.strip()
    if not text:
        raise _fail(
            path,
            f"no value in column {column!r}",
            line,
            "fill the cell (e.g. with the previous value); a series may have no empty values",
        )
    try:
        v = float(text)
    except ValueError:
        raise _fail(
            path, f"value {text!r} in column {column!r} is not a number", line, "write a number"
        ) from None
    if not math.isfinite(v):
        raise _fail(
            path,
            f"value {text!r} in column {column!r} is not finite",
            line,
            "write a finite number",
        )
    if minimum is not None and v < minimum:
        raise _fail(
            path,
            f"value {text!r} in column {column!r} is below {minimum:g}",
            line,
            f"a {column} cannot be negative: correct the value",
        )
    return v


def _series(
    path: Path,
    times: list[int],
    values: list[float],
    *,
    step_s: int,
    scale: float,
    unit: str,
) -> SeriesSignal:
    if not values:
        raise _fail(path, "no data rows", 2, "the file needs at least one row after the header")
    arr = np.asarray(values, dtype=np.float64) * scale
    if not np.isfinite(arr).all():
        raise _fail(path, f"values times the scale {scale:g} are not finite", None, "scale less")
    return SeriesSignal(times[0], step_s, arr, unit=unit, source=str(path))


def _load_regular(
    path: Path,
    time_column: str,
    value_column: str,
    *,
    step_s: int | None,
    scale: float,
    unit: str,
    minimum: float | None = None,
) -> SeriesSignal:
    """A regular series from an ISO time column (naive = UTC); ``step_s=None`` infers the step
    from the first two rows; a value below ``minimum`` (as written) is refused."""
    header, rows = _open_rows(path, (time_column, value_column))
    ti, vi = header.index(time_column), header.index(value_column)
    times: list[int] = []
    values: list[float] = []
    prev: int | None = None
    step = step_s
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue  # a blank line (e.g. at the end of the file)
        label = row[ti].strip()
        try:
            t = _parse_iso_utc(label)
        except ValueError:
            raise _fail(
                path,
                f"time {label!r} in column {time_column!r} is not an ISO 8601 date-time",
                line,
                "write times like 2023-01-01 00:00:00 (UTC) or 2023-01-01T08:00:00+08:00",
            ) from None
        if step is None and prev is not None and t > prev:
            step = t - prev
        _check_time(path, line, t, prev, step, label)
        values.append(_value(path, line, row[vi], value_column, minimum))
        times.append(t)
        prev = t
    return _series(path, times, values, step_s=step or HOUR_S, scale=scale, unit=unit)


def load_emaps_carbon(path: str | Path, *, column: str = "direct") -> SeriesSignal:
    """Hourly carbon intensity in gCO2eq/kWh from an Electricity Maps CSV (UTC times).

    ``column`` is ``direct`` (operational emissions, the default) or ``lca`` (life cycle).
    """
    if column not in EMAPS_CARBON:
        raise UnknownNameError("Electricity Maps carbon column", column, EMAPS_CARBON)
    return _load_regular(
        Path(path),
        EMAPS_TIME,
        EMAPS_CARBON[column],
        step_s=HOUR_S,
        scale=1.0,
        unit="gCO2/kWh",
        minimum=0.0,
    )


def load_price_usd_per_mwh(path: str | Path, *, usd_to_cny: float) -> SeriesSignal:
    """Hourly price in CNY/kWh from a CSV of USD/MWh with UTC times, at ``usd_to_cny``."""
    _check_rate(usd_to_cny)
    return _load_regular(
        Path(path),
        PRICE_TIME,
        PRICE_USD,
        step_s=HOUR_S,
        scale=usd_to_cny / 1000.0,
        unit="CNY/kWh",
    )


def price_file_utc_offset_h(path: str | Path) -> float:
    """The UTC offset (hours) of a ``usd-mwh`` price file, read from its first local time;
    0 when the file has no ``Datetime (Local)`` column."""
    p = Path(path)
    header, rows = _open_rows(p, (PRICE_TIME,))
    if PRICE_LOCAL not in header:
        return 0.0
    for line, row in rows:
        text = row[header.index(PRICE_LOCAL)].strip()
        try:
            off = dt.datetime.fromisoformat(text).utcoffset()
        except ValueError:
            raise _fail(
                p,
                f"local time {text!r} is not an ISO 8601 date-time",
                line,
                "write local times like 2023-01-01 08:00:00+08:00",
            ) from None
        return off.total_seconds() / 3600 if off else 0.0
    return 0.0


def load_cn_spot_15min(
    path: str | Path, *, column: str = "price", utc_offset_h: float = 8.0
) -> SeriesSignal:
    """The Chinese provincial spot series at 15 minutes: ``column="price"`` gives the clearing
    price in CNY/kWh (ending at the last published price), ``"demand"`` the demand in MW.

    Times in the file are interval *ends* in local time (UTC + ``utc_offset_h``; China
    Standard Time unless told otherwise, as the province is not named).
    """
    p = Path(path)
    if column not in ("price", "demand"):
        raise UnknownNameError("spot series column", column, ("price", "demand"))
    header, rows = _open_rows(p, SPOT_COLUMNS)
    di, ti = header.index("day"), header.index("time")
    vi = header.index("demand" if column == "demand" else SPOT_COLUMNS[3])
    offset_s = round(utc_offset_h * 3600)
    day_cache: dict[str, int] = {}
    times: list[int] = []
    values: list[float] = []
    prev: int | None = None
    blank_from: int | None = None  # first line of a run of empty prices
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue
        day, tod = row[di].strip(), row[ti].strip()
        label = f"{day} {tod}"
        try:
            base = day_cache.get(day)
            if base is None:
                d = dt.datetime.strptime(day, "%Y/%m/%d").replace(tzinfo=dt.UTC)
                base = day_cache[day] = int(d.timestamp())
            parts = [int(x) for x in tod.split(":")]
            if not 2 <= len(parts) <= 3:
                raise ValueError(tod)
            secs = parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) == 3 else 0)
        except ValueError:
            raise _fail(
                p,
                f"day/time {label!r} is not a date like 2021/12/1 and a time like 0:15",
                line,
                "write the day as YYYY/M/D and the time of the interval end as H:MM",
            ) from None
        end_s = base + secs - offset_s
        _check_time(p, line, end_s, prev, SPOT_STEP_S, label)
        prev = end_s
        cell = row[vi].strip() if vi < len(row) else ""
        if not cell and column == "price":
            blank_from = blank_from or line
            continue
        if blank_from is not None:
            raise _fail(
                p,
                f"no price from line {blank_from} to line {line - 1}, but prices resume here",
                blank_from,
                "fill the missing prices; only a run of empty prices at the end is allowed",
            )
        values.append(_value(p, line, cell, header[vi]))
        times.append(end_s - SPOT_STEP_S)
    scale, unit = (1 / 1000.0, "CNY/kWh") if column == "price" else (1.0, "MW")
    return _series(p, times, values, step_s=SPOT_STEP_S, scale=scale, unit=unit)


def load_csv_series(
    path: str | Path,
    *,
    time_column: str,
    value_column: str,
    scale: float = 1.0,
    unit: str = "",
) -> SeriesSignal:
    """A regular series from any CSV: ISO 8601 times (naive = UTC), values times ``scale``.
    The step is that between the first two rows and must hold throughout."""
    return _load_regular(Path(path), time_column, value_column, step_s=None, scale=scale, unit=unit)


def _check_rate(usd_to_cny: float) -> None:
    if (
        isinstance(usd_to_cny, bool)
        or not isinstance(usd_to_cny, int | float)
        or not (math.isfinite(usd_to_cny) and usd_to_cny > 0)
    ):
        raise SignalFileError(
            f"exchange rate {usd_to_cny!r} CNY per USD is not a positive number",
            source="usd_to_cny",
            fix="state the rate in the network file, e.g. usd_to_cny = 7.1",
        )


@dataclass(frozen=True)
class SeriesFormat:
    """A registered file format: what it is, its unit, and whether it is a price or carbon."""

    name: str
    quantity: str  # "price", "carbon" or "any"
    unit: str
    description: str
    options: tuple[str, ...]
    load: Callable[..., SeriesSignal]


def _load_usd(path: Path, *, usd_to_cny: float, **_: Any) -> SeriesSignal:
    return load_price_usd_per_mwh(path, usd_to_cny=usd_to_cny)


FORMATS: dict[str, SeriesFormat] = {
    "emaps-carbon": SeriesFormat(
        "emaps-carbon",
        "carbon",
        "gCO2/kWh",
        "Electricity Maps hourly CSV (UTC)",
        ("column",),
        lambda p, column="direct", **_: load_emaps_carbon(p, column=column),
    ),
    "usd-mwh": SeriesFormat(
        "usd-mwh", "price", "CNY/kWh", "hourly price in USD/MWh with UTC times", (), _load_usd
    ),
    "cn-spot-15min": SeriesFormat(
        "cn-spot-15min",
        "price",
        "CNY/kWh",
        "Chinese provincial 15-minute spot CSV (CNY/MWh)",
        ("utc_offset_h",),
        lambda p, utc_offset_h=8.0, **_: load_cn_spot_15min(p, utc_offset_h=utc_offset_h),
    ),
    "csv": SeriesFormat(
        "csv",
        "any",
        "",
        "any CSV with an ISO time column and a value column",
        ("time_column", "value_column", "scale"),
        lambda p, time_column, value_column, scale=1.0, unit="", **_: load_csv_series(
            p, time_column=time_column, value_column=value_column, scale=scale, unit=unit
        ),
    ),
}


def load_series(
    path: str | Path, fmt: str, *, usd_to_cny: float = 7.1, **options: Any
) -> SeriesSignal:
    """Load ``path`` in the registered format ``fmt`` (see ``FORMATS``)."""
    spec = FORMATS.get(fmt)
    if spec is None:
        raise UnknownNameError("series format", fmt, FORMATS)
    return spec.load(Path(path), usd_to_cny=usd_to_cny, **options)
