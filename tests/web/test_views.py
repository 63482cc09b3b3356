"""The dashboard's pure parts: spreading amounts over hours, the view cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from computenet.catalog import load_network
from computenet.web.cache import ViewCache
from computenet.web.views import map_kind, spread


def test_spread_puts_each_run_in_the_hours_it_covers() -> None:
    edges = np.array([0.0, 3600.0, 7200.0, 10800.0])
    # 2 accelerators from 0:30 to 2:00, and a run entirely before the window.
    held = spread(
        np.array([1800.0, -7200.0]), np.array([7200.0, -3600.0]), np.array([2.0, 5.0]), edges
    )
    assert held.tolist() == [[3600.0, 7200.0, 0.0], [0.0, 0.0, 0.0]]
    # Conserved: rate x overlap, whatever the buckets.
    assert held.sum() == pytest.approx(2.0 * 5400.0)


def test_the_china_network_is_drawn_on_chinas_map_and_zones_on_the_worlds(
    tmp_path: Path,
) -> None:
    assert map_kind(load_network("china")) == "china"
    site = """
[[sites]]
id = "{id}"
latitude = {lat}
longitude = {lon}
jurisdiction = "{where}"
role = "west"
pue = 1.2
price = {{ kind = "constant", value = 0.5 }}
carbon = {{ kind = "constant", value = 300.0 }}
pools = [{{ accelerator = "A100", count = 8 }}]
"""
    path = tmp_path / "zones.toml"
    path.write_text(
        'name = "zones"\n'
        + site.format(id="frankfurt", lat=50.1, lon=8.7, where="overseas")
        + site.format(id="shanghai", lat=31.2, lon=121.5, where="mainland"),
        encoding="utf-8",
    )
    assert map_kind(load_network(str(path))) == "world"


def test_view_cache_recomputes_when_the_version_moves_or_the_entry_ages() -> None:
    now = [0.0]
    cache = ViewCache(max_age_s=10.0, max_entries=2, clock=lambda: now[0])
    calls: list[str] = []

    def compute(tag: str) -> str:
        calls.append(tag)
        return tag

    assert cache.get("k", 1, lambda: compute("a")) == "a"
    assert cache.get("k", 1, lambda: compute("b")) == "a"  # same version: cached
    assert cache.get("k", 2, lambda: compute("c")) == "c"  # the data changed
    now[0] = 11.0
    assert cache.get("k", 2, lambda: compute("d")) == "d"  # too old
    cache.get("x", 1, lambda: compute("e"))
    cache.get("y", 1, lambda: compute("f"))  # "k" is the least recently used: dropped
    assert cache.get("k", 2, lambda: compute("g")) == "g"
    assert calls == ["a", "c", "d", "e", "f", "g"]
