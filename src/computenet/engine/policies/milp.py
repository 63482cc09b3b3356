"""``milp``: a joint plan of all the request's jobs, a mixed-integer program solved with HiGHS
(``scipy.optimize.milp``).

Each job chooses one (site, accelerator type, start) among its options, or stays unplaced at
a penalty larger than any option's objective; per pool and slot, the chosen options may not
use more accelerators than are free. The objective is the sum of the jobs' objectives.

When the jobs have more than ``FULL_COLUMNS`` options in all, each job keeps only its
``K_PER_PAIR`` best starts per pool that do not overlap each other and its ``TOP_OVERALL``
best starts in all, plus the start ``greedy`` would give it (otherwise every option is
kept, so small problems are solved exactly); capacity rows
that no combination of options could overfill are dropped. ``greedy``'s plan is a feasible
point of this program, so the result is never worse than ``greedy`` (if the solver stops at
its node limit with something worse, ``greedy``'s plan is kept). Planned every few minutes
over the queue (as the simulator and the live loop do), this is a rolling-horizon plan;
requests with more than ``CHUNK_JOBS`` jobs are also solved in rolling chunks by earliest
start, each seeing the capacity the chunks before it took.

Under scarcity (some chunk needed branch and bound) the chunks' view is too narrow: each
sees the capacity the chunks before it took but not what later ones need. Then the plan
that ``priced`` builds from the relaxation of the whole request is tried as well, and kept
when it misses fewer deadlines or costs less (on the planner benchmark's tight 1,000-job
instance it does).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from computenet.engine import explain
from computenet.engine.policies import greedy
from computenet.engine.policies.base import (
    Decision,
    Pick,
    job_order,
    place,
    reply,
    run_sequential,
    tol,
)
from computenet.engine.problem import INF, IntArray, JobView, Options, Problem, Rejection
from computenet.engine.types import Deferral, Infeasible, Placement, PlanReply

NAME = "milp"
# Options kept per job on large requests. Two starts per pool rather than one, the second
# clear of the first, let a job wait at its home pool instead of moving its data when
# capacity is short: on the planner benchmark's tight instances this took milp from
# 2.28 / 1.53 / 4.01 times the bound to 1.97 / 1.53 / 1.75, the ample ones unchanged.
K_PER_PAIR = 2
TOP_OVERALL = 24
CHUNK_JOBS = 200
FULL_COLUMNS = 400
MIP_REL_GAP = 1e-4
SCARCE = "capacity binds: a chunk needed branch and bound"
"""The note of a chunk whose best plan was not within ``MIP_REL_GAP`` of its LP: then the
plan from the whole request's relaxation (``priced``) is tried too."""


def _reason(alt: float, chosen: float, alt_start: int, chosen_start: int) -> str:
    d = alt - chosen
    if d < -1e-9 * max(1.0, abs(chosen)):
        return (
            f"{-d:,.2f} CNY cheaper for this job alone, but the joint plan gives that "
            "capacity to other jobs"
        )
    return explain.costs_more()(alt, chosen, alt_start, chosen_start)


def _candidates(
    opts: Options, extra: tuple[int, int] | None, prune: bool, ns: IntArray
) -> np.ndarray:
    """Flat indices (row x width + column) of the options kept for one job, sorted: every
    option on small requests; else per pool its ``K_PER_PAIR`` best starts, each after the
    first clear of those before it (``ns`` slots, the run, apart), so that when the best
    hours are contended the program can move the job in time rather than only away; the
    ``TOP_OVERALL`` best in all; and greedy's start (``extra``)."""
    val = opts.value
    if val.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not prune:
        return np.flatnonzero(np.isfinite(val.ravel()))
    rows, width = val.shape
    cols = np.arange(width)[None, :]
    left = val.copy()
    picks = []
    for _ in range(min(K_PER_PAIR, width)):
        c = np.argmin(left, axis=1)
        picks.append(np.arange(rows) * width + c)
        left[np.abs(cols - c[:, None]) < ns[:, None]] = INF
    flat = val.ravel()
    top = min(TOP_OVERALL, flat.size)
    best = np.argpartition(flat, top - 1)[:top]
    idx = np.concatenate([*picks, best, [extra[0] * width + extra[1]] if extra else []])
    idx = np.unique(idx.astype(np.int64))
    return idx[np.isfinite(flat[idx])]


def _solve_chunk(
    pb: Problem, order: list[int]
) -> tuple[dict[int, tuple[int, int]], dict[int, Options], list[str]]:
    """Choices (view index -> (row, column)) for the jobs in ``order``; commits them."""
    notes: list[str] = []
    views: list[tuple[int, JobView]] = [
        (n, v) for n in order if isinstance(v := pb.views[n], JobView)
    ]
    opts = {n: pb.options(v) for n, v in views}
    # Greedy on the same capacity: a feasible start and the fallback.
    snap = pb.snapshot()
    g_pick: dict[int, tuple[int, int]] = {}
    for n, v in views:
        d = greedy.choose(pb, v)
        if d.pick is not None:
            gv = d.view or v
            k = d.opts.k0 + d.pick.c
            pb.commit(int(gv.pairs[d.pick.i]), k, pb.footprint(gv, d.pick.i), v.count)
            # express the pick in the rows and columns of the options at the chunk's start
            i = int(np.searchsorted(v.pairs, gv.pairs[d.pick.i]))
            g_pick[n] = (i, k - opts[n].k0)
    pb.restore(snap)
    job_l, idx_l, val_l, cell0_l, ns_l, cnt_l = [], [], [], [], [], []
    T_ext = pb.T_ext
    prune = sum(int(np.isfinite(o.value).sum()) for o in opts.values()) > FULL_COLUMNS
    for jn, (n, v) in enumerate(views):
        o = opts[n]
        extra = g_pick.get(n)
        if extra is not None and not (0 <= extra[1] < o.width):
            extra = None
        idx = _candidates(o, extra, prune, -(-v.run_s // pb.slot))
        ii, cc = np.divmod(idx, max(1, o.width))
        job_l.append(np.full(len(idx), jn))
        idx_l.append(idx)
        val_l.append(o.value.ravel()[idx])
        cell0_l.append(v.pairs[ii] * T_ext + o.k0 + cc)
        ns_l.append(-(-v.run_s[ii] // pb.slot))
        cnt_l.append(np.full(len(idx), float(v.count)))
    cols_job = np.concatenate(job_l) if job_l else np.zeros(0, dtype=np.int64)
    cols_flat = np.concatenate(idx_l) if idx_l else np.zeros(0, dtype=np.int64)
    cols_val = np.concatenate(val_l) if val_l else np.zeros(0)
    nj, nc = len(views), len(cols_job)
    chosen: dict[int, tuple[int, int]] = {}
    if nj == 0 or nc == 0:
        return chosen, opts, notes
    big = 10.0 * float(np.abs(cols_val).max()) + 1000.0
    # Each column covers ``ns`` consecutive cells of its pool from its first cell.
    ns_c = np.concatenate(ns_l)
    colidx = np.repeat(np.arange(nc), ns_c)
    starts = np.repeat(np.cumsum(ns_c) - ns_c, ns_c)
    cells = np.repeat(np.concatenate(cell0_l), ns_c) + (np.arange(len(colidx)) - starts)
    cnt = np.repeat(np.concatenate(cnt_l), ns_c)
    free = pb.free.ravel()
    load = np.bincount(cells, weights=cnt, minlength=free.size)
    binding = np.flatnonzero(load > free)
    keep = np.isin(cells, binding)
    rows_u, row_of = np.unique(cells[keep], return_inverse=True)
    if len(rows_u) == 0 or nj == 1:
        # No pool can be overfilled (or one job): each job's best start is the optimum,
        # and that is greedy's pick (the best start that fits, same tie-break).
        return _check(pb, views, opts, g_pick), opts, notes
    obj = np.concatenate([cols_val, np.full(nj, big)])
    A_eq = sp.csr_matrix(
        (np.ones(nc + nj), (np.concatenate([cols_job, np.arange(nj)]), np.arange(nc + nj))),
        shape=(nj, nc + nj),
    )
    cons = [LinearConstraint(A_eq, 1, 1)]
    if len(rows_u):
        A_cap = sp.csr_matrix((cnt[keep], (row_of, colidx[keep])), shape=(len(rows_u), nc + nj))
        cons.append(LinearConstraint(A_cap, -np.inf, free[rows_u].astype(np.float64)))

    def value_of(pk: dict[int, tuple[int, int]]) -> float:
        return sum(float(opts[n].value[pk[n]]) if n in pk else big for n, _ in views)

    # Greedy's plan, and the LP relaxation rounded: two feasible plans to beat.
    g_val = value_of(g_pick)
    best_pick, best_val, how = dict(g_pick), g_val, "greedy"
    # Budgets are counts carried in the request (no clock: the same request gives the same
    # plan on any machine).
    lp = linprog(
        obj,
        A_ub=cons[1].A if len(cons) > 1 else None,
        b_ub=cons[1].ub if len(cons) > 1 else None,
        A_eq=A_eq,
        b_eq=np.ones(nj),
        bounds=(0, 1),
        method="highs",
        options={"maxiter": pb.req.lp_iteration_limit},
    )
    if lp.status == 0 and lp.x is not None:
        r_pick = _round(pb, views, opts, lp.x[:nc], cols_job, cols_flat, obj[:nc])
        r_val = value_of(r_pick)
        if r_val < best_val - tol(best_val):
            best_pick, best_val, how = r_pick, r_val, "rounded LP"
    # The LP optimum bounds every plan from below: when a plan in hand is already within
    # the gap HiGHS is asked for, its branch and bound could only confirm it.
    if lp.status == 0 and best_val <= lp.fun + MIP_REL_GAP * abs(lp.fun):
        notes.append(f"the {how} plan is within {MIP_REL_GAP:g} of the LP bound (kept)")
        return _check(pb, views, opts, best_pick), opts, notes
    notes.append(SCARCE)
    res = milp(
        obj,
        integrality=np.ones(nc + nj),
        bounds=Bounds(0, 1),
        constraints=cons,
        options={
            "node_limit": pb.req.milp_node_limit,
            "mip_rel_gap": MIP_REL_GAP,
        },
    )
    if res.x is not None:
        m_pick: dict[int, tuple[int, int]] = {}
        for ci in np.flatnonzero(res.x[:nc] > 0.5):
            n = views[int(cols_job[ci])][0]
            m_pick[n] = divmod(int(cols_flat[ci]), max(1, opts[n].width))
        m_val = value_of(m_pick)
        if m_val <= best_val + tol(best_val):
            best_pick, best_val, how = m_pick, m_val, "HiGHS"
            if res.status != 0:
                notes.append(f"HiGHS: {res.message} (best plan found kept)")
    if how != "HiGHS":
        notes.append(f"HiGHS stopped ({res.message}); kept the {how} plan, the best found")
    pick = best_pick
    return _check(pb, views, opts, pick), opts, notes


def _round(
    pb: Problem,
    views: list[tuple[int, JobView]],
    opts: dict[int, Options],
    x: np.ndarray,
    cols_job: np.ndarray,
    cols_flat: np.ndarray,
    val: np.ndarray,
) -> dict[int, tuple[int, int]]:
    """The LP relaxation rounded: options taken by decreasing LP weight (then value) while
    they fit; the jobs left over go to greedy on the capacity that remains."""
    snap = pb.snapshot()
    pick: dict[int, tuple[int, int]] = {}
    for ci in np.lexsort((val, -x)):
        if x[ci] <= 1e-6:
            break
        n, v = views[int(cols_job[ci])]
        if n in pick:
            continue
        i, c = divmod(int(cols_flat[ci]), max(1, opts[n].width))
        k = opts[n].k0 + c
        ns = pb.footprint(v, i)
        if pb.fits(int(v.pairs[i]), k, ns, v.count):
            pb.commit(int(v.pairs[i]), k, ns, v.count)
            pick[n] = (i, c)
    for n, v in views:
        if n in pick:
            continue
        d = greedy.choose(pb, v)
        if d.pick is None:
            continue
        gv = d.view or v
        k = d.opts.k0 + d.pick.c
        i = int(np.searchsorted(v.pairs, gv.pairs[d.pick.i]))
        if 0 <= k - opts[n].k0 < opts[n].width:
            pb.commit(int(gv.pairs[d.pick.i]), k, pb.footprint(gv, d.pick.i), v.count)
            pick[n] = (i, k - opts[n].k0)
    pb.restore(snap)
    return pick


def _check(
    pb: Problem,
    views: list[tuple[int, JobView]],
    opts: dict[int, Options],
    pick: dict[int, tuple[int, int]],
) -> dict[int, tuple[int, int]]:
    """The picks that fit, taken in job order (rounded solver values must not overfill a
    pool); the caller restores the capacity and commits them while describing them."""
    chosen: dict[int, tuple[int, int]] = {}
    for n, v in views:
        ic = pick.get(n)
        if ic is None:
            continue
        i, cc = ic
        k = opts[n].k0 + cc
        ns = pb.footprint(v, i)
        if pb.fits(int(v.pairs[i]), k, ns, v.count):
            pb.commit(int(v.pairs[i]), k, ns, v.count)
            chosen[n] = ic
    return chosen


def _greedy_value(pb: Problem, live: list[int]) -> tuple[int, float]:
    """Jobs greedy would place and their total objective (capacity restored after)."""
    snap = pb.snapshot()
    placed, total = 0, 0.0
    for n in live:
        v = pb.views[n]
        assert isinstance(v, JobView)
        d = greedy.choose(pb, v)
        if d.pick is not None:
            gv = d.view or v
            pb.commit(
                int(gv.pairs[d.pick.i]), d.opts.k0 + d.pick.c, pb.footprint(gv, d.pick.i), v.count
            )
            placed += 1
            total += d.pick.value
    pb.restore(snap)
    return placed, total


def plan(pb: Problem) -> PlanReply:
    order = sorted(range(len(pb.views)), key=lambda n: job_order(pb.req.jobs[n]))
    live = [n for n in order if isinstance(pb.views[n], JobView)]
    chunks = max(1, math.ceil(len(live) / CHUNK_JOBS))
    g_placed, g_total = _greedy_value(pb, live) if chunks > 1 else (0, 0.0)
    start = pb.snapshot()
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    notes: list[str] = []
    for n in order:
        v = pb.views[n]
        if isinstance(v, Rejection):
            infeasible.append(Infeasible(pb.req.jobs[n].id, v.constraint, v.reason))
    for ci in range(chunks):
        part = live[ci * CHUNK_JOBS : (ci + 1) * CHUNK_JOBS]
        snap = pb.snapshot()
        chosen, opts, chunk_notes = _solve_chunk(pb, part)
        notes += chunk_notes
        pb.restore(snap)
        for n in part:
            v = pb.views[n]
            assert isinstance(v, JobView)
            ic = chosen.get(n)
            if ic is None:
                out = explain.unplaced(pb, v, pb.options(v))
                (deferred if isinstance(out, Deferral) else infeasible).append(out)  # type: ignore[arg-type]
                continue
            i, c = ic
            d = Decision(opts[n], Pick(i, c, float(opts[n].value[i, c]), "joint plan: "))
            placements.append(place(pb, v, d, NAME, _reason))
    r = reply(pb, NAME, placements, deferred, infeasible)
    if chunks > 1:
        notes.append(f"solved in {chunks} rolling chunks of up to {CHUNK_JOBS} jobs")
        worse = len(r.placements) < g_placed or (
            len(r.placements) == g_placed and r.objective_cny > g_total + tol(g_total)
        )
        if worse:
            pb.restore(start)
            r = run_sequential(pb, NAME, greedy.choose, _reason)
            notes.append("the chunked plan was worse than greedy's; kept greedy's")
    if SCARCE in notes:
        r = _or_priced(pb, start, r, notes)
    if notes:
        r = replace(r, notes=tuple(dict.fromkeys(notes)))
    return r


def _or_priced(pb: Problem, start: np.ndarray, r: PlanReply, notes: list[str]) -> PlanReply:
    """Under scarcity (a chunk's plan was not within ``MIP_REL_GAP`` of its LP): ``priced``'s
    plan from the whole request's relaxation (``priced``), when it misses fewer deadlines
    or costs less than the chunked plan. The chunks see each other's capacity only in
    order; the relaxation sees every job at once."""
    from computenet.engine.policies import priced

    done = pb.snapshot()
    pb.restore(start)
    p = priced.plan(pb)
    missed = len(r.deferred) + len(r.infeasible)
    p_missed = len(p.deferred) + len(p.infeasible)
    if p_missed < missed or (
        p_missed == missed and p.objective_cny < r.objective_cny - tol(r.objective_cny)
    ):
        notes.append("capacity is scarce: the plan from the whole request's LP (priced) kept")
        return replace(
            p,
            policy=NAME,
            placements=tuple(
                replace(x, reason=x.reason.replace(priced.NAME, NAME, 1)) for x in p.placements
            ),
        )
    pb.restore(done)
    return r
