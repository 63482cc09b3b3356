"""The ``greedy`` policy for large requests: the same decisions, computed in batches.

Jobs only interact through capacity, so the start each job would take *if capacity were
no object* can be computed for thousands of jobs at once with array operations; the jobs are
then taken one at a time in greedy's order, and a job whose capacity-free best start still
fits takes it — that start is also its best start among those that fit, with the same
tie-break, so the decision is exactly greedy's. A job whose best start no longer fits, or
that does not suit the batch (several accelerator speeds, several datasets, copies already
elsewhere), goes through the ordinary one-job path (``greedy.choose``).

To keep the batch small, each job's options are first priced with a lower bound per pool
(run length x the cheapest slot of that pool + the fixed costs); only pools whose lower
bound could reach the best value found are priced exactly. Data transfer costs make most
remote pools drop out at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from computenet.engine import explain, rules
from computenet.engine.policies import greedy
from computenet.engine.policies.base import job_order, place, reply, tol
from computenet.engine.problem import INF, JobView, Problem, Rejection
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

MIN_JOBS = 256
BATCH = 256
MARGIN = 1e-6  # relative slack when pruning pools by their lower bound
TOP_M = 96  # options per job kept for when its best start is taken by earlier jobs


def usable(pb: Problem) -> bool:
    """The batch path needs one accelerator speed across the network's pools, and no home
    reserve (its capacity check is the plain gang)."""
    sp = pb.net.default_speed
    if pb.reserve.any():
        return False
    return len(pb.req.jobs) >= MIN_JOBS and sp.size > 0 and bool(np.all(sp == sp[0])) and sp[0] > 0


def _simple(pb: Problem, j: TrainingJob) -> bool:
    if j.accelerator_speed or len(j.datasets) > 1:
        return False
    if not (isinstance(j.accelerators, int) and j.accelerators >= 1):
        return False
    if not (math.isfinite(j.work_h) and j.work_h >= 0 and 0 < j.utilisation <= 1.0):
        return False
    if j.deadline_s < j.earliest_start_s:
        return False
    if j.datasets:
        d = pb._datasets.get(j.datasets[0])
        if d is None or d.home_site not in pb.net.site_index or pb.req.replicas.get(d.id):
            return False
        if not (math.isfinite(d.size_gb) and d.size_gb >= 0):
            return False
    return True


@dataclass(frozen=True)
class _Cands:
    """Options of a batch of jobs (pool, slot, end-aligned, value), by job, best first."""

    pool: np.ndarray
    slot: np.ndarray
    end_al: np.ndarray
    value: np.ndarray


@dataclass(slots=True)
class _Pre:
    """Capacity-free best start of one job and what its explanation needs."""

    p: int
    k: int
    end_al: bool
    value: float
    ns: int
    run: int
    kw: float
    fixed: float
    tcost: float
    tsec: float
    home: int
    alts: list[tuple[int, int, float, bool]]
    cands: _Cands  # this job's options are rows ``lo:hi``, best first
    lo: int
    hi: int
    banned: int  # a site the data rules exclude (-1: none)
    v_excl: float  # no option left out of ``cands`` is worth less than this


def _batch(pb: Problem, idx: list[int]) -> dict[int, _Pre]:
    net = pb.net
    jobs = [pb.req.jobs[n] for n in idx]
    B, P = len(jobs), net.n_pairs
    slot, T = pb.slot, pb.T
    ps = net.pair_site
    speed = float(net.default_speed[0])
    count = np.array([j.accelerators for j in jobs], dtype=np.int64)
    work = np.array([j.work_h for j in jobs])
    util = np.array([j.utilisation for j in jobs])
    earl = np.maximum(0, np.array([j.earliest_start_s for j in jobs], dtype=np.int64) - pb.now)
    dl = np.array([j.deadline_s for j in jobs], dtype=np.int64) - pb.now
    run = np.maximum(1, np.ceil(work * 3600 / speed)).astype(np.int64)
    n_ = run // slot
    rem = run - n_ * slot
    ns = n_ + (rem > 0)
    f = rem / slot
    # Data: rules, copy cost and time, per job and pool.
    size = np.zeros(B)
    home = np.full(B, -1, dtype=np.int64)
    rule_row = np.zeros(B, dtype=np.int64)
    table: dict[tuple[int, str, int], int] = {}
    masks: list[np.ndarray] = [np.ones(net.n_sites, dtype=bool)]
    for b, j in enumerate(jobs):
        if not j.datasets:
            continue
        d = pb._datasets[j.datasets[0]]
        h = net.site_index[d.home_site]
        size[b], home[b] = d.size_gb, h
        scope = rules.effective_scope(d)
        lvl = rules.RULES[d.classification].min_security_level
        rkey = (h, str(scope), lvl)
        row = table.get(rkey)
        if row is None:
            if scope is rules.Scope.HOME_SITE:
                m = np.zeros(net.n_sites, dtype=bool)
            elif scope is rules.Scope.HOME_JURISDICTION:
                m = net.juris == net.juris[h]
            else:
                m = np.ones(net.n_sites, dtype=bool)
            m = m & (net.level >= lvl)
            m[h] = True
            row = table[rkey] = len(masks)
            masks.append(m)
        rule_row[b] = row
    site_allowed = np.stack(masks)[rule_row]  # (B, S)
    banned = np.where(site_allowed.all(axis=1), -1, np.argmin(site_allowed, axis=1))
    allowed = site_allowed[:, ps]  # (B, P)
    hh = np.maximum(home, 0)
    has = (home >= 0)[:, None]
    tcost = np.where(has, size[:, None] * net.egress[hh][:, ps], 0.0)
    tsec = np.where(has, np.ceil(size[:, None] * net.s_per_gb[hh][:, ps]), 0.0)
    same = has & (ps[None, :] == home[:, None])
    tcost = np.where(same, 0.0, tcost)
    tsec = np.where(same, 0.0, tsec)
    ok = allowed & np.isfinite(tsec) & (net.cap[None, :] >= count[:, None])
    ok &= ~pb.down[ps][None, :]
    ready = np.maximum(earl[:, None], np.where(np.isfinite(tsec), tsec, 0)).astype(np.int64)
    kw = count[:, None] * (net.acc_power_w[None, :] * util[:, None] + net.host_w[None, :]) / 1000.0
    fixed = count[:, None] * net.price_h[None, :] * run[:, None] / 3600.0 + tcost
    w, W = pb.weights("objective")
    minw = w.min(axis=1)
    lb = np.where(ok, kw * (run / slot)[:, None] * minw[None, :] + fixed, INF)
    # Window of starts (as ``Problem.options``).
    k0 = np.maximum(
        0, np.min(np.where(ok, -(-(ready + run[:, None]) // slot), 1 << 40), axis=1) - ns
    )
    k1 = np.minimum(T - 1, (dl - run) // slot)
    width = np.maximum(0, k1 - k0 + 1)
    Kmax = int(width.max()) if B else 0
    out: dict[int, _Pre] = {}
    if Kmax == 0:
        return out

    def evaluate(rb: np.ndarray, rp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact values (rows x Kmax) of job ``rb`` at pool ``rp``, and end-alignment."""
        ks = k0[rb][:, None] + np.arange(Kmax)[None, :]
        valid = ks <= k1[rb][:, None]
        ks = np.minimum(ks, T - 1)
        nn = n_[rb][:, None]
        pr = rp[:, None]
        r = run[rb][:, None]
        ts = ks * slot
        rd = ready[rb, rp][:, None]
        dd = dl[rb][:, None]
        oks = valid & (ts >= rd) & (ts + r <= dd)
        c = W[pr, ks + nn] - W[pr, ks]
        ff = f[rb][:, None]
        c = c + ff * w[pr, ks + nn]
        te = (ks + ns[rb][:, None]) * slot - r
        oke = valid & (rem[rb] > 0)[:, None] & (te >= rd) & ((ks + ns[rb][:, None]) * slot <= dd)
        ce = ff * w[pr, ks] + W[pr, ks + 1 + nn] - W[pr, ks + 1]
        end_al = oke & (~oks | (ce < c))
        c = np.where(end_al, ce, c)
        val = kw[rb, rp][:, None] * c
        val += fixed[rb, rp][:, None]
        val[~(oks | oke)] = INF
        return val, end_al

    # 1. The pool with the lowest lower bound, priced exactly: a value to beat.
    first = np.argmin(lb, axis=1)
    live = np.flatnonzero(np.isfinite(lb[np.arange(B), first]) & (width > 0))
    v1, _ = evaluate(live, first[live])
    best = np.full(B, INF)
    best[live] = v1.min(axis=1)
    # 2. Every pool whose lower bound could reach it, priced exactly.
    thr = best + MARGIN * np.maximum(1.0, np.abs(best))
    cand = np.isfinite(lb) & (lb <= thr[:, None]) & (width > 0)[:, None]
    rb, rp = np.nonzero(cand)  # sorted by job, then pool
    if rb.size == 0:
        return out
    val, end_al = evaluate(rb, rp)
    rowmin = val.min(axis=1)
    starts = np.flatnonzero(np.r_[True, rb[1:] != rb[:-1]])
    # Each job's TOP_M cheapest options (value, then start, then pool), and the least value
    # any option outside them can have.
    top = min(TOP_M, Kmax)
    part = np.argpartition(val, top - 1, axis=1)[:, :top]
    pv = np.take_along_axis(val, part, axis=1)
    row_excl = pv.max(axis=1) if top < Kmax else np.full(len(rb), INF)
    fj = np.repeat(rb, top)
    fr = np.repeat(np.arange(len(rb)), top)
    fc = part.ravel()
    fv = pv.ravel()
    o = np.lexsort((rp[fr], fc, fv, fj))
    fj, fr, fc, fv = fj[o], fr[o], fc[o], fv[o]
    gstart = np.flatnonzero(np.r_[True, fj[1:] != fj[:-1]])
    rank = np.arange(len(fj)) - np.repeat(gstart, np.diff(np.r_[gstart, len(fj)]))
    cut = np.full(B, INF)
    beyond = rank == TOP_M
    cut[fj[beyond]] = fv[beyond]
    keep = (rank < TOP_M) & np.isfinite(fv)
    excl = cut.copy()
    np.minimum.at(excl, rb, row_excl)
    fj, fr, fc, fv = fj[keep], fr[keep], fc[keep], fv[keep]
    cands = _Cands(rp[fr], k0[fj] + fc, end_al[fr, fc], fv)
    lo = np.searchsorted(fj, np.arange(B), side="left")
    hi = np.searchsorted(fj, np.arange(B), side="right")
    # The capacity-free choice: lowest value, ties to the earliest start, then pool.
    jobmin = np.minimum.reduceat(rowmin, starts)
    jm = np.repeat(jobmin, np.diff(np.r_[starts, len(rb)]))
    tie = val <= (jm + 1e-9 * np.maximum(1.0, np.abs(jm)))[:, None]
    kfirst = np.where(tie.any(axis=1), np.argmax(tie, axis=1), Kmax + 1)
    jkey = np.minimum.reduceat(kfirst * (P + 1) + rp, starts)
    # pruned pools: the cheapest lower bound among them, for "costs at least X more"
    lb_pruned = np.where(cand, INF, lb)
    pr_best = np.argmin(lb_pruned, axis=1)
    # Per job (group of rows): the chosen row and column, and its alternatives.
    bg = rb[starts]
    cg, pg = np.divmod(jkey, P + 1)
    ok_g = (cg <= Kmax) & np.isfinite(jobmin)
    cgc = np.minimum(cg, Kmax - 1)
    rg = np.searchsorted(rb * (P + 1) + rp, bg * (P + 1) + pg)
    rg = np.minimum(rg, len(rb) - 1)
    vg = val[rg, cgc]
    eg = end_al[rg, cgc]
    # the same pool, started earlier
    early = np.isfinite(val[rg]) & (np.arange(Kmax)[None, :] < cgc[:, None])
    has_early = early.any(axis=1)
    ce = np.argmax(early, axis=1)
    # the best other site among the rows priced
    gid = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rb)]))
    other = np.where(ps[rp] != ps[pg][gid], rowmin, INF)
    o = np.lexsort((other, gid))
    first_o = o[np.searchsorted(gid[o], np.arange(len(starts)))]
    ov = other[first_o]
    oc = np.argmin(val[first_o], axis=1)
    v_excl = np.minimum(excl, lb_pruned.min(axis=1))
    L = {
        k: np.asarray(a).tolist()
        for k, a in dict(
            bg=bg,
            cg=cg,
            pg=pg,
            ok=ok_g,
            vg=vg,
            eg=eg,
            he=has_early,
            ce=ce,
            ve=val[rg, ce],
            ee=end_al[rg, ce],
            orow=rp[first_o],
            ov=ov,
            oc=oc,
            oe=end_al[first_o, oc],
        ).items()
    }
    k0l, nsl, runl, homel = k0.tolist(), ns.tolist(), run.tolist(), home.tolist()
    lol, hil, bannedl, vexl = lo.tolist(), hi.tolist(), banned.tolist(), v_excl.tolist()
    prl = pr_best.tolist()
    sites = ps.tolist()
    for g in range(len(starts)):
        if not L["ok"][g]:
            continue
        b, p = L["bg"][g], L["pg"][g]
        alts: list[tuple[int, int, float, bool]] = []  # (pool, k, value, end-aligned)
        if L["he"][g]:
            alts.append((p, k0l[b] + L["ce"][g], L["ve"][g], L["ee"][g]))
        if math.isfinite(L["ov"][g]):
            alts.append((L["orow"][g], k0l[b] + L["oc"][g], L["ov"][g], L["oe"][g]))
        pb_ = prl[b]
        lbp = float(lb_pruned[b, pb_])
        if len(alts) < 2 and math.isfinite(lbp) and sites[pb_] != sites[p]:
            alts.append((pb_, -1, lbp, False))
        out[idx[b]] = _Pre(
            p=p,
            k=k0l[b] + L["cg"][g],
            end_al=L["eg"][g],
            value=L["vg"][g],
            ns=nsl[b],
            run=runl[b],
            kw=float(kw[b, p]),
            fixed=float(fixed[b, p]),
            tcost=float(tcost[b, p]),
            tsec=float(tsec[b, p]),
            home=homel[b],
            alts=alts,
            cands=cands,
            lo=lol[b],
            hi=hil[b],
            banned=bannedl[b],
            v_excl=vexl[b],
        )
    return out


def _fast_choice(pb: Problem, x: _Pre, count: int) -> tuple[int, int, bool, float] | None:
    """Greedy's choice among the options that fit, if ``x.cands`` is sure to hold it: the
    cheapest that fits, ties (within ``tol``) to the earliest start, then the lower pool."""
    c = x.cands
    opts = list(
        zip(
            c.pool[x.lo : x.hi].tolist(),
            c.slot[x.lo : x.hi].tolist(),
            c.end_al[x.lo : x.hi].tolist(),
            c.value[x.lo : x.hi].tolist(),
            strict=True,
        )
    )
    slot_ok = None
    for p, k, _e, v in opts:
        if pb.fits(p, k, x.ns, count):
            slot_ok = v
            break
    if slot_ok is None:
        return None
    limit = slot_ok + tol(slot_ok)
    if not limit < x.v_excl:
        return None
    best: tuple[int, int, bool, float] | None = None
    for p, k, e, v in opts:
        if v > limit:
            break
        if (best is None or (k, p) < (best[1], best[0])) and pb.fits(p, k, x.ns, count):
            best = (p, k, e, v)
    return best


def _breakdown(pb: Problem, pre: _Pre, start_off: int) -> Breakdown:
    s = int(pb.net.pair_site[pre.p])
    x0 = start_off / pb.slot
    x1 = (start_off + pre.run) / pb.slot
    kwh_h = pre.kw * float(pb.net.pue[s])
    pc, cc = pb.price_cum[s], pb.carbon_cum[s]
    energy_cost = kwh_h * (_interp(pc, x1) - _interp(pc, x0))
    carbon = kwh_h * (_interp(cc, x1) - _interp(cc, x0)) / 1000.0
    compute = pre.fixed - pre.tcost
    obj = energy_cost + compute + pre.tcost + pb.cp * carbon / 1000.0
    return Breakdown(kwh_h * pre.run / 3600.0, energy_cost, compute, pre.tcost, carbon, obj)


def _interp(cum: np.ndarray, x: float) -> float:
    k = int(x)
    fr = x - k
    lo = float(cum[k])
    return lo if fr == 0.0 else lo + fr * (float(cum[k + 1]) - lo)


def _start(pb: Problem, pre: _Pre, k: int, end_al: bool) -> int:
    return (k + pre.ns) * pb.slot - pre.run if end_al else k * pb.slot


def _place(pb: Problem, j: TrainingJob, pre: _Pre) -> Placement:
    """Describe the placement at ``pre.p``, ``pre.k`` (already committed)."""
    net = pb.net
    so = _start(pb, pre, pre.k, pre.end_al)
    bd = _breakdown(pb, pre, so)
    site = net.sites[int(net.pair_site[pre.p])]
    start = pb.now + so
    alts = []
    for p, k, val, e in pre.alts:
        sid = net.sites[int(net.pair_site[p])].id
        if k < 0:
            alts.append(
                Alternative(sid, None, None, f"costs at least {val - pre.value:,.2f} CNY more")
            )
            continue
        if (p, k) == (pre.p, pre.k):
            continue
        so2 = _start(pb, pre, k, e)
        if val < pre.value - tol(pre.value):
            why = f"{pre.value - val:,.2f} CNY cheaper, but jobs placed before it took the room"
        else:
            why = explain.costs_more()(val, pre.value, so2, so)
        if p == pre.p:
            why = f"starting {explain.when(so2)}: {why}"
        alts.append(Alternative(sid, pb.now + so2, val, why))
    if j.datasets and net.sites[pre.home].id != site.id:
        d = pb._datasets[j.datasets[0]]
        transfers: tuple[Transfer, ...] = (
            Transfer(
                d.id,
                net.sites[pre.home].id,
                site.id,
                d.size_gb,
                pb.now,
                pb.now + int(pre.tsec),
                pre.tcost,
            ),
        )
    else:
        transfers = ()
    if len(alts) < 3 and pre.banned >= 0:
        d = pb._datasets[j.datasets[0]]
        s = net.sites[pre.banned]
        why_rule = rules.breach(d, s, net.sites[pre.home])
        if why_rule:
            alts.append(Alternative(s.id, None, None, f"violates data rule: {why_rule}"))
    why = (
        f"{greedy.NAME}: {site.id} {explain.when(so)}, objective {bd.objective_cny:,.2f} CNY "
        f"(cost {bd.cost_cny:,.2f} CNY, {bd.carbon_kg:,.2f} kg CO2)"
    )
    return Placement(
        j.id,
        site.id,
        net.pair_acc[pre.p],
        j.accelerators,
        start,
        start + pre.run,
        bd,
        transfers,
        tuple(alts[:3]),
        why,
    )


def plan(pb: Problem) -> PlanReply:
    jobs = pb.req.jobs
    order = sorted(range(len(jobs)), key=lambda n: job_order(jobs[n]))
    simple = [n for n in range(len(jobs)) if _simple(pb, jobs[n])]
    # Batches of jobs with windows of similar length pad less.
    simple.sort(key=lambda n: (jobs[n].deadline_s - jobs[n].earliest_start_s, n))
    pre: dict[int, _Pre] = {}
    for s in range(0, len(simple), BATCH):
        pre.update(_batch(pb, simple[s : s + BATCH]))
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    for n in order:
        x = pre.get(n)
        got = None if x is None else _fast_choice(pb, x, jobs[n].accelerators)
        if x is not None and got is not None:
            p, k, e, val = got
            pb.commit(p, k, x.ns, jobs[n].accelerators)
            x.p, x.k, x.end_al, x.value = p, k, e, val
            placements.append(_place(pb, jobs[n], x))
            continue
        v = pb.views[n]
        if isinstance(v, Rejection):
            infeasible.append(Infeasible(jobs[n].id, v.constraint, v.reason))
            continue
        assert isinstance(v, JobView)
        d = greedy.choose(pb, v)
        v = d.view or v
        if d.pick is None:
            out = explain.unplaced(pb, v, d.opts, d.rows)
            (deferred if isinstance(out, Deferral) else infeasible).append(out)  # type: ignore[arg-type]
            continue
        placements.append(place(pb, v, d, greedy.NAME, explain.costs_more()))
    return reply(pb, greedy.NAME, placements, deferred, infeasible)
