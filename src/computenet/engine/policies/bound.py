"""``bound``: a proven lower bound on the objective of any schedule of the request's jobs —
the LP relaxation of the time-indexed problem with perfect foresight.

The relaxation. A job may start at *any* second, not only on slot boundaries. Between two
consecutive *breakpoints* — starts where the run begins or ends on a slot boundary, and the
job's earliest and latest start — both the objective of the run and the share of each slot
it occupies are linear in the start. So every real start is a convex combination of its two
neighbouring breakpoints, with the same cost and the same slot-average occupancy. The LP
therefore has one column per (job, site and accelerator type, breakpoint), requires each
job's columns to sum to 1, and keeps the *slot-average* number of busy accelerators of each
pool within what is free — which any schedule that fits second by second satisfies. Its
optimum is a lower bound on every schedule, whether it starts on slot boundaries (every
engine policy) or anywhere (the simulator).

Solving it. The LP has too many columns to write down for long horizons, so it is solved by
column generation: a restricted LP (scipy ``linprog``, HiGHS) gives capacity prices
``lambda >= 0``; every column of every job is priced against them; columns that would lower
the LP are added, until none would. The number reported is not the restricted LP's value
but the Lagrangian dual value

    LB(lambda) = sum_j min_columns(cost + count x sum lambda x occupancy) - sum lambda x free,

which is a valid lower bound for *any* ``lambda >= 0`` (weak duality), evaluated over all
columns; at convergence it equals the LP optimum. The best value over the iterations is
returned, so a time or iteration limit gives a weaker but still valid bound.

Jobs that no schedule can place (a data rule, a deadline, ...) are listed as infeasible and
left out. If the capacity cannot hold all the others even fractionally, the bound ignores
capacity (still valid, looser) and says so in the reply's notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from computenet.engine.explain import unplaced
from computenet.engine.policies.base import reply
from computenet.engine.problem import FArray, IntArray, JobView, Problem, Rejection
from computenet.engine.types import Infeasible, PlanReply

NAME = "bound"


def _interp(C: FArray, rows: IntArray, x: FArray) -> FArray:
    """Prefix sums ``C[row]`` read at fractional slot positions ``x`` (linear between)."""
    k = np.floor(x).astype(np.int64)
    frac = x - k
    r = rows[:, None]
    lo = C[r, k]
    return np.asarray(lo + frac * (C[r, k + 1] - lo), dtype=np.float64)


@dataclass
class _Job:
    """All breakpoint columns of one job: rows ``i`` (usable pairs), starts ``x`` in slot
    units, run ``L`` in slots, base value (CNY), and a validity mask."""

    v: JobView
    pairs: IntArray  # (R,)
    L: FArray  # (R,)
    x: FArray  # (R, X)
    ok: np.ndarray  # (R, X)
    base: FArray  # (R, X), inf where not ok
    best: float


def _columns(pb: Problem, v: JobView) -> _Job | None:
    slot = pb.slot
    L = v.run_s / slot
    lo = v.ready / slot
    hi = np.minimum(v.deadline_off - v.run_s, pb.T * slot) / slot
    pts: list[FArray] = []
    for i in range(len(v.pairs)):
        if lo[i] > hi[i]:
            pts.append(np.zeros(0))
            continue
        ints = np.arange(math.ceil(lo[i]), math.floor(hi[i]) + 1, dtype=np.float64)
        shifted = np.arange(math.ceil(lo[i] + L[i]), math.floor(hi[i] + L[i]) + 1) - L[i]
        pts.append(np.unique(np.concatenate([ints, shifted, [lo[i], hi[i]]])))
    width = max(len(p) for p in pts)
    if width == 0:
        return None
    R = len(v.pairs)
    x = np.zeros((R, width))
    ok = np.zeros((R, width), dtype=bool)
    for i, p in enumerate(pts):
        x[i, : len(p)] = p
        ok[i, : len(p)] = True
        if len(p):
            x[i, len(p) :] = p[0]
    _, W = pb.weights("objective")
    val = (
        v.kw[:, None] * (_interp(W, v.pairs, x + L[:, None]) - _interp(W, v.pairs, x))
        + v.fixed[:, None]
    )
    base = np.where(ok, val, np.inf)
    return _Job(v, v.pairs, L, x, ok, base, float(base.min()))


def _occupancy(pb: Problem, p: int, x: float, L: float, count: int) -> tuple[IntArray, FArray]:
    """Cells (pair x T_ext + slot) and slot-average accelerators of one column."""
    s0 = math.floor(x)
    s1 = math.ceil(x + L)
    slots = np.arange(s0, max(s1, s0 + 1))
    share = np.minimum(x + L, slots + 1) - np.maximum(x, slots)
    keep = share > 1e-12
    return p * pb.T_ext + slots[keep], count * share[keep]


def _average_free(pb: Problem) -> FArray:
    """Accelerators free on average over each slot (running allocations counted by the
    share of the slot they cover; down sites have none)."""
    net = pb.net
    free = np.repeat(net.cap[:, None].astype(np.float64), pb.T_ext, axis=1)
    free[pb.down[net.pair_site]] = 0.0
    pidx = net.pair_of
    for a in pb.req.running_allocations():
        p = pidx.get((a.site_id, a.accelerator))
        if p is None or a.end_s <= pb.now:
            continue
        x0 = max(0.0, (a.start_s - pb.now) / pb.slot)
        x1 = min(float(pb.T_ext), (a.end_s - pb.now) / pb.slot)
        if x1 <= x0:
            continue
        cells, occ = _occupancy(pb, p, x0, x1 - x0, a.count)
        free.ravel()[cells] -= occ
    return np.maximum(free, 0.0)


def lower_bound(pb: Problem) -> tuple[float, list[str], list[Infeasible]]:
    """The bound (CNY), notes, and the jobs left out as infeasible. At most
    ``pb.req.bound_rounds`` rounds of column generation, each LP at most
    ``pb.req.lp_iteration_limit`` simplex iterations (counts, not seconds)."""
    rounds = pb.req.bound_rounds
    notes: list[str] = []
    out: list[Infeasible] = []
    jobs: list[_Job] = []
    for n, v in enumerate(pb.views):
        if isinstance(v, Rejection):
            out.append(Infeasible(pb.req.jobs[n].id, v.constraint, v.reason))
            continue
        j = _columns(pb, v)
        if j is None:
            u = unplaced(pb, v, pb.options(v, capacity=False))
            out.append(
                u if isinstance(u, Infeasible) else Infeasible(v.job.id, "horizon", u.reason)
            )
            continue
        jobs.append(j)
    if not jobs:
        return 0.0, notes, out
    free = _average_free(pb)
    free_flat = free.ravel()
    no_cap = float(sum(j.best for j in jobs))
    big = 10.0 * max(abs(j.best) for j in jobs) + 1000.0

    # Column store: job, pair, start, value.
    col_job: list[int] = []
    col_pair: list[int] = []
    col_x: list[float] = []
    col_val: list[float] = []
    col_cells: list[IntArray] = []
    col_occ: list[FArray] = []
    seen: set[tuple[int, int, float]] = set()

    def add(jn: int, r: int, c: int) -> bool:
        j = jobs[jn]
        key = (jn, int(j.pairs[r]), float(j.x[r, c]))
        if key in seen:
            return False
        seen.add(key)
        col_job.append(jn)
        col_pair.append(int(j.pairs[r]))
        col_x.append(float(j.x[r, c]))
        col_val.append(float(j.base[r, c]))
        cells, occ = _occupancy(pb, int(j.pairs[r]), float(j.x[r, c]), float(j.L[r]), j.v.count)
        col_cells.append(cells)
        col_occ.append(occ)
        return True

    for jn, j in enumerate(jobs):  # start: every pair's cheapest column
        cols = np.argmin(j.base, axis=1)
        for r in range(len(j.pairs)):
            if j.ok[r, cols[r]]:
                add(jn, r, int(cols[r]))

    best_lb = no_cap
    lam_full = np.zeros(free.size)
    elastic = False
    converged = False
    for _ in range(rounds):
        # ---- restricted LP
        cells = np.concatenate(col_cells)
        occ = np.concatenate(col_occ)
        colidx = np.repeat(np.arange(len(col_cells)), [len(a) for a in col_cells])
        rows_u, row_of = np.unique(cells, return_inverse=True)
        nc, nj = len(col_job), len(jobs)
        A_ub = sp.csr_matrix((occ, (row_of, colidx)), shape=(len(rows_u), nc + nj))
        b_ub = free_flat[rows_u]
        A_eq = sp.csr_matrix(
            (np.ones(nc + nj), (np.concatenate([col_job, np.arange(nj)]), np.arange(nc + nj))),
            shape=(nj, nc + nj),
        )
        c = np.concatenate([col_val, np.full(nj, big)])
        res = linprog(
            c,
            A_ub=A_ub,
            b_ub=b_ub,
            A_eq=A_eq,
            b_eq=np.ones(nj),
            bounds=(0, None),
            method="highs",
            options={"maxiter": pb.req.lp_iteration_limit},
        )
        if res.status != 0 or res.x is None:
            notes.append(f"LP stopped: {res.message}")
            break
        elastic = bool(res.x[nc:].max() > 1e-7)
        lam = np.maximum(0.0, -np.asarray(res.ineqlin.marginals))
        mu = np.asarray(res.eqlin.marginals)
        lam_full = np.zeros(free.size)
        lam_full[rows_u] = lam
        lam2 = lam_full.reshape(free.shape)
        Lc = np.zeros((free.shape[0], free.shape[1] + 1))
        np.cumsum(lam2, axis=1, out=Lc[:, 1:])
        # ---- price every column of every job; the Lagrangian bound on the way
        lb = -float(np.dot(lam_full, free_flat))
        added = 0
        for jn, j in enumerate(jobs):
            pen = j.v.count * (_interp(Lc, j.pairs, j.x + j.L[:, None]) - _interp(Lc, j.pairs, j.x))
            red = np.where(j.ok, j.base + pen, np.inf)
            m = float(red.min())
            lb += min(m, big)
            if m < mu[jn] - 1e-9 * max(1.0, abs(mu[jn])):
                # the best column per pair that would lower the LP
                per_row = np.argmin(red, axis=1)
                for r in range(len(j.pairs)):
                    if red[r, per_row[r]] < mu[jn] - 1e-9 * max(1.0, abs(mu[jn])):
                        added += add(jn, r, int(per_row[r]))
        best_lb = max(best_lb, lb)
        if added == 0:
            converged = True
            break
    if elastic:
        notes.append("the capacity cannot hold every job even fractionally: bound without capacity")
        best_lb = no_cap
    elif not converged and not notes:
        notes.append(f"column generation stopped after {rounds} rounds (bound still valid)")
    return best_lb, notes, out


def _coarse_enough(pb: Problem) -> bool:
    """Whether price and carbon are constant within each of the request's own slots, so
    the relaxation on those slots prices every run exactly as the sub-slot grid does."""
    m = pb.refine
    if m == 1:
        return False
    n = (pb.T_ext // m) * m
    for arr in (pb.price, pb.carbon):
        g = arr[:, :n].reshape(arr.shape[0], -1, m)
        # Tariff windows leave ~1e-14 of rounding; ``plan`` gives up 1e-8 of the bound
        # for it.
        if not np.allclose(g.max(axis=2), g.min(axis=2), rtol=1e-10, atol=1e-12):
            return False
    return True


def plan(pb: Problem) -> PlanReply:
    coarse = _coarse_enough(pb)
    if coarse:
        # Fewer columns and capacity rows, same prices; the slot-average capacity of a
        # whole slot is implied by that of its sub-slots, so the bound stays valid.
        pb = Problem(pb.req, fine=False)
    lb, notes, out = lower_bound(pb)
    if coarse:
        lb -= 1e-8 * abs(lb)
    r = reply(pb, NAME, [], [], out, lower_bound_cny=lb)
    return replace(r, notes=tuple(notes)) if notes else r
