"""``priced``: greedy that knows what capacity is worth when it is scarce.

Greedy places each job at its cheapest start that fits, blind to what later jobs need:
under scarcity the first jobs take the cheap home pools, and the later ones must move their
data or miss their deadlines. ``priced`` first solves the relaxation of the whole request
that the ``bound`` policy solves (perfect foresight of the queue: the LP over every job's
starts with the pools' capacity, branched on the sites of jobs the LP splits), and uses it
twice:

* its plan: jobs are taken heaviest LP weight first and each placed at the start its LP
  column names (the nearest start on the engine's grid at that pool) when that still
  fits — the LP has already weighed which jobs should wait, move or keep their home;
* its prices: for every pool and slot, the dual price of one accelerator there (CNY;
  zero where capacity is not short). A job the LP plan leaves over (its column no longer
  fits) takes the start that fits with the lowest objective *plus* the prices of the
  accelerator-slots it takes (its opportunity cost), in greedy's order.

Then ``repair.improve`` exchanges jobs that pay for moving data back to cheaper starts
where the jobs in the way can go elsewhere for less. The objective reported is each
placement's real cost and carbon; prices only steer.

The plan is never worse than greedy's: greedy plans the request too, and when the
LP-guided plan misses more deadlines or costs more, greedy's plan (with the exchanges) is
kept. Requests of more than ``LP_JOBS`` jobs (the 100,000-job speed instance) get greedy's
plan with at most ``LARGE_TRIES`` exchanges and no LP: solving it would take the policy
out of greedy's speed class. Up to ``LP_JOBS`` jobs the LP is the trade-off: it takes
seconds to minutes (see ``bench/planner.py``), far from greedy's class, for a queue that
is re-planned every few minutes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from computenet.engine import explain
from computenet.engine.policies import bound, greedy, repair
from computenet.engine.policies.base import (
    Chooser,
    Decision,
    Pick,
    argmin_earliest,
    decide,
    job_order,
    place,
    reply,
)
from computenet.engine.problem import FArray, JobView, Problem
from computenet.engine.types import Deferral, Infeasible, Placement, PlanReply

NAME = "priced"

BRANCH_NODES = 8
"""Relaxations solved while branching on split jobs' sites (fewer than ``bound``'s)."""

LP_JOBS = 2000
"""Requests up to this many jobs are planned from the LP over all of them."""

LARGE_TRIES = 100
"""Exchanges tried on a request of more than ``LP_JOBS`` jobs (each re-prices a few jobs
on the one-job path: a few milliseconds)."""

SNAP_SLOTS = 2
"""An LP start is taken at the cheapest grid start within this many slots of it."""


def prices_on(pb: Problem, lp_pb: Problem, lam: FArray) -> FArray:
    """Prices found on ``lp_pb``'s slots, per accelerator and slot of ``pb`` (a coarse
    slot's price spread evenly over its sub-slots)."""
    m = max(1, lp_pb.slot // pb.slot)
    cols = np.minimum(np.arange(pb.T_ext) // m, lam.shape[1] - 1)
    return np.ascontiguousarray(lam[:, cols] / m)


def price_cums(lam: FArray) -> FArray:
    """Prefix sums of the prices along time (one column longer)."""
    out = np.zeros((lam.shape[0], lam.shape[1] + 1))
    np.cumsum(lam, axis=1, out=out[:, 1:])
    return out


def _reason(alt: float, chosen: float, alt_start: int, chosen_start: int) -> str:
    d = alt - chosen
    if d < -1e-9 * max(1.0, abs(chosen)):
        return (
            f"{-d:,.2f} CNY cheaper for this job alone, but it takes capacity that other "
            "jobs need more (the plan's LP)"
        )
    return explain.costs_more()(alt, chosen, alt_start, chosen_start)


def chooser(Lc: FArray, site_of: dict[int, int] | None = None) -> Chooser:
    """``choose(pb, v)``: the start that fits with the lowest objective plus the capacity
    prices it takes (``Lc``: their prefix sums on ``pb``'s slots); at the site
    ``site_of[job index]`` when one fits there (the LP's site for the job)."""

    def choose(pb: Problem, v: JobView) -> Decision:
        opts = pb.options(v)
        if opts.value.size == 0:
            return Decision(opts)
        k = opts.k0 + np.arange(opts.width)[None, :]
        ns = (-(-v.run_s // pb.slot))[:, None]
        rows = v.pairs[:, None]
        priced = opts.value + v.count * (Lc[rows, k + ns] - Lc[rows, k])
        s = (site_of or {}).get(v.index)
        if s is not None:
            here = pb.net.pair_site[v.pairs] == s
            if np.isfinite(priced[here]).any():
                priced = np.where(here[:, None], priced, np.inf)
        best = argmin_earliest(priced)
        if best is None:
            return Decision(opts)
        i, c = best
        return Decision(opts, Pick(i, c, float(opts.value[i, c])))

    return choose


def _from_lp(
    pb: Problem, guide: list[tuple[int, int, int, float]], placements: list[Placement]
) -> set[int]:
    """Jobs placed where the LP puts them (heaviest column first, while it fits)."""
    done: set[int] = set()
    # Widest gangs first (they have the fewest starts that can fit), heaviest column first.
    jobs = pb.req.jobs
    guide = sorted(guide, key=lambda g: (-jobs[g[0]].accelerators, -g[3], g[0], g[1], g[2]))
    for n, p, start_s, _w in guide:
        if n in done:
            continue
        v = pb.views[n]
        if not isinstance(v, JobView):
            continue
        i = int(np.searchsorted(v.pairs, p))
        if i >= len(v.pairs) or int(v.pairs[i]) != p:
            continue
        opts = pb.options(v)
        if opts.width == 0:
            continue
        kt = start_s // pb.slot - opts.k0
        lo, hi = max(0, kt - SNAP_SLOTS), min(opts.width, kt + SNAP_SLOTS + 1)
        if lo >= hi:
            continue
        row = opts.value[i, lo:hi]
        c = int(np.argmin(row))
        if not np.isfinite(row[c]):
            continue
        c += lo
        d = Decision(opts, Pick(i, c, float(opts.value[i, c]), "as the plan's LP has it: "))
        placements.append(place(pb, v, d, NAME, _reason))
        done.add(n)
    return done


def plan(pb: Problem) -> PlanReply:
    start = pb.snapshot()
    g = replace(greedy.plan(pb), policy=NAME)
    g_free = pb.snapshot()
    if len(pb.req.jobs) > LP_JOBS:
        # No LP over so many jobs (it would take the policy out of greedy's speed class):
        # greedy's plan with the exchanges.
        r, kept = repair.improve(pb, g, _reason, LARGE_TRIES)
        note = f"more than {LP_JOBS} jobs: greedy's plan, no LP"
        extra = [f"{kept} exchanges moved jobs back to cheaper starts"] if kept else []
        return replace(r, notes=(note, *extra))
    pb.restore(start)
    r = _plan(pb)
    g_missed = len(g.deferred) + len(g.infeasible)
    missed = len(r.deferred) + len(r.infeasible)
    if missed > g_missed or (missed == g_missed and r.objective_cny > g.objective_cny):
        # Never worse than greedy: its plan, improved by the same exchanges.
        pb.restore(g_free)
        g, kept = repair.improve(pb, g, _reason)
        why = "the LP-guided plan was not better than greedy's: greedy's plan kept"
        extra = [f"{kept} exchanges moved jobs back to cheaper starts"] if kept else []
        return replace(g, notes=tuple(dict.fromkeys([*r.notes, why, *extra])))
    return r


def _plan(pb: Problem) -> PlanReply:
    # The bound's relaxation on whole slots (``bound.tree_problem``): what guides the
    # plan need not be the sub-slot LP's last digit, and it is several times faster.
    lp_pb = bound.tree_problem(pb)
    b = bound.lower_bound(lp_pb, branch_nodes=BRANCH_NODES)
    notes = [n for n in b.notes if not n.startswith("branched")]
    lam = prices_on(pb, lp_pb, b.prices)
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    if b.guide:
        done = _from_lp(pb, b.guide, placements)
        notes.append(f"{len(done)} of {len(pb.req.jobs)} jobs placed as the LP has them")
    else:
        done = set()
    if not b.guide and not np.any(lam > 0):
        # Nothing scarce and no LP plan: greedy's own plan (its compiled loop).
        r = replace(greedy.plan(pb), policy=NAME)
        notes.append("capacity not scarce: every price zero (greedy's plan)")
    else:
        site_of: dict[int, int] = {}
        for n, p, _s, _w in b.guide:  # heaviest first: each job's main LP site
            site_of.setdefault(n, int(pb.net.pair_site[p]))
        choose = chooser(price_cums(lam), site_of)
        order = sorted(range(len(pb.req.jobs)), key=lambda n: job_order(pb.req.jobs[n]))
        for n in order:
            if n not in done:
                decide(pb, n, NAME, choose, _reason, placements, deferred, infeasible)
        r = reply(pb, NAME, placements, deferred, infeasible)
        if np.any(lam > 0):
            notes.append(f"capacity priced: up to {float(lam.max()):,.4f} CNY per accelerator-slot")
    r, kept = repair.improve(pb, r, _reason)
    if kept:
        notes.append(f"{kept} exchanges moved jobs back to cheaper starts")
    return replace(r, notes=tuple(dict.fromkeys(notes)))
