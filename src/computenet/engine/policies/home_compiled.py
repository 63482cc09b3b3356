"""The policies that keep a job at home (``fifo-home``, ``wait-awhile``) for large requests:
the same decisions and explanations, with the jobs that have no room at home found in one
compiled loop.

Under a backlog most of a large request is jobs with no room at home anywhere in their
window (``base.choose_at_home`` skips pricing them, ``Problem.room_in_window``); asked
again every retry round, their views, room checks and explanations were most of the cost.
Here the kernel (numba, ``home_kernel``) walks the jobs in ``job_order`` from the request's
arrays alone, and stops at the first job that has room (or that it does not take: several
run lengths, several datasets, copies elsewhere, a home site that is down, bad input).
That job goes through the ordinary one-job path (``base.decide``), which may place it and
take capacity, and the kernel goes on from the next job with the capacity as left. A job
with no room takes none, so its explanation (``explain.no_room`` over its home pools) is
the one the one-job path gives, built from the kernel's row.
"""

from __future__ import annotations

import numpy as np

from computenet.engine import explain
from computenet.engine.arrays import memo, one_speed
from computenet.engine.policies.base import (
    Chooser,
    decide,
    home_rows,
    job_order,
    reply,
)
from computenet.engine.problem import Problem, Rejection
from computenet.engine.types import Deferral, Infeasible, Placement, PlanReply

MIN_JOBS = 32
"""Requests with fewer jobs take the one-job path for every job."""

# Kernel output columns and statuses (no room: wait past the horizon; no room in time for
# the deadline; no start by time alone or too many pools: the one-job explanation).
_H_STATUS, _H_MASK = 0, 1
_N_OUT = 2
_S_DEFER, _S_NO_ROOM, _S_OTHER = 1, 2, 3


def usable(pb: Problem) -> bool:
    # The loop does not read the power ledger: requests with power caps take the one-job
    # path, which checks it (``engine.power``).
    return len(pb.req.jobs) >= MIN_JOBS and pb.power_free is None


def run_home(pb: Problem, policy: str, choose: Chooser, reason: explain.Reason) -> PlanReply:
    """``base.run_sequential(pb, policy, choose, reason)`` for a ``choose`` built on
    ``base.choose_at_home``: the same reply."""
    from computenet.engine.policies import greedy_compiled, home_kernel

    net = pb.net
    jobs = pb.req.jobs
    order = sorted(range(len(jobs)), key=lambda n: job_order(jobs[n]))
    x = greedy_compiled._inputs(pb, order, power=False)
    out = np.full((len(x.job_int), _N_OUT), -1, dtype=np.int64)
    single = memo(net, ("one-speed",), lambda: one_speed(net.default_speed)) > 0
    down_pair = memo(
        net, ("down-pair", frozenset(pb.req.down_sites)), lambda: pb.down[net.pair_site]
    )
    statics = (
        net.pair_site,
        net.cap,
        np.ascontiguousarray(down_pair),
        np.ascontiguousarray(pb.down),
        np.ascontiguousarray(pb.reserve),
        x.speed,
        x.allowed,
        np.ascontiguousarray(net.s_per_gb),
        bool(single),
        int(pb.slot),
        int(pb.T),
    )
    free = pb.free
    if not free.flags.c_contiguous:
        pb.free = free = np.ascontiguousarray(free)
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    lists = (placements, deferred, infeasible)
    no_room = greedy_compiled._no_room_words(pb)
    rows = x.rows
    # For each position, where its run of kernel jobs ends (their rows are consecutive).
    run_end = [0] * (len(order) + 1)
    run_end[len(order)] = len(order)
    for t in range(len(order) - 1, -1, -1):
        run_end[t] = run_end[t + 1] if rows[t] >= 0 else t
    job_of_row = x.job_of_row
    i = 0
    while i < len(order):
        if rows[i] < 0:
            decide(pb, order[i], policy, choose, reason, *lists)
            i += 1
            continue
        lo, hi = rows[i], rows[i] + run_end[i] - i
        stop = home_kernel.first_with_room(lo, hi, x.job_int, x.job_float, *statics, free, out)
        for r, (status, mask) in enumerate(out[lo:stop].tolist(), lo):
            n = job_of_row[r]
            if status == _S_OTHER:
                _unplaced(pb, n, deferred, infeasible)
                continue
            j = jobs[n]
            res = no_room(j.id, j.accelerators, mask, status == _S_DEFER)
            if isinstance(res, Deferral):
                deferred.append(res)
            else:
                infeasible.append(res)
        i += stop - lo
        if stop < hi:  # room at home, or a job the kernel does not take: the one-job path
            decide(pb, job_of_row[stop], policy, choose, reason, *lists)
            i += 1
    return reply(pb, policy, placements, deferred, infeasible)


def _unplaced(pb: Problem, n: int, deferred: list[Deferral], infeasible: list[Infeasible]) -> None:
    """What ``base.choose_at_home`` says for job ``n``, which has no room at home: its
    explanation from the job's time window at its home rows."""
    v = pb.views[n]
    if isinstance(v, Rejection):  # not reached: the kernel leaves rejected jobs to decide()
        infeasible.append(Infeasible(pb.req.jobs[n].id, v.constraint, v.reason))
        return
    rows, _ = home_rows(pb, v)
    out = explain.unplaced_by_time(pb, v, pb.time_ok_any(v, rows), rows)
    if isinstance(out, Deferral):
        deferred.append(out)
    else:
        infeasible.append(out)
