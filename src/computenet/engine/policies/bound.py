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

Branching. The LP may split a job between sites: a gang that fills its pool then runs
"half" at home and half elsewhere, paying half its data copy and leaving half the pool to
other jobs — which no real schedule can do. Every schedule runs each job at exactly one
site, so for such a job the lower of the two relaxations "at site s" and "not at site s"
is still a bound on every schedule, and usually a higher one. ``lower_bound`` branches
this way, best first, for a fixed number of relaxations (``BRANCH_NODES``; each starts
from its parent's columns), and returns the lowest value among the nodes not branched
on. On the planner benchmark's tight instances (one widest gang per site) this is what
separates the LP from the best plans: it took the bound of the 200-job instance from
149.5 to 280.3 CNY (the best plan found: 280.8).

Copies. Each placement pays the copy of its job's datasets to its site (the engine's
objective, ``JobView.transfer_cny``), so a copy variable per dataset and site linked to
the placements that use it (the facility-location form) gives the same LP as the copy
cost carried in each column when a dataset has one job, and a lower one (one copy
charged for several jobs) when jobs share it. The columns carry the copy cost; the
looseness of a job whose weight is split between sites (paying part of its copy) is what
branching on sites removes.

Jobs that no schedule can place (a data rule, a deadline, ...) are listed as infeasible and
left out. If the capacity cannot hold all the others even fractionally, the bound ignores
capacity (still valid, looser) and says so in the reply's notes.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from computenet.engine.explain import unplaced
from computenet.engine.policies.base import reply
from computenet.engine.problem import INF, BArray, FArray, IntArray, JobView, Problem, Rejection
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


@dataclass
class Bound:
    """What ``lower_bound`` found: the bound (CNY), notes, the jobs left out as
    infeasible, and the capacity prices of the last restricted LP (its duals: CNY per
    accelerator and slot, ``(pairs, T_ext)`` on the problem's grid; zero where capacity
    is not scarce)."""

    value: float
    notes: list[str]
    infeasible: list[Infeasible]
    prices: FArray
    converged: bool
    guide: list[tuple[int, int, int, float]] = field(default_factory=list)
    # the LP solution that sets the bound (``_Relaxation.guide``)
    root: float = 0.0  # the LP relaxation's own value (before branching)
    nodes: int = 0  # relaxations solved while branching
    elastic: bool = False  # the capacity cannot hold every job: bound without capacity
    stopped: bool = False  # an LP failed (the bound is the best value before it)


ELASTIC_CNY = 1e6
"""At least this per job left out of a relaxation (see ``_Relaxation``)."""

STAKE = 1e-4
"""A split job is branched on when it fills more than half a pool or the part of its copy
cost the LP leaves unpaid is at least this share of the bound."""

SPLIT_TOL = 1e-6
"""A job whose LP weight at one site is within this of 1 is whole there."""

BRANCH_NODES = 24
"""Relaxations solved while branching (``bound`` policy); each is warm-started from its
parent's columns."""


@dataclass
class _Node:
    """One solve of the relaxation, with some jobs' sites fixed or barred: its
    Lagrangian value, whether column generation converged (then the value is the LP
    optimum), whether some job had to stay out (``elastic``), the duals, each job's LP
    weight per site, and the columns it ended with (to start its children from)."""

    value: float
    converged: bool
    elastic: bool
    stopped: str
    prices: FArray
    site_weight: list[FArray]
    columns: list[tuple[int, int, int]]
    weights: list[float]  # the LP weight of each of ``columns``


class _Relaxation:
    """The LP relaxation of a request (see the module docstring), solved by column
    generation, optionally with some jobs' sites restricted (for branching)."""

    def __init__(self, pb: Problem) -> None:
        self.pb = pb
        self.infeasible: list[Infeasible] = []
        self.jobs: list[_Job] = []
        for n, v in enumerate(pb.views):
            if isinstance(v, Rejection):
                self.infeasible.append(Infeasible(pb.req.jobs[n].id, v.constraint, v.reason))
                continue
            j = _columns(pb, v)
            if j is None:
                u = unplaced(pb, v, pb.options(v, capacity=False))
                self.infeasible.append(
                    u if isinstance(u, Infeasible) else Infeasible(v.job.id, "horizon", u.reason)
                )
                continue
            self.jobs.append(j)
        self.free = _average_free(pb)
        self.no_cap = float(sum(j.best for j in self.jobs))
        # The price of leaving (part of) a job out (an "elastic" column, so that every
        # restricted LP is feasible). Far above what moving jobs around could save, so
        # that a relaxation that can hold every job (fractionally) does not use it.
        self.big = ELASTIC_CNY + 10.0 * max((abs(j.best) for j in self.jobs), default=0.0)
        self.sites = [pb.net.pair_site[j.pairs] for j in self.jobs]

    def solve(
        self,
        allowed: dict[int, BArray] | None = None,
        warm: list[tuple[int, int, int]] | None = None,
    ) -> _Node:
        """At most ``bound_rounds`` rounds of column generation. ``allowed[jn]``: the
        sites job ``jn`` may use (per site); ``warm``: columns (job, row, start column)
        to start from. A value of ``inf``: no schedule meets the restrictions."""
        pb, jobs, free = self.pb, self.jobs, self.free
        allowed = allowed or {}
        free_flat = free.ravel()
        big = self.big
        base = [j.base for j in jobs]
        for jn, mask in allowed.items():
            rows_ok = mask[self.sites[jn]]
            if not rows_ok.any():
                return _Node(INF, True, False, "", np.zeros_like(free), [], [], [])
            base[jn] = np.where(rows_ok[:, None], jobs[jn].base, INF)
        col_job: list[int] = []
        col_key: list[tuple[int, int, int]] = []
        col_val: list[float] = []
        col_cells: list[IntArray] = []
        col_occ: list[FArray] = []
        seen: set[tuple[int, int, int]] = set()

        def add(jn: int, r: int, c: int) -> bool:
            key = (jn, r, c)
            if key in seen or not np.isfinite(base[jn][r, c]):
                return False
            seen.add(key)
            j = jobs[jn]
            col_job.append(jn)
            col_key.append(key)
            col_val.append(float(base[jn][r, c]))
            cells, occ = _occupancy(pb, int(j.pairs[r]), float(j.x[r, c]), float(j.L[r]), j.v.count)
            col_cells.append(cells)
            col_occ.append(occ)
            return True

        for jn, j in enumerate(jobs):  # start: every pair's cheapest column
            cols = np.argmin(base[jn], axis=1)
            for r in range(len(j.pairs)):
                add(jn, r, int(cols[r]))
        for key in warm or ():
            add(*key)

        best_lb = -INF
        lam_full = np.zeros(free.size)
        elastic = False
        converged = False
        stopped = ""
        xs = np.zeros(0)
        for _ in range(pb.req.bound_rounds):
            # ---- restricted LP
            cells = np.concatenate(col_cells)
            occ = np.concatenate(col_occ)
            colidx = np.repeat(np.arange(len(col_cells)), [len(a) for a in col_cells])
            rows_u, row_of = np.unique(cells, return_inverse=True)
            nc, nj = len(col_job), len(jobs)
            A_ub = sp.csr_matrix((occ, (row_of, colidx)), shape=(len(rows_u), nc + nj))
            b_ub = free_flat[rows_u]
            A_eq = sp.csr_matrix(
                (
                    np.ones(nc + nj),
                    (np.concatenate([col_job, np.arange(nj)]), np.arange(nc + nj)),
                ),
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
                stopped = f"LP stopped: {res.message}"
                break
            xs = np.asarray(res.x)
            elastic = bool(xs[nc:].max() > 1e-7)
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
                pen = j.v.count * (
                    _interp(Lc, j.pairs, j.x + j.L[:, None]) - _interp(Lc, j.pairs, j.x)
                )
                red = np.where(j.ok, base[jn] + pen, INF)
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
        n_sites = pb.net.n_sites
        weight = [np.zeros(n_sites) for _ in jobs]
        if xs.size:
            for ci, (jn, r, _c) in enumerate(col_key[: len(xs) - len(jobs)]):
                if xs[ci] > 1e-9:
                    weight[jn][self.sites[jn][r]] += xs[ci]
        pos = [ci for ci in range(min(len(col_key), len(xs) - len(jobs))) if xs[ci] > 1e-9]
        return _Node(
            best_lb,
            converged,
            elastic,
            stopped,
            lam_full.reshape(free.shape),
            weight,
            [col_key[ci] for ci in pos],
            [float(xs[ci]) for ci in pos],
        )

    def guide(self, node: _Node) -> list[tuple[int, int, int, float]]:
        """The node's LP solution as (job index in the request, pair, start offset in
        seconds, weight), heaviest first."""
        out = []
        for (jn, r, c), w in zip(node.columns, node.weights, strict=True):
            j = self.jobs[jn]
            out.append((j.v.index, int(j.pairs[r]), round(float(j.x[r, c]) * self.pb.slot), w))
        out.sort(key=lambda t: (-t[3], t[0], t[1], t[2]))
        return out


def _branch_job(rel: _Relaxation, node: _Node, scale: float) -> tuple[int, int] | None:
    """The job whose LP weight is split between sites that matters most, and its
    heaviest site: the widest gang for its pools, the most evenly split, the dearest data
    to move first; ``None`` when every job is whole at one site or its split is worth
    less than ``STAKE`` of ``scale`` (and it fills less than half a pool)."""
    best: tuple[float, int, int] | None = None
    cap = rel.pb.net.cap
    for jn, w in enumerate(node.site_weight):
        top = float(w.max()) if w.size else 1.0
        if top > 1.0 - SPLIT_TOL:
            continue
        j = rel.jobs[jn]
        share = j.v.count / float(cap[j.pairs].max())
        used = (w > SPLIT_TOL)[rel.sites[jn]]
        copy = float(j.v.transfer_cny[used].max()) if used.any() else 0.0
        if share <= 0.5 and (1.0 - top) * copy < STAKE * scale:
            continue
        score = share * (1.0 - top) * (1.0 + copy)
        if best is None or score > best[0]:
            best = (score, jn, int(np.argmax(w)))
    return None if best is None else (best[1], best[2])


def lower_bound(pb: Problem, branch_nodes: int = 0) -> Bound:
    """The bound and the capacity prices. At most ``pb.req.bound_rounds`` rounds of
    column generation, each LP at most ``pb.req.lp_iteration_limit`` simplex iterations
    (counts, not seconds), and at most ``branch_nodes`` more relaxations solved while
    branching on where a job split between sites runs (below).

    Branching: every schedule runs each job at exactly one site, so for a job the LP
    splits between sites, ``min(LB(job at s), LB(job not at s))`` is still a lower bound
    on every schedule, and usually a higher one (gangs that fill a pool cannot share it
    in a real schedule). Nodes are solved best first; the bound is the lowest value
    among the nodes not yet branched on (a node is never below its parent)."""
    rel = _Relaxation(pb)
    notes: list[str] = []
    if not rel.jobs:
        return Bound(0.0, notes, rel.infeasible, np.zeros_like(rel.free), True)
    root = rel.solve()
    value = max(root.value, rel.no_cap) if not root.elastic else rel.no_cap
    if root.stopped:
        notes.append(root.stopped)
    if root.elastic:
        notes.append("the capacity cannot hold every job even fractionally: bound without capacity")
    elif not root.converged and not root.stopped:
        notes.append(
            f"column generation stopped after {pb.req.bound_rounds} rounds (bound still valid)"
        )
    out = Bound(value, notes, rel.infeasible, root.prices, root.converged, rel.guide(root))
    out.root = value
    out.elastic, out.stopped = root.elastic, bool(root.stopped)
    if branch_nodes <= 0 or root.elastic or root.stopped:
        return out
    n_sites = pb.net.n_sites
    # Best first: (value, order, restrictions, relaxation; None: not to branch further).
    heap: list[tuple[float, int, dict[int, BArray], _Node | None]] = [(value, 0, {}, root)]
    seq = solved = 0
    while heap and solved < branch_nodes:
        val, _, allowed, node = heap[0]
        pick = None if node is None else _branch_job(rel, node, max(1.0, abs(value)))
        if node is None or pick is None:
            break  # the lowest node has every job whole at a site: branching on sites ends
        heapq.heappop(heap)
        jn, s = pick
        have = allowed.get(jn, np.ones(n_sites, dtype=bool))
        only = np.zeros(n_sites, dtype=bool)
        only[s] = True
        for mask in (have & only, have & ~only):
            child_allowed = {**allowed, jn: mask}
            child = rel.solve(child_allowed, node.columns)
            solved += 1
            if child.value == INF:
                continue  # no site left for the job: no schedule meets the restrictions
            seq += 1
            if child.stopped:
                # Not solved: the parent's value stands for this side (still valid).
                heapq.heappush(heap, (val, seq, child_allowed, None))
                continue
            # A child that needs its elastic columns keeps its Lagrangian value: that of a
            # relaxation of its restrictions, so still a bound (and a high one).
            heapq.heappush(heap, (max(val, child.value), seq, child_allowed, child))
    final = heap[0][0] if heap else value
    out.value = max(value, final)
    if out.value >= rel.big / 2:
        # Every open node leaves part of a job out: no schedule places every job. As
        # for a root that does, the bound without capacity.
        notes.append("branching found that no schedule places every job: bound without capacity")
        out.value = rel.no_cap
        out.elastic = True
        return out
    if heap and heap[0][3] is not None:
        # The prices and solution of the node that sets the bound: split gangs whole.
        out.prices = heap[0][3].prices
        out.guide = rel.guide(heap[0][3])
    out.nodes = solved
    if solved:
        notes.append(
            f"branched on sites: {solved} more relaxations; LP {value:,.2f} -> bound "
            f"{out.value:,.2f} CNY"
        )
    return out


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


def coarse_min(pb: Problem) -> Problem:
    """``pb``'s request on its own (coarse) slots, each slot's weight the *lowest* of its
    sub-slots': every run costs no more there than on the sub-slot grid and the
    slot-average capacity of a whole slot is implied by that of its sub-slots, so a bound
    computed on it is a bound for ``pb`` (slightly lower where the signals vary within a
    slot), on a grid ``refine`` times coarser."""
    m = pb.refine
    c = Problem(pb.req, fine=False)
    w_f, _ = pb.weights("objective")
    n = min(c.T_ext, -(-w_f.shape[1] // m))
    pad = np.full((w_f.shape[0], n * m), np.inf)
    pad[:, : w_f.shape[1]] = w_f
    low = m * pad.reshape(w_f.shape[0], n, m).min(axis=2)
    w_c, _ = c.weights("objective")
    w = w_c.copy()
    w[:, :n] = np.minimum(w_c[:, :n], low)
    W = np.zeros((w.shape[0], w.shape[1] + 1))
    np.cumsum(w, axis=1, out=W[:, 1:])
    c._w["objective"], c._W["objective"] = w, W
    return c


def tree_problem(pb: Problem) -> Problem:
    """The problem ``solve`` branches on: the request's own slots (``coarse_min`` weights
    when the signals vary within a slot), or ``pb`` when it has no sub-slots."""
    if pb.refine == 1:
        return pb
    if _coarse_enough(pb):
        return Problem(pb.req, fine=False)
    return coarse_min(pb)


def solve(pb: Problem, branch_nodes: int = BRANCH_NODES) -> tuple[Bound, Problem]:
    """The bound of ``pb``'s request and the problem its LP was solved on.

    The LP is solved on the request's own slots when that prices every run the same
    (fewer columns and capacity rows; the slot-average capacity of a whole slot is implied
    by that of its sub-slots, so the bound stays valid), else on ``pb``'s sub-slots. The
    branching (``lower_bound``) runs on the coarse grid either way, on ``coarse_min``
    weights when the signals vary within a slot (4 times fewer slots and starts, a bound
    slightly lower than the sub-slot LP's): the result is the higher of the two bounds."""
    coarse = _coarse_enough(pb)
    exact = Problem(pb.req, fine=False) if coarse else pb
    tree_pb = exact if coarse or pb.refine == 1 else coarse_min(pb)
    if tree_pb is exact:
        b = lower_bound(exact, branch_nodes=branch_nodes)
    else:
        b = lower_bound(exact)
        if branch_nodes > 0 and not b.elastic and not b.stopped:
            t = lower_bound(tree_pb, branch_nodes=branch_nodes)
            if t.nodes:
                b.nodes = t.nodes
                b.notes.append(
                    f"branched on sites: {t.nodes} more relaxations on whole slots (LP there "
                    f"{t.root:,.2f}, after branching {t.value:,.2f} CNY)"
                )
                if t.value > b.value:
                    b.value, b.prices, b.guide, exact = t.value, t.prices, t.guide, tree_pb
    if coarse:
        # Tariff windows leave ~1e-14 of rounding in the coarse sums.
        b.value -= 1e-8 * abs(b.value)
        b.root -= 1e-8 * abs(b.root)
    return b, exact


def plan(pb: Problem) -> PlanReply:
    b, pb = solve(pb)
    r = reply(pb, NAME, [], [], b.infeasible, lower_bound_cny=b.value)
    return replace(r, notes=tuple(b.notes)) if b.notes else r
