"""``plan_inference(network, request) -> InferencePlan``: replicas per site and hour, the
regions each serves, and why. Pure: time comes in the request, no clock, no I/O."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from computenet.engine.inference.policies import Costs, costs_for
from computenet.engine.inference.problem import Problem, build_problem
from computenet.engine.inference.service import InferenceRequest
from computenet.engine.inference.solvers import IntArray, Solution, greedy, lp_bound, milp_solve
from computenet.engine.reasons import Code, Reason, Role, reason
from computenet.errors import InputError
from computenet.model import Network

MILP_MAX_VARIABLES = 4_000
"""``auto`` uses the exact MILP up to this many variables, the heuristic beyond."""
MILP_HARD_LIMIT = 40_000
"""``milp`` asked for explicitly is refused beyond this many variables (minutes, not seconds)."""
LP_BOUND_MAX_VARIABLES = 100_000
"""Up to this many variables the heuristic's gap is measured against the full-horizon LP
relaxation (HiGHS, seconds); beyond, against the relaxed bound of ``solvers.relaxed_bound``
(the national benchmark solves the LP apart, after its timing)."""
METHODS = ("auto", "milp", "heuristic")
ALTERNATIVES_SHOWN = 3


@dataclass(frozen=True)
class ReplicaPlacement:
    """Replicas of one accelerator type at one site, hour by hour, with the regions they
    serve and why they are there."""

    site_id: str
    accelerator: str
    replicas_by_hour: tuple[int, ...]
    regions: tuple[str, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class InferencePlan:
    policy: str
    problem: Problem
    solution: Solution
    placements: tuple[ReplicaPlacement, ...]
    region_reasons: dict[str, tuple[Reason, ...]]
    headroom: float

    @property
    def replicas(self) -> IntArray:
        return self.solution.replicas

    @property
    def replica_hours(self) -> int:
        return int(self.solution.replicas.sum())


def initial_vector(p: Problem, request: InferenceRequest) -> IntArray:
    init = np.zeros(len(p.slots), dtype=np.int64)
    index = {(s.site_id, s.accelerator): j for j, s in enumerate(p.slots)}
    for site_id, acc, count in request.initial_replicas:
        j = index.get((site_id, acc))
        if j is None:
            raise InputError(
                f"no slot {site_id}/{acc} holds this service",
                where="initial_replicas",
                fix="name a site and accelerator type that can hold a replica",
            )
        init[j] = count
    return init


def solve(p: Problem, c: Costs, method: str, initial: IntArray) -> Solution:
    if method not in METHODS:
        raise InputError(f"method {method!r} is unknown", where="method", fix=" | ".join(METHODS))
    size = (int(c.mask.sum()) + 2 * len(p.slots) + len(p.region_ids)) * p.hours
    if method == "milp" and size > MILP_HARD_LIMIT:
        raise InputError(
            f"the exact MILP would have {size:,} variables, more than {MILP_HARD_LIMIT:,}",
            where="method",
            fix="use method auto or heuristic (its gap to the LP bound is reported)",
        )
    if method == "milp" or (method == "auto" and size <= MILP_MAX_VARIABLES):
        return milp_solve(p, c, initial)
    sol = greedy(p, c, initial)
    if size > LP_BOUND_MAX_VARIABLES:
        return sol
    bound = min(sol.objective, lp_bound(p, c, initial))
    return dataclasses.replace(sol, bound=bound, bound_kind="LP relaxation")


def plan_problem(p: Problem, request: InferenceRequest) -> InferencePlan:
    """Place replicas for an already built problem (see ``plan_inference``)."""
    c = costs_for(request.policy, p, request.carbon_price_cny_per_t)
    sol = solve(p, c, request.method, initial_vector(p, request))
    return InferencePlan(
        policy=request.policy,
        problem=p,
        solution=sol,
        placements=_placements(p, c, sol, request),
        region_reasons=_region_reasons(p, c, sol),
        headroom=p.headroom,
    )


def plan_inference(net: Network, request: InferenceRequest) -> InferencePlan:
    """Replicas per site and hour serving every region within its target at least cost."""
    return plan_problem(build_problem(net, request), request)


def _placements(
    p: Problem, c: Costs, sol: Solution, request: InferenceRequest
) -> tuple[ReplicaPlacement, ...]:
    out = []
    flow_by_slot = sol.flow_rps.sum(axis=2)  # R x J
    for j, slot in enumerate(p.slots):
        hours = sol.replicas[j]
        if not hours.any():
            continue
        served = tuple(p.region_ids[r] for r in np.flatnonzero(flow_by_slot[:, j] > 1e-9))
        kwh = float(
            hours.sum() * p.kwh_replica_h[j] + flow_by_slot[:, j].sum() * p.kwh_per_rps_h[j]
        )
        mean_price = float(np.mean(p.price[j]))
        mean_carbon = float(np.mean(p.carbon[j]))
        placed = reason(
            Code.COST,
            Role.PLACED,
            policy=request.policy,
            site_id=slot.site_id,
            accelerator=slot.accelerator,
            objective_cny=kwh * (mean_price + request.carbon_price_cny_per_t * mean_carbon / 1e6),
            carbon_kg=kwh * mean_carbon / 1000.0,
            cost_cny=kwh * mean_price,
            replica_hours=int(hours.sum()),
            regions=served,
            profile=slot.profile.kind,
            detail=(
                f"{request.policy}: {slot.site_id} ({slot.accelerator}), "
                f"{int(hours.max())} replicas at most, serving {len(served)} regions within "
                f"{p.ttft_target_ms:g} ms p99 TTFT; modelled {kwh:.1f} kWh, "
                f"{kwh * mean_price:,.2f} CNY, {kwh * mean_carbon / 1000:,.2f} kg CO2"
            ),
        )
        out.append(
            ReplicaPlacement(
                slot.site_id, slot.accelerator, tuple(int(h) for h in hours), served, (placed,)
            )
        )
    return tuple(out)


def _unreachable(p: Problem, r: int) -> Reason:
    """Why a region with demand got no replica: the closest allowed slot by time to first
    token is still over the target (or the data rule leaves none)."""
    rid = p.region_ids[r]
    allowed = np.flatnonzero(p.allowed[r])
    if not len(allowed):
        return reason(
            Code.DATA_RULE,
            Role.INFEASIBLE,
            region_id=rid,
            home_jurisdiction=p.region_jurisdictions[r],
            detail=f"no site in {p.region_jurisdictions[r]} can hold a replica for {rid}",
        )
    j = int(allowed[np.argmin(p.ttft_ms[r, allowed])])
    return reason(
        Code.LATENCY,
        Role.INFEASIBLE,
        site_id=p.slots[j].site_id,
        region_id=rid,
        rtt_ms=float(p.rtt_ms[r, j]),
        limit_ms=float(p.latency_budget_ms[j]),
        ttft_ms=float(p.ttft_ms[r, j]),
        accelerator=p.slots[j].accelerator,
    )


def _region_reasons(p: Problem, c: Costs, sol: Solution) -> dict[str, tuple[Reason, ...]]:
    """Per region: the slots it used and the cheaper ones that the latency target or the
    data rule ruled out (at most ``ALTERNATIVES_SHOWN``)."""
    out: dict[str, tuple[Reason, ...]] = {}
    flow = sol.flow_rps.sum(axis=2)
    unit = (c.marginal + c.fixed / p.cap_rps[:, None]).mean(axis=1)[None, :] + c.route
    for r, rid in enumerate(p.region_ids):
        used = np.flatnonzero(flow[r] > 1e-9)
        reasons: list[Reason] = []
        for j in used:
            reasons.append(
                reason(
                    Code.LATENCY,
                    Role.PLACED,
                    site_id=p.slots[j].site_id,
                    region_id=rid,
                    rtt_ms=float(p.rtt_ms[r, j]),
                    limit_ms=float(p.latency_budget_ms[j]),
                    ttft_ms=float(p.ttft_ms[r, j]),
                    accelerator=p.slots[j].accelerator,
                )
            )
        if not len(used) and p.demand_rps[r].sum() > 0:
            reasons.append(_unreachable(p, r))
        best_used = min((unit[r, j] for j in used), default=np.inf)
        cheaper = [
            j for j in np.lexsort((np.arange(len(p.slots)), unit[r])) if unit[r, j] < best_used
        ]
        for j in [j for j in cheaper if not c.mask[r, j]][:ALTERNATIVES_SHOWN]:
            slot = p.slots[j]
            if not p.allowed[r, j]:
                reasons.append(
                    reason(
                        Code.DATA_RULE,
                        Role.REJECTED,
                        site_id=slot.site_id,
                        site_jurisdiction=slot.jurisdiction,
                        home_jurisdiction=p.region_jurisdictions[r],
                        scope="jurisdiction",
                        detail=(
                            f"{slot.site_id} ({slot.accelerator}) is in {slot.jurisdiction}: "
                            f"prompts of {rid} "
                            f"({p.region_jurisdictions[r]}) stay in their jurisdiction"
                        ),
                    )
                )
            else:
                reasons.append(
                    reason(
                        Code.LATENCY,
                        Role.REJECTED,
                        site_id=slot.site_id,
                        region_id=rid,
                        rtt_ms=float(p.rtt_ms[r, j]),
                        limit_ms=float(p.latency_budget_ms[j]),
                        accelerator=slot.accelerator,
                    )
                )
        out[rid] = tuple(reasons)
    return out


def plan_to_json(plan: InferencePlan) -> dict[str, Any]:
    """The hour-by-hour plan with reasons as JSON (CLI and API)."""
    sol = plan.solution
    return {
        "policy": plan.policy,
        "method": sol.method,
        "objective": sol.objective,
        "bound": sol.bound,
        "bound_kind": sol.bound_kind,
        "gap": sol.gap,
        "headroom": plan.headroom,
        "start_s": plan.problem.start_s,
        "replica_hours": plan.replica_hours,
        "unserved_rps_h": float(sol.unserved_rps.sum()),
        "placements": [
            {
                "site_id": pl.site_id,
                "accelerator": pl.accelerator,
                "replicas_by_hour": list(pl.replicas_by_hour),
                "regions": list(pl.regions),
                "reasons": [r.to_json() for r in pl.reasons],
            }
            for pl in plan.placements
        ],
        "regions": {
            rid: [r.to_json() for r in reasons] for rid, reasons in plan.region_reasons.items()
        },
    }
