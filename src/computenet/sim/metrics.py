"""Figures of one simulation run: cost, energy, carbon, deadlines, waits, utilisation, data
moved, rule violations, and the ratio to the engine's lower bound.

Every figure is computed from what the simulated executor did (``SimResult``), charged with
the true signals; nothing is copied from the engine's own estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from computenet.engine.types import PlanReply, PlanRequest
from computenet.model import Network
from computenet.sim.simulator import SimResult
from computenet.sim.workload import Workload


@dataclass(frozen=True)
class PolicyMetrics:
    """One policy's figures. Money in CNY, energy in kWh, carbon in kg CO2, times in hours.

    ``deadline_misses`` counts jobs that finished after their deadline plus jobs that never
    ran (``rejected``). ``objective_cny`` = cost + carbon price x tonnes.
    ``ratio_to_bound`` = ``objective_cny / lower_bound_cny`` (>= 1 when the bound holds).
    """

    policy: str
    jobs: int
    completed: int
    rejected: int
    cost_cny: float
    energy_kwh: float
    carbon_kg: float
    objective_cny: float
    carbon_price_cny_per_t: float
    deadline_misses: int
    late: int
    violations: int
    violations_by_kind: dict[str, int]
    mean_wait_h: float
    p99_wait_h: float
    mean_completion_h: float
    p99_completion_h: float
    utilisation: dict[str, float]
    data_moved_gb: float
    transfer_cost_cny: float
    preemptions: int
    lost_accelerator_h: float
    cut_off_jobs: int
    lower_bound_cny: float | None
    ratio_to_bound: float | None
    events: int
    events_per_s: float
    plan_calls: int
    wall_s: float
    forecast_mode: str = "perfect"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 6)
        d["utilisation"] = {k: round(v, 6) for k, v in self.utilisation.items()}
        return d


def _mean_p99(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(np.percentile(a, 99))


def utilisation(result: SimResult) -> dict[str, float]:
    """Share of each site's accelerator-hours used over the run (from first arrival to the
    last finish)."""
    span = max(1, result.end_s - result.start_s)
    used: dict[str, float] = {s.id: 0.0 for s in result.network.sites}
    for seg in result.segments:
        used[seg.site_id] += seg.count * (seg.end_s - seg.start_s)
    return {
        s.id: (used[s.id] / (s.accelerators_total * span) if s.accelerators_total else 0.0)
        for s in result.network.sites
    }


def summarise(result: SimResult, lower_bound_cny: float | None = None) -> PolicyMetrics:
    """The figures of one run."""
    out = result.outcomes
    price = result.config.carbon_price_cny_per_t
    cost = sum(o.cost_cny for o in out)
    carbon = sum(o.carbon_kg for o in out)
    objective = cost + price * carbon / 1000.0
    waits = [o.wait_s / 3600.0 for o in out if o.wait_s is not None]
    comps = [o.completion_s / 3600.0 for o in out if o.completion_s is not None]
    mw, pw = _mean_p99(waits)
    mc, pc = _mean_p99(comps)
    rejected = sum(1 for o in out if o.state == "rejected")
    late = sum(1 for o in out if o.late)
    kinds: dict[str, int] = {}
    for v in result.violations:
        kinds[v.kind] = kinds.get(v.kind, 0) + 1
    ratio = None
    if lower_bound_cny is not None and lower_bound_cny > 0:
        ratio = objective / lower_bound_cny
    notes = []
    unfinished = sum(1 for o in out if o.state not in ("done", "rejected"))
    if unfinished:
        notes.append(f"{unfinished} jobs had not finished when the simulation ended")
    return PolicyMetrics(
        policy=result.policy,
        jobs=len(out),
        completed=sum(1 for o in out if o.state == "done"),
        rejected=rejected,
        cost_cny=cost,
        energy_kwh=sum(o.energy_kwh for o in out),
        carbon_kg=carbon,
        objective_cny=objective,
        carbon_price_cny_per_t=price,
        deadline_misses=late + rejected,
        late=late,
        violations=len(result.violations),
        violations_by_kind=dict(sorted(kinds.items())),
        mean_wait_h=mw,
        p99_wait_h=pw,
        mean_completion_h=mc,
        p99_completion_h=pc,
        utilisation=utilisation(result),
        data_moved_gb=sum(t.size_gb for t in result.transfers),
        transfer_cost_cny=sum(t.cost_cny for t in result.transfers),
        preemptions=sum(o.preemptions for o in out),
        lost_accelerator_h=sum(o.lost_accelerator_h for o in out),
        cut_off_jobs=sum(1 for o in out if o.cut_off),
        lower_bound_cny=lower_bound_cny,
        ratio_to_bound=ratio,
        events=result.events,
        events_per_s=result.events / result.wall_s if result.wall_s > 0 else 0.0,
        plan_calls=result.plan_calls,
        wall_s=result.wall_s,
        forecast_mode=result.config.forecast_mode,
        notes=notes,
    )


def lower_bound(
    network: Network,
    workload: Workload,
    planner: Callable[[PlanRequest], PlanReply],
    *,
    carbon_price_cny_per_t: float,
    slot_s: int = 3600,
    chunk_jobs: int = 400,
    max_jobs: int = 20_000,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[float | None, str]:
    """A proven lower bound on the objective (CNY) of any schedule of the whole workload,
    and a note saying how it was obtained.

    The engine's policy ``bound`` gives the LP relaxation of the full-horizon problem with
    perfect foresight. One LP over thousands of jobs is too large, so the jobs are cut, in
    arrival order, into chunks of ``chunk_jobs`` and the chunk bounds are added. The sum is
    still a lower bound: the objective is a sum over jobs, and each chunk's LP sees the
    whole capacity, so it can only do better for that chunk than any schedule of all jobs
    does. ``None`` when there are more than ``max_jobs`` jobs or the engine gives no bound.
    """
    jobs = sorted(workload.jobs, key=lambda j: (j.earliest_start_s, j.id))
    if not jobs:
        return None, "no jobs"
    if len(jobs) > max_jobs:
        return None, f"lower bound not computed: {len(jobs)} jobs > {max_jobs}"
    ds = {d.id: d for d in workload.datasets}
    total = 0.0
    chunks = 0
    for k in range(0, len(jobs), chunk_jobs):
        part = tuple(jobs[k : k + chunk_jobs])
        start = part[0].earliest_start_s - part[0].earliest_start_s % slot_s
        end = max(j.deadline_s for j in part)
        slots = max(1, -(-(end - start) // slot_s))
        need = dict.fromkeys(d for j in part for d in j.datasets)
        req = PlanRequest(
            now_s=start,
            network=network,
            jobs=part,
            policy="bound",
            datasets=tuple(ds[d] for d in need if d in ds),
            carbon_price_cny_per_t=carbon_price_cny_per_t,
            slot_s=slot_s,
            horizon_slots=int(slots),
            # The chunk's whole span, deliberately past the default look-ahead: a bound
            # must see every start its jobs could take (the chunk keeps the size bounded).
            lookahead_s=int(slots) * slot_s,
        )
        try:
            reply = planner(req)
        except Exception as exc:  # the bound is a bonus figure; a failure must not sink a run
            return None, f"lower bound not computed: {type(exc).__name__}: {exc}"
        if reply.lower_bound_cny is None:
            return None, "the engine gave no lower bound"
        total += float(reply.lower_bound_cny)
        chunks += 1
        if progress is not None:
            progress(min(k + chunk_jobs, len(jobs)), len(jobs))
    how = (
        "LP relaxation with perfect foresight (engine policy 'bound')"
        if chunks == 1
        else f"sum of {chunks} LP relaxations over chunks of {chunk_jobs} jobs in arrival order "
        "(each with the whole capacity: still a lower bound)"
    )
    return total, how + "; jobs that ran late are outside the bound's feasible set"


@dataclass(frozen=True)
class MovedPlacement:
    """A job whose placement changed its carbon most against running at its home site
    right away (``saved_kg`` > 0 means less carbon)."""

    job_id: str
    accelerators: int
    home_site: str
    site_id: str
    arrival_s: int
    start_s: int
    run_h: float
    carbon_kg: float
    home_now_carbon_kg: float

    @property
    def saved_kg(self) -> float:
        return self.home_now_carbon_kg - self.carbon_kg


def moved_placements(result: SimResult, top: int = 10) -> list[MovedPlacement]:
    """The ``top`` completed jobs whose placement saved the most carbon against the
    counterfactual "home site, start on arrival, same energy at the home PUE", charged with
    the true carbon signal."""
    sites = {s.id: s for s in result.network.sites}
    run_s: dict[str, int] = {}
    for seg in result.segments:
        if seg.completed:
            run_s[seg.job_id] = seg.end_s - seg.start_s
    rows = []
    for o in result.outcomes:
        if o.state != "done" or o.site_id is None or o.first_start_s is None:
            continue
        r = run_s.get(o.job_id, 0)
        if r <= 0:
            continue
        home, here = sites[o.home_site], sites[o.site_id]
        energy_home = o.energy_kwh * home.pue / here.pue
        c_home = energy_home * home.carbon.mean(o.arrival_s, o.arrival_s + r) / 1000.0
        rows.append(
            MovedPlacement(
                o.job_id,
                o.accelerators,
                o.home_site,
                o.site_id,
                o.arrival_s,
                o.first_start_s,
                r / 3600.0,
                o.carbon_kg,
                c_home,
            )
        )
    rows.sort(key=lambda m: (-m.saved_kg, m.job_id))
    return rows[:top]
