"""Measured matrices, the link model that combines them with the distance model, and
transfers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from computenet.errors import InputError, UnknownNameError
from computenet.model import LinkModel
from computenet.network import (
    DistanceModel,
    Links,
    PairLink,
    Place,
    plan_transfer,
    read_aws_cloudping,
    read_gcp_raw,
    read_gcp_zone_matrix,
    read_matrix,
    transfer_cost_cny,
    transfer_time_s,
)

LAT = "latency"


def test_gcp_zone_matrix(shared_data: Path) -> None:
    m = read_gcp_zone_matrix(
        shared_data / LAT / "gcp_latency_matrix_by_emaps_zone.csv", aliases={"DE": "DE-LU"}
    )
    assert m.get("SG", "JP-TK") == 69.0 and m.get("JP-TK", "SG") == 69.0
    assert m.get("HK", "SG") == 36.0
    assert "DE-LU" in m.keys and "DE" not in m.keys
    assert m.get("SG", "US-NY-NYIS") is None  # no row for New York
    assert len(m.keys) == 33  # 34 columns, US-MIDA-PJM twice


def test_gcp_raw_and_aws_cloudping(shared_data: Path) -> None:
    raw = read_gcp_raw(shared_data / LAT / "gcp_interregion_latency_raw.csv")
    assert raw.get("asia-east2", "asia-southeast1") == 36.0
    aws = read_aws_cloudping(shared_data / LAT / "aws_interregion_latency_p50_1y_cloudping.json")
    # both directions are in the file (37.588 and 37.22794): the smaller is kept
    assert aws.get("ap-east-1", "ap-southeast-1") == pytest.approx(37.22794)
    assert len(aws.keys) == 32 and len(aws) == 32 * 31 // 2
    assert (
        read_matrix(shared_data / LAT / "gcp_interregion_latency_raw.csv", "gcp-raw").get(
            "asia-southeast1", "asia-east2"
        )
        == 36.0
    )
    with pytest.raises(UnknownNameError, match="aws-cloudping"):
        read_matrix(shared_data / LAT / "gcp_interregion_latency_raw.csv", "azure")


def test_bad_matrix_files(tmp_path: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("from,SG\nSG,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="origin"):
        read_gcp_zone_matrix(bad)
    bad.write_text("origin,SG,JP-TK\nSG,5,fast\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2, column JP-TK: RTT 'fast' is not a number"):
        read_gcp_zone_matrix(bad)
    js = tmp_path / "a.json"
    js.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(InputError, match="cloudping"):
        read_aws_cloudping(js)
    with pytest.raises(InputError, match="not found"):
        read_gcp_raw(tmp_path / "none.csv")


def test_links_prefer_stated_pairs_then_measurements_then_the_model(shared_data: Path) -> None:
    m = read_aws_cloudping(shared_data / LAT / "aws_interregion_latency_p50_1y_cloudping.json")
    places = {
        "hk": Place("hk", 22.32, 114.17, "ap-east-1"),
        "sg": Place("sg", 1.35, 103.82, "ap-southeast-1"),
        "sz": Place("sz", 22.54, 114.06),
        "users-hk": Place("users-hk", 22.32, 114.17, "ap-east-1"),
    }
    links = Links(
        places,
        measured=m,
        egress_by_place={"hk": 0.9},
        pairs={frozenset(("sz", "hk")): PairLink(rtt_ms=3.0, bandwidth_gbps=100, source="ops")},
        bandwidth_gbps_default=10,
        egress_cny_per_gb_default=0.5,
    )
    assert isinstance(links, LinkModel)
    hs = links.latency("hk", "sg")
    assert hs.kind == "measured" and hs.rtt_ms == pytest.approx(37.22794)
    assert "cloudping" in hs.source
    assert links.latency("sz", "hk").rtt_ms == 3.0 and links.latency("hk", "sz").source == "ops"
    sz_sg = links.latency("sz", "sg")
    assert sz_sg.kind == "modelled" and sz_sg.rtt_ms == pytest.approx(links.modelled_ms("sz", "sg"))
    assert links.latency("hk", "users-hk").rtt_ms == 0.0
    assert links.bandwidth_gbps("sz", "hk") == 100 and links.bandwidth_gbps("sz", "sg") == 10
    assert links.bandwidth_gbps("sg", "sg") == math.inf
    assert links.egress_cny_per_gb("hk", "sg") == 0.9 and links.egress_cny_per_gb("sg", "hk") == 0.5
    assert links.egress_cny_per_gb("sg", "sg") == 0.0
    with pytest.raises(UnknownNameError, match="hk, sg, sz, users-hk"):
        links.latency("hk", "tokyo")


def test_transfer_time_and_cost() -> None:
    # 100 GB at 10 Gb/s: 80 s, plus one 20 ms round trip
    assert transfer_time_s(100, 10, 20) == pytest.approx(80.02)
    assert transfer_time_s(0, 10, 20) == 0.0
    assert transfer_cost_cny(100, 0.5) == 50.0
    with pytest.raises(InputError, match="bandwidth"):
        transfer_time_s(1, 0)
    links = Links(
        {"a": Place("a", 39.9, 116.4), "b": Place("b", 26.65, 106.63)},
        model=DistanceModel(),
        bandwidth_gbps_default=8,
        egress_cny_per_gb_default=0.4,
    )
    t = plan_transfer(links, "a", "b", 1000)
    assert t.duration_s == pytest.approx(1000 + t.rtt_ms / 1000)
    assert t.cost_cny == 400 and t.latency_kind == "modelled"
    same = plan_transfer(links, "a", "a", 1000)
    assert same.duration_s == 0 and same.cost_cny == 0
