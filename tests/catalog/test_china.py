"""The built-in Chinese national network, checked against the facts it cites."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from computenet.catalog import BUILTIN, load_network
from computenet.errors import UnknownNameError
from computenet.model import Jurisdiction, Role
from computenet.network import fibre_bound_ms, haversine_km
from computenet.signals import TouTariff

CST = dt.timezone(dt.timedelta(hours=8))
CLUSTERS = {
    "zhangjiakou": "Beijing-Tianjin-Hebei",
    "yrd-demo-zone": "Yangtze River Delta",
    "wuhu": "Yangtze River Delta",
    "shaoguan": "Greater Bay Area",
    "tianfu": "Chengdu-Chongqing",
    "chongqing": "Chengdu-Chongqing",
    "horinger": "Inner Mongolia",
    "guian": "Guizhou",
    "qingyang": "Gansu",
    "zhongwei": "Ningxia",
}


def local(*args: int) -> int:
    """UTC epoch seconds of a China Standard Time wall-clock time."""
    return int(dt.datetime(*args, tzinfo=CST).timestamp())


@pytest.fixture(scope="module")
def china():
    return load_network("china")


def test_eight_hubs_ten_clusters_and_edge_cities(china) -> None:
    assert len(china.sites) >= 18
    assert len(china.hubs) == 8
    for sid, hub in CLUSTERS.items():
        assert china.site(sid).hub == hub
    west = {s.hub for s in china.sites if s.role is Role.WEST}
    assert west == {"Inner Mongolia", "Guizhou", "Gansu", "Ningxia"}
    # Chengdu-Chongqing lies in the west but is a real-time (east-type) hub
    assert china.site("tianfu").role is Role.EAST
    assert sum(s.role is Role.EDGE for s in china.sites) >= 6
    assert china.site("hong-kong").jurisdiction is Jurisdiction.HONG_KONG
    ids = [s.id for s in china.sites]
    assert len(set(ids)) == len(ids)


def test_coordinates_pue_and_capacity_are_labelled(china) -> None:
    for s in china.sites:
        assert 18 < s.latitude < 54 and 73 < s.longitude < 135, s.id
        assert 1.0 < s.pue <= 1.3
        assert s.pools and all(p.count > 0 and p.assumed for p in s.pools)
        for key in ("location", "pue", "carbon", "price", "capacity", "security_level"):
            assert s.sources.get(key), (s.id, key)
        assert "assumption" in s.sources["capacity"]
    assert china.site("qingyang").pue == 1.2 and china.site("shaoguan").pue == 1.25
    assert "Shaoguan 24.81N 113.60E" in china.site("shaoguan").sources["location"]


def test_carbon_is_the_official_2023_provincial_factor(china, shared_data: Path) -> None:
    table = json.loads(
        (
            shared_data / "carbon/codecarbon_private_infra_2023_china_provincial_emissions.json"
        ).read_text(encoding="utf-8")
    )["data"]
    by_name = {v["description"]: v["emission_factor"] for v in table.values()}
    t = local(2023, 7, 3, 12)
    for s in china.sites:
        if s.jurisdiction is Jurisdiction.MAINLAND:
            # the grid's factor; a site with applied green supply plans with the mix
            grid = s.grid_carbon if s.grid_carbon is not None else s.carbon
            assert grid.at(t) == by_name[s.province], s.id
            assert "2023" in s.sources["carbon"] and "MEE" in s.sources["carbon"]
    # Hong Kong is not in the MEE table: Electricity Maps' yearly figure, labelled as such
    hk = china.site("hong-kong")
    assert hk.carbon.at(t) == 598.0 and "not in the MEE table" in hk.sources["carbon"]


def test_time_of_use_follows_the_provincial_rules(china) -> None:
    gd = china.site("shaoguan").price
    assert isinstance(gd, TouTariff)
    flat = gd.flat_cny_per_kwh
    assert flat == pytest.approx(1.5 * 0.4530)
    march = [gd.at(local(2023, 3, 15, h, 30)) / flat for h in range(24)]
    assert march[3] == pytest.approx(0.38) and march[9] == pytest.approx(1.0)
    assert march[10] == pytest.approx(1.7) and march[18] == pytest.approx(1.7)
    assert march[19] == pytest.approx(1.0)
    # critical peak 11-12 and 15-17 in July-September = peak x 1.25
    assert gd.at(local(2023, 8, 1, 11, 30)) / flat == pytest.approx(2.125)
    assert gd.at(local(2023, 8, 1, 16, 0)) / flat == pytest.approx(2.125)
    assert gd.at(local(2023, 10, 1, 11, 30)) / flat == pytest.approx(1.7)
    sc = china.site("tianfu").price
    assert sc.at(local(2023, 1, 9, 20)) / sc.flat_cny_per_kwh == pytest.approx(1.92)
    assert sc.at(local(2023, 3, 9, 20)) / sc.flat_cny_per_kwh == pytest.approx(1.6)
    assert sc.at(local(2023, 3, 9, 23, 30)) / sc.flat_cny_per_kwh == pytest.approx(0.4)
    # every tariff meets the national floor of peak:valley >= 3 (NDRC 1093号) unless flat
    for s in china.sites:
        day = s.price.window(local(2023, 3, 15), local(2023, 3, 16))
        assert day.max() / day.min() >= 3 - 1e-9 or s.id == "hong-kong", s.id
    # the west is cheaper than the coast at the same local hour
    t = local(2023, 3, 15, 15)
    assert china.site("zhongwei").price.at(t) < china.site("shanghai").price.at(t)


def test_assumed_tariffs_say_so(china) -> None:
    for sid in ("zhangjiakou", "horinger", "guian", "qingyang", "zhongwei", "chongqing"):
        assert "assumption" in china.site(sid).sources["price"], sid
    assert "assumption" not in china.site("shaoguan").sources["price"].split(";")[0]


def test_latency_between_chinese_places_is_modelled_and_physical(china) -> None:
    places = [*china.site_ids, *(r.id for r in china.regions)]
    assert len(set(places)) == len(places)
    coords = {s.id: (s.latitude, s.longitude) for s in china.sites}
    coords.update({r.id: (r.latitude, r.longitude) for r in china.regions})
    for a in ("beijing", "guian", "users-shanghai"):
        for b in places:
            if a == b:
                continue
            est = china.links.latency(a, b)
            assert est.kind == "modelled" and "modelled" in est.source
            assert est.rtt_ms >= fibre_bound_ms(haversine_km(*coords[a], *coords[b]))
    # Guiyang's provincial target is <= 20 ms one way to GBA, YRD and Chengdu-Chongqing;
    # the model (1.5 x great circle + 2 ms) keeps to it for Shaoguan and Tianfu.
    assert china.links.latency("guian", "shaoguan").rtt_ms / 2 < 20
    assert china.links.latency("guian", "tianfu").rtt_ms / 2 < 20
    assert china.links.egress_cny_per_gb("guian", "beijing") == 0.5
    assert china.links.bandwidth_gbps("guian", "guian") == float("inf")


def test_accelerators_and_reference(china) -> None:
    assert {"A100", "H100", "H20", "L20", "Ascend910B", "MLU370"} <= set(china.accelerators)
    assert china.reference_accelerator == "A100"
    assert china.speed("H100") == pytest.approx(989 / 312)
    assert china.accelerators["Ascend910B"].source.count("conflict") == 1


def test_unknown_name_lists_the_built_ins(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="china") as err:
        load_network("atlantis")
    assert "china" in err.value.valid
    assert set(BUILTIN) == {"china"}


def test_capacities_are_easy_to_override(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(
        'extends = "china"\nname = "china-mine"\nremove_sites = ["hong-kong"]\n'
        '[pools]\nqingyang = [{ accelerator = "H20", count = 2048 }]\n',
        encoding="utf-8",
    )
    net = load_network(str(f))
    assert net.name == "china-mine"
    q = net.site("qingyang")
    assert q.capacity("H20") == 2048 and q.capacity("Ascend910B") == 0
    assert not q.pools[0].assumed
    assert (
        "hong-kong" not in net.site_ids and len(net.sites) == len(load_network("china").sites) - 1
    )
    assert net.site("tianfu").capacity("A100") == 128  # untouched


def test_the_readme_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    f = tmp_path / "ours.toml"
    f.write_text(block, encoding="utf-8")
    net = load_network(str(f))
    assert net.name == "china-ours" and net.site("qingyang").capacity("H20") == 2048
