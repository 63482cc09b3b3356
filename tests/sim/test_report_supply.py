"""The report's section on where the sites' power comes from."""

from __future__ import annotations

from computenet.catalog import load_network
from computenet.sim.report_supply import supply_section

T0 = 1_688_342_400  # 2023-07-03 00:00 UTC


def test_grid_and_effective_side_by_side_with_status() -> None:
    html = "\n".join(supply_section(load_network("china"), T0, T0 + 86400))
    assert "Where the sites' power comes from" in html
    row = next(r for r in html.split("<tr>") if "<td>horinger</td>" in r)
    cells = row.split("<td>")
    assert "reported" in row and "<td>yes</td>" in row
    assert any(c.startswith("648</td>") for c in cells)  # grid
    assert any(c.startswith("100</td>") for c in cells)  # effective
    guian = next(r for r in html.split("<tr>") if "<td>guian</td>" in r)
    assert "target" in guian and "<td>no</td>" in guian
    assert "beijing" not in html  # no supply declared, nothing modelled: not listed
    off = "\n".join(supply_section(load_network("china", green_supply="off"), T0, T0 + 3600))
    assert "<td>horinger</td>" in off and "<td>no</td>" in off


def test_nothing_to_say_without_supply_or_model() -> None:
    from tests.netkit import network, site

    assert supply_section(network(site("a")), T0, T0 + 3600) == []
