"""Signal weights: per pair and slot, what one kW costs under a metric (``objective``: CNY
including the carbon price; ``cost``: CNY; ``carbon``: g CO2), from the site's price and
carbon signals (or the request's forecasts) blended onto the internal slots, times PUE and
slot hours, and their prefix sums: the cost of a run over any start is a difference of two
prefix sums. Blended when first needed; the one-job path blends only the slots it reads.
"""

from __future__ import annotations

import numpy as np

from computenet.engine.arrays import CompiledBase, FArray, memo, pairs_are_sites
from computenet.engine.signals import SiteGrid
from computenet.errors import InputError


class SignalWeights(CompiledBase):
    """The signal half of a compiled request (see the module docstring)."""

    def _signals(self) -> None:
        net, n = self.net, self.T_ext
        # Blended when first needed, and the one-job path blends only the slots it reads.
        self._grid = SiteGrid(net.network, self.req.forecasts, self.now, self.slot, n)
        self._price: FArray | None = None
        self._carbon: FArray | None = None
        self._price_cum: FArray | None = None
        self._carbon_cum: FArray | None = None
        self._w: dict[str, FArray] = {}
        self._W: dict[str, FArray] = {}
        self._w_head: dict[str, tuple[FArray, FArray]] = {}
        self._head: FArray = _NO_COLUMNS  # the first columns of the grid, once blended
        self._wmin: dict[str, FArray] = {}
        if not self._grid.finite:
            for name, arr in (("price", self.price), ("carbon", self.carbon)):
                bad = ~np.isfinite(arr).all(axis=1)
                if bad.any():
                    sid = net.sites[int(np.flatnonzero(bad)[0])].id
                    raise InputError(
                        f"the {name} signal has no value for part of the planning window",
                        source=f"site {sid}",
                        fix="give a signal (or forecast) that covers the horizon",
                    )

    def _blend_all(self) -> None:
        out = self._grid.blend(slice(None), self.T_ext)
        k = self.net.n_sites
        self._price, self._carbon = out[:k], out[k:]

    @property
    def price(self) -> FArray:
        """CNY/kWh per site and slot (``T_ext`` slots)."""
        if self._price is None:
            self._blend_all()
        assert self._price is not None
        return self._price

    @property
    def carbon(self) -> FArray:
        """g/kWh per site and slot."""
        if self._carbon is None:
            self._blend_all()
        assert self._carbon is not None
        return self._carbon

    @property
    def price_cum(self) -> FArray:
        """Per site: prefix sums of price times slot hours (CNY per kW), one column longer
        than the slots (computed when first read)."""
        if self._price_cum is None:
            self._price_cum = cum_rows(self.price, self.slot_h)
        return self._price_cum

    @property
    def carbon_cum(self) -> FArray:
        """Per site: prefix sums of carbon times slot hours (g per kW)."""
        if self._carbon_cum is None:
            self._carbon_cum = cum_rows(self.carbon, self.slot_h)
        return self._carbon_cum

    def _site_cums(self, s: int, x: float) -> FArray:
        """Rows ``s`` of ``price_cum`` and ``carbon_cum`` (the same numbers: prefix sums
        are summed left to right), only as far as ``_interp`` at ``x`` reads them."""
        k = int(x)
        cols = min(self.T_ext, k + 1 if x > k else k)
        head, sel = self._head, [s, self.net.n_sites + s]
        # The signals the weights were blended from, when they reach far enough.
        rows = head[sel, :cols] if 0 < cols <= head.shape[1] else self._grid.blend(sel, cols)
        out = np.zeros((2, cols + 1))
        np.add.accumulate(rows * self.slot_h, axis=1, out=out[:, 1:])
        return out

    def weights(self, metric: str) -> tuple[FArray, FArray]:
        """Per pair and slot, the value of one kW over the slot under ``metric``
        (``objective``: CNY incl. carbon price; ``cost``: CNY; ``carbon``: g CO2), and its
        prefix sums (one column longer)."""
        w = self._w.get(metric)
        if w is None:
            w, W = self._weights(metric, self.price, self.carbon)
            self._w[metric], self._W[metric] = w, W
        return w, self._W[metric]

    def weights_head(self, metric: str, cols: int) -> tuple[FArray, FArray]:
        """``weights(metric)`` over at least the first ``cols`` slots (and ``cols + 1``
        prefix sums): the same numbers, computed only as far as a job can reach when the
        full arrays are not needed (the simulator's one-job requests)."""
        if metric in self._w:
            return self.weights(metric)
        head = self._w_head.get(metric)
        if head is not None:
            if head[0].shape[1] >= cols:
                return head
            return self.weights(metric)  # a second, longer look: the full arrays
        both = self._grid.blend(slice(None), cols)
        if both.shape[1] > self._head.shape[1]:
            self._head = both
        k = self.net.n_sites
        self._w_head[metric] = head = self._weights(metric, both[:k], both[k:])
        return head

    def _weights(self, metric: str, price: FArray, carbon: FArray) -> tuple[FArray, FArray]:
        net = self.net
        slot_h = self.slot_h
        pue = memo(net, ("pue", slot_h), lambda: net.pue[net.pair_site][:, None] * slot_h)
        # One pair per site in network order: the rows are the sites' (no gather).
        if not pairs_are_sites(net):
            price, carbon = price[net.pair_site], carbon[net.pair_site]
        if metric == "objective":
            w = pue * (price + self.cp * 1e-6 * carbon)
        elif metric == "cost":
            w = pue * price
        elif metric == "carbon":
            w = pue * carbon
        else:
            raise ValueError(f"unknown metric {metric!r}")
        W = np.zeros((w.shape[0], w.shape[1] + 1))
        np.add.accumulate(w, axis=1, out=W[:, 1:])  # np.cumsum without its wrapper
        return w, W


_NO_COLUMNS = np.zeros((0, 0))


def cum_rows(arr: FArray, slot_h: float) -> FArray:
    out = np.zeros((arr.shape[0], arr.shape[1] + 1))
    np.cumsum(arr * slot_h, axis=1, out=out[:, 1:])
    return out


def interp(cum: FArray, x: float) -> float:
    k = int(x)
    frac = x - k
    if frac == 0.0:
        return float(cum[k])
    return float(cum[k] + frac * (cum[k + 1] - cum[k]))
