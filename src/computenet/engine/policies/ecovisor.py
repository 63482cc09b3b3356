"""``ecovisor``: threshold suspend-resume, in the style of Ecovisor (Souza et al., ASPLOS
'23), where an application pauses while the grid's carbon is above a threshold and runs
while it is below, as GAIA's suspend-resume baselines replay it.

A checkpointable job stays at its home site. Going through the request slots (hours) before
its deadline in time order, it runs in every slot with room whose objective (energy cost +
rent + carbon price x carbon) is at or below ``THRESHOLD_QUANTILE`` of the slots with room
in its window, and in any slot it must take so the free slots left can still hold its work
(the deadline forces it); each pause costs a checkpoint and a restore (``policies.pause``).
It keeps the split only if it beats its best single window; other jobs are placed as
``wait-awhile`` places them.
"""

from __future__ import annotations

import numpy as np

from computenet.engine.policies.pause import enough, plan_with
from computenet.engine.problem import FArray, Problem
from computenet.engine.types import PlanReply

NAME = "ecovisor"
THRESHOLD_QUANTILE = 0.3


def pick(values: FArray, block_s: int, need_s: int, overhead_s: int) -> list[int] | None:
    """Blocks below the threshold, and the blocks the deadline forces, in time order."""
    free = np.isfinite(values)
    if not free.any():
        return None
    limit = float(np.quantile(values[free], THRESHOLD_QUANTILE))
    later = np.cumsum(free[::-1])[::-1]  # free blocks from b on
    chosen: list[int] = []
    for b in range(values.size):
        if not free[b]:
            continue
        left_after = int(later[b + 1]) if b + 1 < values.size else 0
        work = len(chosen) * block_s - max(0, _runs(chosen) - 1) * overhead_s
        forced = left_after * block_s < need_s - work + block_s + overhead_s
        if values[b] <= limit or forced:
            chosen.append(b)
            if enough(chosen, block_s, need_s, overhead_s):
                return chosen
    return None


def _runs(blocks: list[int]) -> int:
    return sum(1 for n, b in enumerate(blocks) if n == 0 or blocks[n - 1] != b - 1)


def plan(pb: Problem) -> PlanReply:
    return plan_with(pb, NAME, pick)
