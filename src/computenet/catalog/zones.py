"""Build a network from grid zones: one site per zone, with that zone's hourly carbon and price.

``build_zone_network(["SG", "JP-TK"], carbon_dir, price_dir, latency=..., capacity=64)``
reads, for every zone ``Z``:

* ``carbon_dir/Z_2023_hourly.csv`` — Electricity Maps hourly carbon intensity (UTC), the
  layout of ``data/carbon/greendcc_ci_2023``; the *direct* (operational) column is used;
* ``price_dir/Z_electricity_prices_2023.csv`` — hourly wholesale price in USD/MWh (UTC and
  local time), the layout of ``data/price/greendcc_prices_2023_utc_usd``; converted to
  CNY/kWh at ``usd_to_cny``; the zone's UTC offset is read from its first local time.

Links: round-trip times come from a GCP latency matrix keyed by Electricity Maps zone codes
(``data/latency/gcp_latency_matrix_by_emaps_zone.csv``) where it has both zones, with the
aliases that file needs (AUS-NSW is AU-NSW, DE is DE-LU, BR-CS stands for BR-SP, IN-MH for
IN-WE). For a pair it lacks, or with no latency file, the RTT is *modelled* from the
great-circle distance between the zones' reference cities (``ZONE_CITIES``), a route factor
of 1.5 and light in fibre at 200 km/ms, plus 2 ms; the pairs that fell back are listed in
``ZoneNetworkInfo.defaults``. Bandwidth and egress price are assumptions stated in
``DEFAULT_BANDWIDTH_GBPS`` and ``DEFAULT_EGRESS_USD_PER_GB``.

Every site has ``capacity`` A100s (an assumed capacity, marked ``assumed``), PUE
``DEFAULT_PUE`` and MLPS level 3 (both assumptions), jurisdiction overseas.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from computenet.errors import InputError, SignalFileError
from computenet.model import (
    AcceleratorType,
    Jurisdiction,
    LatencyEstimate,
    Network,
    Pool,
    Role,
    Signal,
    Site,
)
from computenet.signals import SeriesSignal

DEFAULT_PUE = 1.2  # assumption: a modern hyperscale data centre
DEFAULT_HOST_POWER_W = 100.0  # assumption: host share per accelerator
DEFAULT_BANDWIDTH_GBPS = 10.0  # assumption: a 10 Gb/s bulk-transfer share between zones
DEFAULT_EGRESS_USD_PER_GB = 0.08  # assumption: typical cloud inter-region egress
ROUTE_FACTOR = 1.5  # fibre routes are longer than the great circle
FIBRE_KM_PER_MS = 200.0

A100 = AcceleratorType("A100", "NVIDIA", 312.0, 80.0, 400.0, source="CHINA_FACTS.md §5")

# Reference city of each zone (latitude, longitude, city): where its data centres cluster.
ZONE_CITIES: dict[str, tuple[float, float, str]] = {
    "AU-NSW": (-33.87, 151.21, "Sydney"),
    "BR-SP": (-23.55, -46.63, "São Paulo"),
    "DE-LU": (50.11, 8.68, "Frankfurt"),
    "GB": (51.51, -0.13, "London"),
    "IN-WE": (19.08, 72.88, "Mumbai"),
    "JP-TK": (35.68, 139.69, "Tokyo"),
    "SG": (1.35, 103.82, "Singapore"),
    "US-CAL-CISO": (34.05, -118.24, "Los Angeles"),
    "US-MIDA-PJM": (39.04, -77.49, "Ashburn"),
    "US-NY-NYIS": (40.71, -74.01, "New York"),
    "US-TEX-ERCO": (32.78, -96.80, "Dallas"),
    "FR": (48.86, 2.35, "Paris"),
    "NL": (52.37, 4.90, "Amsterdam"),
    "BE": (50.85, 4.35, "Brussels"),
    "ES": (40.42, -3.70, "Madrid"),
    "CH": (47.37, 8.54, "Zurich"),
    "AT": (48.21, 16.37, "Vienna"),
    "PT": (38.72, -9.14, "Lisbon"),
}

# Latency-file codes that stand for our zones.
LATENCY_ALIASES = {"AUS-NSW": "AU-NSW", "DE": "DE-LU", "BR-CS": "BR-SP", "IN-MH": "IN-WE"}


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class ZoneLinks:
    """Measured RTTs where known, a distance model elsewhere (see the module docstring)."""

    measured_ms: dict[tuple[str, str], float]
    coords: dict[str, tuple[float, float]]
    source: str = ""
    egress_cny_per_gb_default: float = DEFAULT_EGRESS_USD_PER_GB * 7.1

    def latency(self, a: str, b: str) -> LatencyEstimate:
        if a == b:
            return LatencyEstimate(0.0, "measured", "same site")
        ms = self.measured_ms.get((a, b))
        if ms is not None:
            return LatencyEstimate(ms, "measured", self.source)
        return LatencyEstimate(
            self.modelled_ms(a, b), "modelled", "great-circle x 1.5 at 200 km/ms + 2 ms"
        )

    def modelled_ms(self, a: str, b: str) -> float:
        d = _haversine_km(self.coords[a], self.coords[b])
        return 2.0 * d * ROUTE_FACTOR / FIBRE_KM_PER_MS + 2.0

    def bandwidth_gbps(self, a: str, b: str) -> float:
        return math.inf if a == b else DEFAULT_BANDWIDTH_GBPS

    def egress_cny_per_gb(self, a: str, b: str) -> float:
        return 0.0 if a == b else self.egress_cny_per_gb_default


@dataclass(frozen=True)
class ZoneNetworkInfo:
    """What the builder read and what it assumed, for the report."""

    zones: tuple[str, ...]
    measured_pairs: int
    defaults: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = field(default=())


def read_gcp_latency(path: Path, zones: list[str]) -> dict[tuple[str, str], float]:
    """Symmetric RTTs (ms) between ``zones`` from a GCP matrix keyed by zone codes.

    Where a zone appears twice (two GCP regions), the smaller RTT is kept.
    """
    if not path.is_file():
        raise InputError(
            "latency file not found", source=str(path), fix="pass an existing --latency file"
        )
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][0].strip() != "origin":
        raise InputError("first column must be 'origin'", source=str(path), where="line 1")
    header = [LATENCY_ALIASES.get(h.strip(), h.strip()) for h in rows[0][1:]]
    want = set(zones)
    out: dict[tuple[str, str], float] = {}
    for line, row in enumerate(rows[1:], start=2):
        origin = LATENCY_ALIASES.get(row[0].strip(), row[0].strip())
        if origin not in want:
            continue
        for col, cell in zip(header, row[1:], strict=False):
            if col not in want or col == origin or not cell.strip():
                continue
            try:
                ms = float(cell)
            except ValueError:
                raise InputError(
                    f"RTT {cell!r} is not a number", source=str(path), where=f"line {line}"
                ) from None
            for key in ((origin, col), (col, origin)):
                out[key] = min(ms, out.get(key, math.inf))
    return out


def _read_hourly(path: Path, column: str, scale: float = 1.0) -> tuple[int, np.ndarray, float]:
    """Hourly values of ``column`` (UTC, from the first row), the start and the UTC offset
    (hours) read from a ``Datetime (Local)`` column when there is one. Gaps are carried
    forward from the previous hour."""
    if not path.is_file():
        raise SignalFileError(
            "file not found", source=str(path), fix="check the zone code and directory"
        )
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if column not in cols or "Datetime (UTC)" not in cols:
            raise SignalFileError(
                f"expected columns 'Datetime (UTC)' and {column!r}; found {', '.join(cols)}",
                source=str(path),
                where="line 1",
            )
        values: list[float] = []
        start = None
        offset_h = 0.0
        last = math.nan
        prev_t = None
        for line, row in enumerate(reader, start=2):
            t = dt.datetime.fromisoformat(row["Datetime (UTC)"].strip().replace("Z", "+00:00"))
            if t.tzinfo is None:
                t = t.replace(tzinfo=dt.UTC)
            ts = int(t.timestamp())
            if start is None:
                start = ts
                local = (row.get("Datetime (Local)") or "").strip()
                if local:
                    off = dt.datetime.fromisoformat(local).utcoffset()
                    offset_h = off.total_seconds() / 3600 if off else 0.0
            elif prev_t is not None and ts != prev_t + 3600:
                raise SignalFileError(
                    f"time {row['Datetime (UTC)']} is not one hour after the previous row",
                    source=str(path),
                    where=f"line {line}",
                    fix="the file must be a gap-free hourly series",
                )
            prev_t = ts
            cell = (row.get(column) or "").strip()
            v = float(cell) * scale if cell else last
            values.append(v)
            last = v
    if start is None or not values:
        raise SignalFileError("no rows", source=str(path))
    arr = np.array(values, dtype=np.float64)
    if np.isnan(arr).any():  # leading gap: fill backwards from the first value
        first = arr[~np.isnan(arr)][0]
        arr[np.isnan(arr)] = first
    return start, arr, offset_h


CARBON_COLUMN = "Carbon Intensity gCO₂eq/kWh (direct)"
PRICE_COLUMN = "Price (USD/MWh)"


def build_zone_network(
    zones: list[str],
    carbon_dir: str | Path,
    price_dir: str | Path,
    *,
    latency: str | Path | None = None,
    capacity: int = 64,
    usd_to_cny: float = 7.1,
) -> tuple[Network, ZoneNetworkInfo]:
    """A network of one site per zone; see the module docstring for sources and defaults."""
    if not zones:
        raise InputError("no zones given", source="--zones", fix="e.g. --zones SG,JP-TK,DE-LU")
    if len(set(zones)) != len(zones):
        raise InputError("a zone is listed twice", source="--zones")
    if capacity < 1:
        raise InputError("capacity must be at least 1", source="--capacity")
    unknown = [z for z in zones if z not in ZONE_CITIES]
    if unknown:
        raise InputError(
            f"no reference city for zone(s) {', '.join(unknown)}",
            source="--zones",
            fix=f"use zones among: {', '.join(sorted(ZONE_CITIES))}",
        )
    cdir, pdir = Path(carbon_dir), Path(price_dir)
    sites = []
    for z in zones:
        cpath = cdir / f"{z}_2023_hourly.csv"
        ppath = pdir / f"{z}_electricity_prices_2023.csv"
        if not cpath.is_file():
            have = sorted(p.name.split("_")[0] for p in cdir.glob("*_2023_hourly.csv"))
            raise InputError(
                f"no carbon file for zone {z} ({cpath.name})",
                source="--carbon-dir",
                fix=f"zones with carbon data there: {', '.join(have) or '(none)'}",
            )
        if not ppath.is_file():
            have = sorted(p.name.split("_")[0] for p in pdir.glob("*_electricity_prices_2023.csv"))
            raise InputError(
                f"no price file for zone {z} ({ppath.name})",
                source="--price-dir",
                fix=f"zones with prices there: {', '.join(have) or '(none)'}",
            )
        c_start, c_vals, _ = _read_hourly(cpath, CARBON_COLUMN)
        p_start, p_vals, offset_h = _read_hourly(ppath, PRICE_COLUMN, usd_to_cny / 1000.0)
        lat, lon, city = ZONE_CITIES[z]
        sites.append(
            Site(
                id=z,
                name=f"{z} ({city})",
                hub=z,
                province=z,
                jurisdiction=Jurisdiction.OVERSEAS,
                latitude=lat,
                longitude=lon,
                role=Role.WEST,
                pue=DEFAULT_PUE,
                security_level=3,
                pools=(Pool("A100", capacity, host_power_w=DEFAULT_HOST_POWER_W, assumed=True),),
                price=cast(
                    Signal, SeriesSignal(p_start, 3600, p_vals, unit="CNY/kWh", source=str(ppath))
                ),
                carbon=cast(
                    Signal, SeriesSignal(c_start, 3600, c_vals, unit="gCO2/kWh", source=str(cpath))
                ),
                utc_offset_h=offset_h,
                sources={
                    "carbon": f"Electricity Maps hourly 2023, direct: {cpath.name}",
                    "price": f"wholesale USD/MWh x {usd_to_cny} CNY/USD: {ppath.name}",
                    "capacity": f"assumption: {capacity} A100 (--capacity)",
                    "pue": f"assumption: {DEFAULT_PUE}",
                    "location": f"assumption: reference city {city}",
                },
            )
        )
    measured: dict[tuple[str, str], float] = {}
    lat_source = ""
    if latency is not None:
        measured = read_gcp_latency(Path(latency), zones)
        lat_source = f"GCP inter-region RTT: {Path(latency).name}"
    coords = {z: ZONE_CITIES[z][:2] for z in zones}
    links = ZoneLinks(measured, coords, lat_source, DEFAULT_EGRESS_USD_PER_GB * usd_to_cny)
    defaults = tuple(
        f"{a}-{b}: RTT modelled {links.modelled_ms(a, b):.0f} ms (no measurement)"
        for i, a in enumerate(zones)
        for b in zones[i + 1 :]
        if (a, b) not in measured
    )
    info = ZoneNetworkInfo(
        zones=tuple(zones),
        measured_pairs=len(measured) // 2,
        defaults=defaults,
        assumptions=(
            f"capacity: {capacity} A100 per zone (assumed, --capacity)",
            f"PUE {DEFAULT_PUE}, host power {DEFAULT_HOST_POWER_W:g} W per accelerator, "
            "MLPS level 3 (assumed)",
            f"bandwidth between zones {DEFAULT_BANDWIDTH_GBPS:g} Gb/s, egress "
            f"{DEFAULT_EGRESS_USD_PER_GB} USD/GB (assumed)",
            "RTT without a measurement: great-circle distance x 1.5 at 200 km/ms + 2 ms (modelled)",
        ),
    )
    net = Network(
        name="zones:" + ",".join(zones),
        sites=tuple(sites),
        accelerators={"A100": A100},
        links=links,
        usd_to_cny=usd_to_cny,
        reference_accelerator="A100",
        source=f"carbon {cdir}, prices {pdir}" + (f", latency {latency}" if latency else ""),
    )
    return net, info
