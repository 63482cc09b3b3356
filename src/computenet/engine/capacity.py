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
  over counts in both, so it cancels. The slot boundaries rise, so one compiled walk per
  pool reads them (a binary search where the next key is far): the cost of a request grows
  with its horizon and the number of pools, and only with the logarithm of the number of
  allocations;
* each pool's start and end times are kept, with their counts, as sorted distinct keys with
  prefix sums (``capacity_kernel``; a removal is the same change with a negative count), so
  an ``add`` or ``remove`` is one binary search and a move of the arrays' tail in memory;
* nothing is bounded by a fixed size (the arrays double when full).

Times are integer seconds; the counting is in integers, so free counts are exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from computenet.engine.arrays import memo
from computenet.engine.types import Allocation
from computenet.engine.weights import SignalWeights

if TYPE_CHECKING:
    from computenet.engine.jobs import JobView

IntArray = npt.NDArray[np.int64]
BArray = npt.NDArray[np.bool_]


class _Times:
    """A multiset of (key, signed count): its distinct keys sorted, with the prefix sums of
    their counts (``capacity_kernel``), changed in place as allocations come and go."""

    __slots__ = ("cum", "keys", "n")

    def __init__(self) -> None:
        self.keys: IntArray = np.zeros(16, dtype=np.int64)
        self.cum: IntArray = np.zeros(17, dtype=np.int64)  # cum[i]: counts at keys[:i]
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def add(self, t: int, c: int) -> None:
        if self.n + 1 >= len(self.keys):  # room for one more: double
            m = 2 * len(self.keys)
            keys = np.zeros(m, dtype=np.int64)
            cum = np.zeros(m + 1, dtype=np.int64)
            keys[: self.n] = self.keys[: self.n]
            cum[: self.n + 1] = self.cum[: self.n + 1]
            self.keys, self.cum = keys, cum
        self.n = _kernel().change(self.keys, self.cum, self.n, t, c)


def _kernel() -> Any:
    """``capacity_kernel``, imported when first needed (numba)."""
    global _KERNEL
    if _KERNEL is None:
        from computenet.engine import capacity_kernel

        _KERNEL = capacity_kernel
    return _KERNEL


_KERNEL: Any = None


_SPAN = 1 << 42
"""Keys are ``pool id x _SPAN + time + _SPAN / 2``: one sorted array holds every pool's
times (pool by pool), so one binary search answers every pool at once. Times must lie
within +-2**41 s of the epoch (about 70,000 years)."""


class CapacityLedger:
    """Allocations committed per pool, kept as they are added and removed (see the module
    docstring). Pools are named by (site id, accelerator type), so one ledger serves any
    network: an allocation at a pool the network lacks takes nothing there.

    Reads (``free_grid``, ``peak``, ``taken``) change nothing a reader can see (they may
    build the buffer's arrays, the same ones whoever builds them), so several requests may
    read one ledger at once; ``add`` and ``remove`` must not run while a request reads."""

    def __init__(self, allocations: Iterable[Allocation] = ()) -> None:
        self._pool_ids: dict[tuple[str, str], int] = {}
        # Pool ids of a network's pairs, by their tuple of pools (cleared when a pool is new).
        self._pid_cache: dict[tuple[tuple[str, str], ...], tuple[IntArray, IntArray, bool]] = {}
        # The last grid asked for, kept until the ledger changes: a request asked again at
        # the same time with nothing committed in between (a deadline relaxed, a queue
        # retried) reads it instead of searching again.
        self._version = 0
        self._last: tuple[tuple[object, ...], IntArray] | None = None
        self._starts = _Times()
        self._ends = _Times()
        self._held: Counter[Allocation] = Counter()
        for a in allocations:
            self.add(a)

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
        self._version += 1
        self._last = None
        key = (a.site_id, a.accelerator)
        pid = self._pool_ids.get(key)
        if pid is None:
            pid = self._pool_ids[key] = len(self._pool_ids)
            self._pid_cache.clear()
        base = pid * _SPAN + _SPAN // 2
        self._starts.add(base + int(a.start_s), sign * int(a.count))
        self._ends.add(base + int(a.end_s), sign * int(a.count))

    def allocations(self) -> tuple[Allocation, ...]:
        """Every allocation held, in the order first added (for planners that want the
        list; this one costs a pass over all of them)."""
        return tuple(a for a, n in self._held.items() for _ in range(n))

    def taken(self, pools: Sequence[tuple[str, str]], times: IntArray, slot_s: int) -> IntArray:
        """Per pool (site id, accelerator type) and each ``t`` of ``times``, accelerators
        taken in the slot ``[t, t + slot_s)``: allocations that touch any part of it count."""
        if not len(self._starts):
            return np.zeros((len(pools), len(times)), dtype=np.int64)
        times = np.ascontiguousarray(times, dtype=np.int64)
        key = tuple(pools)  # the same tuple when it is one
        hit = self._pid_cache.get(key)
        if hit is None:  # the same few tuples of pools come back request after request
            pids = np.fromiter((self._pool_ids.get(k, -1) for k in pools), np.int64, len(pools))
            known = np.flatnonzero(pids >= 0)
            hit = (known, pids[known] * _SPAN, len(known) == len(pools))
            if len(self._pid_cache) >= 64:
                self._pid_cache.clear()
            self._pid_cache[key] = hit
        known, lo, every = hit
        st, en = self._starts, self._ends
        t = np.empty((len(known), len(times)), dtype=np.int64)
        _kernel().taken(
            st.keys, st.cum, st.n, en.keys, en.cum, en.n, lo, _SPAN // 2, times, slot_s, t
        )
        if every:
            return t
        out = np.zeros((len(pools), len(times)), dtype=np.int64)
        out[known] = t
        return out

    def peak(self, site_id: str, accelerator: str, start_s: int, end_s: int) -> int:
        """Most accelerators of the pool committed at any moment of ``[start_s, end_s)``."""
        pid = self._pool_ids.get((site_id, accelerator))
        if pid is None:
            return 0
        base = pid * _SPAN + _SPAN // 2
        st, en = self._starts, self._ends
        return int(
            _kernel().peak(
                st.keys,
                st.cum,
                st.n,
                en.keys,
                en.cum,
                en.n,
                pid * _SPAN,
                base + start_s,
                base + end_s,
            )
        )


def free_grid(
    ledger: CapacityLedger,
    pools: Sequence[tuple[str, str]],
    cap: IntArray,
    now_s: int,
    slot_s: int,
    n_slots: int,
) -> IntArray:
    """Free accelerators per pair (``pools[p]``: site id, accelerator type) and slot:
    ``cap`` less what the ledger's allocations take in each of the ``n_slots`` slots from
    ``now_s``."""
    key = (ledger._version, tuple(pools), now_s, slot_s, n_slots)
    last = ledger._last
    if last is not None and last[0] == key:
        taken = last[1]
    else:
        times = now_s + slot_s * np.arange(n_slots, dtype=np.int64)
        taken = ledger.taken(pools, times, slot_s)
        taken.setflags(write=False)
        ledger._last = (key, taken)
    free: IntArray = np.asarray(cap, dtype=np.int64)[:, None] - taken
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


class CapacityGrid(SignalWeights):
    """The capacity part of a compiled request: ``free[p, k]``, accelerators of pair ``p``
    free during internal slot ``k`` after the running allocations and down sites (an
    allocation that touches any part of a slot takes the whole slot, so a plan that fits
    slot by slot fits second by second), and the checks and commits policies make on it."""

    free: IntArray

    def _capacity(self) -> None:
        net = self.net
        cap = memo(
            net,
            ("cap-up", frozenset(self.req.down_sites)),
            lambda: np.where(self.down[net.pair_site], 0, net.cap).astype(np.int64),
        )
        # What the running allocations take, from the caller's ledger (or one built from
        # ``running`` for this request): the cost grows with the horizon and the pools, not
        # with the number of allocations (``engine.capacity``).
        ledger = self.req.capacity
        if ledger is None:
            ledger = CapacityLedger(self.req.running) if self.req.running else _EMPTY_LEDGER
        pools = memo(
            net,
            ("pools",),
            lambda: tuple(
                (net.sites[int(s)].id, a) for s, a in zip(net.pair_site, net.pair_acc, strict=True)
            ),
        )
        self.free = free_grid(ledger, pools, cap, self.now, self.slot, self.T_ext)

    def fits_window(self, rows: IntArray | None, a: int, b: int, ns: int, need: IntArray) -> BArray:
        """``capacity.fits_window`` on this request's free grid."""
        return fits_window(self.free, rows, a, b, ns, need)

    def fits_window_rows(
        self, rows: IntArray, a: int, b: int, ns: IntArray, need: IntArray
    ) -> BArray:
        """``capacity.fits_window_rows`` on this request's free grid."""
        return fits_window_rows(self.free, rows, a, b, ns, need)

    def need(self, v: JobView) -> IntArray:
        """Free accelerators each of ``v``'s pairs must have for it to start there: its
        gang, plus the pool's home reserve unless the pair is at the job's home site (where
        its first dataset lives; a job without data has no home)."""
        net, reserve = self.net, self.reserve
        if not memo(net, ("reserve-any", self.req.home_reserve), lambda: bool(reserve.any())):
            return np.full(len(v.pairs), v.count, dtype=np.int64)
        home = v.datasets[0].home if v.datasets else -1
        # Per pair: the reserve a job homed at ``home`` must leave (0 at its home site).
        extra = memo(
            net,
            ("reserve-away", self.req.home_reserve, home),
            lambda: np.where(net.pair_site != home, reserve, 0).astype(np.int64),
        )
        return np.asarray(v.count + (extra if len(v.pairs) == net.n_pairs else extra[v.pairs]))

    def fits(self, p: int, k: int, ns: int, count: int) -> bool:
        """Whether ``count`` accelerators of pair ``p`` are free over slots ``[k, k + ns)``."""
        return bool(self.free[p, k : k + ns].min() >= count)

    def commit(self, p: int, k: int, ns: int, count: int) -> None:
        """Take ``count`` accelerators of pair ``p`` over slots ``[k, k + ns)``."""
        self.free[p, k : k + ns] -= count

    def snapshot(self) -> IntArray:
        """The free capacity now, to ``restore`` after a trial plan."""
        return self.free.copy()

    def restore(self, free: IntArray) -> None:
        self.free[...] = free


_EMPTY_LEDGER = CapacityLedger()
