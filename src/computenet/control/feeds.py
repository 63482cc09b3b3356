"""Live site feeds: what operators and providers post (capacity, price, carbon) laid over
the catalog's network before each planning round.

A posted series covers ``[start_s, start_s + len(values) * step_s)``; outside that span the
site's own catalog signal still holds, so a feed for the next day does not erase the
tariff for the days after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from computenet.model import HOUR_S, FloatArray, Network, Pool, Signal, Site
from computenet.signals.base import SeriesSignal
from computenet.signals.green import grid_of, remix


# Not frozen only because the ``Signal`` protocol declares ``unit`` as a plain attribute;
# nothing mutates an overlay after it is built.
@dataclasses.dataclass(eq=False)
class FeedOverlay:
    """``feed`` where it has values, ``base`` everywhere else (both in ``unit``)."""

    feed: SeriesSignal
    base: Signal
    unit: str = ""

    def _span(self) -> tuple[int, int]:
        return self.feed.start_s, self.feed.end_s

    def at(self, t_s: int) -> float:
        a, b = self._span()
        return self.feed.at(t_s) if a <= t_s < b else self.base.at(t_s)

    def mean(self, start_s: int, end_s: int) -> float:
        """Time-weighted mean over ``[start_s, end_s)``: the parts inside the feed's span
        from the feed, the rest from the base signal."""
        if end_s <= start_s:
            return self.at(start_s)
        a, b = self._span()
        total = 0.0
        pieces = (
            (start_s, min(end_s, a)),
            (max(start_s, a), min(end_s, b)),
            (max(start_s, b), end_s),
        )
        for i, (lo, hi) in enumerate(pieces):
            if hi > lo:
                sig = self.feed if i == 1 else self.base
                total += sig.mean(lo, hi) * (hi - lo)
        return total / (end_s - start_s)

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        n = max(0, -(-(end_s - start_s) // step_s))
        return np.array(
            [self.mean(start_s + k * step_s, start_s + (k + 1) * step_s) for k in range(n)],
            dtype=np.float64,
        )


def series(feed: Mapping[str, Any], unit: str, site_id: str) -> SeriesSignal:
    """A posted ``{"start_s", "step_s", "values"}`` as a series that does not wrap."""
    return SeriesSignal(
        start_s=int(feed["start_s"]),
        step_s=int(feed["step_s"]),
        values=np.asarray(feed["values"], dtype=np.float64),
        unit=unit,
        source=f"feed for site {site_id}",
        wrap=False,
    )


def with_capacity(site: Site, capacity: Mapping[str, int]) -> Site:
    """``site`` with the posted accelerator counts. A type the catalog knows at this site
    keeps its pool's rental price and host power; a new type gets a pool priced 0 and
    marked ``assumed`` (nobody said what it costs)."""
    pools: list[Pool] = []
    done: set[str] = set()
    for pool in site.pools:
        if pool.accelerator not in capacity:
            pools.append(pool)
        elif pool.accelerator not in done:
            pools.append(dataclasses.replace(pool, count=int(capacity[pool.accelerator])))
            done.add(pool.accelerator)
    for acc, count in sorted(capacity.items()):
        if acc not in done:
            pools.append(Pool(accelerator=acc, count=int(count), assumed=True))
    return dataclasses.replace(site, pools=tuple(p for p in pools if p.count > 0))


def apply(
    network: Network, feeds: Mapping[str, Mapping[str, Any]]
) -> tuple[Network, dict[str, Any]]:
    """The network with posted capacities, and the per-site ``SiteForecast`` overrides for
    posted price/carbon series (to pass as ``PlanRequest.forecasts``)."""
    from computenet.engine.types import SiteForecast

    sites: list[Site] = []
    forecasts: dict[str, Any] = {}
    for site in network.sites:
        feed = feeds.get(site.id)
        if feed is None:
            sites.append(site)
            continue
        if feed.get("capacity") is not None:
            site = with_capacity(site, feed["capacity"])
        price: Signal = site.price
        carbon: Signal = site.carbon
        # A posted series is the grid's: a site's declared green supply is mixed on top.
        if feed.get("price_cny_per_kwh") is not None:
            price = remix(
                site.price,
                FeedOverlay(
                    series(feed["price_cny_per_kwh"], "CNY/kWh", site.id),
                    grid_of(site.price),
                    "CNY/kWh",
                ),
            )
        if feed.get("carbon_g_per_kwh") is not None:
            carbon = remix(
                site.carbon,
                FeedOverlay(
                    series(feed["carbon_g_per_kwh"], "gCO2/kWh", site.id),
                    grid_of(site.carbon),
                    "gCO2/kWh",
                ),
            )
        if price is not site.price or carbon is not site.carbon:
            forecasts[site.id] = SiteForecast(price=price, carbon=carbon)
        sites.append(site)
    return dataclasses.replace(network, sites=tuple(sites)), forecasts
