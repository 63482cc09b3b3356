"""Capacity: who holds which accelerators when, as an incremental ledger, and the free grid
one request plans on.

``CapacityLedger`` keeps, per pool (site id, accelerator type), the start and end times of the
allocations committed there, each with its count. The caller that owns the allocations (the
simulator, a control loop) keeps the ledger: it ``add``\\ s an allocation when it commits one
and ``remove``\\ s it when the allocation ends or is cancelled, and passes the ledger in
``PlanRequest.capacity``. The engine only reads it, so ``plan`` stays pure: the same request
(and the same ledger contents) gives the same reply. Callers that do not keep a ledger pass
``PlanRequest.running`` as before, and the engine builds a ledger from it for that request.

Why a ledger: a request's free capacity used to be rebuilt from the whole list of running
allocations at every call (and cached in a fixed-size table), so a plan call cost grew with
the number of outstanding allocations and a burst of more than 8,192 of them crashed. Here:

* the free count of pair ``p`` in slot ``k`` (slots ``[now + k slot, now + (k+1) slot)``) is
  ``cap - A(now + (k+1) slot) + D(now + k slot)``, where ``A(t)`` counts accelerators of
  allocations starting before ``t`` and ``D(t)`` those of allocations ending at or before
  ``t``: an allocation that touches any part of a slot takes the whole slot, and one already
  over counts in both, so it cancels. One binary search per slot boundary and pool: the cost
  of a request grows with its horizon and the number of pools, and only with the logarithm
  of the number of allocations;
* each pool's times are kept in sorted arrays with prefix sums, plus a small unsorted
  buffer of recent changes (a removal is the same event with a negative count). The buffer
  is merged into the sorted arrays when it outgrows the square root of their length, so an
  ``add`` or ``remove`` costs amortised O(sqrt(n)) array work and a query reads the buffer
  in O(sqrt(n) log n);
* nothing is bounded by a fixed size.

Times are integer seconds; the counting is in integers, so free counts are exact.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable
from typing import Literal

import numpy as np
import numpy.typing as npt

from computenet.engine.types import Allocation

IntArray = npt.NDArray[np.int64]
BArray = npt.NDArray[np.bool_]

Side = Literal["left", "right"]
_NONE: IntArray = np.zeros(0, dtype=np.int64)
_ZERO: IntArray = np.zeros(1, dtype=np.int64)

MIN_BUFFER = 32
"""Recent changes kept unsorted before a merge, at least (more when the pool is large)."""


class _Times:
    """A multiset of (time, signed count): sorted arrays with prefix sums (``times``,
    ``cum``), and a small buffer of recent changes (kept sorted; its arrays are made when
    first read after a change)."""

    __slots__ = ("_arr", "_buf_c", "_buf_t", "cum", "times")

    def __init__(self) -> None:
        self.times: IntArray = _NONE
        self.cum: IntArray = _ZERO  # cum[i]: counts at times[:i]
        self._buf_t: list[int] = []
        self._buf_c: list[int] = []
        self._arr: tuple[IntArray, IntArray] | None = None

    def __len__(self) -> int:
        return len(self.times) + len(self._buf_t)

    def add(self, t: int, c: int) -> None:
        i = bisect.bisect_right(self._buf_t, t)
        self._buf_t.insert(i, t)
        self._buf_c.insert(i, c)
        self._arr = None
        if len(self._buf_t) > max(MIN_BUFFER, math.isqrt(len(self.times))):
            self.merge()

    def merge(self) -> None:
        """Fold the buffer into the sorted arrays; equal times are summed and times whose
        counts cancel (an allocation removed) are dropped."""
        if not self._buf_t:
            return
        t = np.concatenate((self.times, np.array(self._buf_t, dtype=np.int64)))
        c = np.concatenate((np.diff(self.cum), np.array(self._buf_c, dtype=np.int64)))
        self._buf_t, self._buf_c, self._arr = [], [], None
        u, inv = np.unique(t, return_inverse=True)
        s = np.zeros(len(u), dtype=np.int64)
        np.add.at(s, inv, c)
        keep = s != 0
        self.times = u[keep]
        self.cum = np.zeros(len(self.times) + 1, dtype=np.int64)
        np.cumsum(s[keep], out=self.cum[1:])

    def _buffer(self) -> tuple[IntArray, IntArray]:
        """The buffer's times and prefix sums as arrays."""
        arr = self._arr
        if arr is None:
            cum = np.zeros(len(self._buf_c) + 1, dtype=np.int64)
            np.cumsum(self._buf_c, out=cum[1:])
            arr = self._arr = (np.array(self._buf_t, dtype=np.int64), cum)
        return arr

    def count(self, x: IntArray, side: Side) -> IntArray:
        """Sum of the counts at times ``< x`` (``side="left"``) or ``<= x`` (``"right"``),
        for each of ``x``."""
        out = self.cum[self.times.searchsorted(x, side)]
        if self._buf_t:
            bt, bcum = self._buffer()
            out = out + bcum[bt.searchsorted(x, side)]
        return out

    def between(self, lo: int, hi: int) -> IntArray:
        """Times strictly inside ``(lo, hi)``."""
        t, b = self.times, self._buf_t
        a = t[t.searchsorted(lo, "right") : t.searchsorted(hi, "left")]
        if not b:
            return a
        inside = b[bisect.bisect_right(b, lo) : bisect.bisect_left(b, hi)]
        return np.concatenate((a, np.array(inside, dtype=np.int64))) if inside else a


class _Pool:
    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts = _Times()
        self.ends = _Times()


class CapacityLedger:
    """Allocations committed per pool, kept as they are added and removed (see the module
    docstring). Pools are named by (site id, accelerator type), so one ledger serves any
    network: an allocation at a pool the network lacks takes nothing there."""

    def __init__(self, allocations: Iterable[Allocation] = ()) -> None:
        self._pools: dict[tuple[str, str], _Pool] = {}
        self._held: Counter[Allocation] = Counter()
        for a in allocations:
            self.add(a)
        for p in self._pools.values():
            p.starts.merge()
            p.ends.merge()

    def __len__(self) -> int:
        """Allocations held."""
        return sum(self._held.values())

    def add(self, a: Allocation) -> None:
        """Commit ``a``: its accelerators are taken over ``[a.start_s, a.end_s)``."""
        self._change(a, 1)
        self._held[a] += 1

    def remove(self, a: Allocation) -> None:
        """Give back ``a`` (one that was added: finished, preempted or cancelled)."""
        if self._held[a] <= 0:
            raise KeyError(f"allocation of {a.job_id} is not in the ledger")
        self._held[a] -= 1
        if not self._held[a]:
            del self._held[a]
        self._change(a, -1)

    def _change(self, a: Allocation, sign: int) -> None:
        pool = self._pools.get((a.site_id, a.accelerator))
        if pool is None:
            pool = self._pools[(a.site_id, a.accelerator)] = _Pool()
        pool.starts.add(int(a.start_s), sign * int(a.count))
        pool.ends.add(int(a.end_s), sign * int(a.count))

    def allocations(self) -> tuple[Allocation, ...]:
        """Every allocation held, in the order first added (for planners that want the
        list; this one costs a pass over all of them)."""
        return tuple(a for a, n in self._held.items() for _ in range(n))

    def taken(self, site_id: str, accelerator: str, times: IntArray, slot_s: int) -> IntArray:
        """Accelerators of the pool taken in each slot ``[t, t + slot_s)`` for ``t`` in the
        sorted ``times``: allocations that touch any part of the slot count."""
        pool = self._pools.get((site_id, accelerator))
        if pool is None:
            return np.zeros(len(times), dtype=np.int64)
        taken: IntArray = pool.starts.count(times + slot_s, "left") - pool.ends.count(
            times, "right"
        )
        return taken

    def peak(self, site_id: str, accelerator: str, start_s: int, end_s: int) -> int:
        """Most accelerators of the pool committed at any moment of ``[start_s, end_s)``."""
        pool = self._pools.get((site_id, accelerator))
        if pool is None:
            return 0
        # The level only rises where an allocation starts: look there and at the start.
        pts = np.sort(np.concatenate(([start_s], pool.starts.between(start_s, end_s))))
        level = pool.starts.count(pts, "right") - pool.ends.count(pts, "right")
        return int(level.max())


def free_grid(
    ledger: CapacityLedger,
    sites: tuple[str, ...],
    accelerators: tuple[str, ...],
    cap: IntArray,
    now_s: int,
    slot_s: int,
    n_slots: int,
) -> IntArray:
    """Free accelerators per pair (``sites[p]``, ``accelerators[p]``) and slot: ``cap``
    less what the ledger's allocations take in each of the ``n_slots`` slots from
    ``now_s``."""
    free = np.repeat(np.asarray(cap, dtype=np.int64)[:, None], n_slots, axis=1)
    times = now_s + slot_s * np.arange(n_slots, dtype=np.int64)
    ends = times + slot_s
    pools = ledger._pools
    for p, key in enumerate(zip(sites, accelerators, strict=True)):
        pool = pools.get(key)
        if pool is not None and len(pool.starts):
            free[p] -= pool.starts.count(ends, "left")
            free[p] += pool.ends.count(times, "right")
    return free


def fits_window(
    free: IntArray, rows: IntArray | None, a: int, b: int, ns: int, need: IntArray
) -> BArray:
    """Whether ``free[p, k : k + ns] >= need`` throughout, for every ``p`` in ``rows``
    (``None``: every pair) and ``a <= k < b``, by counting the slots short of ``need`` in
    each window (a few array operations whatever the window length)."""
    x = free[:, a : b + ns - 1] if rows is None else free[rows, a : b + ns - 1]
    short = x < need[:, None]
    if ns == 1:
        return ~short
    cs = np.zeros((short.shape[0], short.shape[1] + 1), dtype=np.int64)
    np.add.accumulate(short, axis=1, dtype=np.int64, out=cs[:, 1:])
    return np.asarray(cs[:, ns:] == cs[:, : b - a])


def fits_window_rows(
    free: IntArray, rows: IntArray, a: int, b: int, ns: IntArray, need: IntArray
) -> BArray:
    """``fits_window`` with a window length per row."""
    out = np.empty((len(rows), b - a), dtype=bool)
    for w in np.unique(ns):
        sel = np.flatnonzero(ns == w)
        out[sel] = fits_window(free, rows[sel], a, b, int(w), need[sel])
    return out
