"""Direct green supply: the effective mix per hour, the network file, the modes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tests.netkit import network, site

from computenet.catalog import load_network
from computenet.errors import NetworkFileError, UnknownNameError
from computenet.model import GreenSupply
from computenet.signals.base import ConstantSignal, SeriesSignal
from computenet.signals.green import (
    MixedSignal,
    apply_green_supply,
    remix,
    site_draw_mw,
    supply_record,
)

T = 1_688_400_000  # 2023-07-03 16:00 UTC


def _net(*supplies: GreenSupply, carbon: float = 600.0, price: float = 0.5):
    s = replace(site("a", {"A100": 100}, carbon=carbon, price=price), green=supplies)
    s = replace(s, grid_carbon=s.carbon, grid_price=s.price)
    return network(s)


def test_share_mixes_carbon_and_keeps_the_grid_price() -> None:
    net = apply_green_supply(_net(GreenSupply("share", "reported", share=0.75)))
    s = net.site("a")
    assert s.carbon.at(T) == pytest.approx(150.0)  # (1 - 0.75) x 600 + 0.75 x 0
    assert s.carbon.mean(T, T + 7200) == pytest.approx(150.0)
    assert s.price is s.grid_price  # green power without a price is at the grid price
    assert s.grid_carbon is not None and s.grid_carbon.at(T) == 600.0
    rec = supply_record(s, net.accelerators, T)
    assert rec["grid_carbon_g_per_kwh"] == 600.0
    assert rec["effective_carbon_g_per_kwh"] == pytest.approx(150.0)
    assert rec["green_share_applied"] == pytest.approx(0.75)


def test_contract_share_follows_the_sites_draw() -> None:
    net = _net(GreenSupply("contract", "contracted", contract_mw=0.02, price_cny_per_kwh=0.3))
    draw = site_draw_mw(net.site("a"), net.accelerators)
    s = apply_green_supply(net).site("a")
    share = min(1.0, 0.02 / draw)
    assert 0 < share < 1
    assert s.carbon.at(T) == pytest.approx(600.0 * (1 - share))
    assert s.price.at(T) == pytest.approx(0.5 * (1 - share) + 0.3 * share)


def test_shares_over_one_are_scaled_to_one() -> None:
    net = _net(
        GreenSupply("share", "reported", share=0.8, carbon_g_per_kwh=10.0),
        GreenSupply("share", "assumed", share=0.8, carbon_g_per_kwh=30.0),
    )
    assert apply_green_supply(net).site("a").carbon.at(T) == pytest.approx(20.0)


def test_targets_apply_only_when_chosen_and_off_is_the_grid() -> None:
    net = _net(GreenSupply("share", "target", share=0.8))
    assert apply_green_supply(net, "declared").site("a").carbon.at(T) == 600.0
    assert apply_green_supply(net, "targets").site("a").carbon.at(T) == pytest.approx(120.0)
    assert apply_green_supply(net, "off").site("a").carbon.at(T) == 600.0
    with pytest.raises(UnknownNameError, match="declared"):
        apply_green_supply(net, "on")


def test_varying_share_window_and_mean_agree() -> None:
    grid = SeriesSignal(T, 3600, np.array([600.0, 300.0, 600.0, 300.0]))
    share = SeriesSignal(T, 3600, np.array([0.0, 0.5, 1.0, 0.25]))
    mixed = MixedSignal(grid, (share,), (0.0,), "gCO2/kWh")
    w = mixed.window(T, T + 4 * 3600)
    assert w.tolist() == pytest.approx([600.0, 150.0, 0.0, 225.0])
    assert mixed.mean(T, T + 4 * 3600) == pytest.approx(w.mean())
    # a posted grid feed is re-mixed with the same supply
    posted = remix(mixed, ConstantSignal(100.0, "gCO2/kWh"))
    assert posted.at(T + 3600) == pytest.approx(50.0)


def test_solar_profile_supply_is_zero_at_night() -> None:
    pytest.importorskip("pvlib")
    net = _net(GreenSupply("profile", "assumed", capacity_mw=0.2))
    s = apply_green_supply(net).site("a")
    day = np.asarray(s.carbon.window(T - 86400, T))
    assert day.max() == pytest.approx(600.0)  # the hours without sun: the grid alone
    assert day.min() < 600.0  # daylight hours cover part of the draw


def test_the_china_catalog_declares_reported_shares_and_targets() -> None:
    china = load_network("china")
    hor = china.site("horinger")
    assert [(g.kind, g.status, g.share) for g in hor.green] == [("share", "reported", 0.8457)]
    assert "84.57" in hor.green[0].source
    assert hor.carbon.at(T) == pytest.approx(647.9 * (1 - 0.8457))
    for sid in ("guian", "qingyang", "zhongwei", "tianfu", "zhangjiakou"):
        g = china.site(sid).green
        assert [x.status for x in g] == ["target"] and "target" in g[0].source, sid
        assert china.site(sid).carbon.at(T) == china.site(sid).grid_carbon.at(T)  # type: ignore[union-attr]
    assert china.site("beijing").green == ()  # edge sites declare none
    grid_only = load_network("china", green_supply="off")
    assert grid_only.site("horinger").carbon.at(T) == pytest.approx(647.9)


def _file(tmp_path: Path, green: str) -> Path:
    p = tmp_path / "net.toml"
    p.write_text(
        'name = "t"\n[[sites]]\nid = "a"\nrole = "west"\nlatitude = 40.0\nlongitude = 110.0\n'
        'pue = 1.2\nprice = { kind = "constant", value = 0.4 }\n'
        'carbon = { kind = "constant", value = 500.0 }\n'
        'pools = [{ accelerator = "A100", count = 8 }]\n' + green,
        encoding="utf-8",
    )
    return p


def test_network_file_green_supply(tmp_path: Path) -> None:
    p = _file(
        tmp_path,
        '[[sites.green]]\nkind = "share"\nstatus = "contracted"\nshare = 0.5\n'
        'price_cny_per_kwh = 0.3\nsource = "PPA with a wind farm"\n',
    )
    s = load_network(str(p)).site("a")
    assert s.carbon.at(T) == pytest.approx(250.0) and s.price.at(T) == pytest.approx(0.35)
    assert s.green[0].source == "PPA with a wind farm"


@pytest.mark.parametrize(
    ("green", "where"),
    [
        ('[[sites.green]]\nkind = "share"\nstatus = "reported"\nshare = 1.5\n', "share"),
        ('[[sites.green]]\nkind = "wind"\nstatus = "reported"\n', "kind"),
        ('[[sites.green]]\nkind = "share"\nstatus = "hoped"\nshare = 0.5\n', "status"),
        ('[[sites.green]]\nkind = "share"\nstatus = "reported"\n', "share"),
        (
            '[[sites.green]]\nkind = "share"\nstatus = "reported"\nshare = 0.5\n'
            "contract_mw = 3.0\n",
            "contract_mw",
        ),
        ('[[sites.green]]\nkind = "contract"\nstatus = "reported"\ncontract_mw = -1\n', "contract"),
    ],
)
def test_network_file_green_supply_errors_name_the_field(
    tmp_path: Path, green: str, where: str
) -> None:
    with pytest.raises(NetworkFileError) as err:
        load_network(str(_file(tmp_path, green)))
    assert "sites[0].green" in str(err.value) and where in str(err.value)


def test_extends_sets_a_base_sites_supply(tmp_path: Path) -> None:
    p = tmp_path / "mine.toml"
    p.write_text(
        'extends = "china"\n[green]\nguian = [{ kind = "share", status = "contracted", '
        'share = 0.5, source = "our PPA" }]\n',
        encoding="utf-8",
    )
    g = load_network(str(p)).site("guian")
    assert g.carbon.at(T) == pytest.approx(568.3 * 0.5)
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "china"\n[green]\nnowhere = []\n', encoding="utf-8")
    with pytest.raises(NetworkFileError, match="nowhere"):
        load_network(str(bad))
