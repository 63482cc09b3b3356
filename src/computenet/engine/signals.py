"""Slot values of a signal over a planning horizon, memoised.

The simulator asks the engine on every arrival, so ``now_s`` is rarely on a slot boundary
and the same hourly signal is read thousands of times. The engine therefore reads each
signal once on the grid aligned to ``slot_s`` and blends two neighbouring aligned slots for
an offset grid: the mean over ``[now + k*slot, now + (k+1)*slot)`` is
``(1 - theta) * v[k] + theta * v[k + 1]`` with ``theta`` the offset as a share of a slot.
That is exact for signals that are constant over each aligned slot (hourly data with hourly
slots, constants, time-of-use tariffs changing on the hour) and a close estimate otherwise.

The memo is keyed by the signal object (held, so its id cannot be reused) and the aligned
grid; signals are immutable, so a hit returns exactly what a fresh read would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from computenet.errors import InputError
from computenet.model import FloatArray, Network, Signal

if TYPE_CHECKING:
    from computenet.engine.types import SiteForecast

_MEMO: dict[tuple[int, int, int, int], tuple[Signal, FloatArray]] = {}
_MEMO_MAX = 2048


def _aligned(sig: Signal, start_s: int, slot_s: int, n: int) -> FloatArray:
    key = (id(sig), start_s, slot_s, n)
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is sig:
        return hit[1]
    values = np.asarray(sig.window(start_s, start_s + n * slot_s, slot_s), dtype=np.float64)
    if values.shape != (n,):
        raise InputError(
            f"signal returned {values.shape} values for {n} slots",
            source=f"signal {getattr(sig, 'source', '') or type(sig).__name__}",
        )
    values.setflags(write=False)
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.clear()
    _MEMO[key] = (sig, values)
    return values


def slot_means(sig: Signal, now_s: int, slot_s: int, n: int) -> FloatArray:
    """Mean of ``sig`` over each slot ``[now_s + k*slot_s, ...)`` for ``k < n``."""
    base = now_s - now_s % slot_s
    theta = (now_s - base) / slot_s
    # Round the length up so requests of slightly different lengths share a memo entry.
    m = max(64, 1 << math.ceil(math.log2(n + 1)))
    v = _aligned(sig, base, slot_s, m)
    if theta == 0.0:
        return v[:n]
    return np.asarray((1.0 - theta) * v[:n] + theta * v[1 : n + 1], dtype=np.float64)


BLOCK = 256
"""Slots per aligned read (64 h of quarter hours): a read costs mostly per call, not per
slot, so longer and rarer reads are cheaper."""
SMALL_BLOCK = 64
"""The block when a long one reaches past a signal that does not wrap (see ``SiteGrid``)."""
_GRID_MEMO: dict[tuple[int, int, int, int], tuple[object, object, FloatArray, int]] = {}


def site_grids(
    network: Network, forecasts: Mapping[str, SiteForecast], now_s: int, slot_s: int, n: int
) -> tuple[FloatArray, FloatArray]:
    """Price (CNY/kWh) and carbon (g/kWh) of every site (rows, network order) over the
    slots ``[now_s + k*slot_s, ...)`` for ``k < n``, from ``forecasts`` where given.

    Memoised per (network, forecasts) object and aligned grid, so the many requests of one
    simulated hour share one read of every signal."""
    price, carbon, _ = site_grids_checked(network, forecasts, now_s, slot_s, n)
    return price, carbon


def site_grids_checked(
    network: Network, forecasts: Mapping[str, SiteForecast], now_s: int, slot_s: int, n: int
) -> tuple[FloatArray, FloatArray, bool]:
    """``site_grids`` and whether every value it returns is finite (known from the memo,
    so a caller need not scan the arrays on every request)."""
    g = SiteGrid(network, forecasts, now_s, slot_s, n)
    out = g.blend(slice(None), n)
    k = len(network.sites)
    return out[:k], out[k:], g.finite


class SiteGrid:
    """The slot values of every site's price and carbon over ``n`` slots from ``now_s``
    (as ``site_grids``), blended from the memoised aligned read only when and as far as a
    caller needs: ``blend(rows, cols)`` gives rows ``rows`` (price rows ``0..S-1``, then
    carbon rows) of the first ``cols`` slots, the same numbers as the full grid's."""

    __slots__ = ("_both", "_off", "_theta", "finite", "n")

    def __init__(
        self,
        network: Network,
        forecasts: Mapping[str, SiteForecast],
        now_s: int,
        slot_s: int,
        n: int,
    ) -> None:
        try:
            self._read(network, forecasts, now_s, slot_s, n, BLOCK)
        except Exception:
            # A long block starts up to 64 h before now and reads at least 128 h from
            # there, which can fall outside a signal that does not wrap where the request
            # itself does not: read on the smaller block (the same values, or the same
            # error when the request itself is outside the signal).
            self._read(network, forecasts, now_s, slot_s, n, SMALL_BLOCK)

    def _read(
        self,
        network: Network,
        forecasts: Mapping[str, SiteForecast],
        now_s: int,
        slot_s: int,
        n: int,
        block: int,
    ) -> None:
        # Read on a grid aligned to blocks of ``block`` slots, so every request within a
        # block (the simulator asks on every arrival) reuses one read.
        base = now_s - now_s % (slot_s * block)
        off, rem = divmod(now_s - base, slot_s)
        theta = rem / slot_s
        m = max(2 * block, 1 << math.ceil(math.log2(off + n + 1)))
        # One read per block, as long as the longest request so far: a window's value for
        # a slot does not depend on how far the window reaches (as ``slot_means`` relies
        # on), so a shorter request takes the first columns of a longer read.
        key = (id(network), id(forecasts) if forecasts else 0, base, slot_s)
        hit = _GRID_MEMO.get(key)
        if (
            hit is not None
            and hit[0] is network
            and (not forecasts or hit[1] is forecasts)
            and hit[2].shape[1] >= m
        ):
            both, first_bad = hit[2], hit[3]
        else:
            # Price rows then carbon rows in one array, so one blend serves both.
            both = np.empty((2 * len(network.sites), m))
            price, carbon = both[: len(network.sites)], both[len(network.sites) :]
            for i, s in enumerate(network.sites):
                fc = forecasts.get(s.id)
                price[i] = _aligned(fc.price if fc else s.price, base, slot_s, m)
                carbon[i] = _aligned(fc.carbon if fc else s.carbon, base, slot_s, m)
            # The first aligned slot where any site's price or carbon is not finite (m: none).
            bad = ~(np.isfinite(price).all(axis=0) & np.isfinite(carbon).all(axis=0))
            first_bad = int(np.argmax(bad)) if bad.any() else m
            if len(_GRID_MEMO) >= 64:
                _GRID_MEMO.clear()
            _GRID_MEMO[key] = (network, forecasts, both, first_bad)
        self._both, self._off, self._theta, self.n = both, off, theta, n
        # A blend of two finite values is finite, so the slots read decide finiteness.
        self.finite = off + n + (1 if theta else 0) <= first_bad

    def blend(self, rows: slice | list[int], cols: int) -> FloatArray:
        """Rows ``rows`` over slots ``0 .. cols - 1`` (``cols <= n``): each value is
        ``(1 - theta) * v[k] + theta * v[k + 1]`` of the aligned read, or ``v[k]`` when
        ``now_s`` is on the aligned grid."""
        both, off, theta = self._both, self._off, self._theta
        if theta == 0.0:
            return both[rows, off : off + cols]
        return (1.0 - theta) * both[rows, off : off + cols] + theta * both[
            rows, off + 1 : off + cols + 1
        ]
