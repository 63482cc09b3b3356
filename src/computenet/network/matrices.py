"""Measured round-trip-time matrices from the public formats in ``../shared/data/latency``.

* ``gcp-zones`` — ``gcp_latency_matrix_by_emaps_zone.csv``: a square CSV whose first column
  is ``origin`` and whose header and rows are Electricity Maps zone codes (two GCP regions
  map to ``US-MIDA-PJM``, so a code may repeat).
* ``gcp-raw`` — ``gcp_interregion_latency_raw.csv``: ``sending_region,receiving_region,
  milliseconds`` rows keyed by GCP region (``asia-east2``).
* ``aws-cloudping`` — ``aws_interregion_latency_p50_1y_cloudping.json``: the median RTT over a
  year between AWS regions (``{"data": {from: {to: ms}}}``).

Round trips are treated as symmetric: where a file has both directions of a pair, or several
regions under one key, the smallest value is kept (the best route a placement could use).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from computenet.errors import InputError, UnknownNameError
from computenet.textfile import CsvFile, read_text


@dataclass(frozen=True)
class LatencyMatrix:
    """Measured RTTs in ms between keys (zone codes or cloud regions)."""

    rtt_ms: Mapping[tuple[str, str], float]
    source: str = ""
    keys: frozenset[str] = field(default=frozenset())

    def get(self, a: str, b: str) -> float | None:
        """The measured RTT between ``a`` and ``b`` or ``None`` when the file lacks the pair."""
        return self.rtt_ms.get((a, b))

    def __len__(self) -> int:
        return len(self.rtt_ms) // 2


def _add(out: dict[tuple[str, str], float], a: str, b: str, ms: float) -> None:
    if a == b:
        return
    for key in ((a, b), (b, a)):
        out[key] = min(ms, out.get(key, math.inf))


def _ms(path: Path, cell: str, where: str) -> float:
    try:
        ms = float(cell)
    except ValueError:
        raise InputError(
            f"RTT {cell!r} is not a number", source=str(path), where=where, fix="write ms"
        ) from None
    if not math.isfinite(ms) or ms < 0:
        raise InputError(
            f"RTT {cell!r} is not a non-negative number",
            source=str(path),
            where=where,
            fix="write the round-trip time in ms",
        )
    return ms


def _need(path: Path) -> None:
    if not path.is_file():
        raise InputError(
            "latency file not found", source=str(path), fix="pass an existing latency file"
        )


def read_gcp_zone_matrix(
    path: str | Path, *, aliases: Mapping[str, str] | None = None
) -> LatencyMatrix:
    """The GCP matrix keyed by zone code; ``aliases`` renames codes (``{"DE": "DE-LU"}``)."""
    p = Path(path)
    _need(p)
    alias = dict(aliases or {})
    table = CsvFile(p)
    if not table.header or table.header[0] != "origin":
        raise InputError(
            "wrong header: the first column must be 'origin'",
            source=str(p),
            where="line 1",
            fix="the first line must read origin,<zone>,<zone>,...",
        )
    header = [alias.get(h, h) for h in table.header[1:]]
    out: dict[tuple[str, str], float] = {}
    keys: set[str] = set(header)
    for line, row in table.rows():
        origin = alias.get(row[0].strip(), row[0].strip())
        keys.add(origin)
        for col, cell in zip(header, row[1:], strict=True):
            if cell.strip():
                _add(out, origin, col, _ms(p, cell, f"line {line}, column {col}"))
    return LatencyMatrix(out, f"GCP inter-region RTT by zone: {p.name}", frozenset(keys))


def read_gcp_raw(path: str | Path) -> LatencyMatrix:
    """The raw GCP pairs keyed by GCP region name."""
    p = Path(path)
    _need(p)
    want = ("sending_region", "receiving_region", "milliseconds")
    out: dict[tuple[str, str], float] = {}
    keys: set[str] = set()
    table = CsvFile(p)
    if tuple(table.header[:3]) != want:
        raise InputError(
            f"wrong header {table.header!r}",
            source=str(p),
            where="line 1",
            fix="the first line must read sending_region,receiving_region,milliseconds",
        )
    for line, row in table.rows():
        a, b = row[0].strip(), row[1].strip()
        keys.update((a, b))
        _add(out, a, b, _ms(p, row[2], f"line {line}"))
    return LatencyMatrix(out, f"GCP inter-region RTT: {p.name}", frozenset(keys))


def read_aws_cloudping(path: str | Path) -> LatencyMatrix:
    """The AWS cloudping median matrix keyed by AWS region (``ap-east-1``)."""
    p = Path(path)
    _need(p)
    try:
        doc = json.loads(read_text(p))
        data = doc["data"]
        if not isinstance(data, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise InputError(
            "not a cloudping JSON document",
            source=str(p),
            fix='expected {"data": {"<from region>": {"<to region>": ms, ...}, ...}}',
        ) from None
    out: dict[tuple[str, str], float] = {}
    for a, row in data.items():
        if not isinstance(row, dict):
            raise InputError(
                f"entry for {a!r} is not an object",
                source=str(p),
                where=f"data.{a}",
                fix='write {"<to region>": ms, ...}',
            )
        for b, ms in row.items():
            _add(out, a, b, _ms(p, str(ms), f"data.{a}.{b}"))
    keys = frozenset(data) | {b for row in data.values() for b in row}
    return LatencyMatrix(out, f"AWS inter-region median RTT (cloudping, 1 y): {p.name}", keys)


MATRIX_FORMATS: dict[str, Callable[[Path], LatencyMatrix]] = {
    "gcp-zones": lambda p: read_gcp_zone_matrix(p),
    "gcp-raw": read_gcp_raw,
    "aws-cloudping": read_aws_cloudping,
}


def read_matrix(path: str | Path, fmt: str) -> LatencyMatrix:
    """Read a latency matrix in one of ``MATRIX_FORMATS``."""
    reader = MATRIX_FORMATS.get(fmt)
    if reader is None:
        raise UnknownNameError("latency matrix format", fmt, MATRIX_FORMATS)
    return reader(Path(path))
