"""Builders for simulator tests: small networks and a transparent reference planner.

``home_first_planner`` is deliberately simple so golden outcomes can be worked out by hand:
each job starts at the earliest slot (slots counted from ``now_s``) at which its gang fits at
some site, ties going to the home site and then to site ids in order; it never looks at
prices or carbon.
"""

from __future__ import annotations

import math

import netkit
from computenet.engine.types import (
    Allocation,
    Breakdown,
    Deferral,
    Infeasible,
    Placement,
    PlanReply,
    PlanRequest,
)
from computenet.model import (
    Classification,
    Dataset,
    Jurisdiction,
    Network,
    Site,
    TrainingJob,
)
from netkit import A100, T0


def site(
    sid: str,
    capacity: int,
    *,
    price: float | list[float] = 0.5,
    carbon: float | list[float] = 500.0,
    jurisdiction: Jurisdiction = Jurisdiction.MAINLAND,
    pue: float = 1.0,
) -> Site:
    """A site with ``capacity`` A100s."""
    return netkit.site(
        sid, capacity, price=price, carbon=carbon, jurisdiction=jurisdiction, pue=pue
    )


def network(*sites: Site) -> Network:
    return netkit.network(*sites, accelerators=(A100,))


def job(
    jid: str,
    arrival_h: float,
    work_h: float,
    gpus: int = 1,
    *,
    deadline_h: float = 1000.0,
    checkpointable: bool = False,
    interval_s: int = 3600,
    util: float = 1.0,
) -> TrainingJob:
    arrival = T0 + int(arrival_h * 3600)
    return TrainingJob(
        id=jid,
        accelerators=gpus,
        work_h=work_h,
        earliest_start_s=arrival,
        deadline_s=T0 + int(deadline_h * 3600),
        checkpointable=checkpointable,
        checkpoint_interval_s=interval_s,
        datasets=(f"ds-{jid}",),
        utilisation=util,
        submitted_s=arrival,
    )


def dataset(jid: str, home: str, cls: Classification = Classification.GENERAL) -> Dataset:
    return Dataset(id=f"ds-{jid}", size_gb=1.0, home_site=home, classification=cls)


def _free(allocs: list[Allocation], site_id: str, cap: int, start: int, end: int) -> int:
    used = 0
    points = sorted({start} | {a.start_s for a in allocs if start < a.start_s < end})
    for t in points:
        level = sum(a.count for a in allocs if a.site_id == site_id and a.start_s <= t < a.end_s)
        used = max(used, level)
    return cap - used


def home_first_planner(req: PlanRequest) -> PlanReply:
    homes = {d.id: d.home_site for d in req.datasets}
    allocs = list(req.running_allocations())
    placements, deferred, infeasible = [], [], []
    for j in req.jobs:
        home = homes.get(j.datasets[0]) if j.datasets else None
        order = ([home] if home else []) + sorted(s.id for s in req.network.sites if s.id != home)
        run_s = math.ceil(j.work_h * 3600)
        best = None
        for rank, sid in enumerate(order):
            if sid in req.down_sites:
                continue
            cap = req.network.site(sid).capacity("A100")
            if cap < j.accelerators:
                continue
            t = max(req.now_s, j.earliest_start_s)
            t = -(-(t - req.now_s) // req.slot_s) * req.slot_s + req.now_s
            for _ in range(req.horizon_slots):
                if _free(allocs, sid, cap, t, t + run_s) >= j.accelerators:
                    if best is None or (t, rank) < (best[1], best[2]):
                        best = (sid, t, rank)
                    break
                t += req.slot_s
        if best is None:
            deferred.append(Deferral(j.id, "no capacity in the horizon"))
            continue
        sid, t, _ = best
        if t + run_s > j.deadline_s:
            infeasible.append(Infeasible(j.id, "deadline", "cannot finish in time"))
            continue
        allocs.append(Allocation(j.id, sid, "A100", j.accelerators, t, t + run_s))
        placements.append(
            Placement(j.id, sid, "A100", j.accelerators, t, t + run_s, Breakdown(0, 0, 0, 0, 0, 0))
        )
    return PlanReply(req.policy, tuple(placements), tuple(deferred), tuple(infeasible))
