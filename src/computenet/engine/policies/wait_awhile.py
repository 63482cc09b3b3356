"""``wait-awhile``: temporal shifting only — the job stays at its home site and takes the
start with the lowest objective before its deadline (after Wiesner et al., "Let's Wait
Awhile", Middleware '21, which shifts in time at a fixed location).

The home site is the home of the job's first dataset (the first site when it reads none).
If the home site can never run the job, every site is considered; if it is down, the job
waits.
"""

from __future__ import annotations

from computenet.engine import explain
from computenet.engine.policies import greedy
from computenet.engine.policies.base import (
    Decision,
    argmin_earliest,
    choose_at_home,
    run_sequential,
)
from computenet.engine.problem import JobView, Problem
from computenet.engine.types import PlanReply

NAME = "wait-awhile"


def choose(pb: Problem, v: JobView) -> Decision:
    # The objective's options priced in one compiled pass (``greedy.options``).
    return choose_at_home(
        pb, v, lambda opts, rows: argmin_earliest(opts.value[rows]), greedy.options
    )


def plan(pb: Problem) -> PlanReply:
    from computenet.engine.policies import home_compiled

    if home_compiled.usable(pb):  # the same reply; no-room jobs found in a compiled loop
        return home_compiled.run_home(pb, NAME, choose, explain.costs_more())
    return run_sequential(pb, NAME, choose, explain.costs_more())
