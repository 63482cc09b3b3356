"""The compiled loop of ``greedy_compiled`` (numba, compiled on first use and cached on
disk): greedy over a run of jobs, writing each job's choice and what its explanation needs
into the rows of ``out_i`` and ``out_f`` (columns named in ``greedy_compiled``)."""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from computenet.engine.policies.greedy_compiled import (
    _F_CARBON,
    _F_EARLY_V,
    _F_ENERGY_COST,
    _F_FIXED,
    _F_KWH,
    _F_LB_V,
    _F_OTHER_V,
    _F_TCOST,
    _F_VALUE,
    _I_EARLY_SO,
    _I_K,
    _I_LATE_P,
    _I_LATE_S,
    _I_LB_P,
    _I_MASK,
    _I_OTHER_P,
    _I_OTHER_SO,
    _I_PAIR,
    _I_RULE_SITE,
    _I_RUN,
    _I_SO,
    _I_STATUS,
    _I_TSEC,
    _S_DEFER,
    _S_NO_ROOM,
    _S_OTHER,
    _S_PLACED,
    MASK_PAIRS,
    PRUNE_MARGIN,
)
from computenet.engine.problem import ALIGN_TOL, INF


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
    end = ok_e and ((not ok) or ce < c - ALIGN_TOL * abs(c))
    if end:
        c = ce
    if not (ok or ok_e):
        return INF, False
    return kw * c + fixed, end


@nb.njit(cache=True, inline="always")
def _fit_row(free: Any, p: int, k0: int, k1: int, ns: int, need: int, fit: Any) -> bool:
    """``fit[k]``: whether ``free[p, k : k + ns] >= need`` throughout, for each
    ``k0 <= k <= k1``, in one pass over the slots (counting how many in a row have room);
    returns whether any is true."""
    run = 0
    anyfit = False
    for t in range(k0, k1 + ns):
        if free[p, t] >= need:
            run += 1
        else:
            run = 0
        k = t - ns + 1
        if k >= k0:
            f = run >= ns
            fit[k] = f
            anyfit = anyfit or f
    return anyfit


@nb.njit(cache=True, inline="always")
def _cheapest(lb: Any, taken: Any) -> int:
    """The pool with the lowest finite bound not yet taken (ties: the lower pool), or -1."""
    best = -1
    for p in range(lb.shape[0]):
        if not taken[p] and lb[p] < INF and (best < 0 or lb[p] < lb[best]):
            best = p
    return best


@nb.njit(cache=True, inline="always")
def _interp(cum: Any, s: int, x: float) -> float:
    k = int(x)
    fr = x - k
    if fr == 0.0:
        return cum[s, k]
    return cum[s, k] + fr * (cum[s, k + 1] - cum[s, k])


@nb.njit(cache=True)
def run(
    lo: int,
    hi: int,
    job_int: Any,  # (N, 7): count, earliest off, deadline off, home, rule row, speed row,
    # power row
    job_float: Any,  # (N, 3): work h, utilisation, data size GB
    pair_site: Any,
    cap: Any,
    power: Any,  # (Q2, P): a gang's power per pair (kW), from ``jobs.pair_power_kw``
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
    slot: int,
    T: int,
    free: Any,
    out_i: Any,
    out_f: Any,
) -> int:
    """Place jobs ``lo .. hi - 1`` in turn, committing the capacity each takes; a job with
    no start takes none, and its row says why from its time window alone (``_no_start``).
    Returns ``hi``."""
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
    taken = np.zeros(P, dtype=np.bool_)
    # fit[p, k]: the job's gang fits pool p from slot k (set for the slots of its window).
    fit = np.zeros((P, max(T, 1)), dtype=np.bool_)
    for j in range(lo, hi):
        count = job_int[j, 0]
        earl = job_int[j, 1]
        dl = job_int[j, 2]
        home = job_int[j, 3]
        rrow = job_int[j, 4]
        srow = job_int[j, 5]
        prow = job_int[j, 6]
        work = job_float[j, 0]
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
            kw[p] = power[prow, p]
            fixed[p] = count * price_h[p] * r / 3600.0 + tc
            lb[p] = kw[p] * (r / slot) * minw[p] + fixed[p] if good else INF
            if good and late_p < 0 and ready[p] + r > dl:
                late_p = p
                late_s = ready[p] + r - dl
        # Pass 1: the best value that fits, pool by pool (cheapest bound first; usually a
        # few of them, so picked one at a time rather than sorted) while a pool's bound can
        # still reach it.
        taken[:] = False
        m = INF
        n_priced = 0
        while True:
            p = _cheapest(lb, taken)
            if p < 0 or lb[p] > m + _tol(m) + PRUNE_MARGIN * max(1.0, abs(m)):
                break
            taken[p] = True
            priced[n_priced] = p
            n_priced += 1
            r = run[p]
            ns = -(-r // slot)
            k0 = max(0, -(-(ready[p] + r) // slot) - ns)
            k1 = min(T - 1, (dl - r) // slot)
            bv = INF
            bk = -1
            be = False
            # No window with room: nothing there to price (the same best: none).
            if k1 >= k0 and _fit_row(free, p, k0, k1, ns, need[p], fit[p]):
                for k in range(k0, k1 + 1):
                    if fit[p, k]:
                        v, e = _value(W, w, p, k, r, slot, ready[p], dl, kw[p], fixed[p])
                        if v < bv:
                            bv, bk, be = v, k, e
            best_v[p], best_k[p], best_e[p] = bv, bk, be
            m = min(m, bv)
        if m == INF:
            _no_start(out_i[j], ok, run, ready, dl, slot, T)
            continue
        # Pass 2: among the starts within ``tol`` of the best, the earliest, then lowest pool.
        lim = m + _tol(m)
        pick_k = T + 1
        pick_p = -1
        pick_end = False
        pick_v = INF
        for q in range(n_priced):
            p = priced[q]
            if best_v[p] > lim:
                continue
            r = run[p]
            ns = -(-r // slot)
            k0 = max(0, -(-(ready[p] + r) // slot) - ns)
            k1 = min(T - 1, (dl - r) // slot, pick_k)
            for k in range(k0, k1 + 1):
                if not fit[p, k]:
                    continue
                v, e = _value(W, w, p, k, r, slot, ready[p], dl, kw[p], fixed[p])
                if v <= lim:
                    if k < pick_k or (k == pick_k and p < pick_p):
                        pick_k, pick_p, pick_end, pick_v = k, p, e, v
                    break
        p = pick_p
        r = run[p]
        ns = -(-r // slot)
        oi = out_i[j]
        of = out_f[j]
        # The same pool started earlier (with the capacity this job saw).
        oi[_I_EARLY_SO] = -1
        for k in range(max(0, -(-(ready[p] + r) // slot) - ns), pick_k):
            if not fit[p, k]:
                continue
            v, e = _value(W, w, p, k, r, slot, ready[p], dl, kw[p], fixed[p])
            if v < INF:
                oi[_I_EARLY_SO] = (k + ns) * slot - r if e else k * slot
                of[_F_EARLY_V] = v
                break
        for t in range(pick_k, pick_k + ns):
            free[p, t] -= count
        s = pair_site[p]
        so = (pick_k + ns) * slot - r if pick_end else pick_k * slot
        kwh_h = kw[p] * pue[s]
        x0 = so / slot
        x1 = (so + r) / slot
        energy_cost = kwh_h * (_interp(price_cum, s, x1) - _interp(price_cum, s, x0))
        carbon = kwh_h * (_interp(carbon_cum, s, x1) - _interp(carbon_cum, s, x0)) / 1000
        oi[_I_PAIR], oi[_I_K], oi[_I_SO], oi[_I_RUN] = p, pick_k, so, r
        of[_F_VALUE], of[_F_ENERGY_COST], of[_F_CARBON] = pick_v, energy_cost, carbon
        of[_F_KWH] = kwh_h * r / 3600.0
        of[_F_FIXED], of[_F_TCOST] = fixed[p], tcost[p]
        oi[_I_TSEC] = int(tsec[p])
        # The best starts at two other sites among the pools priced (by value, then pool).
        taken_s0 = -1
        for nth in range(2):
            bq = -1
            for q in range(n_priced):
                pp = priced[q]
                sp_ = pair_site[pp]
                if best_v[pp] == INF or sp_ == s or sp_ == taken_s0:  # noqa: SIM109
                    continue
                if bq < 0 or best_v[pp] < best_v[bq] or (best_v[pp] == best_v[bq] and pp < bq):
                    bq = pp
            oi[_I_OTHER_P + nth] = bq
            if bq >= 0:
                ro = run[bq]
                bk_ = best_k[bq]
                oi[_I_OTHER_SO + nth] = (
                    (bk_ - (-ro // slot)) * slot - ro if best_e[bq] else bk_ * slot
                )
                of[_F_OTHER_V + nth] = best_v[bq]
                taken_s0 = pair_site[bq]
        # The cheapest bound among the pools not priced, at another site.
        oi[_I_LB_P] = -1
        while True:
            pp = _cheapest(lb, taken)
            if pp < 0:
                break
            taken[pp] = True
            if pair_site[pp] != s:
                oi[_I_LB_P], of[_F_LB_V] = pp, lb[pp]
                break
        oi[_I_RULE_SITE], oi[_I_LATE_P], oi[_I_LATE_S] = rule_site, late_p, late_s
        oi[_I_STATUS] = _S_PLACED
    return hi


@nb.njit(cache=True)
def _no_start(oi: Any, ok: Any, run: Any, ready: Any, dl: int, slot: int, T: int) -> None:
    """Why a job got no start, as ``explain.unplaced_by_time`` decides it: with some start
    allowed by time alone (``Problem.time_ok_any``: each pool checked at its latest start of
    each kind), no room (``_S_DEFER`` when the deadline allows waiting past the horizon,
    else ``_S_NO_ROOM``), its usable pools in ``_I_MASK``; anything else (no usable pool,
    no start in time, too many pools for the mask) is ``_S_OTHER``, left to the one-job
    explanation."""
    P = ok.shape[0]
    mask = 0
    any_ok = False
    time_ok = False
    latest = -(1 << 62)
    for p in range(P):
        if not ok[p]:
            continue
        any_ok = True
        r = run[p]
        ns = -(-r // slot)
        ks = min(T - 1, (dl - r) // slot)
        ke = min(T - 1, dl // slot - ns)
        if ks * slot >= ready[p] or (r % slot > 0 and (ke + ns) * slot - r >= ready[p]):
            time_ok = True
        latest = max(latest, dl - r)
        if p < MASK_PAIRS:
            mask |= 1 << p
    if not any_ok or not time_ok or P > MASK_PAIRS:
        oi[_I_STATUS] = _S_OTHER
    elif latest >= T * slot:
        oi[_I_STATUS] = _S_DEFER
    else:
        oi[_I_STATUS] = _S_NO_ROOM
    oi[_I_MASK] = mask


@nb.njit(cache=True)
def options_one_run(
    W: Any,
    w: Any,
    rows: Any,
    a: int,
    b: int,
    r: int,
    slot: int,
    ready: Any,
    dl: int,
    kw: Any,
    fixed: Any,
    add_fixed: bool,
    free: Any,
    need: Any,
    capacity: bool,
    value: Any,
    end_al: Any,
    time_ok: Any,
) -> None:
    """``StartOptions.options`` for a job with one run length ``r`` at every usable pair
    (``rows``: their rows of ``W`` and ``free``), starts in slots ``a .. b - 1``: the same
    arithmetic, element by element in the same order, written into ``value``, ``end_al``
    and ``time_ok`` (``value`` is ``inf`` where the start is not allowed or, with
    ``capacity``, the gang does not fit)."""
    n = r // slot
    rem = r - n * slot
    ns = n + (1 if rem else 0)
    f = rem / slot
    K = b - a
    for i in range(rows.shape[0]):
        p = rows[i]
        rd = ready[i]
        if capacity:
            # fit[c]: the gang fits from slot a + c (one pass, as in ``_fit_row``).
            run = 0
            for t in range(a, b + ns - 1):
                if free[p, t] >= need[i]:
                    run += 1
                else:
                    run = 0
                c = t - ns + 1 - a
                if c >= 0:
                    end_al[i, c] = run >= ns  # scratch: read back below
        for c in range(K):
            k = a + c
            fits = True
            if capacity:
                fits = end_al[i, c]
            ts = k * slot
            ok = ts >= rd
            cv = W[p, k + n] - W[p, k]
            e = False
            if rem:
                cv += f * w[p, k + n]
                end_s = ts + ns * slot
                ok_e = (end_s - r >= rd) and (end_s <= dl)
                ce = f * w[p, k] + W[p, k + 1 + n] - W[p, k + 1]
                e = ok_e and ((not ok) or ce < cv - ALIGN_TOL * abs(cv))
                if e:
                    cv = ce
                ok = ok or ok_e
            v = kw[i] * cv
            if add_fixed:
                v += fixed[i]
            time_ok[i, c] = ok
            end_al[i, c] = e
            value[i, c] = v if (ok and fits) else INF
