"""The ``greedy`` policy for large requests: the same decisions, in one compiled loop.

Greedy is sequential — each job sees the capacity the jobs before it took — so its loop
cannot be vectorised across jobs. Here it runs in machine code (numba, ``greedy_kernel``):
for each job, in ``job_order``, the kernel prices the job's usable pools in order of a
lower bound (the run at the pool's cheapest slot plus its fixed costs), scans every start
of a pool only while that bound can still beat the best value found, and takes the
cheapest start that fits, ties (within ``tol``) to the earliest start and then the lowest
pool — exactly ``greedy.choose``, computed with the same arithmetic in the same order so
the values are the same to the bit.

Jobs the kernel does not take (several datasets, replicas already elsewhere, bad input) and
jobs it finds no start for go through the ordinary one-job path at the same point in the
order, so their decisions and explanations are the ordinary ones.

The kernel also returns what the explanation needs: the cost breakdown of the chosen
start, the same pool started earlier, the best starts at two other sites among the pools it
priced (and, past those, the cheapest lower bound of a pool it did not need to price) and
the first site the data rules exclude or the deadline rules out.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from computenet.engine import explain, rules
from computenet.engine.arrays import memo
from computenet.engine.jobs import WORK_KINDS, pair_power_kw
from computenet.engine.policies import greedy
from computenet.engine.policies.base import decide, job_order, reply
from computenet.engine.problem import Problem, Rejection, allowed_sites
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
_I_STATUS, _I_MASK = 14, 15  # what became of the job; its usable pools (bit per pool)
_N_INT = 16
# Statuses: placed; no room, the deadline allows waiting; no room in time for the deadline;
# no start for another reason (the one-job explanation says which).
_S_PLACED, _S_DEFER, _S_NO_ROOM, _S_OTHER = 0, 1, 2, 3
MASK_PAIRS = 62
"""Networks with more pools than this explain jobs with no start on the one-job path."""
_F_VALUE, _F_ENERGY_COST, _F_CARBON, _F_KWH, _F_FIXED, _F_TCOST = 0, 1, 2, 3, 4, 5
_F_EARLY_V, _F_OTHER_V, _F_LB_V = 6, 7, 9  # other: two
_N_FLOAT = 10


def usable(pb: Problem) -> bool:
    # The kernel does not read the power ledger: requests with power caps take the one-job
    # path, which checks it (``engine.power``).
    return len(pb.req.jobs) >= MIN_JOBS and pb.power_free is None


@dataclass
class _Inputs:
    """The request as the kernel's arrays: one row per job it takes, in greedy's order;
    ``rows[i]`` is the row of the ``i``-th job in that order (-1: not taken) and
    ``job_of_row[r]`` the job's index in the request."""

    job_int: np.ndarray  # count, earliest start, deadline (s from now), home, rule, speed
    # row, power row
    job_float: np.ndarray  # work (h), utilisation, data size (GB)
    speed: np.ndarray  # (speed rows, pairs)
    allowed: np.ndarray  # (rule rows, sites): where the data rules let the data go
    power: np.ndarray  # (power rows, pairs): a gang's power (kW, ``jobs.pair_power_kw``)
    rows: list[int]
    job_of_row: list[int]


def _inputs(pb: Problem, order: list[int], *, power: bool = True) -> _Inputs:
    """The kernel's arrays for the jobs of ``order`` (``power=False``: without the
    gangs' power, for loops that price nothing)."""
    net = pb.net
    jobs = pb.req.jobs
    speed_rows: dict[Any, int] = {(): 0}
    speeds = [np.asarray(net.default_speed, dtype=np.float64)]
    # Per (gang, utilisation, kind of work): the gang's power at each pair (kW).
    power_rows: dict[tuple[int, float, str], int] = {}
    powers: list[np.ndarray] = []
    rule_rows: dict[tuple[int, rules.Scope, int], int] = {}
    masks: list[np.ndarray] = [np.ones(net.n_sites, dtype=bool)]
    ints: list[tuple[int, ...]] = []
    floats: list[tuple[float, float, float]] = []
    rows: list[int] = []
    job_of_row: list[int] = []
    now = pb.now
    datasets = pb._datasets
    replicas = pb.req.replicas
    site_index = net.site_index
    isfinite = math.isfinite
    for n in order:
        j = jobs[n]
        count, work, util, ds = j.accelerators, j.work_h, j.utilisation, j.datasets
        # What the kernel takes: one gang, valid numbers, at most one dataset (no copies).
        if not (
            type(count) is int
            and count >= 1
            and len(ds) <= 1
            and isfinite(work)
            and work >= 0
            and 0 < util <= 1.0
            and j.deadline_s >= j.earliest_start_s
        ):
            rows.append(-1)
            continue
        home, rrow, size = -1, 0, 0.0
        if ds:
            d = datasets.get(ds[0])
            reps = replicas.get(ds[0]) if d is not None else None
            if (
                d is None
                or d.home_site not in site_index
                # Copies elsewhere than home (the one-job path's several sources); a
                # replica set of only the home site is the same as none (``dataset_info``).
                or (reps and (len(reps) > 1 or d.home_site not in reps))
                or not (isfinite(d.size_gb) and d.size_gb >= 0)
            ):
                rows.append(-1)
                continue
            home, size = site_index[d.home_site], float(d.size_gb)
            scope = rules.effective_scope(d)
            lvl = rules.RULES[d.classification].min_security_level
            key = (home, scope, lvl)
            rrow = rule_rows.get(key, -1)
            if rrow < 0:
                rrow = rule_rows[key] = len(masks)
                masks.append(allowed_sites(net, home, scope, lvl))
        pkey = (count, float(util), str(j.work_kind))
        prow = power_rows.get(pkey, -1)
        if prow < 0:
            if pkey[2] not in WORK_KINDS:
                rows.append(-1)
                continue
            prow = power_rows[pkey] = len(powers)
            if power:
                # The same memo as the job views' (``jobs.JobViews._view``).
                powers.append(
                    memo(
                        net,
                        ("kw", count, util, pkey[2]),
                        lambda c=count, u=util, k=pkey[2]: pair_power_kw(net, c, u, k),
                    )
                )
        srow = 0
        if j.accelerator_speed:
            sk = pb._speed_key(j)
            srow = speed_rows.get(sk, -1)
            if srow < 0:
                srow = speed_rows[sk] = len(speeds)
                speeds.append(pb._speeds(j))
        rows.append(len(ints))
        job_of_row.append(n)
        ints.append(
            (count, max(0, j.earliest_start_s - now), j.deadline_s - now, home, rrow, srow, prow)
        )
        floats.append((float(work), float(util), size))
    return _Inputs(
        np.array(ints, dtype=np.int64).reshape(-1, 7),
        np.array(floats, dtype=np.float64).reshape(-1, 3),
        np.ascontiguousarray(np.stack(speeds)),
        np.ascontiguousarray(np.stack(masks)),
        np.ascontiguousarray(np.stack(powers)) if powers else np.zeros((1, net.n_pairs)),
        rows,
        job_of_row,
    )


def plan(pb: Problem) -> PlanReply:
    # Hundreds of thousands of small acyclic objects (job rows, explanations): the cycle
    # collector would rescan the growing heap over and over (it doubled the time of the
    # loop that describes the placements) and could find nothing to free.
    with _collector_paused():
        return _plan(pb)


def _plan(pb: Problem) -> PlanReply:
    from computenet.engine.policies import greedy_kernel  # numba: imported when needed

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
        x.power,
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
    lists = (placements, deferred, infeasible)
    reason = explain.costs_more()
    rows = x.rows
    # For each position, where its run of kernel jobs ends (their rows are consecutive).
    run_end = [0] * (len(order) + 1)
    run_end[len(order)] = len(order)
    for t in range(len(order) - 1, -1, -1):
        run_end[t] = run_end[t + 1] if rows[t] >= 0 else t
    job_of_row = x.job_of_row
    no_room = _no_room_words(pb)
    i = 0
    while i < len(order):
        if rows[i] < 0:
            decide(pb, order[i], greedy.NAME, greedy.choose, reason, *lists)
            i += 1
            continue
        lo, hi = rows[i], rows[i] + run_end[i] - i
        greedy_kernel.run(lo, hi, x.job_int, x.job_float, *statics, free, out_i, out_f)
        # A job with no start (the same as greedy.choose finds) took no capacity, so its
        # explanation, from its time window alone, can come after the run.
        for r, status in enumerate(out_i[lo:hi, _I_STATUS].tolist(), lo):
            n = job_of_row[r]
            if status == _S_PLACED:
                placed.append(r)
            elif status == _S_OTHER:
                _unplaced(pb, n, deferred, infeasible)
            else:
                j = jobs[n]
                out = no_room(j.id, j.accelerators, int(out_i[r, _I_MASK]), status == _S_DEFER)
                if isinstance(out, Deferral):
                    deferred.append(out)
                else:
                    infeasible.append(out)
        i += hi - lo
    oi, of = out_i.tolist(), out_f.tolist()
    describe = _describer(pb, reason)
    placements.extend(describe(jobs[job_of_row[r]], oi[r], of[r]) for r in placed)
    return reply(pb, greedy.NAME, placements, deferred, infeasible)


def _no_room_words(pb: Problem) -> Callable[[str, int, int, bool], Deferral | Infeasible]:
    """``no_room(job_id, count, mask, wait)``: ``explain.no_room`` for a job whose usable
    pools are the bits of ``mask``, its text worked out once per gang, set and kind (under
    a backlog thousands of jobs per request share a few)."""
    words: dict[int, tuple[str, tuple[str, ...]]] = {}
    said: dict[tuple[int, int, bool], Deferral | Infeasible] = {}
    horizon_end = pb.T * pb.slot

    def no_room(job_id: str, count: int, mask: int, wait: bool) -> Deferral | Infeasible:
        key = (count, mask, wait)
        out = said.get(key)
        if out is None:
            w = words.get(mask)
            if w is None:
                pairs = np.array(
                    [p for p in range(pb.net.n_pairs) if mask >> p & 1], dtype=np.int64
                )
                w = words[mask] = explain.pairs_in_words(pb, pairs)
            out = said[key] = explain.no_room("", count, *w, horizon_end, wait=wait)
        return dataclasses.replace(out, job_id=job_id)  # its reason too

    return no_room


def _unplaced(pb: Problem, n: int, deferred: list[Deferral], infeasible: list[Infeasible]) -> None:
    """Why job ``n``, which the kernel found no start for, got none: what ``decide`` says
    for a job ``greedy.choose`` cannot place (its explanation from the job's time window
    alone, without pricing every start again; under a backlog most of the queue comes
    here at every retry)."""
    v = pb.views[n]
    if isinstance(v, Rejection):
        infeasible.append(Infeasible(pb.req.jobs[n].id, v.constraint, v.reason))
        return
    out = explain.unplaced_by_time(pb, v, pb.time_ok_any(v))
    if isinstance(out, Deferral):
        deferred.append(out)
    else:
        infeasible.append(out)


@contextmanager
def _collector_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _describer(
    pb: Problem, reason: explain.Reason
) -> Callable[[TrainingJob, list[int], list[float]], Placement]:
    """``describe(job, ints, floats)``: the placement the kernel chose for ``job`` (its row
    of ``out_i`` and ``out_f`` as lists), with its breakdown and alternatives. What every
    call reads is bound once: this runs once per placement."""
    net, now, cp = pb.net, pb.now, pb.cp
    site_of_pair = net.pair_site.tolist()
    sites = net.sites
    ids = [s.id for s in sites]
    pair_acc = net.pair_acc
    datasets, site_index = pb._datasets, net.site_index
    when = explain.when
    name = greedy.NAME

    def describe(j: TrainingJob, ii: list[int], ff: list[float]) -> Placement:
        p, so, run = ii[_I_PAIR], ii[_I_SO], ii[_I_RUN]
        value = ff[_F_VALUE]
        s = site_of_pair[p]
        sid = ids[s]
        tcost, carbon, energy_cost = ff[_F_TCOST], ff[_F_CARBON], ff[_F_ENERGY_COST]
        compute = ff[_F_FIXED] - tcost
        obj = energy_cost + compute + tcost + cp * carbon / 1000.0
        bd = Breakdown(ff[_F_KWH], energy_cost, compute, tcost, carbon, obj)
        alts: list[Alternative] = []
        so2 = ii[_I_EARLY_SO]
        if 0 <= so2 < so:
            v2 = ff[_F_EARLY_V]
            why = f"starting {when(so2)}: {reason(v2, value, so2, so)}"
            alts.append(Alternative(sid, now + so2, v2, why))
        for t in range(2):
            q = ii[_I_OTHER_P + t]
            if q < 0 or len(alts) >= 2:
                break
            vo, so2 = ff[_F_OTHER_V + t], ii[_I_OTHER_SO + t]
            alts.append(
                Alternative(ids[site_of_pair[q]], now + so2, vo, reason(vo, value, so2, so))
            )
        if len(alts) < 2 and ii[_I_LB_P] >= 0:
            more = ff[_F_LB_V] - value
            alts.append(explain.costs_at_least(ids[site_of_pair[ii[_I_LB_P]]], more, name))
        d = datasets[j.datasets[0]] if j.datasets else None
        home = site_index[d.home_site] if d is not None else -1
        if ii[_I_RULE_SITE] >= 0 and d is not None:
            rs = sites[ii[_I_RULE_SITE]]
            why_rule = rules.breach(d, rs, sites[home])
            text = (
                f"violates data rule: {why_rule}"
                if why_rule
                else f"dataset {d.id} cannot reach {rs.id} (no bandwidth)"
            )
            alts.append(Alternative(rs.id, None, None, text))
        elif ii[_I_LATE_P] >= 0 and site_of_pair[ii[_I_LATE_P]] != s:
            late = ii[_I_LATE_S] / 3600
            alts.append(
                Alternative(
                    ids[site_of_pair[ii[_I_LATE_P]]], None, None, f"misses deadline by {late:.1f} h"
                )
            )
        transfers: tuple[Transfer, ...] = ()
        if d is not None and home != s:
            end = now + ii[_I_TSEC]
            transfers = (Transfer(d.id, ids[home], sid, d.size_gb, now, end, tcost),)
        start = now + so
        why = explain.placement_reason(name, sid, so, bd)
        return Placement(
            j.id,
            sid,
            pair_acc[p],
            j.accelerators,
            start,
            start + run,
            bd,
            transfers,
            tuple(alts[:3]),
            why,
        )

    return describe
