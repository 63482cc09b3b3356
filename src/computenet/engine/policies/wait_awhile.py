"""``wait-awhile``: temporal shifting only — the job stays at its home site and takes the
start with the lowest objective before its deadline (after Wiesner et al., "Let's Wait
Awhile", Middleware '21, which shifts in time at a fixed location).

The home site is the home of the job's first dataset (the first site when it reads none).
If the home site can never run the job, every site is considered; if it is down, the job
waits.
"""

from __future__ import annotations

from computenet.engine import explain
from computenet.engine.policies.base import (
    Decision,
    Pick,
    argmin_earliest,
    home_rows,
    run_sequential,
)
from computenet.engine.problem import JobView, Problem
from computenet.engine.types import Infeasible, PlanReply

NAME = "wait-awhile"


def choose(pb: Problem, v: JobView) -> Decision:
    opts = pb.options(v)
    rows, note = home_rows(pb, v)
    if rows is None:
        return Decision(opts, unplaced=Infeasible(v.job.id, "down", note))
    best = argmin_earliest(opts.value[rows])
    if best is None:
        return Decision(opts, rows=rows)
    r, c = best
    i = int(rows[r])
    return Decision(opts, Pick(i, c, float(opts.value[i, c]), note), rows=rows)


def plan(pb: Problem) -> PlanReply:
    return run_sequential(pb, NAME, choose, explain.costs_more())
