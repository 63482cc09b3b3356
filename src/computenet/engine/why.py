"""Every decision of a reply with its structured reason (``engine.reasons``).

``attach(problem, reply)`` runs after the policy, on what the reply already says and the
compiled problem knows, so the policies stay as they are: a placement's reason comes from
its breakdown, start and transfers; a rejected alternative is classified the way
``explain`` rejects options (a data rule, data that cannot reach the site, a site down, a
missed deadline, no room), or given the difference the policy saw in its own measure
(and, where the policy built the job's view, priced again at its start for the cost and
carbon differences; the compiled greedy builds none, and building them would cost more
than the plan); deferrals and infeasible jobs keep the reason ``explain`` gave them,
and those built elsewhere (a job the engine refused as given) get theirs from the refusal.
A reason already set (``why``) is kept: a policy that knows better may set its own.
"""

from __future__ import annotations

import gc
import math
from dataclasses import replace
from typing import TypeVar

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

T = TypeVar("T")

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

PLACED_CODES = {"carbon-now": Code.CARBON, "fifo-home": Code.HOME, "fifo": Code.HOME}
"""The code of a placement by its policy (default ``cost``: the lowest objective)."""

MEASURES = {"cheapest-now": "cost", "carbon-now": "carbon"}
"""What a policy compares options by (default: the objective in CNY)."""


def attach(pb: Problem, reply: PlanReply) -> PlanReply:
    """``reply`` with ``why`` set on every placement, alternative, deferral and infeasible
    job (see the module docstring)."""
    # Many small acyclic objects (a few reasons per placement): the cycle collector would
    # rescan the reply's growing heap again and again and free nothing (it took two thirds
    # of this step's time on the planner benchmark's 3,000-job request).
    was = gc.isenabled()
    gc.disable()
    try:
        return _attach(pb, reply)
    finally:
        if was:
            gc.enable()


def _attach(pb: Problem, reply: PlanReply) -> PlanReply:
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
    if n is not None:
        done: list[Alternative] = []
        for a in alts:
            done.append(a if a.why is not None else _with(a, why=_alt(pb, n, p, a, policy)))
        alts = tuple(done)
    return _with(p, why=why, alternatives=alts)


def _with(obj: T, **changes: object) -> T:
    """``dataclasses.replace(obj, **changes)`` without its per-field work (it ran once per
    placement and alternative, a third of this step): the frozen dataclass's fields
    copied, ``changes`` set. The types here have no ``__post_init__`` to run again."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__, **changes)
    return new


def _view(pb: Problem, n: int, build: bool) -> JobView | None:
    """Job ``n``'s view if the policy built it (or, with ``build``, built now: the compiled
    greedy builds none, and building one per placement would cost more than the plan)."""
    v = pb._view_cache.get(n)
    if v is None and build:
        v = pb.views[n]
    return v if isinstance(v, JobView) else None


def _placed(pb: Problem, p: Placement, n: int | None, policy: str) -> tuple[Reason, ...]:
    bd = p.breakdown
    job = pb.req.jobs[n] if n is not None else None
    ready = max([pb.now, job.earliest_start_s if job else pb.now] + [t.end_s for t in p.transfers])
    code = PLACED_CODES.get(policy, Code.COST)
    home = _home_site(pb, job) if policy in ("fifo-home", "wait-awhile") and job else None
    # The facts in key order, written out: this runs once per placement (``rs.reason``
    # would sort and check them; the tests check the order).
    facts: list[tuple[str, rs.Fact]] = [
        ("accelerator", p.accelerator),
        ("carbon_kg", float(bd.carbon_kg)),
        ("carbon_price_cny_per_t", pb.cp),
        ("compute_cost_cny", float(bd.compute_cost_cny)),
        ("cost_cny", float(bd.cost_cny)),
        ("energy_cost_cny", float(bd.energy_cost_cny)),
        ("home_site", home or ""),
        ("objective_cny", float(bd.objective_cny)),
        ("policy", policy),
        ("site_id", p.site_id),
        ("start_in_h", (p.start_s - pb.now) / 3600),
        ("start_s", p.start_s),
        ("transfer_cost_cny", float(bd.transfer_cost_cny)),
        ("wait_h", max(0, p.start_s - ready) / 3600),
    ]
    if home is None:
        del facts[6]
    out = [Reason(code, Role.PLACED, tuple(facts))]
    for t in p.transfers:  # the facts in key order, as above
        copy: tuple[tuple[str, rs.Fact], ...] = (
            ("dataset_id", t.dataset_id),
            ("from_site", t.from_site),
            ("site_id", t.to_site),
            ("size_gb", float(t.size_gb)),
            ("transfer_cost_cny", float(t.cost_cny)),
            ("transfer_h", (t.end_s - t.start_s) / 3600),
        )
        out.append(Reason(Code.TRANSFER_TIME, Role.PLACED, copy))
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


def _alt(pb: Problem, n: int, p: Placement, a: Alternative, policy: str) -> Reason:
    s = pb.net.site_index.get(a.site_id)
    if s is None:
        return rs.reason(Code.INPUT, Role.REJECTED, site_id=a.site_id, detail=a.reason)
    if a.objective_cny is not None:
        return _priced(pb, n, p, a, policy)
    return _refused(pb, n, a.site_id, s)


def _priced(pb: Problem, n: int, p: Placement, a: Alternative, policy: str) -> Reason:
    """An option that had a price and lost on it (or, with no start, a lower bound on it).
    The difference is the one the policy saw, in its own measure; the cost and carbon
    differences come with it where the policy built the job's view (priced again at the
    alternative's start), not on the compiled greedy's path. Built as a dict of values
    that are never None (``rs.reason`` would check each): this runs for every alternative
    of every placement."""
    measure = MEASURES.get(policy, "objective")
    start = a.start_s
    seen = float(a.objective_cny or 0.0) - _measure(p.breakdown, measure)
    facts: dict[str, rs.Fact] = {"policy": policy, "site_id": a.site_id}
    if start is None:
        facts["at_least"] = True
    else:
        facts["start_s"] = start
        facts["start_in_h"] = (start - pb.now) / 3600
    if a.site_id == p.site_id:
        facts["same_site"] = True
    v = pb._view_cache.get(n) if start is not None else None
    if isinstance(v, JobView):
        bd = _breakdown_at(pb, v, a, measure)
        if bd is not None:
            facts["objective_diff_cny"] = float(bd.objective_cny - p.breakdown.objective_cny)
            facts["cost_diff_cny"] = float(bd.cost_cny - p.breakdown.cost_cny)
            facts["carbon_diff_kg"] = float(bd.carbon_kg - p.breakdown.carbon_kg)
    if measure == "carbon":
        facts["carbon_diff_kg"] = seen / 1000.0
        return Reason(Code.CARBON, Role.REJECTED, tuple(sorted(facts.items())))
    facts["cost_diff_cny" if measure == "cost" else "objective_diff_cny"] = seen
    facts["measure"] = measure
    return Reason(Code.COST, Role.REJECTED, tuple(sorted(facts.items())))


def _measure(bd: Breakdown, measure: str) -> float:
    if measure == "cost":
        return bd.cost_cny
    if measure == "carbon":
        return bd.carbon_kg * 1000.0  # the policies' carbon values are grams
    return bd.objective_cny


def _breakdown_at(pb: Problem, v: JobView, a: Alternative, measure: str) -> Breakdown | None:
    """The breakdown of the alternative's run: at its site and start, on the pool whose
    value under the policy's measure is the alternative's (the first on a tie)."""
    assert a.start_s is not None and a.objective_cny is not None
    s = pb.net.site_index[a.site_id]
    rows = np.flatnonzero(pb.net.pair_site[v.pairs] == s)
    best: tuple[float, Breakdown] | None = None
    for i in rows.tolist():
        bd = pb.breakdown(v, i, a.start_s - pb.now)
        gap = abs(_measure(bd, measure) - a.objective_cny)
        if best is None or gap < best[0]:
            best = (gap, bd)
    return None if best is None else best[1]


def _refused(pb: Problem, n: int, site_id: str, s: int) -> Reason:
    """Why a site was no option at all, checked in ``explain._rejected``'s order."""
    net = pb.net
    site = net.sites[s]
    job = pb.req.jobs[n]
    v = _view(pb, n, build=False)
    if v is not None:
        homes = [(info.dataset, info.home, info.time_s[s]) for info in v.datasets]
    else:  # one dataset, no replicas (the compiled greedy's jobs): copied from its home
        homes = []
        for ds_id in job.datasets:
            d = pb._datasets.get(ds_id)
            if d is not None and d.home_site in net.site_index:
                h = net.site_index[d.home_site]
                homes.append((d, h, 0.0 if h == s else d.size_gb * net.s_per_gb[h, s]))
    for d, h, copy_s in homes:
        facts = rules.breach_facts(d, site, net.sites[h])
        if facts is not None:
            return rs.reason(Code.DATA_RULE, Role.REJECTED, **facts)
        if not math.isfinite(copy_s):
            return rs.reason(
                Code.TRANSFER_TIME, Role.REJECTED, dataset_id=d.id, site_id=site_id, reachable=False
            )
    if pb.down[s]:
        return rs.reason(Code.SITE_DOWN, Role.REJECTED, site_id=site_id)
    v = _view(pb, n, build=True)
    rows = np.flatnonzero(net.pair_site[v.pairs] == s) if v is not None else np.zeros(0, int)
    if v is not None and rows.size:
        late = int(np.min(v.ready[rows] + v.run_s[rows]) - v.deadline_off)
        if late > 0:
            return rs.reason(Code.DEADLINE, Role.REJECTED, site_id=site_id, late_h=late / 3600)
    accs = ", ".join(sorted({net.pair_acc[int(p)] for p in v.pairs[rows]})) if v else ""
    return rs.reason(
        Code.CAPACITY,
        Role.REJECTED,
        site_id=site_id,
        count=job.accelerators,
        accelerator=accs or "-",
    )


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
