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
    # A zone without built-in coordinates is refused only for want of its files.
    with pytest.raises(InputError, match=r"no carbon file for zone XX.*layout of"):
        build_zone_network(["XX"], c, p)
    with pytest.raises(InputError, match="capacity"):
        build_zone_network(["SG"], c, p, capacity=0)
    with pytest.raises(InputError, match="zones with carbon data"):
        build_zone_network(["SG"], tmp_path, p)


# --------------------------------------------------------------------------- zones of your own


def write_zone(carbon_dir: Path, price_dir: Path, zone: str, carbon: float, usd: float) -> None:
    """One zone's year of hourly files in the layout of the public data."""
    carbon_dir.mkdir(exist_ok=True)
    price_dir.mkdir(exist_ok=True)
    t0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    direct = "Carbon Intensity gCO₂eq/kWh (direct)"
    c = [f"Datetime (UTC),Zone Id,{direct}"]
    p = ["Datetime (UTC),Datetime (Local),Price (USD/MWh)"]
    for h in range(8760):
        t = t0 + dt.timedelta(hours=h)
        c.append(f"{t:%Y-%m-%d %H:%M:%S},{zone},{carbon + h % 24}")
        local = t.astimezone(dt.timezone(dt.timedelta(hours=9)))
        p.append(f"{t.isoformat(sep=' ')},{local.isoformat(sep=' ')},{usd + h % 7}")
    (carbon_dir / f"{zone}_2023_hourly.csv").write_text("\n".join(c) + "\n", encoding="utf-8")
    (price_dir / f"{zone}_electricity_prices_2023.csv").write_text(
        "\n".join(p) + "\n", encoding="utf-8"
    )


def test_zones_of_your_own_with_coordinates_and_defaults(tmp_path: Path, shared_data: Path) -> None:
    cdir, pdir = tmp_path / "carbon", tmp_path / "price"
    for zone, carbon, usd in (("KR", 430.0, 90.0), ("AU-VIC", 700.0, 60.0), ("XX-NEW", 50.0, 40.0)):
        write_zone(cdir, pdir, zone, carbon, usd)
    coords = tmp_path / "coords.csv"
    coords.write_text("zone,latitude,longitude\nKR,37.57,126.98\nXX-NEW,64.1,-21.9\n")
    net, info = build_zone_network(
        ["KR", "AU-VIC", "XX-NEW"],
        cdir,
        pdir,
        latency=shared_data / "latency/gcp_latency_matrix_by_emaps_zone.csv",
        zone_coords=coords,
        capacity=4,
    )
    assert net.site_ids == ("KR", "AU-VIC", "XX-NEW")
    assert net.site("KR").carbon.at(1672531200) == 430.0
    assert (net.site("KR").latitude, net.site("KR").longitude) == (37.57, 126.98)
    # The GCP matrix measures KR-AU-VIC (it writes AUS-VIC).
    assert net.links.latency("KR", "AU-VIC").kind == "measured"
    # KR-XX-NEW: no measurement, both have coordinates: modelled from the distance.
    assert net.links.latency("KR", "XX-NEW").kind == "modelled"
    assert net.links.latency("KR", "XX-NEW").rtt_ms > 50
    # AU-VIC-XX-NEW: no measurement and AU-VIC has no coordinates: the documented default.
    from computenet.catalog.zones import DEFAULT_RTT_MS

    assert net.links.latency("AU-VIC", "XX-NEW").rtt_ms == DEFAULT_RTT_MS
    text = " | ".join(info.defaults)
    assert "AU-VIC" in text and "no coordinates" in text and f"{DEFAULT_RTT_MS:g} ms" in text
    assert "KR-XX-NEW" in text and "KR-AU-VIC" not in text


def test_bad_zone_coordinates_name_the_line(tmp_path: Path) -> None:
    cdir, pdir = tmp_path / "carbon", tmp_path / "price"
    write_zone(cdir, pdir, "KR", 430.0, 90.0)
    coords = tmp_path / "coords.csv"
    coords.write_text("zone,latitude,longitude\nKR,137.57,126.98\n")
    with pytest.raises(InputError, match=r"line 2.*latitude"):
        build_zone_network(["KR"], cdir, pdir, zone_coords=coords)
