"""Two solvers for the hour-by-hour replica placement, one formulation.

Variables per hour ``t``: ``x[r, j]`` requests/s of region ``r`` served by slot ``j`` (only
pairs the policy's mask allows), ``n[j]`` replicas (integer, at most the slot's pool),
``u[j]`` replicas started (warm-ups), ``s[r]`` requests/s left unserved (penalised).

    minimise  sum fixed[j,t] n + (marginal[j,t] + route[r,j]) x + warm[j,t] u + P s
    s.t.      sum_j x[r,j,t] + s[r,t] = planned demand[r,t]
              sum_r x[r,j,t] <= cap[j] n[j,t]
              sum_j n[j,t]   >= min replicas
              n[j,t] - n[j,t-1] <= u[j,t]            (n[j,-1]: replicas warm at the start)

``milp`` solves it exactly with HiGHS (``scipy.optimize.milp``) under a node budget.
``greedy`` is the fast heuristic for national sizes: per hour, regions with the fewest
options first, each sent to its cheapest allowed slots per request/s (replica cost spread
over its capacity) while pools last, replicas rounded up. Its gap is reported against a lower
bound of the LP relaxation: every region at its cheapest allowed slot at that unit cost,
pool sizes, warm-ups and rounding relaxed (a relaxation of the LP, so a valid bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from computenet.engine.inference.policies import UNSERVED_CNY_PER_RPS_H, Costs
from computenet.engine.inference.problem import BoolArray, Problem
from computenet.model import FloatArray

IntArray = npt.NDArray[np.int64]
MILP_NODE_LIMIT = 20_000
TOL = 1e-9


@dataclass(frozen=True)
class Solution:
    replicas: IntArray  # J x T
    flow_rps: FloatArray  # R x J x T
    unserved_rps: FloatArray  # R x T
    objective: float
    bound: float
    method: str
    bound_kind: str

    @property
    def gap(self) -> float:
        """(objective - bound) / objective, 0 when both are 0."""
        if self.objective <= 0:
            return 0.0
        return max(0.0, (self.objective - self.bound) / self.objective)


def starts(replicas: IntArray, initial: IntArray) -> IntArray:
    """Replicas started per slot and hour (J x T)."""
    prev = np.concatenate([initial[:, None], replicas[:, :-1]], axis=1)
    return np.maximum(0, replicas - prev)


def objective(
    c: Costs, replicas: IntArray, flow: FloatArray, unserved: FloatArray, initial: IntArray
) -> float:
    """The objective of a plan under the policy's coefficients."""
    per_pair = c.marginal[None, :, :] + c.route[:, :, None]
    return float(
        np.sum(c.fixed * replicas)
        + np.sum(per_pair * flow)
        + np.sum(c.warm * starts(replicas, initial))
        + UNSERVED_CNY_PER_RPS_H * np.sum(unserved)
    )


def relaxed_bound(p: Problem, c: Costs) -> float:
    """A lower bound of the LP relaxation (see the module docstring)."""
    demand = p.planned_rps  # R x T
    unit = (
        c.marginal[None, :, :]
        + c.route[:, :, None]
        + c.fixed[None, :, :] / p.cap_rps[None, :, None]
    )  # R x J x T
    unit = np.where(c.mask[:, :, None], unit, np.inf)
    best = unit.min(axis=1)  # R x T
    best = np.where(np.isfinite(best), best, UNSERVED_CNY_PER_RPS_H)
    return float(np.sum(best * demand))


def _fix_peak(c: Costs, replicas: IntArray) -> IntArray:
    if not c.fixed_replicas:
        return replicas
    peak = replicas.max(axis=1, keepdims=True)
    return np.broadcast_to(peak, replicas.shape).copy()


def greedy(p: Problem, c: Costs, initial: IntArray) -> Solution:
    n_r, n_j = c.mask.shape
    n_t = p.hours
    demand = p.planned_rps
    flow = np.zeros((n_r, n_j, n_t))
    unserved = np.zeros((n_r, n_t))
    replicas = np.zeros((n_j, n_t), dtype=np.int64)
    options = c.mask.sum(axis=1)
    pool_rps = p.cap_rps * p.max_n
    for t in range(n_t):
        # A replica's warm-up is spread over the horizon it may serve.
        per_replica = c.fixed[:, t] + c.warm[:, t] / n_t
        unit = c.marginal[None, :, t] + c.route + (per_replica / p.cap_rps)[None, :]
        unit = np.where(c.mask, unit, np.inf)
        order = sorted(range(n_r), key=lambda r: (options[r], -demand[r, t], r))
        left = pool_rps.copy()
        for r in order:
            need = demand[r, t]
            if need <= 0:
                continue
            for j in np.lexsort((np.arange(n_j), unit[r])):
                if not np.isfinite(unit[r, j]) or need <= TOL:
                    break
                take = min(need, left[j])
                if take <= 0:
                    continue
                flow[r, j, t] += take
                left[j] -= take
                need -= take
            unserved[r, t] = max(0.0, need) if need > TOL else 0.0
        load = flow[:, :, t].sum(axis=0)
        replicas[:, t] = np.minimum(p.max_n, np.ceil(load / p.cap_rps - 1e-9)).astype(np.int64)
        _meet_minimum(p, c, replicas[:, t], t)
    replicas = _fix_peak(c, _keep_warm(p, c, replicas))
    obj = objective(c, replicas, flow, unserved, initial)
    bound = relaxed_bound(p, c)
    return Solution(
        replicas, flow, unserved, obj, min(bound, obj), "heuristic", "LP relaxation, relaxed"
    )


def _keep_warm(p: Problem, c: Costs, replicas: IntArray) -> IntArray:
    """Keep replicas through a lull shorter than the hours of idling that one warm-up
    costs (break-even ``warm / fixed``), instead of stopping and warming them again."""
    out = replicas.copy()
    n_t = replicas.shape[1]
    for j in range(replicas.shape[0]):
        fixed = float(np.mean(c.fixed[j]))
        warm = float(np.mean(c.warm[j]))
        span = n_t if fixed <= 0 else min(n_t, int(warm / fixed))
        if span < 1:
            continue
        n = replicas[j]
        for t in range(1, n_t - 1):
            before = n[max(0, t - span) : t].max()
            after = n[t + 1 : t + 1 + span].max()
            out[j, t] = max(n[t], min(before, after, p.max_n[j]))
    return out


def _meet_minimum(p: Problem, c: Costs, n: IntArray, t: int) -> None:
    missing = p.min_replicas - int(n.sum())
    if missing <= 0:
        return
    usable: BoolArray = np.asarray(c.mask.any(axis=0), dtype=bool)
    for j in np.lexsort((np.arange(len(n)), c.fixed[:, t])):
        if missing <= 0:
            break
        if not usable[j]:
            continue
        add = min(missing, int(p.max_n[j] - n[j]))
        n[j] += add
        missing -= add


def milp_solve(p: Problem, c: Costs, initial: IntArray, *, relax: bool = False) -> Solution:
    """The exact optimum with HiGHS (within ``MILP_NODE_LIMIT`` branch-and-bound nodes).
    With ``relax`` the LP relaxation is solved instead: its value is the lower bound every
    plan's gap is measured against (``lp_bound``)."""
    n_r, n_j = c.mask.shape
    n_t = p.hours
    pairs = np.argwhere(c.mask)  # rows (r, j), sorted
    n_p = len(pairs)
    block = n_p + 2 * n_j + n_r
    nv = block * n_t

    def xi(t: int) -> int:
        return t * block

    def ni(t: int) -> int:
        return t * block + n_p

    def ui(t: int) -> int:
        return t * block + n_p + n_j

    def si(t: int) -> int:
        return t * block + n_p + 2 * n_j

    cost = np.zeros(nv)
    integrality = np.zeros(nv)
    upper = np.full(nv, np.inf)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lb: list[float] = []
    ub: list[float] = []
    demand = p.planned_rps

    def add(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        k = len(lb)
        for col, v in entries:
            rows.append(k)
            cols.append(col)
            vals.append(v)
        lb.append(lo)
        ub.append(hi)

    for t in range(n_t):
        cost[xi(t) : xi(t) + n_p] = c.marginal[pairs[:, 1], t] + c.route[pairs[:, 0], pairs[:, 1]]
        cost[ni(t) : ni(t) + n_j] = c.fixed[:, t]
        cost[ui(t) : ui(t) + n_j] = c.warm[:, t]
        cost[si(t) : si(t) + n_r] = UNSERVED_CNY_PER_RPS_H
        integrality[ni(t) : ni(t) + n_j] = 1
        upper[ni(t) : ni(t) + n_j] = p.max_n
        for r in range(n_r):
            entries = [(xi(t) + int(k), 1.0) for k in np.flatnonzero(pairs[:, 0] == r)]
            add([*entries, (si(t) + r, 1.0)], demand[r, t], demand[r, t])
        for j in range(n_j):
            entries = [(xi(t) + int(k), 1.0) for k in np.flatnonzero(pairs[:, 1] == j)]
            add([*entries, (ni(t) + j, -float(p.cap_rps[j]))], -np.inf, 0.0)
            prev = [] if t == 0 else [(ni(t - 1) + j, -1.0)]
            add([(ni(t) + j, 1.0), *prev, (ui(t) + j, -1.0)], -np.inf, initial[j] if t == 0 else 0)
        add([(ni(t) + j, 1.0) for j in range(n_j)], float(p.min_replicas), np.inf)
    a = sp.csr_array((vals, (rows, cols)), shape=(len(lb), nv))
    res = milp(
        cost,
        constraints=LinearConstraint(a, np.array(lb), np.array(ub)),
        integrality=np.zeros(nv) if relax else integrality,
        bounds=Bounds(np.zeros(nv), upper),
        options={"node_limit": MILP_NODE_LIMIT, "mip_rel_gap": 1e-7, "presolve": True},
    )
    if relax:
        value = float(res.fun) if res.x is not None else 0.0
        empty = np.zeros((n_j, n_t), dtype=np.int64)
        return Solution(
            empty,
            np.zeros((n_r, n_j, n_t)),
            np.zeros((n_r, n_t)),
            value,
            value,
            "lp",
            "LP relaxation",
        )
    if res.x is None:
        return greedy(p, c, initial)
    xv = res.x
    flow = np.zeros((n_r, n_j, n_t))
    replicas = np.zeros((n_j, n_t), dtype=np.int64)
    unserved = np.zeros((n_r, n_t))
    for t in range(n_t):
        flow[pairs[:, 0], pairs[:, 1], t] = np.maximum(0.0, xv[xi(t) : xi(t) + n_p])
        replicas[:, t] = np.rint(xv[ni(t) : ni(t) + n_j]).astype(np.int64)
        unserved[:, t] = np.maximum(0.0, xv[si(t) : si(t) + n_r])
    replicas = _fix_peak(c, replicas)
    obj = objective(c, replicas, flow, unserved, initial)
    dual = getattr(res, "mip_dual_bound", None)
    bound = float(dual) if dual is not None and np.isfinite(dual) else obj
    return Solution(replicas, flow, unserved, obj, min(bound, obj), "milp", "MILP dual bound")


def lp_bound(p: Problem, c: Costs, initial: IntArray) -> float:
    """The LP relaxation of the whole horizon: a lower bound on every plan's objective
    (replicas continuous; everything else as in the MILP)."""
    return milp_solve(p, c, initial, relax=True).objective
