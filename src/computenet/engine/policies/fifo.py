"""``fifo``: the true first-in-first-out baseline — each job starts at its data's home site
the moment it may start (its arrival, or when its data is there), to the second, when the
home pool has room for its whole run; otherwise it waits for capacity (the simulator asks
again whenever a job finishes). Price and carbon play no part.

Unlike ``fifo-home``, which picks among the engine's quarter-hour start options (each slot
offers the cheaper of its start- and end-aligned starts, so a job could start up to 899 s
after its arrival and the baseline moved with the carbon price), ``fifo`` checks the
capacity ledger itself over the exact run ``[start, start + run)``: no slot rounding.

If the home site can never run the job (no accepted accelerator type there), every site is
considered and the first in network order with room now takes it; a home site that is down
makes the job wait. Deadlines do not hold it back: a job that cannot meet its deadline
starts anyway (it is late), as a FIFO queue would run it. Power caps are not taken.
"""

from __future__ import annotations

from computenet.engine import explain
from computenet.engine.capacity import CapacityLedger
from computenet.engine.policies.base import home_rows, job_order, reply
from computenet.engine.problem import Problem, Rejection
from computenet.engine.types import Deferral, Infeasible, Placement, PlanReply

NAME = "fifo"


def plan(pb: Problem) -> PlanReply:
    req = pb.req
    ledger = req.capacity if req.capacity is not None else CapacityLedger(req.running)
    # What this request has placed so far: (site, accelerator) -> [(start, end, count)].
    mine: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    order = sorted(range(len(req.jobs)), key=lambda n: job_order(req.jobs[n]))
    for n in order:
        v = pb.views[n]
        if isinstance(v, Rejection):
            infeasible.append(Infeasible(req.jobs[n].id, v.constraint, v.reason))
            continue
        rows, note = home_rows(pb, v)
        if rows is None:
            infeasible.append(Infeasible(v.job.id, "down", note))
            continue
        placed = False
        for r in rows:
            i = int(r)
            p = int(v.pairs[i])
            s = int(pb.net.pair_site[p])
            if pb.down[s]:
                continue
            site, acc = pb.net.sites[s].id, pb.acc_of(v, i)
            start = pb.now + int(v.ready[i])
            end = start + int(v.run_s[i])
            # Conservative within the request: every earlier placement here that overlaps
            # the run counts as if it overlapped the others too.
            own = sum(c for a, b, c in mine.get((site, acc), ()) if a < end and b > start)
            if ledger.peak(site, acc, start, end) + own + v.count > int(pb.net.cap[p]):
                continue
            so = start - pb.now
            bd = pb.breakdown(v, i, so)
            mine.setdefault((site, acc), []).append((start, end, v.count))
            placements.append(
                Placement(
                    v.job.id,
                    site,
                    acc,
                    v.count,
                    start,
                    end,
                    bd,
                    pb.transfers(v, i),
                    (),
                    explain.placement_reason(NAME, site, so, bd, note),
                )
            )
            placed = True
            break
        if not placed:
            where = pb.net.sites[int(pb.net.pair_site[int(v.pairs[int(rows[0])])])].id
            deferred.append(
                Deferral(v.job.id, f"{NAME}: no room at {where} now; waits for capacity")
            )
    return reply(pb, NAME, placements, deferred, infeasible)
