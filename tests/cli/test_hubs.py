"""``computenet hubs``: JSON for programs, a table readable at 100 columns for people."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from computenet.cli.main import app

AT = "2023-07-03T11:30:00+08:00"  # a summer weekday, during Guangdong's critical peak


def run(*args: str, columns: int = 100):
    res = CliRunner().invoke(app, ["hubs", *args], env={"COLUMNS": str(columns)})
    return res


def test_json_lists_8_hubs_and_at_least_18_sites() -> None:
    res = run("--network", "china", "--json", "--at", AT)
    assert res.exit_code == 0, res.output
    sites = json.loads(res.output)
    assert len(sites) >= 18 and len({s["hub"] for s in sites}) == 8
    keys = {"id", "name", "hub", "province", "role", "latitude", "longitude", "pue"}
    keys |= {"carbon_g_per_kwh", "pools", "tariff", "jurisdiction", "security_level", "sources"}
    for s in sites:
        assert keys <= set(s), s["id"]
        assert s["province"] and s["role"] in ("east", "west", "edge")
        assert s["pools"] and all(p["count"] > 0 for p in s["pools"])
        assert s["tariff"]["kind"] == "tou" and s["tariff"]["bands"]
        assert s["carbon_g_per_kwh"] > 0 and 1.0 < s["pue"] < 1.5
    sg = next(s for s in sites if s["id"] == "shaoguan")
    assert sg["price_band"] == "critical"
    assert sg["price_cny_per_kwh"] == sg["tariff"]["flat_cny_per_kwh"] * 2.125
    assert sg["carbon_g_per_kwh"] == 441.9 and "2023" in sg["sources"]["carbon"]


def test_table_is_readable_at_100_columns() -> None:
    res = run("--at", AT)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in res.output  # nothing cut off
    for word in ("Beijing-Tianjin-Hebei", "yrd-demo-zone", "Inner Mongolia", "Ascend910B*"):
        assert word in res.output
    header = next(line for line in lines if line.startswith("Hub"))
    for col in ("Site", "Province", "Role", "Accelerators", "PUE", "gCO₂/kWh", "CNY/kWh"):
        assert col in header
    row = next(line for line in lines if " shaoguan " in line)
    assert "Guangdong" in row and "east" in row and "1.25" in row and "442" in row
    assert "1.444" in row  # 0.6795 x 2.125 in the critical peak
    assert "* = assumed capacity" in res.output.replace("\n", " ")


def test_a_network_file_and_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "one.toml"
    f.write_text(
        'name = "one"\n[[sites]]\nid = "x"\nlatitude = 1\nlongitude = 2\nrole = "west"\n'
        'pue = 1.1\nprice = { kind = "constant", value = 0.4 }\n'
        'carbon = { kind = "constant", value = 100 }\n',
        encoding="utf-8",
    )
    res = run("--network", str(f), "--json")
    assert res.exit_code == 0, res.output
    (site,) = json.loads(res.output)
    assert site["id"] == "x" and site["pools"] == [] and site["tariff"]["kind"] == "constant"
    assert site["price_band"] is None
    bad = run("--network", "atlantis")
    assert bad.exit_code != 0 and "china" in str(bad.exception)
    bad = run("--at", "tomorrow")
    assert bad.exit_code != 0 and "--at" in str(bad.exception)
