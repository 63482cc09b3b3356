"""``milp``: a joint plan of all the request's jobs, a mixed-integer program solved with HiGHS
(``scipy.optimize.milp``).

Each job chooses one (site, accelerator type, start) among its options, or stays unplaced at
a penalty larger than any option's objective; per pool and slot, the chosen options may not
use more accelerators than are free. The objective is the sum of the jobs' objectives.

To stay fast, each job keeps only its ``K_PER_PAIR`` best starts per pool and its
``TOP_OVERALL`` best starts in all, plus the start ``greedy`` would give it; capacity rows
that no combination of options could overfill are dropped. ``greedy``'s plan is a feasible
point of this program, so the result is never worse than ``greedy`` (if the solver stops at
its time limit with something worse, ``greedy``'s plan is kept). Planned every few minutes
over the queue (as the simulator and the live loop do), this is a rolling-horizon plan;
requests with more than ``CHUNK_JOBS`` jobs are also solved in rolling chunks by earliest
start, each seeing the capacity the chunks before it took.
"""

from __future__ import annotations

import math
import time as _time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from computenet.engine import explain
from computenet.engine.policies import greedy
from computenet.engine.policies.base import Decision, Pick, job_order, place, reply
from computenet.engine.problem import JobView, Options, Problem, Rejection
from computenet.engine.types import Deferral, Infeasible, Placement, PlanReply

NAME = "milp"
K_PER_PAIR = 3
TOP_OVERALL = 16
TIME_LIMIT_S = 8.0
CHUNK_JOBS = 2500
MIP_REL_GAP = 1e-4


def _reason(alt: float, chosen: float, alt_start: int, chosen_start: int) -> str:
    d = alt - chosen
    if d < -1e-9 * max(1.0, abs(chosen)):
        return (
            f"{-d:,.2f} CNY cheaper for this job alone, but the joint plan gives that "
            "capacity to other jobs"
        )
    return explain.costs_more()(alt, chosen, alt_start, chosen_start)


def _candidates(opts: Options, extra: tuple[int, int] | None) -> list[tuple[int, int]]:
    val = opts.value
    if val.size == 0:
        return []
    fin = np.isfinite(val)
    out: set[tuple[int, int]] = set()
    kk = min(K_PER_PAIR, val.shape[1])
    part = np.argpartition(val, kk - 1, axis=1)[:, :kk]
    for i in range(val.shape[0]):
        for c in part[i]:
            if fin[i, c]:
                out.add((i, int(c)))
    flat = val.ravel()
    top = min(TOP_OVERALL, flat.size)
    for idx in np.argpartition(flat, top - 1)[:top]:
        if np.isfinite(flat[idx]):
            out.add((int(idx) // val.shape[1], int(idx) % val.shape[1]))
    if extra is not None:
        out.add(extra)
    return sorted(out)


def _solve_chunk(
    pb: Problem, order: list[int], time_limit_s: float
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
            g_pick[n] = (d.pick.i, d.pick.c)
            k = d.opts.k0 + d.pick.c
            pb.commit(int(v.pairs[d.pick.i]), k, pb.footprint(v, d.pick.i), v.count)
            # express the pick in the columns of the options at the chunk's start
            g_pick[n] = (d.pick.i, k - opts[n].k0)
    pb.restore(snap)
    cols_job: list[int] = []
    cols_ic: list[tuple[int, int]] = []
    cols_val: list[float] = []
    cells_l: list[np.ndarray] = []
    cnt_l: list[np.ndarray] = []
    T_ext = pb.T_ext
    for jn, (n, v) in enumerate(views):
        o = opts[n]
        extra = g_pick.get(n)
        if extra is not None and not (0 <= extra[1] < o.width):
            extra = None
        for i, c in _candidates(o, extra):
            ns = pb.footprint(v, i)
            k = o.k0 + c
            cols_job.append(jn)
            cols_ic.append((i, c))
            cols_val.append(float(o.value[i, c]))
            cells_l.append(int(v.pairs[i]) * T_ext + np.arange(k, k + ns))
            cnt_l.append(np.full(ns, v.count, dtype=np.float64))
    nj, nc = len(views), len(cols_job)
    chosen: dict[int, tuple[int, int]] = {}
    if nj == 0:
        return chosen, opts, notes
    if nc == 0:
        return chosen, opts, notes
    big = 10.0 * max(abs(x) for x in cols_val) + 1000.0
    cells = np.concatenate(cells_l)
    cnt = np.concatenate(cnt_l)
    colidx = np.repeat(np.arange(nc), [len(a) for a in cells_l])
    free = pb.free.ravel()
    load = np.bincount(cells, weights=cnt, minlength=free.size)
    binding = np.flatnonzero(load > free)
    keep = np.isin(cells, binding)
    rows_u, row_of = np.unique(cells[keep], return_inverse=True)
    obj = np.concatenate([np.asarray(cols_val), np.full(nj, big)])
    A_eq = sp.csr_matrix(
        (np.ones(nc + nj), (np.concatenate([cols_job, np.arange(nj)]), np.arange(nc + nj))),
        shape=(nj, nc + nj),
    )
    cons = [LinearConstraint(A_eq, 1, 1)]
    if len(rows_u):
        A_cap = sp.csr_matrix((cnt[keep], (row_of, colidx[keep])), shape=(len(rows_u), nc + nj))
        cons.append(LinearConstraint(A_cap, -np.inf, free[rows_u].astype(np.float64)))
    res = milp(
        obj,
        integrality=np.ones(nc + nj),
        bounds=Bounds(0, 1),
        constraints=cons,
        options={"time_limit": max(0.1, time_limit_s), "mip_rel_gap": MIP_REL_GAP},
    )
    # Greedy's value on the same terms, to keep the better plan.
    g_val = 0.0
    for n, _ in views:
        gp = g_pick.get(n)
        g_val += float(opts[n].value[gp]) if gp is not None else big
    pick: dict[int, tuple[int, int]] = {}
    if res.x is not None:
        x = res.x
        for ci in np.flatnonzero(x[:nc] > 0.5):
            pick[views[cols_job[ci]][0]] = cols_ic[ci]
        m_val = float(np.dot(obj[:nc], x[:nc] > 0.5)) + big * (nj - len(pick))
        if m_val > g_val + 1e-9 * max(1.0, abs(g_val)):
            notes.append("the solver stopped with a plan worse than greedy's; kept greedy's")
            pick = dict(g_pick)
        elif res.status != 0:
            notes.append(f"HiGHS: {res.message} (best plan found kept)")
    else:
        notes.append(f"HiGHS found no plan ({res.message}); kept greedy's")
        pick = dict(g_pick)
    # Check in job order that the plan fits (rounded solver values must not overfill);
    # the caller restores the capacity and commits the choices while describing them.
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
    return chosen, opts, notes


def plan(pb: Problem) -> PlanReply:
    t0 = _time.perf_counter()
    order = sorted(range(len(pb.views)), key=lambda n: job_order(pb.req.jobs[n]))
    live = [n for n in order if isinstance(pb.views[n], JobView)]
    chunks = max(1, math.ceil(len(live) / CHUNK_JOBS))
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
        left = TIME_LIMIT_S - (_time.perf_counter() - t0)
        snap = pb.snapshot()
        chosen, opts, chunk_notes = _solve_chunk(pb, part, left / (chunks - ci))
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
    if notes:
        from dataclasses import replace

        r = replace(r, notes=tuple(dict.fromkeys(notes)))
    return r
