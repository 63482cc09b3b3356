"""``fifo-home``: the carbon-agnostic baseline — each job runs at its data's home site as
soon as capacity allows, in arrival order (``base.job_order``), whatever the price or the
carbon intensity.

If the home site can never run the job (no accepted accelerator type or too few of them),
the job goes to the site where it can start soonest; if the home site is down, it waits.
Large requests find the jobs with no room at home in one compiled loop
(``home_compiled``): the same reply.
"""

from __future__ import annotations

import numpy as np

from computenet.engine import explain
from computenet.engine.policies import greedy
from computenet.engine.policies.base import (
    Decision,
    choose_at_home,
    run_sequential,
    start_matrix,
)
from computenet.engine.problem import INF, JobView, Problem
from computenet.engine.types import PlanReply

NAME = "fifo-home"


def earliest(starts: np.ndarray, value: np.ndarray) -> tuple[int, int] | None:
    """Earliest start; ties to the lower value, then network order."""
    if starts.size == 0:
        return None
    m = float(starts.min())
    if m == INF:
        return None
    v = np.where(starts == m, value, INF)
    idx = int(np.argmin(v))
    return idx // starts.shape[1], idx % starts.shape[1]


def choose(pb: Problem, v: JobView) -> Decision:
    return choose_at_home(
        pb,
        v,
        lambda opts, rows: earliest(start_matrix(pb, v, opts)[rows], opts.value[rows]),
        greedy.options,  # the objective's options, priced in one compiled pass
    )


def plan(pb: Problem) -> PlanReply:
    from computenet.engine.policies import home_compiled

    if home_compiled.usable(pb):  # the same reply; no-room jobs found in a compiled loop
        return home_compiled.run_home(pb, NAME, choose, explain.costs_more())
    return run_sequential(pb, NAME, choose, explain.costs_more())
