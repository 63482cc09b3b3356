"""A synthetic national-scale inference instance (seeded): ``regions`` user regions and
``sites`` sites over mainland China's extent, hourly price and carbon per site, demand per
region and hour. For timing the planner and its gap at sizes no real network has yet; every
value here is synthetic and labelled so."""

from __future__ import annotations

from typing import cast

import numpy as np

from computenet.catalog import load_network
from computenet.engine.inference.service import Demand
from computenet.model import Jurisdiction, Network, Pool, Role, Signal, Site, UserRegion
from computenet.network.links import Links, Place
from computenet.signals.base import SeriesSignal

LAT = (21.0, 46.0)
LON = (86.0, 126.0)


def national_instance(
    n_regions: int, n_sites: int, hours: int, start_s: int, *, seed: int = 0, peak_rps: float = 5.0
) -> tuple[Network, Demand]:
    """The network and forecast demand of a synthetic instance (see the module)."""
    rng = np.random.default_rng(seed)
    base = load_network("china")
    types = sorted(base.accelerators)
    hour = (np.arange(hours) + 8) % 24  # Beijing time
    sites = []
    for k in range(n_sites):
        carbon0 = rng.uniform(80.0, 800.0)
        solar = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)
        carbon = carbon0 * (1.0 - rng.uniform(0.0, 0.4) * solar)
        peak = (hour >= 8) & (hour < 22)
        price = rng.uniform(0.35, 0.6) * np.where(peak, 1.4, 0.6)
        acc = types[int(rng.integers(len(types)))]
        sites.append(
            Site(
                id=f"site-{k:03d}",
                name=f"synthetic site {k}",
                hub="",
                province="",
                jurisdiction=Jurisdiction.MAINLAND,
                latitude=float(rng.uniform(*LAT)),
                longitude=float(rng.uniform(*LON)),
                role=Role.EDGE if k % 3 == 0 else Role.EAST,
                pue=float(rng.uniform(1.15, 1.4)),
                security_level=3,
                pools=(Pool(acc, int(rng.integers(16, 129))),),
                price=cast(Signal, SeriesSignal(start_s, 3600, price, "CNY/kWh", "synthetic")),
                carbon=cast(Signal, SeriesSignal(start_s, 3600, carbon, "gCO2/kWh", "synthetic")),
            )
        )
    regions = tuple(
        UserRegion(
            f"region-{k:03d}",
            f"synthetic region {k}",
            float(rng.uniform(*LAT)),
            float(rng.uniform(*LON)),
        )
        for k in range(n_regions)
    )
    places = {s.id: Place(s.id, s.latitude, s.longitude) for s in sites}
    places.update({r.id: Place(r.id, r.latitude, r.longitude) for r in regions})
    net = Network(
        name="synthetic-national",
        sites=tuple(sites),
        accelerators=base.accelerators,
        links=Links(places=places),
        regions=regions,
        source="synthetic (seeded)",
    )
    weight = rng.uniform(0.2, 1.0, n_regions)
    diurnal = 0.6 + 0.4 * np.sin((hour - 9) / 24 * 2 * np.pi)
    rps = peak_rps * weight[:, None] * diurnal[None, :]
    return net, Demand(tuple(r.id for r in regions), rps, start_s, source="synthetic")
