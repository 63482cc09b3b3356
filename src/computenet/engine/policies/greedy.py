"""``greedy``: joint space and time, one job at a time — the fast online default.

Each job (in ``base.job_order``) takes the start, site and accelerator type with the lowest
objective (energy cost + compute price + transfer cost + carbon price x carbon) among all
that fit the capacity left by the jobs before it, its deadline and its data rules. Ties go
to the earliest start, then to network order. Large requests take the same decisions in
one compiled loop (``greedy_compiled``).
"""

from __future__ import annotations

import numpy as np

from computenet.engine import explain
from computenet.engine.policies.base import (
    Decision,
    Pick,
    argmin_earliest,
    run_sequential,
    tol,
)
from computenet.engine.problem import INF, JobView, Options, Problem, subset
from computenet.engine.types import PlanReply

NAME = "greedy"


PRUNE_ABOVE = 40
"""Jobs with more usable pools than this price the pools in order of a lower bound and
stop once no pool left could reach the best value found."""


def choose(pb: Problem, v: JobView) -> Decision:
    if len(v.pairs) > PRUNE_ABOVE:
        return _choose_pruned(pb, v)
    opts = options(pb, v)
    best = argmin_earliest(opts.value)
    if best is None:
        return Decision(opts)
    i, c = best
    return Decision(opts, Pick(i, c, float(opts.value[i, c])))


COMPILED_OPTIONS_ABOVE = 64
"""Options of more starts than this (pairs x slots) are priced in one compiled pass
(``greedy_kernel.options_one_run``) rather than with a few dozen array operations."""


def options(pb: Problem, v: JobView) -> Options:
    """``pb.options(v)`` (objective, capacity checked): the same arrays; a job with one run
    length at every pair is priced in one compiled pass."""
    slot = pb.slot
    r = v.run_1
    if r is None or pb.power_free is not None:  # the compiled pass reads no power caps
        return pb.options(v)
    dl = v.deadline_off
    k0 = max(0, -(-(int(v.ready.min()) + r) // slot) - -(-r // slot))
    k1 = min(pb.T - 1, (dl - r) // slot)
    K = k1 - k0 + 1
    if K * len(v.pairs) <= COMPILED_OPTIONS_ABOVE:
        return pb.options(v)
    from computenet.engine.policies import greedy_kernel

    a, b = k0, k1 + 1
    w, W = pb.weights_head("objective", b + r // slot)
    P = len(v.pairs)
    value = np.empty((P, K))
    end_al = np.empty((P, K), dtype=bool)
    time_ok = np.empty((P, K), dtype=bool)
    greedy_kernel.options_one_run(
        W,
        w,
        v.pairs,
        a,
        b,
        r,
        slot,
        v.ready,
        dl,
        v.kw,
        v.fixed,
        True,
        pb.free,
        pb.need(v),
        True,
        value,
        end_al,
        time_ok,
    )
    return Options(k0, value, end_al, time_ok)


def _choose_pruned(pb: Problem, v: JobView) -> Decision:
    """``choose`` on the pools that could hold the best start: the same pick, since a
    pool whose lower bound exceeds the best value (plus the tie tolerance) cannot win
    or tie."""
    lb = pb.lower_bounds(v)
    order = np.argsort(lb, kind="stable")
    n = min(len(order), 8)
    while True:
        rows = np.sort(order[:n])
        sub = subset(v, rows)
        opts = pb.options(sub)
        m = float(opts.value.min()) if opts.value.size else INF
        limit = m + tol(m) + 1e-6 * max(1.0, abs(m)) if m < INF else INF
        more = int(np.count_nonzero(lb <= limit))
        if more <= n or n == len(order):
            break
        n = min(len(order), max(more, 2 * n))
    best = argmin_earliest(opts.value)
    if best is None:
        return Decision(opts, view=sub)
    i, c = best
    return Decision(opts, Pick(i, c, float(opts.value[i, c])), view=sub)


def plan(pb: Problem) -> PlanReply:
    from computenet.engine.policies import greedy_compiled

    if greedy_compiled.usable(pb):
        return greedy_compiled.plan(pb)
    return run_sequential(pb, NAME, choose, explain.costs_more())
