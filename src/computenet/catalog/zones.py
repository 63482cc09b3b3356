"""Build a network from grid zones: one site per zone, with that zone's hourly carbon and price.

``build_zone_network(["SG", "JP-TK"], carbon_dir, price_dir, latency=..., capacity=64)``
reads, for every zone ``Z``:

* ``carbon_dir/Z_2023_hourly.csv`` — Electricity Maps hourly carbon intensity (UTC), the
  layout of ``data/carbon/greendcc_ci_2023``; the *direct* (operational) column is used;
* ``price_dir/Z_electricity_prices_2023.csv`` — hourly wholesale price in USD/MWh (UTC and
  local time), the layout of ``data/price/greendcc_prices_2023_utc_usd``; converted to
  CNY/kWh at ``usd_to_cny``; the zone's UTC offset is read from its first local time.

Any zone whose two files exist is accepted: bring your own by writing them in this layout.

Coordinates (where the zone's data centres are) come from ``zone_coords``, a CSV
``zone,latitude,longitude`` (``--zone-coords``), where it names the zone, else from the
built-in reference cities (``ZONE_CITIES``, 18 zones); a zone in neither has none.

Links: round-trip times come from a GCP latency matrix keyed by Electricity Maps zone codes
(``data/latency/gcp_latency_matrix_by_emaps_zone.csv``) where it has both zones, with the
aliases that file needs (AUS-NSW is AU-NSW, AUS-VIC is AU-VIC, DE is DE-LU, BR-CS stands for
BR-SP, IN-MH for IN-WE). For a pair it lacks, or with no latency file, the RTT is *modelled*
from the great-circle distance between the two zones' coordinates, a route factor of 1.5 and
light in fibre at 200 km/ms, plus 2 ms; where either zone has no coordinates it is the
documented default ``DEFAULT_RTT_MS``. Every pair that was not measured is listed, with the
value used and why, in ``ZoneNetworkInfo.defaults`` (the CLI prints them and the report and
JSON carry them as network notes). Bandwidth and egress price are assumptions stated in
``DEFAULT_BANDWIDTH_GBPS`` and ``DEFAULT_EGRESS_USD_PER_GB``.

The series are read by ``computenet.signals`` (``load_emaps_carbon``,
``load_price_usd_per_mwh``), the links are a ``computenet.network.Links`` over the GCP matrix
and ``DistanceModel(1.5, 2 ms)``, so a bad file gives the same ``SignalFileError`` (file,
line, fix) as anywhere else.

Every site has ``capacity`` A100s (an assumed capacity, marked ``assumed``), PUE
``DEFAULT_PUE`` and MLPS level 3 (both assumptions), jurisdiction overseas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from computenet.catalog.accelerators import KNOWN_ACCELERATORS
from computenet.errors import InputError
from computenet.model import (
    Jurisdiction,
    Network,
    Pool,
    Role,
    Signal,
    Site,
)
from computenet.network import (
    DistanceModel,
    LatencyMatrix,
    Links,
    PairLink,
    Place,
    read_gcp_zone_matrix,
)
from computenet.signals import load_emaps_carbon, load_price_usd_per_mwh, price_file_utc_offset_h
from computenet.textfile import CsvFile

DEFAULT_PUE = 1.2  # assumption: a modern hyperscale data centre
DEFAULT_HOST_POWER_W = 100.0  # assumption: host share per accelerator
DEFAULT_BANDWIDTH_GBPS = 10.0  # assumption: a 10 Gb/s bulk-transfer share between zones
DEFAULT_EGRESS_USD_PER_GB = 0.08  # assumption: typical cloud inter-region egress
ROUTE_FACTOR = 1.5  # fibre routes are longer than the great circle
OVERHEAD_MS = 2.0
DEFAULT_RTT_MS = 150.0
"""RTT (ms) between two zones when no matrix measures the pair and one of them has no
coordinates. Assumption: the median RTT over all pairs of the GCP zone matrix
(``gcp_latency_matrix_by_emaps_zone.csv``, 5 to 343 ms) is 139 ms, rounded up. Give
``--zone-coords`` to model the pair from the distance instead."""

A100 = KNOWN_ACCELERATORS["A100"]

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
LATENCY_ALIASES = {
    "AUS-NSW": "AU-NSW",
    "AUS-VIC": "AU-VIC",
    "DE": "DE-LU",
    "BR-CS": "BR-SP",
    "IN-MH": "IN-WE",
}


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
    m = read_gcp_zone_matrix(path, aliases=LATENCY_ALIASES)
    want = set(zones)
    return {k: v for k, v in m.rtt_ms.items() if k[0] in want and k[1] in want}


def read_zone_coords(path: str | Path) -> dict[str, tuple[float, float]]:
    """``zone -> (latitude, longitude)`` from a CSV ``zone,latitude,longitude`` (degrees)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            "zone coordinates file not found",
            source=str(p),
            fix="pass a CSV with the header zone,latitude,longitude",
        )
    table = CsvFile(p)
    table.require(("zone", "latitude", "longitude"))
    out: dict[str, tuple[float, float]] = {}
    for line, row in table.dicts():
        zone = row["zone"].strip()
        if not zone or zone in out:
            raise table.fail(f"zone {zone!r} is empty or listed twice", line, "list each once")
        lat_lon = []
        for col, limit in (("latitude", 90.0), ("longitude", 180.0)):
            text = row[col].strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and -limit <= value <= limit):
                raise table.fail(
                    f"{col} {text!r} of zone {zone} is not a number of degrees in "
                    f"[-{limit:g}, {limit:g}]",
                    line,
                    "write decimal degrees, e.g. 37.57,126.98",
                )
            lat_lon.append(value)
        out[zone] = (lat_lon[0], lat_lon[1])
    return out


def _zone_files(z: str, cdir: Path, pdir: Path) -> tuple[Path, Path]:
    """The carbon and price files of zone ``z``, or an error listing the zones that have them."""
    cpath = cdir / f"{z}_2023_hourly.csv"
    ppath = pdir / f"{z}_electricity_prices_2023.csv"
    if not cpath.is_file():
        have = sorted(p.name.split("_")[0] for p in cdir.glob("*_2023_hourly.csv"))
        raise InputError(
            f"no carbon file for zone {z} ({cpath.name})",
            source="--carbon-dir",
            fix=f"write it in the layout of data/carbon/greendcc_ci_2023; zones with carbon "
            f"data there: {', '.join(have) or '(none)'}",
        )
    if not ppath.is_file():
        have = sorted(p.name.split("_")[0] for p in pdir.glob("*_electricity_prices_2023.csv"))
        raise InputError(
            f"no price file for zone {z} ({ppath.name})",
            source="--price-dir",
            fix=f"write it in the layout of data/price/greendcc_prices_2023_utc_usd; zones "
            f"with prices there: {', '.join(have) or '(none)'}",
        )
    return cpath, ppath


def _zone_site(
    z: str,
    cdir: Path,
    pdir: Path,
    where: tuple[float, float, str] | None,
    capacity: int,
    usd_to_cny: float,
) -> Site:
    """One zone's site: its hourly carbon and price, and its place (``None``: unknown)."""
    cpath, ppath = _zone_files(z, cdir, pdir)
    carbon = load_emaps_carbon(cpath)
    price = load_price_usd_per_mwh(ppath, usd_to_cny=usd_to_cny)
    offset_h = price_file_utc_offset_h(ppath)
    # A zone without coordinates sits at (0, 0) for the record only: no link is modelled
    # from it (its unmeasured pairs take DEFAULT_RTT_MS).
    lat, lon, label = where if where is not None else (0.0, 0.0, "")
    location = (
        f"assumption: {label}"
        if where is not None
        else f"unknown (no coordinates; unmeasured RTTs are the default {DEFAULT_RTT_MS:g} ms)"
    )
    return Site(
        id=z,
        name=f"{z} ({label})" if label else z,
        hub=z,
        province=z,
        jurisdiction=Jurisdiction.OVERSEAS,
        latitude=lat,
        longitude=lon,
        role=Role.WEST,
        pue=DEFAULT_PUE,
        security_level=3,
        pools=(Pool("A100", capacity, host_power_w=DEFAULT_HOST_POWER_W, assumed=True),),
        price=cast(Signal, price),
        carbon=cast(Signal, carbon),
        utc_offset_h=offset_h,
        sources={
            "carbon": f"Electricity Maps hourly 2023, direct: {cpath.name}",
            "price": f"wholesale USD/MWh x {usd_to_cny} CNY/USD: {ppath.name}",
            "capacity": f"assumption: {capacity} A100 (--capacity)",
            "pue": f"assumption: {DEFAULT_PUE}",
            "location": location,
        },
    )


def _zone_places(
    zones: list[str], zone_coords: str | Path | Mapping[str, tuple[float, float]] | None
) -> dict[str, tuple[float, float, str]]:
    """Each zone's coordinates and where they come from: the coordinates file first, then
    the built-in reference cities; a zone in neither is left out."""
    given: Mapping[str, tuple[float, float]] = {}
    if isinstance(zone_coords, str | Path):
        given = read_zone_coords(zone_coords)
    elif zone_coords is not None:
        given = zone_coords
    out: dict[str, tuple[float, float, str]] = {}
    for z in zones:
        if z in given:
            out[z] = (*given[z], "coordinates from --zone-coords")
        elif z in ZONE_CITIES:
            lat, lon, city = ZONE_CITIES[z]
            out[z] = (lat, lon, f"reference city {city}")
    return out


def _zone_links(
    zones: list[str],
    places: Mapping[str, tuple[float, float, str]],
    matrix: LatencyMatrix | None,
    usd_to_cny: float,
) -> tuple[Links, int, tuple[str, ...]]:
    """The links, the number of measured pairs, and one line per pair that was not
    measured (modelled from coordinates, or the default where a zone has none)."""
    model = DistanceModel(ROUTE_FACTOR, OVERHEAD_MS)
    measured = 0
    defaults: list[str] = []
    pairs: dict[frozenset[str], PairLink] = {}
    for i, a in enumerate(zones):
        for b in zones[i + 1 :]:
            if matrix is not None and matrix.get(a, b) is not None:
                measured += 1
            elif a in places and b in places:
                ms = model.rtt_ms(*places[a][:2], *places[b][:2])
                defaults.append(
                    f"{a}-{b}: RTT modelled {ms:.0f} ms from coordinates (no measurement)"
                )
            else:
                lacking = ", ".join(z for z in (a, b) if z not in places)
                pairs[frozenset((a, b))] = PairLink(
                    rtt_ms=DEFAULT_RTT_MS,
                    kind="modelled",
                    source=f"default {DEFAULT_RTT_MS:g} ms: no measurement, no coordinates "
                    f"for {lacking}",
                )
                defaults.append(
                    f"{a}-{b}: RTT default {DEFAULT_RTT_MS:g} ms (no measurement, no coordinates "
                    f"for {lacking}; give --zone-coords)"
                )
    links = Links(
        places={
            z: Place(z, *(places[z][:2] if z in places else (0.0, 0.0)), latency_key=z)
            for z in zones
        },
        model=model,
        measured=matrix,
        bandwidth_gbps_default=DEFAULT_BANDWIDTH_GBPS,
        egress_cny_per_gb_default=DEFAULT_EGRESS_USD_PER_GB * usd_to_cny,
        pairs=pairs,
        source="assumed bandwidth and egress price (computenet.catalog.zones)",
    )
    return links, measured, tuple(defaults)


def build_zone_network(
    zones: list[str],
    carbon_dir: str | Path,
    price_dir: str | Path,
    *,
    latency: str | Path | None = None,
    capacity: int = 64,
    usd_to_cny: float = 7.1,
    zone_coords: str | Path | Mapping[str, tuple[float, float]] | None = None,
) -> tuple[Network, ZoneNetworkInfo]:
    """A network of one site per zone; see the module docstring for sources and defaults."""
    if not zones:
        raise InputError("no zones given", source="--zones", fix="e.g. --zones SG,JP-TK,DE-LU")
    if len(set(zones)) != len(zones):
        raise InputError("a zone is listed twice", source="--zones")
    if capacity < 1:
        raise InputError("capacity must be at least 1", source="--capacity")
    cdir, pdir = Path(carbon_dir), Path(price_dir)
    places = _zone_places(zones, zone_coords)
    sites = [_zone_site(z, cdir, pdir, places.get(z), capacity, usd_to_cny) for z in zones]
    matrix: LatencyMatrix | None = None
    if latency is not None:
        matrix = read_gcp_zone_matrix(Path(latency), aliases=LATENCY_ALIASES)
    links, measured, defaults = _zone_links(zones, places, matrix, usd_to_cny)
    info = ZoneNetworkInfo(
        zones=tuple(zones),
        measured_pairs=measured,
        defaults=defaults,
        assumptions=(
            f"capacity: {capacity} A100 per zone (assumed, --capacity)",
            f"PUE {DEFAULT_PUE}, host power {DEFAULT_HOST_POWER_W:g} W per accelerator, "
            "MLPS level 3 (assumed)",
            f"bandwidth between zones {DEFAULT_BANDWIDTH_GBPS:g} Gb/s, egress "
            f"{DEFAULT_EGRESS_USD_PER_GB} USD/GB (assumed)",
            "RTT without a measurement: great-circle distance x 1.5 at 200 km/ms + 2 ms "
            f"(modelled); {DEFAULT_RTT_MS:g} ms where a zone has no coordinates (default)",
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
