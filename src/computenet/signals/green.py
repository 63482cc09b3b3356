"""Where a site's power comes from: its grid plus declared direct green supply.

A site may declare green supply on top of its grid (``Site.green``, ``GreenSupply``): a
share of its consumption, a contract of some MW around the clock, or an on-site/adjacent
plant whose output follows a profile. Per hour the green share of the site's consumption is

* ``share``: the declared share;
* ``contract``: ``contract_mw`` / the site's nominal draw (``site_draw_mw``);
* ``profile``: ``capacity_mw`` x capacity factor(t) / the site's nominal draw;

all added and capped at 1 (when they add to more than 1, each is scaled down alike). The
effective carbon and price follow from the mix::

    effective(t) = (1 - s(t)) * grid(t) + sum_i s_i(t) * green_i(t)

where a green supply without a price is priced at the grid's price. The nominal draw is the
site at full use: every accelerator busy training (its measured or scaled power profile)
plus host power, times PUE -- so a contract covers at least its share when the site runs
below full use. That is an approximation stated wherever the share is shown.

``apply_green_supply(network, mode)`` builds the network the engine plans with: ``declared``
(the default) applies every declared supply except policy targets, ``targets`` applies the
targets too (labelled), ``off`` plans on the grid alone. The grid signals stay on the site
(``grid_price``, ``grid_carbon``) so hubs, the report and the API show both side by side.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from computenet.errors import UnknownNameError
from computenet.model import (
    HOUR_S,
    AcceleratorType,
    FloatArray,
    GreenSupply,
    Network,
    Signal,
    Site,
    WorkKind,
)
from computenet.signals.base import ConstantSignal, SeriesSignal

GREEN_MODES = ("declared", "targets", "off")
"""``--green-supply``: ``declared`` applies every declared supply but policy targets;
``targets`` applies targets too; ``off`` plans on the grid alone."""

DEFAULT_GREEN_MODE = "declared"


def site_draw_mw(site: Site, accelerators: Mapping[str, AcceleratorType]) -> float:
    """The site's nominal draw (MW) at full use: every accelerator busy training plus its
    host power, times PUE. 0 for a site without accelerators."""
    watts = 0.0
    for pool in site.pools:
        acc = accelerators.get(pool.accelerator)
        busy = acc.profile().busy_w[WorkKind.TRAINING] if acc is not None else 0.0
        watts += pool.count * (busy + pool.host_power_w)
    return watts * site.pue / 1e6


def applies(supply: GreenSupply, mode: str) -> bool:
    """Whether ``supply`` is part of the mix under ``mode`` (``GREEN_MODES``)."""
    if mode == "off":
        return False
    return supply.status != "target" or mode == "targets"


def share_signal(supply: GreenSupply, site: Site, draw_mw: float, *, year: int = 2023) -> Signal:
    """The share (0-1) of the site's consumption this supply covers, per hour."""
    if supply.kind == "share":
        return cast(Signal, ConstantSignal(min(1.0, supply.share), "share"))
    if draw_mw <= 0:
        return cast(Signal, ConstantSignal(0.0, "share"))
    if supply.kind == "contract":
        return cast(Signal, ConstantSignal(min(1.0, supply.contract_mw / draw_mw), "share"))
    from computenet.signals.modelled import solar_capacity_factor

    cf = solar_capacity_factor(site.latitude, site.longitude, year)
    values = np.minimum(1.0, supply.capacity_mw * cf.values / draw_mw)
    series = SeriesSignal(
        cf.start_s,
        cf.step_s,
        values,
        unit="share",
        source=f"modelled: {supply.capacity_mw:g} MW x {cf.source} / {draw_mw:.2f} MW draw",
    )
    return cast(Signal, series)


@dataclass(frozen=True, eq=False)
class MixedSignal:
    """A grid signal mixed with green supply: ``(1 - s) * grid + sum s_i * value_i`` per
    step, ``value_i`` ``None`` meaning the grid's own value (green power at the grid price).
    ``band_at`` passes the grid tariff's band through, for display."""

    grid: Signal
    shares: tuple[Signal, ...]
    values: tuple[float | None, ...]
    unit: str = ""
    supplies: tuple[GreenSupply, ...] = ()
    # The shares when all are constant (the common case), for a scalar fast path.
    _constant: tuple[float, ...] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if all(isinstance(s, ConstantSignal) for s in self.shares):
            object.__setattr__(self, "_constant", tuple(float(s.at(0)) for s in self.shares))

    @property
    def label(self) -> str:
        return ", ".join(f"{g.kind} ({g.status})" for g in self.supplies)

    def _mix(self, grid: FloatArray, shares: Sequence[FloatArray]) -> FloatArray:
        total = np.sum(shares, axis=0) if shares else np.zeros_like(grid)
        scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-12), 1.0)
        out = grid * (1.0 - total * scale)
        for s, v in zip(shares, self.values, strict=True):
            out = out + s * scale * (grid if v is None else v)
        return np.asarray(out, dtype=np.float64)

    def _mix_one(self, grid: float, shares: Sequence[float]) -> float:
        """``_mix`` for one value in plain Python: the simulator charges every run with a
        ``mean``, where numpy's per-call overhead would cost more than the arithmetic."""
        total = sum(shares)
        scale = 1.0 / total if total > 1.0 else 1.0
        out = grid * (1.0 - total * scale)
        for s, v in zip(shares, self.values, strict=True):
            out += s * scale * (grid if v is None else v)
        return out

    def at(self, t_s: int) -> float:
        return self._mix_one(float(self.grid.at(t_s)), [float(s.at(t_s)) for s in self.shares])

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        g = self.grid.window(start_s, end_s, step_s)
        return self._mix(g, [s.window(start_s, end_s, step_s) for s in self.shares])

    def mean(self, start_s: int, end_s: int) -> float:
        if end_s <= start_s:
            return self.at(start_s)
        if self._constant is not None:
            # Constant shares: the mix of means is the mean of the mix, exactly.
            return self._mix_one(float(self.grid.mean(start_s, end_s)), self._constant)
        # Varying shares: hourly pieces (the product of hourly means within each piece).
        edges = [*range(start_s, end_s, HOUR_S), end_s]
        total = 0.0
        for a, b in itertools.pairwise(edges):
            piece = self._mix_one(
                float(self.grid.mean(a, b)), [float(s.mean(a, b)) for s in self.shares]
            )
            total += piece * (b - a)
        return total / (end_s - start_s)

    def band_at(self, t_s: int) -> str | None:
        band = getattr(self.grid, "band_at", None)
        return band(t_s) if callable(band) else None

    def describe(self) -> dict[str, object]:
        describe = getattr(self.grid, "describe", None)
        grid = dict(describe()) if callable(describe) else {"unit": self.grid.unit}
        return {"kind": "grid+green", "unit": self.unit, "grid": grid, "label": self.label}


def check_mode(mode: str, source: str = "--green-supply") -> str:
    if mode not in GREEN_MODES:
        raise UnknownNameError("green-supply mode", mode, GREEN_MODES, source=source)
    return mode


def effective_site(site: Site, accelerators: Mapping[str, AcceleratorType], mode: str) -> Site:
    """``site`` with ``price`` and ``carbon`` the mix of its grid and the supply ``mode``
    applies; the grid signals kept in ``grid_price`` / ``grid_carbon``. A site without
    declared supply comes back unchanged."""
    if not site.green:
        return site
    grid_price = site.grid_price if site.grid_price is not None else site.price
    grid_carbon = site.grid_carbon if site.grid_carbon is not None else site.carbon
    used = [g for g in site.green if applies(g, mode)]
    if not used:
        return dataclasses.replace(
            site, price=grid_price, carbon=grid_carbon, grid_price=grid_price,
            grid_carbon=grid_carbon,
        )  # fmt: skip
    draw = site_draw_mw(site, accelerators)
    shares = tuple(share_signal(g, site, draw) for g in used)
    carbon: Signal = cast(
        Signal,
        MixedSignal(
            grid_carbon,
            shares,
            tuple(g.carbon_g_per_kwh for g in used),
            grid_carbon.unit,
            tuple(used),
        ),
    )
    price: Signal = grid_price
    if any(g.price_cny_per_kwh is not None for g in used):
        price = cast(
            Signal,
            MixedSignal(
                grid_price,
                shares,
                tuple(g.price_cny_per_kwh for g in used),
                grid_price.unit,
                tuple(used),
            ),
        )
    return dataclasses.replace(
        site, price=price, carbon=carbon, grid_price=grid_price, grid_carbon=grid_carbon
    )


def apply_green_supply(network: Network, mode: str = DEFAULT_GREEN_MODE) -> Network:
    """The network with every site's price and carbon mixed per ``mode`` (``GREEN_MODES``)."""
    check_mode(mode)
    sites = tuple(effective_site(s, network.accelerators, mode) for s in network.sites)
    return dataclasses.replace(network, sites=sites)


def remix(effective: Signal, grid: Signal) -> Signal:
    """``grid`` (a live or posted grid series) mixed the way ``effective`` mixes its grid:
    a posted feed is the grid's, and the site's green supply still applies on top of it."""
    if isinstance(effective, MixedSignal):
        return dataclasses.replace(effective, grid=grid)
    return grid


def grid_of(signal: Signal) -> Signal:
    """The grid signal under a mixed one (the signal itself when not mixed)."""
    return signal.grid if isinstance(signal, MixedSignal) else signal


def green_share_now(site: Site, accelerators: Mapping[str, AcceleratorType], t_s: int) -> float:
    """The share of the site's consumption its *applied* supply covers at ``t_s``: read back
    from the mixed carbon signal (0 when grid-only)."""
    carbon = site.carbon
    if not isinstance(carbon, MixedSignal):
        return 0.0
    total = sum(s.at(t_s) for s in carbon.shares)
    return float(min(1.0, total))


def supply_record(
    site: Site, accelerators: Mapping[str, AcceleratorType], t_s: int
) -> dict[str, Any]:
    """The grid and effective figures of a site at ``t_s`` side by side (JSON-ready): what
    ``hubs --json``, the report and ``/v1/sites`` show."""
    grid_carbon = site.grid_carbon if site.grid_carbon is not None else site.carbon
    grid_price = site.grid_price if site.grid_price is not None else site.price
    draw = site_draw_mw(site, accelerators)
    return {
        "grid_carbon_g_per_kwh": float(grid_carbon.at(t_s)),
        "effective_carbon_g_per_kwh": float(site.carbon.at(t_s)),
        "grid_price_cny_per_kwh": float(grid_price.at(t_s)),
        "effective_price_cny_per_kwh": float(site.price.at(t_s)),
        "green_share_applied": green_share_now(site, accelerators, t_s),
        "nominal_draw_mw": draw,
        "green_supply": [
            {
                "kind": g.kind,
                "status": g.status,
                "share": g.share if g.kind == "share" else None,
                "contract_mw": g.contract_mw if g.kind == "contract" else None,
                "capacity_mw": g.capacity_mw if g.kind == "profile" else None,
                "profile": g.profile if g.kind == "profile" else None,
                "carbon_g_per_kwh": g.carbon_g_per_kwh,
                "price_cny_per_kwh": g.price_cny_per_kwh,
                "applied": isinstance(site.carbon, MixedSignal) and g in site.carbon.supplies,
                "source": g.source,
            }
            for g in site.green
        ],
    }
