"""Zone networks built from the public hourly carbon and price files."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from computenet.catalog.zones import build_zone_network
from computenet.errors import InputError

ZONES = ["SG", "JP-TK", "US-NY-NYIS"]


@pytest.fixture(scope="module")
def zone_net(shared_data: Path):
    return build_zone_network(
        ZONES,
        shared_data / "carbon/greendcc_ci_2023",
        shared_data / "price/greendcc_prices_2023_utc_usd",
        latency=shared_data / "latency/gcp_latency_matrix_by_emaps_zone.csv",
        capacity=8,
        usd_to_cny=7.0,
    )


def test_signals_match_file_rows(zone_net, shared_data: Path) -> None:
    net, _ = zone_net
    sg = net.site("SG")
    rows = list(
        csv.DictReader(
            (
                shared_data / "price/greendcc_prices_2023_utc_usd/SG_electricity_prices_2023.csv"
            ).open()
        )
    )
    for r in rows[::997]:
        t = int(dt.datetime.fromisoformat(r["Datetime (UTC)"]).timestamp())
        assert sg.price.at(t) == pytest.approx(float(r["Price (USD/MWh)"]) * 7.0 / 1000)
    crow = list(
        csv.DictReader((shared_data / "carbon/greendcc_ci_2023/JP-TK_2023_hourly.csv").open())
    )[4321]
    t = int(dt.datetime.fromisoformat(crow["Datetime (UTC)"] + "+00:00").timestamp())
    assert net.site("JP-TK").carbon.at(t) == pytest.approx(
        float(crow["Carbon Intensity gCO₂eq/kWh (direct)"])
    )
    assert sg.utc_offset_h == 8.0 and net.site("US-NY-NYIS").utc_offset_h == -5.0
    assert all(s.capacity("A100") == 8 and s.pools[0].assumed for s in net.sites)


def test_measured_latency_and_reported_defaults(zone_net) -> None:
    net, info = zone_net
    sg_tk = net.links.latency("SG", "JP-TK")
    assert sg_tk.kind == "measured" and sg_tk.rtt_ms == 69.0
    # the GCP matrix has no US-NY-NYIS row: modelled, never faster than light in fibre
    ny = net.links.latency("SG", "US-NY-NYIS")
    assert ny.kind == "modelled" and ny.rtt_ms > 2 * 15300 / 200
    assert len(info.defaults) == 2 and all("US-NY-NYIS" in d for d in info.defaults)
    assert any("assumed" in a for a in info.assumptions)


def test_bad_zone_input_says_the_fix(shared_data: Path, tmp_path: Path) -> None:
    c, p = (
        shared_data / "carbon/greendcc_ci_2023",
        shared_data / "price/greendcc_prices_2023_utc_usd",
    )
    with pytest.raises(InputError, match="no price file for zone GB"):
        build_zone_network(["GB"], c, p)
    with pytest.raises(InputError, match="reference city"):
        build_zone_network(["XX"], c, p)
    with pytest.raises(InputError, match="capacity"):
        build_zone_network(["SG"], c, p, capacity=0)
    with pytest.raises(InputError, match="zones with carbon data"):
        build_zone_network(["SG"], tmp_path, p)
