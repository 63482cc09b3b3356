"""Modelled hourly carbon intensity where no hourly series is published (mainland China).

No hourly carbon or generation-mix series exists publicly for mainland-Chinese provinces,
only the official annual emission factor (MEE/NBS). This module gives a province an hourly
shape from its installed solar and wind capacity, scaled so that its mean is the official
annual factor. Every series it makes is labelled **modelled**.

Method (one formula, the same for the validation zones and the provinces):

* capacity factors: solar from pvlib's clear-sky irradiance (Ineichen model with its
  Linke-turbidity climatology) at the zone's representative point, mid-hour, divided by
  1,000 W/m2 and times a performance ratio of 0.8 (``SOLAR_PERFORMANCE_RATIO``, an
  assumption); no clouds, so it is an upper bound of output on each day. Wind: a constant
  capacity factor (``WIND_CAPACITY_FACTOR``): neither the shared data nor a library we can
  use offline gives hourly wind speeds for Chinese provinces (the shared wind files are one
  US typical-year site and turbine power curves), so wind sets the level of variable
  output, not its hourly shape;
* variable renewable output ``R(t) = S * cf_solar(t) + W * cf_wind``, relative to its mean:
  ``rho(t) = R(t) / mean(R)``;
* it displaces the rest of the mix one for one at a steady demand: with ``v`` the variable
  renewables' share of consumption and ``A`` the annual factor, the intensity of the rest is
  ``A / (1 - v)`` and ``CI(t) = A * (1 - v * rho(t)) / (1 - v)``, clipped at 0 and scaled
  back to mean ``A``.

``v`` for a validation zone comes from its generation data or reported figures (named per
zone); for a province it is estimated (``province_model``): the smaller of its non-fossil
share (1 - annual factor / the national fossil-fired factor, 827.3 g/kWh in 2023, MEE/NBS
[V2] CHINA_FACTS.md §3) and wind+solar's share of wind+solar+coal output from the 2020
installed capacities in ``data/renewables/pypsa_china_province_*`` (typed below with their
source) at the capacity factors above and coal at 4,466 h a year (2023 thermal utilisation
hours, China Electricity Council [R]). ``model_validation`` reports the error and
correlation on DE, GB and FR, where the true hourly series exists.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from computenet.errors import InputError, MissingDependencyError, UnknownNameError
from computenet.model import HOUR_S, FloatArray, Network, Signal, Site
from computenet.signals.base import ConstantSignal, SeriesSignal

CARBON_MODELS = ("annual", "hourly")
"""``--carbon-model``: ``annual`` (the default) keeps the official annual factor, constant
over the year; ``hourly`` replaces it, for provinces in ``PROVINCE_CAPACITY_MW``, by the
modelled hourly series of this module (labelled modelled)."""

SOLAR_PERFORMANCE_RATIO = 0.8
"""assumption: PV output per unit of plane irradiance at 1,000 W/m2 (a typical performance
ratio); the clear-sky irradiance is on the horizontal, so tilt gains are ignored."""

WIND_CAPACITY_FACTOR = 0.254
"""assumption: China's 2023 wind utilisation, about 2,225 h a year (China Electricity
Council [R]); used for every zone, including the validation zones."""

COAL_HOURS_PER_YEAR = 4466.0
"""China's 2023 thermal power utilisation hours (China Electricity Council [R])."""

FOSSIL_G_PER_KWH_CN_2023 = 827.3
"""National fossil-fired emission factor 2023 (MEE/NBS, CHINA_FACTS.md §3 [V2])."""

VRE_SHARE_MAX = 0.6
"""Variable renewables' share of consumption is capped here: the formula's intensity of the
rest of the mix, ``A / (1 - v)``, grows without bound as ``v`` nears 1."""

PROVINCE_CAPACITY_MW: Mapping[str, tuple[float, float, float]] = {
    # province: (solar, onshore wind, offshore wind) MW in 2020, and coal in PROVINCE_COAL_MW.
    # Source: PyPSA-China (data/renewables/pypsa_china_province_{solar,onwind,offwind}_
    # capacity_MW.csv, column 2020), typed here as facts; a test checks them against the file.
    "Beijing": (620.0, 190.0, 0.0),
    "Tianjin": (1640.0, 753.0, 97.0),
    "Hebei": (21900.0, 20148.0, 2592.0),
    "Shanghai": (1370.0, 727.0, 93.0),
    "Jiangsu": (16840.0, 13707.0, 1763.0),
    "Zhejiang": (15170.0, 1648.0, 212.0),
    "Anhui": (13700.0, 4120.0, 0.0),
    "Guangdong": (7970.0, 5006.0, 644.0),
    "Sichuan": (1910.0, 4260.0, 0.0),
    "Chongqing": (670.0, 970.0, 0.0),
    "Guizhou": (10570.0, 5800.0, 0.0),
    "Inner Mongolia": (12370.0, 37860.0, 0.0),
    "Gansu": (9820.0, 13730.0, 0.0),
    "Ningxia": (11970.0, 13770.0, 0.0),
}
PROVINCE_COAL_MW: Mapping[str, float] = {
    # Same source, pypsa_china_province_coal_capacity_MW.csv, column 2020.
    "Beijing": 4640.0,
    "Tianjin": 1790.0,
    "Hebei": 9930.0,
    "Shanghai": 16140.0,
    "Jiangsu": 20860.0,
    "Zhejiang": 32980.0,
    "Anhui": 33610.0,
    "Guangdong": 78260.0,
    "Sichuan": 15960.0,
    "Chongqing": 13420.0,
    "Guizhou": 34700.0,
    "Inner Mongolia": 48160.0,
    "Gansu": 9640.0,
    "Ningxia": 20470.0,
}
PYPSA_REGION = {"Inner Mongolia": "InnerMongolia"}
"""The province's name in the PyPSA-China files where it differs."""


def _pvlib() -> Any:
    try:
        import pvlib
    except ImportError:
        raise MissingDependencyError("pvlib", "", "modelled solar output") from None
    return pvlib


@functools.lru_cache(maxsize=64)
def solar_capacity_factor(latitude: float, longitude: float, year: int) -> SeriesSignal:
    """Hourly clear-sky solar capacity factor (0-1) at a point over a UTC year: pvlib's
    Ineichen clear-sky GHI at mid-hour / 1,000 W/m2 x ``SOLAR_PERFORMANCE_RATIO``.
    Modelled (no clouds). Repeats outside the year (``SeriesSignal`` wraps)."""
    pvlib = _pvlib()
    import pandas as pd

    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    hours = int((dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC) - start).total_seconds()) // HOUR_S
    times = pd.date_range(start + dt.timedelta(minutes=30), periods=hours, freq="h")
    ghi = pvlib.location.Location(latitude, longitude).get_clearsky(times)["ghi"]
    cf = np.clip(ghi.to_numpy(dtype=np.float64) / 1000.0 * SOLAR_PERFORMANCE_RATIO, 0.0, 1.0)
    return SeriesSignal(
        int(start.timestamp()),
        HOUR_S,
        cf,
        unit="share",
        source=f"modelled: pvlib clear-sky (Ineichen) at {latitude:.2f},{longitude:.2f}, "
        f"{year}, x {SOLAR_PERFORMANCE_RATIO:g} performance ratio",
    )


@dataclass(frozen=True)
class HourlyCarbonModel:
    """The inputs of the modelled hourly intensity of one zone (see the module docstring)."""

    zone: str
    annual_g_per_kwh: float
    solar_mw: float
    wind_mw: float
    vre_share: float
    latitude: float
    longitude: float
    source: str = ""

    def series(self, year: int) -> SeriesSignal:
        """The modelled hourly intensity (gCO2/kWh) over the UTC ``year``; its mean is
        ``annual_g_per_kwh``."""
        cf = solar_capacity_factor(self.latitude, self.longitude, year)
        values = modelled_intensity(
            self.annual_g_per_kwh, self.solar_mw * cf.values, self.wind_mw, self.vre_share
        )
        return SeriesSignal(
            cf.start_s,
            HOUR_S,
            values,
            unit="gCO2/kWh",
            source=f"modelled hourly carbon for {self.zone}: {self.source}",
        )


def modelled_intensity(
    annual_g_per_kwh: float, solar_output_mw: FloatArray, wind_mw: float, vre_share: float
) -> FloatArray:
    """``CI(t) = A (1 - v rho(t)) / (1 - v)``, clipped at 0 and scaled back to mean ``A``;
    ``solar_output_mw`` is solar capacity x capacity factor per hour."""
    v = min(max(vre_share, 0.0), VRE_SHARE_MAX)
    output = solar_output_mw + wind_mw * WIND_CAPACITY_FACTOR
    mean = float(output.mean())
    if mean <= 0 or v == 0:
        return np.full(output.size, annual_g_per_kwh, dtype=np.float64)
    rho = output / mean
    ci = np.clip(annual_g_per_kwh * (1.0 - v * rho) / (1.0 - v), 0.0, None)
    m = float(ci.mean())
    return np.asarray(ci * (annual_g_per_kwh / m) if m > 0 else ci, dtype=np.float64)


def province_model(
    province: str, annual_g_per_kwh: float, latitude: float, longitude: float
) -> HourlyCarbonModel:
    """The model of a mainland province: capacities from ``PROVINCE_CAPACITY_MW``, ``v``
    estimated as the module docstring says."""
    if province not in PROVINCE_CAPACITY_MW:
        raise UnknownNameError("province with capacity data", province, PROVINCE_CAPACITY_MW)
    solar, onwind, offwind = PROVINCE_CAPACITY_MW[province]
    wind = onwind + offwind
    cf = solar_capacity_factor(latitude, longitude, 2023)
    vre = solar * float(cf.values.mean()) + wind * WIND_CAPACITY_FACTOR
    coal = PROVINCE_COAL_MW[province] * COAL_HOURS_PER_YEAR / 8760.0
    non_fossil = max(0.0, 1.0 - annual_g_per_kwh / FOSSIL_G_PER_KWH_CN_2023)
    v = min(non_fossil, vre / (vre + coal) if vre + coal > 0 else 0.0)
    return HourlyCarbonModel(
        province,
        annual_g_per_kwh,
        solar,
        wind,
        v,
        latitude,
        longitude,
        source=f"{solar:g} MW solar, {wind:g} MW wind (PyPSA-China 2020), variable share "
        f"{v:.3f} (estimated), scaled to the annual factor {annual_g_per_kwh:g} gCO2/kWh",
    )


def check_carbon_model(mode: str, source: str = "--carbon-model") -> str:
    if mode not in CARBON_MODELS:
        raise UnknownNameError("carbon model", mode, CARBON_MODELS, source=source)
    return mode


def apply_carbon_model(network: Network, mode: str = "annual", *, year: int = 2023) -> Network:
    """The network with each mainland site of a province in ``PROVINCE_CAPACITY_MW`` and a
    constant (annual) grid factor given the modelled hourly series (``mode="hourly"``); other
    sites are unchanged. ``annual`` returns the network as is."""
    check_carbon_model(mode)
    if mode == "annual":
        return network
    sites = tuple(_modelled_site(s, year) for s in network.sites)
    return dataclasses.replace(network, sites=sites)


def _modelled_site(site: Site, year: int) -> Site:
    grid = site.grid_carbon if site.grid_carbon is not None else site.carbon
    if site.province not in PROVINCE_CAPACITY_MW or not isinstance(grid, ConstantSignal):
        return site
    model = province_model(site.province, grid.value, site.latitude, site.longitude)
    modelled = model.series(year)
    series = cast(Signal, modelled)
    sources = dict(site.sources)
    sources["carbon"] = f"{modelled.source}; annual factor: {sources.get('carbon', '')}"
    if site.grid_carbon is not None:  # declared green supply: re-mixed by apply_green_supply
        return dataclasses.replace(site, grid_carbon=series, sources=sources)
    return dataclasses.replace(site, carbon=series, sources=sources)


def is_modelled(signal: Any) -> bool:
    """Whether a carbon signal is (or mixes) a modelled hourly series."""
    grid = getattr(signal, "grid", None)
    if grid is not None:
        return is_modelled(grid)
    return str(getattr(signal, "source", "")).startswith("modelled")


# ----------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class ValidationZone:
    """A zone with a true hourly series, and the model's inputs for it."""

    zone: str
    file: str  # under data/carbon
    latitude: float
    longitude: float
    solar_mw: float
    wind_mw: float
    vre_share: float | None  # None: from the zone's production file
    production: str = ""  # under data/carbon, for vre_share
    source: str = ""


VALIDATION_ZONES = (
    ValidationZone(
        "DE",
        "letswaitawhile_ger_ci.csv",
        51.0,
        10.0,
        53_800.0,
        62_200.0,
        0.33,
        source="assumption from reported 2020 figures [R, IRENA Renewable Capacity Statistics "
        "2021; wind and solar about a third of German generation in 2020]: 53.8 GW solar, "
        "62.2 GW wind",
    ),
    ValidationZone(
        "GB",
        "letswaitawhile_gb_ci.csv",
        53.0,
        -1.5,
        13_500.0,
        24_000.0,
        None,
        "letswaitawhile_gb_production.csv",
        source="reported 2020 capacities [R, IRENA 2021]: 13.5 GW solar, 24 GW wind; "
        "variable share from the zone's 2020 generation file",
    ),
    ValidationZone(
        "FR",
        "letswaitawhile_fr_ci.csv",
        46.5,
        2.5,
        10_400.0,
        17_600.0,
        None,
        "letswaitawhile_fr_production.csv",
        source="reported 2020 capacities [R, IRENA 2021]: 10.4 GW solar, 17.6 GW wind; "
        "variable share from the zone's 2020 generation file",
    ),
)
VALIDATION_YEAR = 2020
_IMPORT_COLUMNS = {"FR", "NL", "IE", "BE", "DE", "GB", "CH", "IT", "ES"}


def _read_hourly(path: Path, year: int) -> FloatArray:
    """The file's ``Carbon Intensity`` column as hourly means over the UTC ``year`` (the
    letswaitawhile files: 15- or 30-minute steps, UTC)."""
    import csv

    start = int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp())
    n = int(dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC).timestamp() - start) // HOUR_S
    sums = np.zeros(n)
    counts = np.zeros(n)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            t = dt.datetime.fromisoformat(row["Time"]).replace(tzinfo=dt.UTC).timestamp()
            k = int(t - start) // HOUR_S
            value = row.get("Carbon Intensity", "")
            if 0 <= k < n and value not in ("", "nan"):
                sums[k] += float(value)
                counts[k] += 1
    if (counts == 0).any():
        missing = int((counts == 0).sum())
        raise InputError(
            f"{missing} hours of {year} have no value", source=str(path), fix="use a full year"
        )
    return np.asarray(sums / counts, dtype=np.float64)


def _vre_share_from_production(path: Path, year: int) -> float:
    """Wind and solar's share of the generation in a letswaitawhile production file over
    ``year`` (import columns, named by country code, excluded)."""
    import csv

    vre = total = 0.0
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        for row in reader:
            if not row[0].startswith(str(year)):
                continue
            for name, cell in zip(header[1:], row[1:], strict=False):
                if name in _IMPORT_COLUMNS or cell in ("", "nan"):
                    continue
                x = float(cell)
                total += x
                if name.startswith(("Solar", "Wind")):
                    vre += x
    return vre / total if total > 0 else 0.0


def validate_zone(zone: ValidationZone, carbon_dir: Path) -> dict[str, Any]:
    """The model against the zone's true hourly series over ``VALIDATION_YEAR``: ``corr``
    (Pearson), ``mape`` (mean absolute percentage error), and the same error of the flat
    annual mean (``mape_flat``), the baseline the model must beat to be worth its name."""
    truth = _read_hourly(carbon_dir / zone.file, VALIDATION_YEAR)
    v = (
        zone.vre_share
        if zone.vre_share is not None
        else _vre_share_from_production(carbon_dir / zone.production, VALIDATION_YEAR)
    )
    model = HourlyCarbonModel(
        zone.zone,
        float(truth.mean()),
        zone.solar_mw,
        zone.wind_mw,
        v,
        zone.latitude,
        zone.longitude,
        zone.source,
    )
    modelled = model.series(VALIDATION_YEAR).values[: truth.size]
    flat = np.full_like(truth, truth.mean())
    return {
        "zone": zone.zone,
        "year": VALIDATION_YEAR,
        "hours": int(truth.size),
        "vre_share": round(v, 4),
        "corr": round(float(np.corrcoef(modelled, truth)[0, 1]), 4),
        "mape": round(_mape(modelled, truth), 4),
        "mape_flat": round(_mape(flat, truth), 4),
        "source": zone.source,
    }


def _mape(pred: FloatArray, truth: FloatArray) -> float:
    ok = truth > 0
    return float(np.mean(np.abs(pred[ok] - truth[ok]) / truth[ok]))


def model_validation(data_dir: Path) -> dict[str, dict[str, Any]]:
    """``validate_zone`` for every ``VALIDATION_ZONES`` entry whose files are under
    ``data_dir/carbon``: ``{zone: {corr, mape, mape_flat, ...}}``. The benchmark's
    ``model_validation`` figures."""
    carbon_dir = Path(data_dir) / "carbon"
    out: dict[str, dict[str, Any]] = {}
    for zone in VALIDATION_ZONES:
        needed = [zone.file, *([zone.production] if zone.production else [])]
        if all((carbon_dir / f).is_file() for f in needed):
            out[zone.zone] = validate_zone(zone, carbon_dir)
    return out


def describe_model(site: Site) -> str | None:
    """A one-line label for a site's modelled carbon, or None when not modelled."""
    grid = site.grid_carbon if site.grid_carbon is not None else site.carbon
    if not is_modelled(grid):
        return None
    return str(getattr(grid, "source", "modelled"))


__all__ = [
    "CARBON_MODELS",
    "PROVINCE_CAPACITY_MW",
    "VALIDATION_ZONES",
    "HourlyCarbonModel",
    "apply_carbon_model",
    "is_modelled",
    "model_validation",
    "modelled_intensity",
    "province_model",
    "solar_capacity_factor",
    "validate_zone",
]
