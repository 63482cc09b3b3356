"""``suspend-resume``: temporal shifting with pauses, in the style of GAIA's Wait Awhile
(Wiesner et al., "Let's Wait Awhile", Middleware '21, whose suspend-resume strategy runs an
interruptible job in the cleanest hours before its deadline).

A checkpointable job stays at its home site and runs in the request slots (hours) with the
lowest objective (energy cost + rent + carbon price x carbon) that have room, taken
cheapest first until they hold its run plus the checkpoint and restore time of every pause
(``policies.pause``). It keeps the split only if it beats its best single window; other
jobs are placed as ``wait-awhile`` places them.
"""

from __future__ import annotations

import numpy as np

from computenet.engine.policies.pause import enough, plan_with
from computenet.engine.problem import FArray, IntArray, Problem
from computenet.engine.types import PlanReply

NAME = "suspend-resume"


def pick(rates: FArray, lengths: IntArray, need_s: int, overhead_s: int) -> list[int] | None:
    """The cheapest free blocks per second (ties to the earliest) until they hold the work."""
    chosen: list[int] = []
    for b in np.argsort(rates, kind="stable"):
        if not np.isfinite(rates[b]):
            return None
        chosen.append(int(b))
        if enough(chosen, lengths, need_s, overhead_s):
            return sorted(chosen)
    return None


def plan(pb: Problem) -> PlanReply:
    return plan_with(pb, NAME, pick)
