"""Pause and resume: what ``suspend-resume`` and ``ecovisor`` share.

A checkpointable job at its home site may run in several stretches (``Placement.segments``)
within its deadline, each made of whole request slots (an hour when the request's slots are
hours), pausing in between: it writes a checkpoint at the end of every stretch but the last
(``PlanRequest.checkpoint_s``) and reads it back at the start of every one but the first
(``restore_s``), at full power and rent, so each pause costs time, energy, carbon and money
that the plan counts. A policy supplies ``pick(values, free, need_s, ...)``: which slots to
run in. The plan is kept only if its objective (energy, rent, carbon at the carbon price,
overheads included) beats the best single window (``wait-awhile``'s choice), so a split is
never worse than not splitting under the policy's own measure. Jobs that cannot checkpoint,
cannot run at home, or find no split, are placed as ``wait-awhile`` places them.

Segments stay at the job's home site, where its data is: they never move data, so they
never meet a data rule (splitting across sites is not done here).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from computenet.engine import explain
from computenet.engine.policies import wait_awhile
from computenet.engine.policies.base import decide, home_rows, job_order, reply
from computenet.engine.problem import FArray, IntArray, JobView, Problem, Rejection
from computenet.engine.types import (
    Breakdown,
    Deferral,
    Infeasible,
    Placement,
    PlanReply,
)

Picker = Callable[[FArray, IntArray, int, int], list[int] | None]
"""``pick(rates, lengths_s, need_s, overhead_s)``: the blocks to run in (chronological
indices), given each block's objective per second (``inf``: no room) and length, enough for
``need_s`` of work plus ``overhead_s`` for each pause; ``None`` when they cannot hold it."""


def merged(blocks: list[int]) -> list[tuple[int, int]]:
    """Consecutive block indices merged into ``[first, last + 1)`` runs."""
    out: list[tuple[int, int]] = []
    for b in sorted(blocks):
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + 1)
        else:
            out.append((b, b + 1))
    return out


def enough(blocks: list[int], lengths: IntArray, need_s: int, overhead_s: int) -> bool:
    """Whether ``blocks`` hold ``need_s`` of work once each pause's overhead is paid."""
    runs = merged(blocks)
    total = int(sum(int(lengths[b]) for b in blocks))
    return total - (len(runs) - 1) * overhead_s >= need_s


def plan_with(pb: Problem, name: str, pick: Picker) -> PlanReply:
    req = pb.req
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    for n in sorted(range(len(req.jobs)), key=lambda n: job_order(req.jobs[n])):
        v = pb.views[n]
        if not isinstance(v, Rejection) and v.job.checkpointable:
            p = _split(pb, v, name, pick)
            if p is not None:
                placements.append(p)
                continue
        decide(
            pb,
            n,
            name,
            wait_awhile.choose,
            explain.costs_more(),
            placements,
            deferred,
            infeasible,
        )
    return reply(pb, name, placements, deferred, infeasible)


def _cum(row: FArray, slot_h: float) -> FArray:
    out = np.zeros(row.size + 1)
    np.cumsum(row * slot_h, out=out[1:])
    return out


def _over(cum: FArray, slot: int, a: int, b: int) -> float:
    """Integral of a per-slot rate (prefix sums ``cum``) over seconds ``[a, b)``."""
    xs = np.arange(cum.size, dtype=np.float64)
    return float(np.interp(b / slot, xs, cum) - np.interp(a / slot, xs, cum))


def _split(pb: Problem, v: JobView, name: str, pick: Picker) -> Placement | None:
    rows, _ = home_rows(pb, v)
    if rows is None or len(rows) == 0:
        return None
    req = pb.req
    overhead = int(req.checkpoint_s) + int(req.restore_s)
    best: tuple[float, Placement, int, int, list[tuple[int, int]]] | None = None
    for r in rows:
        i = int(r)
        p = int(v.pairs[i])
        s = int(pb.net.pair_site[p])
        if pb.down[s] or s != (v.datasets[0].home if v.datasets else s):
            continue
        run_s = int(v.run_s[i])
        r0 = int(v.ready[i])
        limit = min(int(v.deadline_off), min(pb.T, pb.T_ext) * pb.slot)
        # Blocks: from the earliest start to the next whole request slot of the clock
        # (hours), then whole slots, up to the deadline or the horizon.
        step = int(req.slot_s)
        first_edge = (pb.now + r0) // step * step + step - pb.now
        edges = [r0, *range(first_edge, limit + 1, step)]
        if len(edges) < 3:
            continue
        lengths: IntArray = np.asarray(np.diff(np.array(edges, dtype=np.int64)), dtype=np.int64)
        kwh_h = float(v.kw[i]) * float(pb.net.pue[s])
        rent_h = (float(v.fixed[i]) - float(v.transfer_cny[i])) / max(run_s / 3600.0, 1e-12)
        price, carbon = pb.price[s], pb.carbon[s]
        pc, cc = _cum(price, pb.slot_h), _cum(carbon, pb.slot_h)
        rates = np.full(lengths.size, np.inf)
        for b in range(lengths.size):
            a, z = edges[b], edges[b + 1]
            k0, k1 = a // pb.slot, -(-z // pb.slot)
            if pb.free[p, k0:k1].min() >= v.count:
                cny = _over(pc, pb.slot, a, z) + pb.cp * _over(cc, pb.slot, a, z) / 1e6
                rates[b] = cny / (z - a)
        chosen = pick(rates, lengths, run_s, overhead)
        if not chosen:
            continue
        runs = [(edges[a], edges[z]) for a, z in merged(chosen)]
        if len(runs) < 2:
            continue  # one stretch: the single-window choice below covers it
        # Trim the last stretch to the work left (it ends when the work is done).
        work = sum(z - a for a, z in runs) - (len(runs) - 1) * overhead
        a_last, z_last = runs[-1]
        runs[-1] = (a_last, z_last - min(work - run_s, z_last - a_last - 1))
        wall = sum(z - a for a, z in runs)
        e_cost = kwh_h * sum(_over(pc, pb.slot, a, z) for a, z in runs)
        kg = kwh_h * sum(_over(cc, pb.slot, a, z) for a, z in runs) / 1000.0
        rent = rent_h * wall / 3600.0
        transfer = float(v.transfer_cny[i])
        obj = e_cost + rent + transfer + pb.cp * kg / 1000.0
        bd = Breakdown(kwh_h * wall / 3600.0, e_cost, rent, transfer, kg, obj)
        if best is None or obj < best[0]:
            site = pb.net.sites[s].id
            reason = explain.placement_reason(
                name, site, runs[0][0], bd, f"{len(runs)} stretches, {len(runs) - 1} pauses; "
            )
            segs = tuple((pb.now + a, pb.now + z) for a, z in runs)
            pl = Placement(
                v.job.id,
                site,
                pb.acc_of(v, i),
                v.count,
                segs[0][0],
                segs[-1][1],
                bd,
                (),
                (),
                reason,
                segments=segs,
            )
            best = (obj, pl, p, i, runs)
    if best is None:
        return None
    obj, pl, p, i, runs = best
    # Keep the split only if it beats the best single window under the same measure.
    single = wait_awhile.choose(pb, v)
    if single.pick is not None and single.pick.value <= obj:
        return None
    for a, z in runs:
        k0, k1 = a // pb.slot, -(-z // pb.slot)
        pb.commit(p, k0, k1 - k0, v.count)  # whole fine slots, as ``free`` counts them
    return pl
