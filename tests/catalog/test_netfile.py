"""Network files: a full example with real data files, and one clear error per kind of
mistake (file, place, fix)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from computenet.catalog import load_network
from computenet.errors import NetworkFileError
from computenet.model import Jurisdiction, Role
from computenet.signals import SeriesSignal, TouTariff

BASE = """
name = "two"
usd_to_cny = 7.0

[signals.tou]
kind = "tou"
flat_cny_per_kwh = 0.5
[[signals.tou.bands]]
name = "valley"
hours = [[0, 8]]
multiplier = 0.5
[[signals.tou.bands]]
name = "day"
hours = [[8, 24]]
multiplier = 1.2

[[sites]]
id = "a"
latitude = 30.0
longitude = 120.0
role = "east"
pue = 1.3
price = "tou"
carbon = { kind = "constant", value = 500.0, source = "test" }
pools = [{ accelerator = "A100", count = 8 }]

[[sites]]
id = "b"
latitude = 26.6
longitude = 106.6
role = "west"
pue = 1.2
price = { kind = "constant", value = 0.3 }
carbon = { kind = "constant", value = 300.0 }
pools = [{ accelerator = "H20", count = 16, assumed = true }]
"""


def write(tmp_path: Path, text: str, name: str = "net.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_small_file_loads(tmp_path: Path) -> None:
    net = load_network(str(write(tmp_path, BASE)))
    assert net.name == "two" and net.site_ids == ("a", "b")
    a = net.site("a")
    assert isinstance(a.price, TouTariff) and a.price.flat_cny_per_kwh == 0.5
    assert a.role is Role.EAST and a.jurisdiction is Jurisdiction.MAINLAND
    assert a.security_level == 3 and a.utc_offset_h == 8.0 and a.name == "a"
    assert a.sources["carbon"] == "test"
    assert set(net.accelerators) == {"A100", "H20"}
    assert net.site("b").pools[0].assumed and not a.pools[0].assumed
    assert net.links.latency("a", "b").kind == "modelled"


def test_real_series_files_measured_latency_and_regions(tmp_path: Path, shared_data: Path) -> None:
    rel = Path(os.path.relpath(shared_data, tmp_path)).as_posix()  # relative to the file
    prices, ci = f"{rel}/price/greendcc_prices_2023_utc_usd", f"{rel}/carbon/greendcc_ci_2023"
    text = f"""
name = "zones"
usd_to_cny = 7.0
reference_accelerator = "H100"

[defaults]
jurisdiction = "overseas"
role = "west"
pue = 1.2
host_power_w = 120

[links]
matrix = {{ path = "{rel}/latency/gcp_latency_matrix_by_emaps_zone.csv", format = "gcp-zones" }}
bandwidth_gbps = 5
[[links.pairs]]
between = ["sg", "users-sg"]
rtt_ms = 1.5
source = "measured by us"

[[sites]]
id = "sg"
latitude = 1.35
longitude = 103.82
utc_offset_h = 8
latency_key = "SG"
price = {{ kind = "file", path = "{prices}/SG_electricity_prices_2023.csv", format = "usd-mwh" }}
carbon = {{ kind = "file", path = "{ci}/SG_2023_hourly.csv", format = "emaps-carbon" }}
pools = [{{ accelerator = "H100", count = 4 }}]

[[sites]]
id = "tokyo"
latitude = 35.68
longitude = 139.69
utc_offset_h = 9
latency_key = "JP-TK"
pools = [{{ accelerator = "A100", count = 4 }}]
price = {{ kind = "file", path = "{prices}/JP-TK_electricity_prices_2023.csv", format = "usd-mwh" }}
[sites.carbon]
kind = "file"
path = "{ci}/JP-TK_2023_hourly.csv"
format = "emaps-carbon"
column = "lca"

[[regions]]
id = "users-sg"
latitude = 1.29
longitude = 103.85
jurisdiction = "overseas"
"""
    net = load_network(str(write(tmp_path, text)))
    sg = net.site("sg")
    assert isinstance(sg.price, SeriesSignal) and sg.price.values.size == 8760
    assert sg.price.unit == "CNY/kWh" and sg.carbon.unit == "gCO2/kWh"
    assert sg.pools[0].host_power_w == 120 and sg.jurisdiction is Jurisdiction.OVERSEAS
    lat = net.links.latency("sg", "tokyo")
    assert lat.kind == "measured" and lat.rtt_ms == 69.0
    assert net.links.latency("sg", "users-sg").rtt_ms == 1.5
    assert net.links.latency("tokyo", "users-sg").kind == "modelled"
    assert net.links.bandwidth_gbps("sg", "tokyo") == 5
    assert net.reference_accelerator == "H100" and net.speed("H100") == 1.0
    first = (shared_data / "carbon/greendcc_ci_2023/JP-TK_2023_hourly.csv").read_text("utf-8")
    lca = float(first.splitlines()[1].split(",")[5])  # the LCA column of the first hour
    assert net.site("tokyo").carbon.at(1_672_531_200) == lca


def err(tmp_path: Path, text: str) -> NetworkFileError:
    p = write(tmp_path, text)
    with pytest.raises(NetworkFileError) as info:
        load_network(str(p))
    e = info.value
    assert e.source is not None and Path(e.source).name in str(e)
    assert e.fix, "every error says how to fix it"
    return e


def test_unknown_keys_name_the_place_and_suggest(tmp_path: Path) -> None:
    e = err(tmp_path, BASE.replace("pue = 1.3", "pue = 1.3\npeu = 1.2"))
    assert e.where == "sites[0].peu" and "unknown key 'peu'" in e.message
    assert "did you mean 'pue'" in (e.fix or "")
    e = err(tmp_path, BASE + "\n[sitez]\nx = 1\n")
    assert e.where == "sitez" and "sites" in (e.fix or "")
    e = err(tmp_path, BASE.replace("count = 16", "count = 16, gpus = 2"))
    assert e.where == "sites[1].pools[0].gpus"


def test_duplicate_and_missing_sites(tmp_path: Path) -> None:
    e = err(tmp_path, BASE.replace('id = "b"', 'id = "a"'))
    assert e.where == "sites[1].id" and "already used by sites[0]" in e.message
    e = err(tmp_path, 'name = "empty"\n')
    assert e.where == "sites" and "no sites" in e.message
    e = err(tmp_path, BASE + '\n[[links.pairs]]\nbetween = ["a", "c"]\nrtt_ms = 3\n')
    assert e.where == "links.pairs[0].between" and "no site or region 'c'" in e.message
    e = err(
        tmp_path, 'extends = "china"\n[pools]\natlantis = [{ accelerator = "A100", count = 1 }]\n'
    )
    assert e.where == "pools.atlantis" and "zhangjiakou" in (e.fix or "")
    e = err(tmp_path, 'extends = "china"\nremove_sites = ["atlantis"]\n')
    assert e.where == "remove_sites[0]"
    e = err(tmp_path, BASE.replace('id = "a"\n', ""))
    assert e.where == "sites[0].id" and "missing key 'id'" in e.message


@pytest.mark.parametrize(
    ("old", "new", "where", "text"),
    [
        ("count = 8", "count = -8", "sites[0].pools[0].count", "count = -8 is out of range"),
        ("count = 8", 'count = "many"', "sites[0].pools[0].count", "must be a whole number"),
        ("count = 8", "count = 8.5", "sites[0].pools[0].count", "must be a whole number"),
        ("pue = 1.3", 'pue = "low"', "sites[0].pue", "must be a number"),
        ("pue = 1.3", "pue = 0.9", "sites[0].pue", "out of range"),
        ("pue = 1.3\n", "", "sites[0].pue", "missing key 'pue'"),
        ('role = "east"', 'role = "north"', "sites[0].role", "not allowed"),
        ("latitude = 30.0", "latitude = 95.0", "sites[0].latitude", "out of range"),
        (
            'accelerator = "A100"',
            'accelerator = "TPUv9"',
            "sites[0].pools[0].accelerator",
            "unknown accelerator",
        ),
        ('price = "tou"', 'price = "toue"', "sites[0].price", "no signal named 'toue'"),
        ("value = 500.0", 'value = "high"', "sites[0].carbon.value", "must be a number"),
        ("value = 0.3", 'value = 30, unit = "USD/MWh"', "sites[1].price.unit", "is not CNY/kWh"),
        (
            'kind = "constant", value = 300.0',
            'kind = "file", path = "x.csv", format = "usd-mwh"',
            "sites[1].carbon.format",
            "holds price, not carbon",
        ),
    ],
)
def test_bad_values_name_the_place(
    tmp_path: Path, old: str, new: str, where: str, text: str
) -> None:
    assert old in BASE
    e = err(tmp_path, BASE.replace(old, new, 1))
    assert e.where == where
    assert text in e.message


def test_tariff_hours_must_cover_the_day(tmp_path: Path) -> None:
    e = err(tmp_path, BASE.replace("hours = [[8, 24]]", "hours = [[8, 22]]"))
    assert e.where == "signals.tou.bands"
    assert "hours 22:00-24:00 are in no band" in e.message
    assert "exactly once" in (e.fix or "")
    e = err(tmp_path, BASE.replace("hours = [[8, 24]]", "hours = [[7, 24]]"))
    assert e.where == "signals.tou.bands[1].hours" and "07:00-08:00 is in both" in e.message
    e = err(tmp_path, BASE.replace("hours = [[8, 24]]", 'hours = "daytime"'))
    assert e.where == "signals.tou.bands[1].hours"
    # a tariff is a price, not a carbon intensity
    e = err(
        tmp_path,
        BASE.replace(
            'carbon = { kind = "constant", value = 500.0, source = "test" }', 'carbon = "tou"'
        ),
    )
    assert "a tou tariff is a price" in e.message


def test_bad_signal_files_are_reported_in_network_terms(tmp_path: Path) -> None:
    (tmp_path / "ci.csv").write_text(
        "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (direct)\n"
        "2023-01-01 00:00:00,100\n2023-01-01 02:00:00,120\n",
        encoding="utf-8",
    )
    text = BASE.replace(
        'carbon = { kind = "constant", value = 500.0, source = "test" }',
        'carbon = { kind = "file", path = "ci.csv", format = "emaps-carbon" }',
    )
    e = err(tmp_path, text)
    assert e.where == "sites[0].carbon.path"
    assert "ci.csv" in e.message and "line 3" in e.message and "missing row" in e.message
    assert "gap-free" in (e.fix or "")
    (tmp_path / "ci.csv").write_text("when,value\n2023-01-01 00:00:00,100\n", encoding="utf-8")
    e = err(tmp_path, text)
    assert "line 1" in e.message and "wrong header" in e.message
    e = err(tmp_path, text.replace('format = "emaps-carbon"', 'format = "xlsx"'))
    assert e.where == "sites[0].carbon.format" and "emaps-carbon" in (e.fix or "")


def test_usd_prices_need_a_stated_rate(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(
        "Datetime (UTC),Price (USD/MWh)\n2023-01-01 00:00:00+00:00,50\n", encoding="utf-8"
    )
    text = BASE.replace("usd_to_cny = 7.0\n", "").replace(
        'price = { kind = "constant", value = 0.3 }',
        'price = { kind = "file", path = "p.csv", format = "usd-mwh" }',
    )
    e = err(tmp_path, text)
    assert e.where == "usd_to_cny" and "usd_to_cny = 7.1" in (e.fix or "")
    net = load_network(str(write(tmp_path, "usd_to_cny = 7.2\n" + text)))
    assert net.site("b").price.at(1_672_531_200) == pytest.approx(50 * 7.2 / 1000)


def test_syntax_errors_and_loops(tmp_path: Path) -> None:
    e = err(tmp_path, 'name = "x"\n[[sites]\n')
    assert "not valid TOML" in e.message and "line 2" in e.message
    write(tmp_path, 'extends = "b.toml"\nname = "a"\n', "a.toml")
    p = write(tmp_path, 'extends = "a.toml"\nname = "b"\n', "b.toml")
    with pytest.raises(NetworkFileError, match="extends loops back"):
        load_network(str(p))
    e = err(tmp_path, 'extends = "nowhere.toml"\nname = "x"\n')
    assert e.where == "extends" and "china" in (e.fix or "")
    e = err(tmp_path, BASE + '\n[pools]\na = [{ accelerator = "A100", count = 1 }]\n')
    assert e.where == "pools" and "extends" in (e.fix or "")


def test_negative_carbon_is_refused(tmp_path: Path) -> None:
    e = err(tmp_path, BASE.replace("value = 500.0", "value = -5.0", 1))
    assert e.where == "sites[0].carbon.value" and "below 0" in e.message
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("time,g\n2023-01-01T00:00:00Z,10\n2023-01-01T01:00:00Z,-1\n")
    text = BASE.replace(
        'carbon = { kind = "constant", value = 500.0, source = "test" }',
        'carbon = { kind = "file", path = "c.csv", format = "csv", time_column = "time", '
        'value_column = "g" }',
    )
    e = err(tmp_path, text)
    assert e.where == "sites[0].carbon.path" and "below 0" in str(e)


def test_byte_order_mark_and_non_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_network(str(p)).site_ids == ("a", "b")
    p.write_bytes(BASE.encode().replace(b'id = "b"', b'id = "\xe9"'))
    with pytest.raises(NetworkFileError, match=r"line 28.*UTF-8"):
        load_network(str(p))
