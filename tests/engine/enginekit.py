"""Builders for engine tests: small networks with hourly signals, jobs, datasets, requests,
and independent checks of a reply (capacity second by second, data rules with the
simulator's own checker, deadlines)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from computenet.engine.types import Allocation, PlanReply, PlanRequest
from computenet.model import (
    Classification,
    Dataset,
    Network,
    TrainingJob,
)
from computenet.sim.rules import reply_breaches
from netkit import A100, H100, T0, H, Links, network, sig, site  # noqa: F401 (re-exported)


def job(
    jid: str,
    work_h: float,
    gpus: int = 1,
    *,
    start_h: float = 0.0,
    deadline_h: float = 48.0,
    datasets: tuple[str, ...] | None = None,
    speeds: dict[str, float] | None = None,
    priority: int = 0,
) -> TrainingJob:
    return TrainingJob(
        id=jid,
        accelerators=gpus,
        work_h=work_h,
        earliest_start_s=T0 + int(start_h * H),
        deadline_s=T0 + int(deadline_h * H),
        datasets=(f"ds-{jid}",) if datasets is None else datasets,
        accelerator_speed=speeds or {},
        priority=priority,
        utilisation=1.0,
    )


def dataset(
    did: str,
    home: str,
    cls: Classification = Classification.PUBLIC,
    *,
    size_gb: float = 10.0,
    individuals: int = 0,
    sensitive: bool = False,
    cleared: bool = False,
) -> Dataset:
    return Dataset(did, size_gb, home, cls, individuals, sensitive, cleared)


def request(
    net: Network,
    jobs: Sequence[TrainingJob],
    datasets: Sequence[Dataset] = (),
    *,
    policy: str = "greedy",
    horizon: int = 48,
    carbon_price: float = 1000.0,
    running: Sequence[Allocation] = (),
    down: frozenset[str] = frozenset(),
    now_s: int = T0,
) -> PlanRequest:
    if not datasets:
        datasets = [dataset(d, net.sites[0].id) for j in jobs for d in j.datasets]
    return PlanRequest(
        now_s=now_s,
        network=net,
        jobs=tuple(jobs),
        policy=policy,
        datasets=tuple(datasets),
        running=tuple(running),
        carbon_price_cny_per_t=carbon_price,
        horizon_slots=horizon,
        down_sites=down,
    )


def check_reply(req: PlanRequest, rep: PlanReply) -> None:
    """Assert the reply keeps every hard constraint, checked independently of the engine."""
    jobs = {j.id: j for j in req.jobs}
    seen = [p.job_id for p in rep.placements] + [d.job_id for d in rep.deferred]
    seen += [i.job_id for i in rep.infeasible]
    assert sorted(seen) == sorted(jobs), "every job is answered exactly once"
    breaches = reply_breaches(req, rep)
    assert not breaches, breaches
    total = sum(p.breakdown.objective_cny for p in rep.placements)
    assert math.isclose(rep.objective_cny, total, rel_tol=1e-9, abs_tol=1e-9)
