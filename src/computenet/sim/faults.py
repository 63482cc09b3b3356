"""Site outages for the simulator: read from a file, or drawn at a given rate with a seed.

Outage file (CSV, header required)::

    site,start,end
    SG,2023-03-02T04:00:00Z,2023-03-02T09:30:00Z
    JP-TK,1677787200,1677801600

``start`` and ``end`` are UTC, either ISO 8601 or epoch seconds. Drawn outages follow a
Poisson process per site at ``rate_per_site_day`` with exponentially distributed durations
of mean ``mean_hours``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from computenet.errors import InputError
from computenet.sim.simulator import Outage
from computenet.textfile import CsvFile


def format_time(t_s: int) -> str:
    """``t_s`` (UTC epoch seconds) as ``YYYY-MM-DD HH:MM``, in UTC."""
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%d %H:%M")


MAX_EPOCH_S = 253_402_300_799  # 9999-12-31T23:59:59Z, the last time ISO 8601 can write


def parse_time(text: str, *, source: str, where: str = "") -> int:
    """UTC epoch seconds from ISO 8601 (``Z`` or an offset; naive means UTC) or digits."""
    t = text.strip()
    if t.lstrip("-").isdigit() and t.isascii():
        epoch_s = int(t)
        if not 0 <= epoch_s <= MAX_EPOCH_S:
            raise InputError(
                f"time {t} is outside 1970 to 9999",
                source=source,
                where=where or None,
                fix="write epoch seconds since 1970 (UTC) or an ISO 8601 time",
            )
        return epoch_s
    try:
        d = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"time {t!r} is neither ISO 8601 nor epoch seconds",
            source=source,
            where=where or None,
            fix="write e.g. 2023-03-01T00:00:00Z",
        ) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return int(d.timestamp())


def load_outages(path: str | Path, site_ids: Sequence[str]) -> tuple[Outage, ...]:
    """Outages from a CSV file (see the module docstring); sites must exist."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            "outage file not found", source=str(p), fix="pass an existing --outages file"
        )
    out = []
    table = CsvFile(p)
    table.require(("site", "start", "end"), fix="the header must have site,start,end")
    for line, row in table.dicts():
        sid = row["site"].strip()
        where = f"line {line}"
        if sid not in site_ids:
            raise InputError(
                f"unknown site {sid!r}",
                source=str(p),
                where=where,
                fix=f"use one of: {', '.join(site_ids)}",
            )
        start = parse_time(row["start"], source=str(p), where=where)
        end = parse_time(row["end"], source=str(p), where=where)
        if end <= start:
            raise InputError("end is not after start", source=str(p), where=where)
        out.append(Outage(sid, start, end))
    return tuple(sorted(out, key=lambda o: (o.start_s, o.site_id)))


def seeded_outages(
    site_ids: Sequence[str],
    start_s: int,
    end_s: int,
    *,
    rate_per_site_day: float,
    mean_hours: float = 4.0,
    seed: int = 0,
) -> tuple[Outage, ...]:
    """Outages drawn per site as a Poisson process over ``[start_s, end_s)``."""
    if rate_per_site_day < 0 or mean_hours <= 0:
        raise InputError("outage rate must be >= 0 and mean hours > 0", source="--outage-rate")
    if rate_per_site_day == 0:
        return ()
    rng = np.random.default_rng(seed)
    out = []
    mean_gap_s = 86400.0 / rate_per_site_day
    for sid in site_ids:
        t = float(start_s)
        while True:
            t += rng.exponential(mean_gap_s)
            if t >= end_s:
                break
            dur = max(600.0, rng.exponential(mean_hours * 3600.0))
            out.append(Outage(sid, int(t), int(t + dur)))
            t += dur
    return tuple(sorted(out, key=lambda o: (o.start_s, o.site_id)))
