"""The ``greedy`` policy for large requests: the same decisions, in one compiled loop.

Greedy is sequential — each job sees the capacity the jobs before it took — so its loop
cannot be vectorised across jobs. Here it runs in machine code (numba): for each job, in
``job_order``, the kernel prices the job's usable pools in order of a lower bound (the run
at the pool's cheapest slot plus its fixed costs), scans every start of a pool only while
that bound can still beat the best value found, and takes the cheapest start that fits,
ties (within ``tol``) to the earliest start and then the lowest pool — exactly
``greedy.choose``, computed with the same arithmetic in the same order so the values are
the same to the bit.

Jobs the kernel does not take (several datasets, replicas already elsewhere, bad input) and
jobs it finds no start for go through the ordinary one-job path at the same point in the
order, so their decisions and explanations are the ordinary ones.

The kernel also returns what the explanation needs: the cost breakdown of the chosen
start, the same pool started earlier, the best starts at two other sites among the pools it
priced (and, past those, the cheapest lower bound of a pool it did not need to price) and
the first site the data rules exclude or the deadline rules out.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from computenet.engine import explain, rules
from computenet.engine.policies import greedy
from computenet.engine.policies.base import job_order, place, reply
from computenet.engine.problem import INF, JobView, Problem, Rejection, _allowed
from computenet.engine.types import (
    Alternative,
    Breakdown,
    Deferral,
    Infeasible,
    Placement,
    PlanReply,
    Transfer,
)
from computenet.model import TrainingJob

MIN_JOBS = 64
"""Requests with fewer jobs take the one-job path (the kernel's set-up is not worth it)."""

PRUNE_MARGIN = 1e-6
"""Relative slack on the lower bound: rounding cannot make a pool look dearer than it is."""

# Kernel outputs per job: integer and float columns (start offsets in seconds from now).
_I_PAIR, _I_K, _I_SO, _I_RUN, _I_TSEC = 0, 1, 2, 3, 4
_I_EARLY_SO = 5  # the same pool, started earlier (-1: none)
_I_OTHER_P, _I_OTHER_SO = 6, 8  # two other sites (-1: none)
_I_LB_P, _I_RULE_SITE, _I_LATE_P, _I_LATE_S = 10, 11, 12, 13
_N_INT = 14
_F_VALUE, _F_ENERGY_COST, _F_CARBON, _F_KWH, _F_FIXED, _F_TCOST = 0, 1, 2, 3, 4, 5
_F_EARLY_V, _F_OTHER_V, _F_LB_V = 6, 7, 9  # other: two
_N_FLOAT = 10


def usable(pb: Problem) -> bool:
    return len(pb.req.jobs) >= MIN_JOBS


# --------------------------------------------------------------------------- kernel


@nb.njit(cache=True, inline="always")
def _tol(m: float) -> float:
    return 1e-9 * max(1.0, abs(m))


@nb.njit(cache=True, inline="always")
def _value(
    W: Any,
    w: Any,
    p: int,
    k: int,
    run: int,
    slot: int,
    ready: int,
    dl: int,
    kw: float,
    fixed: float,
) -> tuple[float, bool]:
    """Value of starting at slot ``k`` on pair ``p`` (``inf`` if not in time) and whether it
    is end-aligned — ``Problem.options``'s arithmetic, term by term."""
    n = run // slot
    rem = run - n * slot
    ts = k * slot
    ok = ts >= ready  # ts + run <= dl holds for k <= (dl - run) // slot
    c = W[p, k + n] - W[p, k]
    if rem == 0:
        return (kw * c + fixed, False) if ok else (INF, False)
    f = rem / slot
    c += f * w[p, k + n]
    ns = n + 1
    ok_e = ((k + ns) * slot - run >= ready) and ((k + ns) * slot <= dl)
    ce = f * w[p, k] + W[p, k + 1 + n] - W[p, k + 1]
    end = ok_e and ((not ok) or ce < c)
    if end:
        c = ce
    if not (ok or ok_e):
        return INF, False
    return kw * c + fixed, end


@nb.njit(cache=True, inline="always")
def _fits(free: Any, p: int, k: int, ns: int, need: int) -> bool:
    for t in range(k, k + ns):  # noqa: SIM110 — numba compiles no all(generator)
        if free[p, t] < need:
            return False
    return True


@nb.njit(cache=True, inline="always")
def _interp(cum: Any, s: int, x: float) -> float:
    k = int(x)
    fr = x - k
    if fr == 0.0:
        return cum[s, k]
    return cum[s, k] + fr * (cum[s, k + 1] - cum[s, k])


@nb.njit(cache=True)
def _greedy(
    lo: int,
    hi: int,
    job_int: Any,  # (N, 8): count, earliest off, deadline off, home, rule row, speed row, -, -
    job_float: Any,  # (N, 3): work h, utilisation, data size GB
    pair_site: Any,
    cap: Any,
    acc_w: Any,
    host_w: Any,
    price_h: Any,
    down: Any,
    reserve: Any,
    speed: Any,  # (Q, P)
    allowed: Any,  # (R, S)
    egress: Any,
    s_per_gb: Any,
    w: Any,
    W: Any,
    minw: Any,
    price_cum: Any,
    carbon_cum: Any,
    pue: Any,
    cp: float,
    slot: int,
    T: int,
    free: Any,
    out_i: Any,
    out_f: Any,
) -> int:
    """Place jobs ``lo .. hi - 1`` in turn; return the index of the first job with no start
    (``hi`` when all were placed), having committed the capacity of those before it."""
    P = pair_site.shape[0]
    ok = np.zeros(P, dtype=np.bool_)
    run = np.zeros(P, dtype=np.int64)
    ready = np.zeros(P, dtype=np.int64)
    need = np.zeros(P, dtype=np.int64)
    kw = np.zeros(P)
    fixed = np.zeros(P)
    tcost = np.zeros(P)
    tsec = np.zeros(P)
    lb = np.zeros(P)
    best_v = np.zeros(P)
    best_k = np.zeros(P, dtype=np.int64)
    best_e = np.zeros(P, dtype=np.bool_)
    priced = np.zeros(P, dtype=np.int64)
    for j in range(lo, hi):
        count = job_int[j, 0]
        earl = job_int[j, 1]
        dl = job_int[j, 2]
        home = job_int[j, 3]
        rrow = job_int[j, 4]
        srow = job_int[j, 5]
        work = job_float[j, 0]
        util = job_float[j, 1]
        size = job_float[j, 2]
        rule_site = -1
        late_p = -1
        late_s = 0
        for p in range(P):
            s = pair_site[p]
            sp = speed[srow, p]
            good = sp > 0 and cap[p] >= count and not down[p]
            tc = 0.0
            tt = 0.0
            if home >= 0:
                tc = size * egress[home, s]
                tt = np.ceil(size * s_per_gb[home, s])
                reach = allowed[rrow, s] and math.isfinite(tt)
                if not reach:
                    if rule_site < 0 and sp > 0 and cap[p] >= count:
                        rule_site = s
                    good = False
            r = 1
            if sp > 0:
                r = max(1, int(np.ceil(work * 3600 / sp)))
            ok[p] = good
            run[p] = r
            tcost[p] = tc
            tsec[p] = tt
            rd = max(tt, float(earl)) if math.isfinite(tt) else float(earl)
            ready[p] = int(rd)
            need[p] = count + (reserve[p] if s != home else 0)
            kw[p] = count * (acc_w[p] * util + host_w[p]) / 1000.0
            fixed[p] = count * price_h[p] * r / 3600.0 + tc
            lb[p] = kw[p] * (r / slot) * minw[p] + fixed[p] if good else INF
            if good and late_p < 0 and ready[p] + r > dl:
                late_p = p
                late_s = ready[p] + r - dl
        order = np.argsort(lb, kind="mergesort")
        # Pass 1: the best value that fits, pool by pool while a pool's bound can reach it.
        m = INF
        n_priced = 0
        for q in range(P):
            p = order[q]
            if lb[p] == INF or lb[p] > m + _tol(m) + PRUNE_MARGIN * max(1.0, abs(m)):
                break
            priced[n_priced] = p
            n_priced += 1
            r = run[p]
            ns = -(-r // slot)
            k0 = max(0, -(-(ready[p] + r) // slot) - ns)
            k1 = min(T - 1, (dl - r) // slot)
            bv = INF
            bk = -1
            be = False
            for k in range(k0, k1 + 1):
                v, e = _value(W, w, p, k, r, slot, ready[p], dl, kw[p], fixed[p])
                if v < bv and _fits(free, p, k, ns, need[p]):
                    bv, bk, be = v, k, e
            best_v[p], best_k[p], best_e[p] = bv, bk, be
            m = min(m, bv)
        if m == INF:
            return j
        # Pass 2: among the starts within ``tol`` of the best, the earliest, then lowest pool.
        lim = m + _tol(m)
        ck = T + 1
        cp_ = -1
        ce_ = False
        cv = INF
        for q in range(n_priced):
            p = priced[q]
            if best_v[p] > lim:
                continue
            r = run[p]
            ns = -(-r // slot)
            k0 = max(0, -(-(ready[p] + r) // slot) - ns)
            k1 = min(T - 1, (dl - r) // slot, ck)
            for k in range(k0, k1 + 1):
                v, e = _value(W, w, p, k, r, slot, ready[p], dl, kw[p], fixed[p])
                if v <= lim and _fits(free, p, k, ns, need[p]):
                    if k < ck or (k == ck and p < cp_):
                        ck, cp_, ce_, cv = k, p, e, v
                    break
        p = cp_
        r = run[p]
        ns = -(-r // slot)
        oi = out_i[j]
        of = out_f[j]
        # The same pool started earlier (with the capacity this job saw).
        oi[_I_EARLY_SO] = -1
        for k in range(max(0, -(-(ready[p] + r) // slot) - ns), ck):
            v, e = _value(W, w, p, k, r, slot, ready[p], dl, kw[p], fixed[p])
            if v < INF and _fits(free, p, k, ns, need[p]):
                oi[_I_EARLY_SO] = (k + ns) * slot - r if e else k * slot
                of[_F_EARLY_V] = v
                break
        for t in range(ck, ck + ns):
            free[p, t] -= count
        s = pair_site[p]
        so = (ck + ns) * slot - r if ce_ else ck * slot
        kwh_h = kw[p] * pue[s]
        x0 = so / slot
        x1 = (so + r) / slot
        energy_cost = kwh_h * (_interp(price_cum, s, x1) - _interp(price_cum, s, x0))
        carbon = kwh_h * (_interp(carbon_cum, s, x1) - _interp(carbon_cum, s, x0)) / 1000
        oi[_I_PAIR], oi[_I_K], oi[_I_SO], oi[_I_RUN] = p, ck, so, r
        of[_F_VALUE], of[_F_ENERGY_COST], of[_F_CARBON] = cv, energy_cost, carbon
        of[_F_KWH] = kwh_h * r / 3600.0
        of[_F_FIXED], of[_F_TCOST] = fixed[p], tcost[p]
        oi[_I_TSEC] = int(tsec[p])
        # The best starts at two other sites among the pools priced (by value, then pool).
        taken_s0 = -1
        for slot_ in range(2):
            bq = -1
            for q in range(n_priced):
                pp = priced[q]
                sp_ = pair_site[pp]
                if best_v[pp] == INF or sp_ == s or sp_ == taken_s0:  # noqa: SIM109
                    continue
                if bq < 0 or best_v[pp] < best_v[bq] or (best_v[pp] == best_v[bq] and pp < bq):
                    bq = pp
            oi[_I_OTHER_P + slot_] = bq
            if bq >= 0:
                ro = run[bq]
                bk_ = best_k[bq]
                oi[_I_OTHER_SO + slot_] = (
                    (bk_ - (-ro // slot)) * slot - ro if best_e[bq] else bk_ * slot
                )
                of[_F_OTHER_V + slot_] = best_v[bq]
                taken_s0 = pair_site[bq]
        # The cheapest bound among the pools not priced, at another site.
        oi[_I_LB_P] = -1
        for q in range(n_priced, P):
            pp = order[q]
            if lb[pp] == INF:
                break
            if pair_site[pp] != s:
                oi[_I_LB_P], of[_F_LB_V] = pp, lb[pp]
                break
        oi[_I_RULE_SITE], oi[_I_LATE_P], oi[_I_LATE_S] = rule_site, late_p, late_s
    return hi


# --------------------------------------------------------------------------- driver


@dataclass
class _Inputs:
    """The request as the kernel's arrays; ``pos[n]`` is job ``n``'s row (-1: not taken)."""

    job_int: np.ndarray
    job_float: np.ndarray
    speed: np.ndarray
    allowed: np.ndarray
    pos: dict[int, int]


def _inputs(pb: Problem, order: list[int]) -> _Inputs:
    net = pb.net
    jobs = pb.req.jobs
    speed_rows: dict[Any, int] = {(): 0}
    speeds = [np.asarray(net.default_speed, dtype=np.float64)]
    rule_rows: dict[tuple[int, str, int], int] = {}
    masks: list[np.ndarray] = [np.ones(net.n_sites, dtype=bool)]
    ints: list[tuple[int, ...]] = []
    floats: list[tuple[float, float, float]] = []
    pos: dict[int, int] = {}
    now = pb.now
    datasets = pb._datasets
    replicas = pb.req.replicas
    site_index = net.site_index
    for n in order:
        j = jobs[n]
        if not _simple(j):
            continue
        home, rrow, size = -1, 0, 0.0
        if j.datasets:
            d = datasets.get(j.datasets[0])
            if d is None or d.home_site not in site_index or replicas.get(d.id):
                continue
            if not (math.isfinite(d.size_gb) and d.size_gb >= 0):
                continue
            home, size = site_index[d.home_site], float(d.size_gb)
            scope = rules.effective_scope(d)
            lvl = rules.RULES[d.classification].min_security_level
            key = (home, str(scope), lvl)
            rrow = rule_rows.get(key, -1)
            if rrow < 0:
                rrow = rule_rows[key] = len(masks)
                masks.append(_allowed(net, home, scope, lvl))
        srow = 0
        if j.accelerator_speed:
            sk = pb._speed_key(j)
            srow = speed_rows.get(sk, -1)
            if srow < 0:
                srow = speed_rows[sk] = len(speeds)
                speeds.append(pb._speeds(j))
        pos[n] = len(ints)
        ints.append(
            (
                j.accelerators,
                max(0, j.earliest_start_s - now),
                j.deadline_s - now,
                home,
                rrow,
                srow,
                0,
                0,
            )
        )
        floats.append((float(j.work_h), float(j.utilisation), size))
    return _Inputs(
        np.array(ints, dtype=np.int64).reshape(-1, 8),
        np.array(floats, dtype=np.float64).reshape(-1, 3),
        np.ascontiguousarray(np.stack(speeds)),
        np.ascontiguousarray(np.stack(masks)),
        pos,
    )


def _simple(j: TrainingJob) -> bool:
    """Whether the kernel takes the job: one gang, valid numbers, at most one dataset."""
    return (
        isinstance(j.accelerators, int)
        and j.accelerators >= 1
        and len(j.datasets) <= 1
        and math.isfinite(j.work_h)
        and j.work_h >= 0
        and 0 < j.utilisation <= 1.0
        and j.deadline_s >= j.earliest_start_s
    )


def plan(pb: Problem) -> PlanReply:
    net = pb.net
    jobs = pb.req.jobs
    order = sorted(range(len(jobs)), key=lambda n: job_order(jobs[n]))
    x = _inputs(pb, order)
    N = len(x.job_int)
    out_i = np.full((N, _N_INT), -1, dtype=np.int64)
    out_f = np.zeros((N, _N_FLOAT))
    w, W = pb.weights("objective")
    statics = (
        net.pair_site,
        net.cap,
        net.acc_power_w,
        net.host_w,
        net.price_h,
        np.ascontiguousarray(pb.down[net.pair_site]),
        np.ascontiguousarray(pb.reserve),
        x.speed,
        x.allowed,
        np.ascontiguousarray(net.egress),
        np.ascontiguousarray(net.s_per_gb),
        np.ascontiguousarray(w),
        np.ascontiguousarray(W),
        np.ascontiguousarray(w.min(axis=1)),
        np.ascontiguousarray(pb.price_cum),
        np.ascontiguousarray(pb.carbon_cum),
        np.ascontiguousarray(net.pue),
        float(pb.cp),
        int(pb.slot),
        int(pb.T),
    )
    free = pb.free
    if not free.flags.c_contiguous:
        pb.free = free = np.ascontiguousarray(free)
    placed: list[int] = []  # kernel rows placed, in order
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    rows = [x.pos.get(n, -1) for n in order]
    # For each position, where its run of kernel jobs ends (their rows are consecutive).
    run_end = [0] * (len(order) + 1)
    run_end[len(order)] = len(order)
    for t in range(len(order) - 1, -1, -1):
        run_end[t] = run_end[t + 1] if rows[t] >= 0 else t
    i = 0
    while i < len(order):
        if rows[i] < 0:
            _one_job(pb, order[i], placements, deferred, infeasible)
            i += 1
            continue
        lo, hi = rows[i], rows[i] + run_end[i] - i
        stop = _greedy(lo, hi, x.job_int, x.job_float, *statics, free, out_i, out_f)
        placed.extend(range(lo, stop))
        i += stop - lo
        if stop < hi:  # no start for this one: the ordinary path says why
            _one_job(pb, order[i], placements, deferred, infeasible)
            i += 1
    job_of_row = dict(zip(x.pos.values(), x.pos.keys(), strict=True))
    oi, of = out_i.tolist(), out_f.tolist()
    reason = explain.costs_more()
    # Hundreds of thousands of small acyclic objects: the cycle collector would rescan
    # the growing heap over and over (it doubled this loop's time) and can find nothing.
    with _collector_paused():
        placements.extend(_describe(pb, jobs[job_of_row[r]], oi[r], of[r], reason) for r in placed)
        return reply(pb, greedy.NAME, placements, deferred, infeasible)


@contextmanager
def _collector_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _one_job(
    pb: Problem,
    n: int,
    placements: list[Placement],
    deferred: list[Deferral],
    infeasible: list[Infeasible],
) -> None:
    v = pb.views[n]
    if isinstance(v, Rejection):
        infeasible.append(Infeasible(pb.req.jobs[n].id, v.constraint, v.reason))
        return
    assert isinstance(v, JobView)
    d = greedy.choose(pb, v)
    v = d.view or v
    if d.pick is None:
        out = d.unplaced or explain.unplaced(pb, v, d.opts, d.rows)
        (deferred if isinstance(out, Deferral) else infeasible).append(out)  # type: ignore[arg-type]
        return
    placements.append(place(pb, v, d, greedy.NAME, explain.costs_more()))


def _describe(
    pb: Problem, j: TrainingJob, ii: list[int], ff: list[float], reason: explain.Reason
) -> Placement:
    """The placement the kernel chose, with its breakdown and alternatives."""
    net, now = pb.net, pb.now
    p, so, run = ii[_I_PAIR], ii[_I_SO], ii[_I_RUN]
    value = ff[_F_VALUE]
    s = int(net.pair_site[p])
    site = net.sites[s]
    tcost = ff[_F_TCOST]
    carbon = ff[_F_CARBON]
    energy_cost = ff[_F_ENERGY_COST]
    compute = ff[_F_FIXED] - tcost
    obj = energy_cost + compute + tcost + pb.cp * carbon / 1000.0
    bd = Breakdown(ff[_F_KWH], energy_cost, compute, tcost, carbon, obj)
    alts: list[Alternative] = []
    so2 = ii[_I_EARLY_SO]
    if 0 <= so2 < so:
        v2 = ff[_F_EARLY_V]
        why = reason(v2, value, so2, so)
        alts.append(Alternative(site.id, now + so2, v2, f"starting {explain.when(so2)}: {why}"))
    for t in range(2):
        q = ii[_I_OTHER_P + t]
        if q < 0 or len(alts) >= 2:
            break
        vo = ff[_F_OTHER_V + t]
        so2 = ii[_I_OTHER_SO + t]
        sid = net.sites[int(net.pair_site[q])].id
        alts.append(Alternative(sid, now + so2, vo, reason(vo, value, so2, so)))
    if len(alts) < 2 and ii[_I_LB_P] >= 0:
        sid = net.sites[int(net.pair_site[ii[_I_LB_P]])].id
        more = ff[_F_LB_V] - value
        alts.append(Alternative(sid, None, None, f"costs at least {more:,.2f} CNY more"))
    d = pb._datasets[j.datasets[0]] if j.datasets else None
    home = net.site_index[d.home_site] if d is not None else -1
    if ii[_I_RULE_SITE] >= 0 and d is not None:
        rs = net.sites[ii[_I_RULE_SITE]]
        why_rule = rules.breach(d, rs, net.sites[home])
        text = (
            f"violates data rule: {why_rule}"
            if why_rule
            else f"dataset {d.id} cannot reach {rs.id} (no bandwidth)"
        )
        alts.append(Alternative(rs.id, None, None, text))
    elif ii[_I_LATE_P] >= 0 and int(net.pair_site[ii[_I_LATE_P]]) != s:
        sid = net.sites[int(net.pair_site[ii[_I_LATE_P]])].id
        late = ii[_I_LATE_S] / 3600
        alts.append(Alternative(sid, None, None, f"misses deadline by {late:.1f} h"))
    transfers: tuple[Transfer, ...] = ()
    if d is not None and home != s:
        transfers = (
            Transfer(d.id, net.sites[home].id, site.id, d.size_gb, now, now + ii[_I_TSEC], tcost),
        )
    start = now + so
    why = (
        f"{greedy.NAME}: {site.id} {explain.when(so)}, objective {obj:,.2f} CNY "
        f"(cost {energy_cost + compute + tcost:,.2f} CNY, {carbon:,.2f} kg CO2)"
    )
    return Placement(
        j.id,
        site.id,
        net.pair_acc[p],
        j.accelerators,
        start,
        start + run,
        bd,
        transfers,
        tuple(alts[:3]),
        why,
    )
