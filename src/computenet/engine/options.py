"""Start options: every start of one job in the horizon with its value under a metric.

A job starting in internal slot ``k`` is placed either at the start of the slot
(start-aligned) or so that it ends on a slot boundary (end-aligned, when its run is not a
whole number of slots); both occupy the same ``ceil(run / slot)`` slots, and the cheaper is
taken (on a tie, the start-aligned one, which starts sooner). Between such breakpoints the
cost of a run is linear in its start, so these two cover the best start within each slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from computenet.engine.arrays import INF, BArray, FArray, IntArray
from computenet.engine.jobs import JobView, JobViews, all_pairs
from computenet.engine.power import PowerGrid

ALIGN_TOL = 1e-12
"""End-aligned wins only when cheaper by more than this share: under a flat price the two
cost the same, and rounding noise must not decide (start-aligned starts sooner)."""


@dataclass
class Options:
    """Every start of one job: ``value[i, c]`` for usable pair ``i`` and slot ``k0 + c``
    (``inf`` where the start is not allowed), whether it is end-aligned, and whether it is
    allowed by time alone (window and deadline, ignoring capacity)."""

    k0: int
    value: FArray
    end_aligned: BArray
    time_ok: BArray

    @property
    def width(self) -> int:
        return int(self.value.shape[1])


@dataclass(frozen=True)
class Choice:
    """One start of one job: usable-pair index ``i``, slot ``k``, start offset (s)."""

    i: int
    k: int
    start_off: int


class StartOptions(JobViews, PowerGrid):
    """The options part of a compiled request (see the module docstring)."""

    def options(self, v: JobView, metric: str = "objective", capacity: bool = True) -> Options:
        """Every start of ``v`` in the horizon with its value under ``metric``
        (``objective``: cost + carbon price x carbon, ``cost``: CNY, ``carbon``: kg-ish
        weight; all per the same prefix sums)."""
        slot = self.slot
        dl = v.deadline_off
        if v.run_1 is not None:
            r_lo = r_hi = v.run_1
        else:
            r_lo, r_hi = int(v.run_s.min()), int(v.run_s.max())
        if r_lo == r_hi:
            # One run length: the bounds below in scalars (the same integers).
            k0 = max(0, -(-(int(v.ready.min()) + r_lo) // slot) - -(-r_lo // slot))
            k1 = min(self.T - 1, (dl - r_lo) // slot)
        else:
            ns_all = -(-v.run_s // slot)
            k0 = max(0, int(np.min(-(-(v.ready + v.run_s) // slot) - ns_all)))
            k1 = min(self.T - 1, int(np.max((dl - v.run_s) // slot)))
        if k1 < k0:
            empty = np.zeros((len(v.pairs), 0))
            return Options(k0, empty, empty.astype(bool), empty.astype(bool))
        K = k1 - k0 + 1
        a, b = k0, k1 + 1
        if r_lo != r_hi:
            w, W = self.weights(metric)
            return self._options_2d(v, metric, capacity, k0, K, w, W)
        r = r_lo
        n, rem = divmod(r, slot)
        # The weights of the slots a start in the window can reach (to slot b + n - 1).
        w, W = self.weights_head(metric, b + n)
        rows = v.pairs
        every = all_pairs(v, self.net)
        if every:  # every pair, in order: slices instead of gathers
            w_rows, W_rows = w, W
        else:
            w_rows, W_rows = w[rows], W[rows]
        ns = n + (1 if rem else 0)
        f = rem / slot
        ready = v.ready[:, None]
        ts = np.arange(a * slot, b * slot, slot, dtype=np.int64)  # ks * slot
        # ``ts + r <= dl`` holds for every k <= k1 by the choice of k1.
        ok = ts >= ready
        c = W_rows[:, a + n : b + n] - W_rows[:, a:b]
        if rem:
            c += f * w_rows[:, a + n : b + n]
            # End-aligned: start at (k + ns) * slot - r, allowed when it is in time.
            end_s = ts + ns * slot
            ok_e = (end_s - r >= ready) & (end_s <= dl)
            ce = f * w_rows[:, a:b] + W_rows[:, a + 1 + n : b + 1 + n] - W_rows[:, a + 1 : b + 1]
            end_al = ok_e & (~ok | (ce < c - ALIGN_TOL * np.abs(c)))
            np.copyto(c, ce, where=end_al)
            ok |= ok_e
        else:
            end_al = np.zeros(ok.shape, dtype=bool)
        value = v.kw[:, None] * c
        if metric != "carbon":
            value += v.fixed[:, None]
        time_ok = ok
        if capacity:
            ok = ok & self.fits_window(None if every else rows, a, b, ns, self.need(v))
            if self.power_free is not None:  # power caps (``engine.power``)
                ok &= self.power_fits(v.pairs, v.kw, a, b, ns)
        value[~ok] = INF
        return Options(k0, value, end_al, time_ok)

    def _options_2d(
        self,
        v: JobView,
        metric: str,
        capacity: bool,
        k0: int,
        K: int,
        w: FArray,
        W: FArray,
    ) -> Options:
        """``options`` for a job whose run differs between pairs (several accelerator
        types): the same arithmetic with a run length per row."""
        slot, dl = self.slot, v.deadline_off
        r = v.run_s[:, None]
        n = r // slot
        rem = r - n * slot
        ns = n + (rem > 0)
        f = rem / slot
        rows = v.pairs[:, None]
        base = np.arange(k0, k0 + K, dtype=np.int64)[None, :]
        cn = base + n
        ts = base * slot
        ok = (ts >= v.ready[:, None]) & (ts + r <= dl)
        c = W[rows, cn] - W[rows, base] + f * w[rows, cn]
        te = (base + ns) * slot - r
        ok_e = (rem > 0) & (te >= v.ready[:, None]) & (te + r <= dl)
        ce = f * w[rows, base] + W[rows, cn + 1] - W[rows, base + 1]
        end_al = ok_e & (~ok | (ce < c - ALIGN_TOL * np.abs(c)))
        c = np.where(end_al, ce, c)
        ok = ok | ok_e
        value = v.kw[:, None] * c
        if metric != "carbon":
            value += v.fixed[:, None]
        time_ok = ok
        if capacity:
            ok = ok & self.fits_window_rows(v.pairs, k0, k0 + K, ns[:, 0], self.need(v))
            if self.power_free is not None:  # power caps (``engine.power``)
                ok &= self.power_fits(v.pairs, v.kw, k0, k0 + K, ns[:, 0])
        value[~ok] = INF
        return Options(k0, value, end_al, time_ok)

    def time_ok_any(self, v: JobView, rows: IntArray | None = None) -> bool:
        """Whether ``options(v)`` has a start allowed by time alone at ``rows`` (default:
        every usable pair; ``width > 0`` and ``time_ok[rows].any()``), without pricing any
        start: the latest start of each kind (start- or end-aligned) is the one most likely
        to be ready, so each row is checked there (for explaining why a job got no start,
        many times under a backlog)."""
        slot, dl, T = self.slot, v.deadline_off, self.T
        r = v.run_s if rows is None else v.run_s[rows]
        ready = v.ready if rows is None else v.ready[rows]
        if not len(r):
            return False
        ns = -(-r // slot)
        ks = np.minimum(T - 1, (dl - r) // slot)
        if bool((ks * slot >= ready).any()):
            return True
        ke = np.minimum(T - 1, dl // slot - ns)
        return bool(((r % slot > 0) & ((ke + ns) * slot - r >= ready)).any())

    def room_in_window(self, v: JobView, rows: IntArray) -> bool:
        """Whether some slot of ``options(v)``'s window at ``rows`` has the job's
        accelerators free for its run, readiness and price aside: when not, no start
        there can fit and none need be priced. Always true for a job whose run differs
        between pairs (not checked)."""
        if v.run_1 is None:
            return True
        slot, r = self.slot, v.run_1
        ns = -(-r // slot)
        k0 = max(0, -(-(int(v.ready.min()) + r) // slot) - ns)
        k1 = min(self.T - 1, (v.deadline_off - r) // slot)
        if k1 < k0:
            return False
        need = self.need(v)[rows]
        return bool(self.fits_window(v.pairs[rows], k0, k1 + 1, ns, need).any())

    def no_options(self, v: JobView) -> Options:
        """Options with no start (for a decision taken without pricing any)."""
        empty = np.zeros((len(v.pairs), 0))
        return Options(0, empty, empty.astype(bool), empty.astype(bool))

    def lower_bounds(self, v: JobView, metric: str = "objective") -> FArray:
        """Per usable pair, a value no start of ``v`` there can undercut: the run at the
        pair's cheapest slot of the whole window, plus the fixed costs."""
        w, _ = self.weights(metric)
        lo = self._wmin.get(metric)
        if lo is None:
            lo = self._wmin[metric] = w.min(axis=1)
        return np.asarray(v.kw * (v.run_s / self.slot) * lo[v.pairs] + v.fixed, dtype=np.float64)

    def start_off(self, v: JobView, i: int, k: int, end_aligned: bool) -> int:
        r = int(v.run_s[i])
        if end_aligned:
            return (k + -(-r // self.slot)) * self.slot - r
        return k * self.slot

    def footprint(self, v: JobView, i: int) -> int:
        return int(-(-int(v.run_s[i]) // self.slot))
