"""Modelled hourly carbon: the formula, the typed capacities against their file, the
validation on zones with a true hourly series, and the label wherever it is used."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import SHARED_DATA

from computenet.catalog import load_network
from computenet.errors import UnknownNameError
from computenet.signals.modelled import (
    PROVINCE_CAPACITY_MW,
    PROVINCE_COAL_MW,
    PYPSA_REGION,
    is_modelled,
    model_validation,
    modelled_intensity,
)

pvlib = pytest.importorskip("pvlib")
T = 1_688_400_000  # 2023-07-03 16:00 UTC


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path


def test_the_formula_keeps_the_annual_mean_and_falls_with_output() -> None:
    solar = np.array([0.0, 0.0, 500.0, 1000.0, 500.0, 0.0])
    ci = modelled_intensity(600.0, solar, 200.0, 0.3)
    assert ci.mean() == pytest.approx(600.0)
    assert ci[3] < ci[2] < ci[0] and ci[0] == ci[1] == ci[5]
    # no variable output, or none of it in the mix: flat at the annual factor
    assert modelled_intensity(600.0, np.zeros(4), 0.0, 0.3).tolist() == [600.0] * 4
    assert modelled_intensity(600.0, solar, 200.0, 0.0).tolist() == [600.0] * 6


def test_typed_capacities_match_the_pypsa_files() -> None:
    folder = _need(SHARED_DATA / "renewables")
    for kind, col in (("solar", 0), ("onwind", 1), ("offwind", 2)):
        with (folder / f"pypsa_china_province_{kind}_capacity_MW.csv").open() as f:
            rows = {r["Region"]: float(r["2020"]) for r in csv.DictReader(f)}
        for prov, caps in PROVINCE_CAPACITY_MW.items():
            assert caps[col] == rows[PYPSA_REGION.get(prov, prov)], (kind, prov)
    with (folder / "pypsa_china_province_coal_capacity_MW.csv").open() as f:
        coal = {r["Region"]: float(r["2020"]) for r in csv.DictReader(f)}
    for prov, mw in PROVINCE_COAL_MW.items():
        assert mw == coal[PYPSA_REGION.get(prov, prov)], prov


def test_validation_on_zones_with_a_true_hourly_series() -> None:
    _need(SHARED_DATA / "carbon" / "letswaitawhile_ger_ci.csv")
    got = model_validation(SHARED_DATA)
    assert set(got) == {"DE", "GB", "FR"}
    for zone, v in got.items():
        assert v["hours"] == 8784 and v["year"] == 2020, zone
        assert -1.0 <= v["corr"] <= 1.0 and v["mape"] > 0 and v["mape_flat"] > 0, zone
    # Germany's solar fleet shapes its day: the model correlates with the truth there
    assert got["DE"]["corr"] > 0.2


def test_hourly_model_is_off_unless_chosen_and_labelled_when_on() -> None:
    annual = load_network("china")
    assert not any(is_modelled(s.carbon) for s in annual.sites)
    hourly = load_network("china", carbon_model="hourly")
    q = hourly.site("qingyang")
    assert is_modelled(q.carbon) and "modelled" in q.sources["carbon"]
    day = q.carbon.window(T - 86400, T)
    assert day.max() > day.min()
    # the year's mean is still the official annual factor
    year = q.carbon.window(1_672_531_200, 1_672_531_200 + 365 * 86400)
    assert year.mean() == pytest.approx(447.1, rel=1e-6)
    # Horinger: modelled grid mixed with its reported green share
    h = hourly.site("horinger")
    assert is_modelled(h.carbon) and h.grid_carbon is not None
    assert h.carbon.at(T) == pytest.approx(h.grid_carbon.at(T) * (1 - 0.8457))
    assert not is_modelled(hourly.site("hong-kong").carbon)  # no capacity data: unchanged
    with pytest.raises(UnknownNameError, match="hourly"):
        load_network("china", carbon_model="daily")
