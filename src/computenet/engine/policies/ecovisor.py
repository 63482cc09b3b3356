"""``ecovisor``: threshold suspend-resume, in the style of Ecovisor (Souza et al., ASPLOS
'23), where an application pauses while the grid's carbon is above a threshold and runs
while it is below, as GAIA's suspend-resume baselines replay it.

A checkpointable job stays at its home site. Going through the hours before its deadline in
time order, it runs in every hour with room whose objective (energy cost + rent + carbon
price x carbon) per second is below the ``THRESHOLD_QUANTILE`` quantile of the hours with
room in its window (or is their lowest), and in any hour it must take so that the free hours
left can still hold its work (the deadline forces it); each pause costs a checkpoint and a
restore (``policies.pause``). It keeps the split only if it beats its best single window;
other jobs are placed as ``wait-awhile`` places them.
"""

from __future__ import annotations

import numpy as np

from computenet.engine.policies.pause import enough, merged, plan_with
from computenet.engine.problem import FArray, IntArray, Problem
from computenet.engine.types import PlanReply

NAME = "ecovisor"
THRESHOLD_QUANTILE = 0.3


def pick(rates: FArray, lengths: IntArray, need_s: int, overhead_s: int) -> list[int] | None:
    """Blocks at or below the threshold, and those the deadline forces, in time order."""
    free = np.isfinite(rates)
    if not free.any():
        return None
    limit = float(np.quantile(rates[free], THRESHOLD_QUANTILE))
    lowest = float(rates[free].min())
    eps = 1e-9 * max(abs(limit), 1e-12)  # prefix sums leave rounding noise
    # Seconds of free blocks from each block on (optimistic: as if they were contiguous).
    later = np.cumsum(np.where(free, lengths, 0)[::-1])[::-1]
    chosen: list[int] = []
    for b in range(rates.size):
        if not free[b]:
            continue
        after = int(later[b + 1]) if b + 1 < rates.size else 0
        runs = len(merged(chosen))
        work = int(sum(int(lengths[x]) for x in chosen)) - max(0, runs - 1) * overhead_s
        forced = after < need_s - work + overhead_s
        if rates[b] < limit - eps or rates[b] <= lowest + eps or forced:
            chosen.append(b)
            if enough(chosen, lengths, need_s, overhead_s):
                return chosen
    return None


def plan(pb: Problem) -> PlanReply:
    return plan_with(pb, NAME, pick)
