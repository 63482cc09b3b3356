"""Improve a plan under scarce capacity by moving jobs back to cheaper starts.

When capacity is short a sequential policy places a job where its data must move (or at a
dear hour) only because the jobs before it took the cheap starts — although most of those
could have run a little earlier or later at the same pool for almost nothing. ``improve``
takes a finished plan and, for each placed job that pays for moving data (dearest first),
tries its few cheapest starts ignoring the other jobs: it lifts out every job that overlaps
the target on that pool, puts the job there, and re-places the lifted jobs one at a time in
``job_order`` at their cheapest start that still fits (greedy's rule). The exchange is kept
only when every lifted job found a start and the plan's objective went down; otherwise the
plan is put back as it was. So the plan never gets worse, never places fewer jobs, and
never overfills a pool (every start is checked against the capacity left, home reserve
included).

Deterministic and bounded by counts (no clock): at most ``MAX_TRIES`` tries, a try being
one job's targets priced or one exchange tried.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from computenet.engine import explain
from computenet.engine.policies import greedy
from computenet.engine.policies.base import Decision, Pick, job_order, place, reply, tol
from computenet.engine.problem import JobView, Problem
from computenet.engine.types import Placement, PlanReply

MAX_TRIES = 2000
"""Exchanges tried per plan (each lifts the jobs overlapping one target start)."""

TARGETS = 6
"""Cheapest starts tried per job (two on the same pool at least half a run apart)."""

MAX_LIFT = 16
"""Jobs lifted out of the way of one target at most."""

PASSES = 3
"""Rounds over the jobs that move data, while a round still improves the plan."""


@dataclass
class _At:
    """Where a placed job runs: row ``i`` of its view, pool ``p``, first slot ``k``,
    ``ns`` slots, its objective value (CNY) and the accelerators it needs there."""

    i: int
    p: int
    k: int
    ns: int
    value: float  # nan: not yet priced (``_Plan.value``)
    need: int


def _value_at(pb: Problem, v: JobView, i: int, k: int) -> float:
    o = pb.options(v, capacity=False)
    c = k - o.k0
    return float(o.value[i, c]) if 0 <= c < o.width else float("inf")


class _Plan:
    def __init__(self, pb: Problem) -> None:
        self.pb = pb
        self.at: dict[int, _At] = {}
        self.on: dict[int, set[int]] = {}

    def add(self, n: int, a: _At) -> None:
        self.pb.commit(a.p, a.k, a.ns, self.pb.req.jobs[n].accelerators)
        self.at[n] = a
        self.on.setdefault(a.p, set()).add(n)

    def remove(self, n: int) -> _At:
        a = self.at.pop(n)
        self.pb.free[a.p, a.k : a.k + a.ns] += self.pb.req.jobs[n].accelerators
        self.on[a.p].discard(n)
        return a

    def value(self, n: int) -> float:
        a = self.at[n]
        if a.value != a.value:
            v = self.pb.views[n]
            assert isinstance(v, JobView)
            a.i = int(np.searchsorted(v.pairs, a.p))
            a.value = _value_at(self.pb, v, a.i, a.k)
        return a.value

    def overlapping(self, p: int, k: int, ns: int) -> list[int]:
        return [
            m
            for m in self.on.get(p, ())
            if self.at[m].k < k + ns and k < self.at[m].k + self.at[m].ns
        ]


def _greedy_at(pb: Problem, v: JobView) -> _At | None:
    """Greedy's start for ``v`` on the capacity left."""
    d = greedy.choose(pb, v)
    if d.pick is None:
        return None
    gv = d.view or v
    p = int(gv.pairs[d.pick.i])
    i = int(np.searchsorted(v.pairs, p))
    return _At(i, p, d.opts.k0 + d.pick.c, pb.footprint(v, i), d.pick.value, int(pb.need(v)[i]))


def _targets(pb: Problem, v: JobView, below: float) -> list[_At]:
    """The job's cheapest starts ignoring capacity, under ``below``."""
    o = pb.options(v, capacity=False)
    if o.value.size == 0:
        return []
    flat = o.value.ravel()
    cand = np.flatnonzero(flat < below - tol(below))
    if cand.size == 0:
        return []
    cand = cand[np.lexsort((cand, flat[cand]))]
    need = pb.need(v)
    out: list[_At] = []
    for f in cand[: 50 * TARGETS].tolist():
        i, c = divmod(f, o.width)
        ns = pb.footprint(v, i)
        k = o.k0 + c
        p = int(v.pairs[i])
        if any(t.p == p and abs(t.k - k) < max(1, ns // 2) for t in out):
            continue
        out.append(_At(i, p, k, ns, float(flat[f]), int(need[i])))
        if len(out) >= TARGETS:
            break
    return out


def _try(plan: _Plan, n: int, t: _At) -> float | None:
    """Job ``n`` (not in the plan) put at ``t``, the jobs it lifts re-placed: the change of
    their objective, or ``None`` (and the plan as before) when ``t`` cannot be freed by
    lifting at most ``MAX_LIFT`` jobs or a lifted job finds no start."""
    pb = plan.pb
    jobs = pb.req.jobs
    lifted: list[int] = []
    old: dict[int, _At] = {}
    if not pb.fits(t.p, t.k, t.ns, t.need):
        # Lift the jobs in the way, the last in greedy's order first, until it fits.
        way = sorted(
            plan.overlapping(t.p, t.k, t.ns), key=lambda m: job_order(jobs[m]), reverse=True
        )
        for m in way[:MAX_LIFT]:
            plan.value(m)
            old[m] = plan.remove(m)
            lifted.append(m)
            if pb.fits(t.p, t.k, t.ns, t.need):
                break
        else:
            for m, a in old.items():
                plan.add(m, a)
            return None
    plan.add(n, t)
    delta = 0.0
    moved: list[int] = []
    # Widest gangs first (they have the fewest starts), then greedy's order.
    for m in sorted(lifted, key=lambda m: (-jobs[m].accelerators, job_order(jobs[m]))):
        v = pb.views[m]
        assert isinstance(v, JobView)
        got = _greedy_at(pb, v)
        if got is None:
            for q in moved:
                plan.remove(q)
            plan.remove(n)
            for q, a in old.items():
                plan.add(q, a)
            return None
        plan.add(m, got)
        moved.append(m)
        delta += got.value - old[m].value
    return delta


def _undo(plan: _Plan, snap: dict[int, _At]) -> None:
    """Back to the placements of ``snap``."""
    for m in [m for m in plan.at if plan.at[m] is not snap.get(m)]:
        plan.remove(m)
    for m, a in snap.items():
        if m not in plan.at:
            plan.add(m, a)


def improve(
    pb: Problem, rep: PlanReply, reason: explain.Reason, max_tries: int = MAX_TRIES
) -> tuple[PlanReply, int]:
    """``rep`` (a plan of ``pb``'s request whose placements are committed to ``pb``'s
    capacity) improved by at most ``max_tries`` exchanges tried; and how many were
    kept."""
    index = {j.id: n for n, j in enumerate(pb.req.jobs)}
    plan = _Plan(pb)
    by_job: dict[int, Placement] = {}
    # The placements as they are: lift them from the capacity, then add them back as
    # exchangeable entries.
    if not any(pl.breakdown.transfer_cost_cny > 0 for pl in rep.placements):
        return rep, 0
    slot = pb.slot
    for pl in rep.placements:
        n = index[pl.job_id]
        p = pb.net.pair_of[(pl.site_id, pl.accelerator)]
        k = (pl.start_s - pb.now) // slot
        # Row and value found when first needed (``_Plan.value``); ``need`` is only read
        # for a target.
        a = _At(-1, p, k, -(-(pl.end_s - pl.start_s) // slot), float("nan"), 0)
        plan.at[n] = a
        plan.on.setdefault(p, set()).add(n)
        by_job[n] = pl
    movers = sorted(
        (n for n, pl in by_job.items() if pl.breakdown.transfer_cost_cny > 0),
        key=lambda n: (-by_job[n].breakdown.transfer_cost_cny, job_order(pb.req.jobs[n])),
    )
    tries = kept = 0
    changed: set[int] = set()
    for _ in range(PASSES):
        better = False
        for n in movers:
            if tries >= max_tries:
                break
            tries += 1  # pricing the job's targets counts as a try too
            plan.value(n)
            cur = plan.at[n]
            v = pb.views[n]
            assert isinstance(v, JobView)
            plan.remove(n)
            done = False
            for t in _targets(pb, v, cur.value):
                if tries >= max_tries:
                    break
                tries += 1
                snap = dict(plan.at)
                d = _try(plan, n, t)
                if d is None:
                    continue
                if t.value - cur.value + d < -tol(cur.value):
                    done = True
                    changed |= {m for m in plan.at if plan.at[m] is not snap.get(m)}
                    break
                _undo(plan, snap)
            if done:
                kept += 1
                better = True
            else:
                plan.add(n, cur)
        if not better or tries >= max_tries:
            break
    if not changed:
        return rep, 0
    placements = [pl for n, pl in by_job.items() if n not in changed]
    for n in sorted(changed, key=lambda m: job_order(pb.req.jobs[m])):
        v = pb.views[n]
        assert isinstance(v, JobView)
        a = plan.remove(n)
        opts = pb.options(v)
        c = a.k - opts.k0
        dec = Decision(opts, Pick(a.i, c, float(opts.value[a.i, c]), ""))
        placements.append(place(pb, v, dec, rep.policy, reason))
        plan.at[n] = a
    out = reply(pb, rep.policy, placements, list(rep.deferred), list(rep.infeasible))
    return out, kept
