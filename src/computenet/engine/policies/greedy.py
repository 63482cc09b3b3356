"""``greedy``: joint space and time, one job at a time — the fast online default.

Each job (in ``base.job_order``) takes the start, site and accelerator type with the lowest
objective (energy cost + compute price + transfer cost + carbon price x carbon) among all
that fit the capacity left by the jobs before it, its deadline and its data rules. Ties go
to the earliest start, then to network order. Large requests on networks with one
accelerator speed take the same decisions in batches (``greedy_batch``).
"""

from __future__ import annotations

from computenet.engine import explain
from computenet.engine.policies.base import Decision, Pick, argmin_earliest, run_sequential
from computenet.engine.problem import JobView, Problem
from computenet.engine.types import PlanReply

NAME = "greedy"


def choose(pb: Problem, v: JobView) -> Decision:
    opts = pb.options(v)
    best = argmin_earliest(opts.value)
    if best is None:
        return Decision(opts)
    i, c = best
    return Decision(opts, Pick(i, c, float(opts.value[i, c])))


def plan(pb: Problem) -> PlanReply:
    from computenet.engine.policies import greedy_batch

    if greedy_batch.usable(pb):
        return greedy_batch.plan(pb)
    return run_sequential(pb, NAME, choose, explain.costs_more())
