"""Every decision of a reply with its structured reason (``engine.reasons``).

``attach(problem, reply)`` runs after the policy, on what the reply already says and the
compiled problem knows, so the policies stay as they are: a placement's reason comes from
its breakdown, start and transfers; a rejected alternative is classified the way
``explain`` rejects options (a data rule, data that cannot reach the site, a site down, a
missed deadline, no room), or priced again at its start to give the cost and carbon
difference it lost by; deferrals and infeasible jobs keep the reason ``explain`` gave them,
and those built elsewhere (a job the engine refused as given) get theirs from the refusal.
A reason already set (``why``) is kept: a policy that knows better may set its own.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from computenet.engine import reasons as rs
from computenet.engine import rules
from computenet.engine.problem import JobView, Problem, Rejection
from computenet.engine.reasons import Code, Reason, Role
from computenet.engine.types import (
    Alternative,
    Breakdown,
    Deferral,
    Infeasible,
    Placement,
    PlanReply,
)

CONSTRAINT_CODES = {
    "capacity": Code.CAPACITY,
    "deadline": Code.DEADLINE,
    "data-rule": Code.DATA_RULE,
    "accelerator-type": Code.ACCELERATOR_TYPE,
    "gang": Code.GANG,
    "dataset": Code.INPUT,
    "work": Code.INPUT,
    "down": Code.SITE_DOWN,
    "horizon": Code.HORIZON,
}
"""``Infeasible.constraint`` names (older than the codes) -> the code they mean. A name
not listed that is itself a code (``quota``, ``power_cap``) is that code."""

MEASURES = {"cheapest-now": "cost", "carbon-now": "carbon"}
"""What a policy compares options by (default: the objective in CNY)."""


def attach(pb: Problem, reply: PlanReply) -> PlanReply:
    """``reply`` with ``why`` set on every placement, alternative, deferral and infeasible
    job (see the module docstring)."""
    index = {j.id: n for n, j in enumerate(pb.req.jobs)}
    return replace(
        reply,
        placements=tuple(
            _placement(pb, p, index.get(p.job_id), reply.policy) for p in reply.placements
        ),
        deferred=tuple(d if d.why else replace(d, why=_deferral(d)) for d in reply.deferred),
        infeasible=tuple(
            i if i.why else replace(i, why=_infeasible(pb, i, index.get(i.job_id)))
            for i in reply.infeasible
        ),
    )


# --------------------------------------------------------------------------- placements


def _placement(pb: Problem, p: Placement, n: int | None, policy: str) -> Placement:
    why = p.why or _placed(pb, p, n, policy)
    alts = p.alternatives
    if any(a.why is None for a in alts) and n is not None:
        v = pb.views[n]
        if isinstance(v, JobView):
            alts = tuple(a if a.why else replace(a, why=_alt(pb, v, p, a, policy)) for a in alts)
    if why is p.why and alts is p.alternatives:
        return p
    return replace(p, why=why, alternatives=alts)


def _placed(pb: Problem, p: Placement, n: int | None, policy: str) -> tuple[Reason, ...]:
    bd = p.breakdown
    job = pb.req.jobs[n] if n is not None else None
    ready = max([pb.now, job.earliest_start_s if job else pb.now] + [t.end_s for t in p.transfers])
    code = {"carbon-now": Code.CARBON, "fifo-home": Code.HOME}.get(policy, Code.COST)
    home = _home_site(pb, job) if policy in ("fifo-home", "wait-awhile") and job else None
    out = [
        rs.reason(
            code,
            Role.PLACED,
            policy=policy,
            site_id=p.site_id,
            accelerator=p.accelerator,
            start_s=p.start_s,
            start_in_h=(p.start_s - pb.now) / 3600,
            wait_h=max(0, p.start_s - ready) / 3600,
            objective_cny=bd.objective_cny,
            cost_cny=bd.cost_cny,
            energy_cost_cny=bd.energy_cost_cny,
            compute_cost_cny=bd.compute_cost_cny,
            transfer_cost_cny=bd.transfer_cost_cny,
            carbon_kg=bd.carbon_kg,
            carbon_price_cny_per_t=pb.cp,
            home_site=home,
        )
    ]
    for t in p.transfers:
        out.append(
            rs.reason(
                Code.TRANSFER_TIME,
                Role.PLACED,
                dataset_id=t.dataset_id,
                from_site=t.from_site,
                site_id=t.to_site,
                size_gb=t.size_gb,
                transfer_h=(t.end_s - t.start_s) / 3600,
                transfer_cost_cny=t.cost_cny,
            )
        )
    return tuple(out)


def _home_site(pb: Problem, job: object) -> str:
    """The job's home site: its first dataset's home, else the first site (as
    ``policies.base.home_site``)."""
    for ds_id in getattr(job, "datasets", ()):
        d = pb._datasets.get(ds_id)
        if d is not None:
            return d.home_site
        break
    return pb.net.sites[0].id


# --------------------------------------------------------------------------- alternatives


def _alt(pb: Problem, v: JobView, p: Placement, a: Alternative, policy: str) -> Reason:
    s = pb.net.site_index.get(a.site_id)
    if s is None:
        return rs.reason(Code.INPUT, Role.REJECTED, site_id=a.site_id, detail=a.reason)
    if a.objective_cny is not None:
        return _priced(pb, v, p, a, s, policy)
    return _refused(pb, v, a.site_id, s)


def _priced(pb: Problem, v: JobView, p: Placement, a: Alternative, s: int, policy: str) -> Reason:
    """An option that had a price and lost on it (or, with no start, a lower bound on it)."""
    measure = MEASURES.get(policy, "objective")
    chosen = _measure(p.breakdown, measure)
    bd = _breakdown_at(pb, v, s, a, measure) if a.start_s is not None else None
    facts: dict[str, rs.Fact | None] = {
        "policy": policy,
        "site_id": a.site_id,
        "start_s": a.start_s,
        "start_in_h": None if a.start_s is None else (a.start_s - pb.now) / 3600,
        "same_site": a.site_id == p.site_id,
        "at_least": a.start_s is None,
    }
    if bd is not None:
        facts["objective_diff_cny"] = bd.objective_cny - p.breakdown.objective_cny
        facts["cost_diff_cny"] = bd.cost_cny - p.breakdown.cost_cny
        facts["carbon_diff_kg"] = bd.carbon_kg - p.breakdown.carbon_kg
    # The difference the policy saw, in its own measure (the alternative's value is in it).
    seen = float(a.objective_cny or 0.0) - chosen
    if measure == "carbon":
        facts["carbon_diff_kg"] = seen / 1000.0
        return rs.reason(Code.CARBON, Role.REJECTED, **facts)
    facts["cost_diff_cny" if measure == "cost" else "objective_diff_cny"] = seen
    return rs.reason(Code.COST, Role.REJECTED, measure=measure, **facts)


def _measure(bd: Breakdown, measure: str) -> float:
    if measure == "cost":
        return bd.cost_cny
    if measure == "carbon":
        return bd.carbon_kg * 1000.0  # the policies' carbon values are grams
    return bd.objective_cny


def _breakdown_at(
    pb: Problem, v: JobView, s: int, a: Alternative, measure: str
) -> Breakdown | None:
    """The breakdown of the alternative's run: at its site and start, on the pool whose
    value under the policy's measure is the alternative's (the first on a tie)."""
    assert a.start_s is not None and a.objective_cny is not None
    rows = np.flatnonzero(pb.net.pair_site[v.pairs] == s)
    best: tuple[float, Breakdown] | None = None
    for i in rows.tolist():
        bd = pb.breakdown(v, i, a.start_s - pb.now)
        gap = abs(_measure(bd, measure) - a.objective_cny)
        if best is None or gap < best[0]:
            best = (gap, bd)
    return None if best is None else best[1]


def _refused(pb: Problem, v: JobView, site_id: str, s: int) -> Reason:
    """Why a site was no option at all, checked in ``explain._rejected``'s order."""
    site = pb.net.sites[s]
    for info in v.datasets:
        facts = rules.breach_facts(info.dataset, site, pb.net.sites[info.home])
        if facts is not None:
            return rs.reason(Code.DATA_RULE, Role.REJECTED, **facts)
        if not math.isfinite(info.time_s[s]):
            return rs.reason(
                Code.TRANSFER_TIME,
                Role.REJECTED,
                dataset_id=info.dataset.id,
                site_id=site_id,
                reachable=False,
            )
    if pb.down[s]:
        return rs.reason(Code.SITE_DOWN, Role.REJECTED, site_id=site_id)
    rows = np.flatnonzero(pb.net.pair_site[v.pairs] == s)
    if rows.size:
        late = int(np.min(v.ready[rows] + v.run_s[rows]) - v.deadline_off)
        if late > 0:
            return rs.reason(Code.DEADLINE, Role.REJECTED, site_id=site_id, late_h=late / 3600)
    accs = ", ".join(sorted({pb.net.pair_acc[int(p)] for p in v.pairs[rows]})) or "-"
    return rs.reason(Code.CAPACITY, Role.REJECTED, site_id=site_id, count=v.count, accelerator=accs)


# --------------------------------------------------------------------------- unplaced


def _deferral(d: Deferral) -> Reason:
    return rs.reason(Code.HORIZON, Role.DEFERRED, detail=d.reason)


def code_of(constraint: str) -> Code:
    """The code an ``Infeasible.constraint`` name means (``CONSTRAINT_CODES``)."""
    hit = CONSTRAINT_CODES.get(constraint)
    if hit is not None:
        return hit
    try:
        return Code(constraint.replace("-", "_"))
    except ValueError:
        return Code.INPUT


def _infeasible(pb: Problem, i: Infeasible, n: int | None) -> Reason:
    code = code_of(i.constraint)
    if code is Code.DATA_RULE and n is not None:
        facts = _rule_refusal(pb, n)
        if facts is not None:
            return rs.reason(code, Role.INFEASIBLE, **facts)
    return rs.reason(code, Role.INFEASIBLE, detail=i.reason)


def _rule_refusal(pb: Problem, n: int) -> dict[str, str | int] | None:
    """The data rule that keeps job ``n`` from the first site that has a pool for its gang
    (the site ``jobs`` names when it refuses the job)."""
    job = pb.req.jobs[n]
    if not isinstance(pb.views[n], Rejection):
        return None
    net = pb.net
    gang = (pb._speeds(job) > 0) & (net.cap >= job.accelerators)
    for p in np.flatnonzero(gang).tolist():
        site = net.sites[int(net.pair_site[p])]
        for ds_id in job.datasets:
            d = pb._datasets.get(ds_id)
            if d is None or d.home_site not in net.site_index:
                continue
            facts = rules.breach_facts(d, site, net.sites[net.site_index[d.home_site]])
            if facts is not None:
                return facts
    return None
