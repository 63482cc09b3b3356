"""Loaders of the public carbon and price files, checked against rows of the files, and the
errors a bad file gives."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from computenet.errors import SignalFileError, UnknownNameError
from computenet.signals import (
    load_cn_spot_15min,
    load_csv_series,
    load_emaps_carbon,
    load_price_usd_per_mwh,
    load_series,
    price_file_utc_offset_h,
)

YEAR_START = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp())
CARBON = "carbon/greendcc_ci_2023"
PRICES = "price/greendcc_prices_2023_utc_usd"
SPOT = "price/datawhale2024_cn_province_spot_15min_demand_clearing_price.csv"
DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def utc_s(text: str) -> int:
    t = dt.datetime.fromisoformat(text)
    return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp())


def test_every_carbon_file_is_8760_hourly_points_in_utc(shared_data: Path) -> None:
    files = sorted((shared_data / CARBON).glob("*_2023_hourly.csv"))
    assert len(files) == 11
    for f in files:
        s = load_emaps_carbon(f)
        assert s.values.size == 8760 and s.step_s == 3600, f.name
        assert s.start_s == YEAR_START and s.unit == "gCO2/kWh"
        table = rows(f)
        for r in (table[0], table[1234], table[5000], table[-1]):
            assert s.at(utc_s(r["Datetime (UTC)"])) == float(r[DIRECT]), f.name
    lca = load_emaps_carbon(files[0], column="lca")
    first = rows(files[0])[0]
    assert lca.at(YEAR_START) == float(first["Carbon Intensity gCO₂eq/kWh (LCA)"])
    with pytest.raises(UnknownNameError, match="direct, lca"):
        load_emaps_carbon(files[0], column="marginal")


def test_every_price_file_is_8760_hourly_points_converted_explicitly(shared_data: Path) -> None:
    files = sorted((shared_data / PRICES).glob("*_electricity_prices_2023.csv"))
    assert len(files) == 17
    for f in files:
        s = load_price_usd_per_mwh(f, usd_to_cny=7.0)
        assert s.values.size == 8760 and s.step_s == 3600 and s.unit == "CNY/kWh", f.name
        table = rows(f)
        assert s.start_s == utc_s(table[0]["Datetime (UTC)"])
        for r in (table[0], table[4321], table[-1]):
            t = utc_s(r["Datetime (UTC)"])
            assert s.at(t) == pytest.approx(float(r["Price (USD/MWh)"]) * 7.0 / 1000), f.name
    # India's market clears on the half hour: still 8,760 hourly points, in UTC
    inwe = load_price_usd_per_mwh(
        shared_data / PRICES / "IN-WE_electricity_prices_2023.csv", usd_to_cny=7
    )
    assert inwe.start_s == YEAR_START + 1800
    assert (
        price_file_utc_offset_h(shared_data / PRICES / "IN-WE_electricity_prices_2023.csv") == 5.5
    )
    assert price_file_utc_offset_h(shared_data / PRICES / "SG_electricity_prices_2023.csv") == 8.0
    with pytest.raises(SignalFileError, match="usd_to_cny"):
        load_price_usd_per_mwh(files[0], usd_to_cny=0)


def test_chinese_spot_series_is_15_minute_china_time(shared_data: Path) -> None:
    price = load_cn_spot_15min(shared_data / SPOT)
    demand = load_cn_spot_15min(shared_data / SPOT, column="demand")
    cst = dt.timezone(dt.timedelta(hours=8))
    start = int(dt.datetime(2021, 12, 1, tzinfo=cst).timestamp())
    assert price.step_s == demand.step_s == 900
    assert price.start_s == demand.start_s == start
    # prices are published up to 2023-06-30 24:00; demand up to 2024-04-18 24:00
    assert price.end_s == int(dt.datetime(2023, 7, 1, tzinfo=cst).timestamp())
    assert demand.end_s == int(dt.datetime(2024, 4, 19, tzinfo=cst).timestamp())
    table = rows(shared_data / SPOT)
    # first row "2021/12/1,0:15" is the interval 00:00-00:15
    assert price.at(start) == float(table[0]["clearing price (CNY/MWh)"]) / 1000
    assert demand.at(start + 899) == float(table[0]["demand"])
    # "2021/12/1,24:00:00" closes the day
    r = table[95]
    assert (r["day"], r["time"]) == ("2021/12/1", "24:00:00")
    assert price.at(start + 95 * 900) == float(r["clearing price (CNY/MWh)"]) / 1000
    k = 40_000
    assert demand.at(start + k * 900) == float(table[k]["demand"])
    assert price.unit == "CNY/kWh" and demand.unit == "MW"


# --------------------------------------------------------------------------- bad files

CARBON_HEAD = f"Datetime (UTC),Zone Id,{DIRECT}\n"


def write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("body", "line", "message", "fix"),
    [
        (
            "Datetime,Zone Id,Carbon\n2023-01-01 00:00:00,SG,1\n",
            "line 1",
            "wrong header: missing column(s) 'Datetime (UTC)'",
            "the first line must name the columns",
        ),
        (
            CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n2023-01-01 03:00:00,SG,2\n",
            "line 3",
            "a gap of 2 missing row(s)",
            "gap-free at a step of 3600 s",
        ),
        (
            CARBON_HEAD + "2023-01-01 01:00:00,SG,1\n2023-01-01 00:00:00,SG,2\n",
            "line 3",
            "earlier than the time of line 2",
            "sort the rows by time",
        ),
        (
            CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n2023-01-01 00:00:00,SG,2\n",
            "line 3",
            "repeats the time of line 2",
            "remove the duplicate row",
        ),
        (
            CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n2023-01-01 01:00:00,SG,\n",
            "line 3",
            "no value in column",
            "fill the cell",
        ),
        (
            CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n2023-01-01 01:00:00,SG,high\n",
            "line 3",
            "'high' in column",
            "write a number",
        ),
        (
            CARBON_HEAD + "2023-01-01 00:00:00,SG,1\nyesterday,SG,1\n",
            "line 3",
            "not an ISO 8601 date-time",
            "write times like",
        ),
        (CARBON_HEAD, "line 2", "no data rows", "at least one row"),
    ],
)
def test_bad_carbon_files_name_file_line_and_fix(
    tmp_path: Path, body: str, line: str, message: str, fix: str
) -> None:
    p = write(tmp_path, body)
    with pytest.raises(SignalFileError) as err:
        load_emaps_carbon(p)
    e = err.value
    assert e.source == str(p) and e.where == line
    assert message in e.message and e.fix is not None and fix in e.fix
    assert str(p) in str(e) and "Fix:" in str(e)


def test_bad_spot_files(tmp_path: Path) -> None:
    head = "day,time,demand,clearing price (CNY/MWh)\n"
    gap = write(tmp_path, head + "2023/1/1,0:15,1,300\n2023/1/1,0:45,1,300\n")
    with pytest.raises(SignalFileError, match=r"line 3.*missing row") as err:
        load_cn_spot_15min(gap)
    assert "900 s" in (err.value.fix or "")
    hole = write(tmp_path, head + "2023/1/1,0:15,1,300\n2023/1/1,0:30,1,\n2023/1/1,0:45,1,310\n")
    with pytest.raises(SignalFileError, match=r"line 3: no price from line 3 to line 3"):
        load_cn_spot_15min(hole)
    bad = write(tmp_path, head + "1 Jan 2023,0:15,1,300\n")
    with pytest.raises(SignalFileError, match=r"line 2.*not a date"):
        load_cn_spot_15min(bad)
    tail = write(tmp_path, head + "2023/1/1,0:15,1,300\n2023/1/1,0:30,1,\n")
    assert load_cn_spot_15min(tail).values.size == 1  # a trailing run of empty prices ends it


def test_missing_file_and_generic_csv(tmp_path: Path) -> None:
    with pytest.raises(SignalFileError, match="file not found"):
        load_emaps_carbon(tmp_path / "nope.csv")
    p = write(tmp_path, "t,v\n2023-01-01T00:00:00+08:00,1\n2023-01-01T00:30:00+08:00,3\n")
    s = load_csv_series(p, time_column="t", value_column="v", scale=2.0, unit="x")
    assert s.step_s == 1800 and s.start_s == YEAR_START - 8 * 3600
    assert np.array_equal(s.values, [2.0, 6.0])
    same = load_series(p, "csv", time_column="t", value_column="v", scale=2.0)
    assert np.array_equal(same.values, s.values)
    with pytest.raises(UnknownNameError, match="emaps-carbon"):
        load_series(p, "parquet")


# --------------------------------------------------------------------------- issue 11 inputs


def test_negative_carbon_is_refused_with_its_line(tmp_path: Path) -> None:
    p = write(tmp_path, CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n2023-01-01 01:00:00,SG,-3\n")
    with pytest.raises(SignalFileError, match=r"line 3.*-3.*below 0"):
        load_emaps_carbon(p)


def test_signal_files_non_utf8_and_extra_fields(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_bytes(
        (CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n").encode() + b"2023-01-01 01:00:00,\xe9,2\n"
    )
    with pytest.raises(SignalFileError, match=r"line 3.*UTF-8"):
        load_emaps_carbon(p)
    p.write_bytes((CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n2023-01-01 01:00:00,SG,2,9\n").encode())
    with pytest.raises(SignalFileError, match=r"line 3.*more fields than the header"):
        load_emaps_carbon(p)
    p.write_bytes((CARBON_HEAD + "2023-01-01 00:00:00,SG,1\n\x00\n").encode())
    with pytest.raises(SignalFileError, match=r"line 3"):
        load_emaps_carbon(p)
