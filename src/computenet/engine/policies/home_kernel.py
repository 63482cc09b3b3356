"""The compiled loop of ``home_compiled`` (numba, compiled on first use and cached on disk):
for a run of jobs in the policy's order, whether each has room at home in its time window
(``StartOptions.room_in_window`` over ``base.home_rows``), stopping at the first that has,
and for each that has not, what ``explain.unplaced_by_time`` needs (columns named in
``home_compiled``)."""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from computenet.engine.policies.greedy_compiled import MASK_PAIRS
from computenet.engine.policies.home_compiled import (
    _H_MASK,
    _H_STATUS,
    _S_DEFER,
    _S_NO_ROOM,
    _S_OTHER,
)

_BIG = 1 << 62


@nb.njit(cache=True)
def _room(free: Any, p: int, k0: int, k1: int, ns: int, need: int) -> bool:
    """Whether ``free[p, k : k + ns] >= need`` throughout for some ``k0 <= k <= k1``: one
    pass over the slots, counting how many in a row have room."""
    run = 0
    for t in range(k0, k1 + ns):
        if free[p, t] >= need:
            run += 1
            if run >= ns:
                return True
        else:
            run = 0
    return False


@nb.njit(cache=True)
def first_with_room(
    lo: int,
    hi: int,
    job_int: Any,  # (N, 7): count, earliest off, deadline off, home, rule row, speed row, -
    job_float: Any,  # (N, 3): work h, utilisation, data size GB
    pair_site: Any,
    cap: Any,
    down_pair: Any,
    down_site: Any,
    reserve: Any,
    speed: Any,  # (Q, P); row 0: the network's own speeds
    allowed: Any,  # (R, S)
    s_per_gb: Any,
    single_speed: bool,
    slot: int,
    T: int,
    free: Any,
    out: Any,
) -> int:
    """The first job of ``lo .. hi - 1`` that the one-job path must decide: one with room at
    home in its window (it may be placed, which changes the capacity the next ones see), or
    one this loop does not take (several run lengths, no usable pool, its home site down).
    Each job before it has no room there; its row of ``out`` says why, as
    ``explain.unplaced_by_time`` would (``_S_OTHER``: left to the one-job explanation)."""
    P = pair_site.shape[0]
    good = np.zeros(P, dtype=np.bool_)
    ready = np.zeros(P, dtype=np.int64)
    for j in range(lo, hi):
        count = job_int[j, 0]
        earl = job_int[j, 1]
        dl = job_int[j, 2]
        home = job_int[j, 3]
        rrow = job_int[j, 4]
        srow = job_int[j, 5]
        work = job_float[j, 0]
        size = job_float[j, 2]
        if srow != 0 or not single_speed:
            return j  # a run length per pool: the one-job path (which checks no room)
        any_good = False
        min_ready = _BIG
        r = 1
        for p in range(P):
            s = pair_site[p]
            sp = speed[0, p]
            g = sp > 0 and cap[p] >= count and not down_pair[p]
            tt = 0.0
            if home >= 0:
                tt = np.ceil(size * s_per_gb[home, s])
                if not (allowed[rrow, s] and math.isfinite(tt)):
                    g = False
            good[p] = g
            if g:
                x = work * 3600 / sp
                if x >= 2.0**52:
                    return j
                r = max(1, int(np.ceil(x)))
                rd = max(tt, float(earl))
                ready[p] = int(rd)
                min_ready = min(min_ready, ready[p])
                any_good = True
        if not any_good:
            return j  # rejected as a whole: the one-job path says why
        h = home if home >= 0 else 0
        at_home = False
        for p in range(P):
            if good[p] and pair_site[p] == h:
                at_home = True
                break
        if not at_home and down_site[h]:
            # Down, and the data may go there (its home, or no data): wait for it.
            return j
        ns = -(-r // slot)
        k0 = max(0, -(-(min_ready + r) // slot) - ns)
        k1 = min(T - 1, (dl - r) // slot)
        if k1 >= k0:
            for p in range(P):
                if not good[p] or (at_home and pair_site[p] != h):
                    continue
                need = count + (reserve[p] if pair_site[p] != home else 0)
                if _room(free, p, k0, k1, ns, need):
                    return j
        # No room: some start allowed by time alone at these rows (``time_ok_any``)?
        time_ok = False
        latest = -_BIG
        mask = 0
        for p in range(P):
            if not good[p] or (at_home and pair_site[p] != h):
                continue
            ks = min(T - 1, (dl - r) // slot)
            ke = min(T - 1, dl // slot - ns)
            if ks * slot >= ready[p] or (r % slot > 0 and (ke + ns) * slot - r >= ready[p]):
                time_ok = True
            latest = max(latest, dl - r)
            if p < MASK_PAIRS:
                mask |= 1 << p
        oi = out[j]
        oi[_H_MASK] = mask
        if not time_ok or P > MASK_PAIRS:
            oi[_H_STATUS] = _S_OTHER
        elif latest >= T * slot:
            oi[_H_STATUS] = _S_DEFER
        else:
            oi[_H_STATUS] = _S_NO_ROOM
    return hi
