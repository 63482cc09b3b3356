"""Quotas, fair share and preemption (what Kueue's ClusterQueues and cohorts give Kubernetes
users), as inputs to the plan request.

* Every tenant with a ``TenantQuota`` has a **nominal quota** of accelerators per accelerator
  type (the pool kind), and a **borrowing limit** per type: it may hold up to ``nominal +
  borrowing_limit`` accelerators of that type, the part over its nominal only while the
  cohort (all tenants with a quota) has nominal quota left idle. An absent borrowing limit is
  0 (no borrowing). Tenants without a quota are not managed (as work outside any Kueue
  queue): their jobs are admitted as before.
* A tenant's **usage** is the accelerators of its allocations that have not ended (running,
  or placed to start later: admitted work holds its quota from admission to its end, as an
  admitted Kueue workload does). The caller says who holds each allocation (``Holder``);
  the engine never looks anything up.
* **Admission** takes pending jobs in one of two orders: ``fifo`` (priority, then arrival:
  Kueue's BestEffortFIFO) or ``fair`` (priority first, then the tenant with the lowest
  weighted dominant share: dominant-resource fairness over the cohort's nominal quota, the
  share divided by the tenant's ``weight``). A job is admitted on the first accelerator type
  it accepts (network order) that fits within its tenant's nominal quota, else on the first
  that fits by borrowing; the job is then restricted to that type. A job that fits on no
  type is deferred with a reason that starts with ``quota:``.
* **Preemption** (policies that declare ``PREEMPTS``): a job that ends up unplaced while its
  deadline is at risk (its latest start within ``PREEMPT_SLACK_S``) may stop lower-priority
  *checkpointable* work of the same accelerator type at one site. Victims are taken lowest
  priority first, then least work lost (time since the last checkpoint), then job id; the
  preemption happens only if re-planning with the victims' accelerators free places the job
  to start now. A victim that has started loses the work since its last checkpoint, at most
  one ``checkpoint_interval_s``; one placed to start later loses nothing. Each preemption
  is in ``PlanReply.preemptions`` with a reason starting ``preempted:``; the caller must
  stop the victims before it commits the placements.

Pure: no clock, no I/O; the budgets are counts (``MAX_PREEMPTION_TRIES``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from computenet.engine.capacity import CapacityLedger
from computenet.engine.types import (
    Allocation,
    Deferral,
    Placement,
    PlanReply,
    PlanRequest,
    Preemption,
)
from computenet.errors import InputError
from computenet.model import TrainingJob

Admission = Literal["fifo", "fair"]

PRIORITY_CLASSES: Mapping[str, int] = MappingProxyType({"low": 0, "normal": 100, "high": 1000})
"""Default priority classes (name -> ``TrainingJob.priority``); an operator may add more."""

PREEMPT_SLACK_S = 2 * 3600
"""A job whose latest start (deadline - shortest run) is less than this after now has its
deadline at risk: only such jobs preempt, so lower-priority work is not churned for jobs
that could still wait."""

MAX_PREEMPTION_TRIES = 8
"""Re-plans tried per request to place jobs by preemption (a count, not a time)."""

QUOTA = "quota"
"""Reason code of a job deferred by its tenant's quota (the text starts with it)."""
PREEMPTED = "preempted"
"""Reason code of a preemption (the text starts with it)."""


@dataclass(frozen=True)
class TenantQuota:
    """A tenant's share of the cohort. ``nominal`` and ``borrowing_limit`` map an
    accelerator type to a number of accelerators; ``weight`` scales its fair share."""

    tenant: str
    nominal: Mapping[str, int] = field(default_factory=dict)
    borrowing_limit: Mapping[str, int] = field(default_factory=dict)
    weight: float = 1.0

    def limit(self, kind: str) -> int:
        """Most accelerators of ``kind`` the tenant may hold, borrowing included."""
        return self.nominal.get(kind, 0) + self.borrowing_limit.get(kind, 0)


@dataclass(frozen=True)
class Holder:
    """Who holds the allocation of ``job_id``: its tenant and priority, whether it can be
    preempted, and when its current run started (s; its checkpoints are every
    ``checkpoint_interval_s`` from there)."""

    job_id: str
    tenant: str
    priority: int = 0
    checkpointable: bool = False
    checkpoint_interval_s: int = 3600
    started_s: int = 0


@dataclass(frozen=True)
class Quotas:
    """The quota inputs of a request: the tenants' quotas and who holds the request's
    running allocations (allocations of no holder belong to no managed tenant)."""

    tenants: tuple[TenantQuota, ...]
    holders: tuple[Holder, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for q in self.tenants:
            if q.tenant in seen:
                raise InputError(f"two quotas for tenant {q.tenant!r}", source="quotas")
            seen.add(q.tenant)
            for name, counts in (("nominal", q.nominal), ("borrowing_limit", q.borrowing_limit)):
                for kind, n in counts.items():
                    if not isinstance(n, int) or n < 0:
                        raise InputError(
                            f"tenant {q.tenant!r}: {name} of {kind} must be a whole number "
                            f">= 0, got {n!r}",
                            source="quotas",
                            where=name,
                        )
            if not (math.isfinite(q.weight) and q.weight > 0):
                raise InputError(
                    f"tenant {q.tenant!r}: weight must be > 0, got {q.weight!r}",
                    source="quotas",
                    where="weight",
                )

    def of(self, tenant: str) -> TenantQuota | None:
        for q in self.tenants:
            if q.tenant == tenant:
                return q
        return None


# ---------------------------------------------------------------------- usage


class Usage:
    """Accelerators held per (tenant, type), and the cohort's nominal quota and use per
    type; admission updates it as it admits."""

    def __init__(self, quotas: Quotas) -> None:
        self.quotas = {q.tenant: q for q in quotas.tenants}
        self.held: dict[tuple[str, str], int] = defaultdict(int)
        self.cohort_nominal: dict[str, int] = defaultdict(int)
        for q in quotas.tenants:
            for kind, n in q.nominal.items():
                self.cohort_nominal[kind] += n

    @classmethod
    def of_request(cls, req: PlanRequest, quotas: Quotas) -> Usage:
        u = cls(quotas)
        tenant_of = {h.job_id: h.tenant for h in quotas.holders}
        for a in req.running_allocations():
            t = tenant_of.get(a.job_id)
            if t is not None and a.end_s > req.now_s:
                u.add(t, a.accelerator, a.count)
        return u

    def add(self, tenant: str, kind: str, count: int) -> None:
        self.held[tenant, kind] += count

    def cohort_used(self, kind: str) -> int:
        return sum(n for (t, k), n in self.held.items() if k == kind and t in self.quotas)

    def borrowed(self, tenant: str, kind: str) -> int:
        q = self.quotas.get(tenant)
        nominal = q.nominal.get(kind, 0) if q else 0
        return max(0, self.held[tenant, kind] - nominal)

    def dominant_share(self, tenant: str) -> float:
        """The tenant's largest share of the cohort's nominal quota over all types,
        divided by its weight (dominant-resource fairness)."""
        q = self.quotas.get(tenant)
        if q is None:
            return 0.0
        share = 0.0
        for kind, total in self.cohort_nominal.items():
            if total > 0:
                share = max(share, self.held[tenant, kind] / total)
        return share / q.weight

    def fits(self, tenant: str, kind: str, count: int) -> tuple[bool, bool]:
        """(fits, borrows): whether ``count`` more of ``kind`` fit the tenant's quota, and
        whether they need borrowing. Unmanaged tenants always fit."""
        q = self.quotas.get(tenant)
        if q is None:
            return True, False
        after = self.held[tenant, kind] + count
        if after <= q.nominal.get(kind, 0):
            return True, False
        if after > q.limit(kind):
            return False, True
        # Borrow only what the cohort leaves idle now.
        idle = self.cohort_nominal.get(kind, 0) - self.cohort_used(kind)
        return count <= idle, True

    def describe(self, tenant: str, kind: str, count: int) -> str:
        q = self.quotas[tenant]
        idle = self.cohort_nominal.get(kind, 0) - self.cohort_used(kind)
        return (
            f"{QUOTA}: tenant {tenant} holds {self.held[tenant, kind]} {kind} "
            f"(nominal {q.nominal.get(kind, 0)}, borrowing limit "
            f"{q.borrowing_limit.get(kind, 0)}, cohort idle {max(0, idle)}); "
            f"{count} more do not fit"
        )


# ---------------------------------------------------------------------- admission


@dataclass(frozen=True)
class Admitted:
    """The jobs admitted (each restricted to the type it was admitted on), the jobs
    deferred by quota, and the jobs that borrow (id -> accelerators over nominal)."""

    jobs: tuple[TrainingJob, ...]
    denied: tuple[Deferral, ...]
    borrowing: Mapping[str, int]


def kinds_of(req: PlanRequest, job: TrainingJob) -> list[str]:
    """The accelerator types ``job`` accepts, in network order."""
    if job.accelerator_speed:
        return [k for k in req.network.accelerators if job.accelerator_speed.get(k, 0.0) > 0]
    return list(req.network.accelerators)


def restrict(req: PlanRequest, job: TrainingJob, kind: str) -> TrainingJob:
    """``job`` allowed on ``kind`` only, at the speed it had there."""
    speed = job.accelerator_speed.get(kind) if job.accelerator_speed else None
    return replace(
        job, accelerator_speed={kind: speed if speed is not None else req.network.speed(kind)}
    )


def _fair_order(jobs: Iterable[TrainingJob], usage: Usage) -> Iterable[TrainingJob]:
    """Jobs by priority, then the tenant with the lowest weighted dominant share (read
    afresh as admission goes on), then arrival; each tenant's own jobs in job order."""
    queues: dict[str, list[TrainingJob]] = defaultdict(list)
    for j in jobs:
        queues[j.tenant].append(j)
    for q in queues.values():
        q.sort(key=_job_key, reverse=True)  # pop() takes the first in job order
    while queues:
        tenant = min(
            queues,
            key=lambda t: (
                -queues[t][-1].priority,
                usage.dominant_share(t),
                _job_key(queues[t][-1]),
                t,
            ),
        )
        job = queues[tenant].pop()
        if not queues[tenant]:
            del queues[tenant]
        yield job


def _job_key(job: TrainingJob) -> tuple[int, int, int, str]:
    return (-job.priority, job.earliest_start_s, job.deadline_s, job.id)


def admit(req: PlanRequest, quotas: Quotas, mode: Admission, usage: Usage) -> Admitted:
    """Admit the request's jobs under ``quotas`` in ``mode`` order; ``usage`` (held quota)
    is updated with the admitted jobs."""
    jobs = sorted(req.jobs, key=_job_key) if mode == "fifo" else _fair_order(req.jobs, usage)
    admitted: list[TrainingJob] = []
    denied: list[Deferral] = []
    borrowing: dict[str, int] = {}
    for job in jobs:
        if job.tenant not in usage.quotas:
            admitted.append(job)
            continue
        kinds = kinds_of(req, job)
        pick = _pick_kind(usage, job, kinds)
        if pick is None:
            kind = kinds[0] if kinds else "any accelerator"
            why = (
                usage.describe(job.tenant, kind, job.accelerators) if kinds else f"{QUOTA}: no type"
            )
            denied.append(Deferral(job.id, why))
            continue
        kind, borrows = pick
        usage.add(job.tenant, kind, job.accelerators)
        if borrows:
            borrowing[job.id] = usage.borrowed(job.tenant, kind)
        admitted.append(restrict(req, job, kind))
    return Admitted(tuple(admitted), tuple(denied), MappingProxyType(borrowing))


def _pick_kind(usage: Usage, job: TrainingJob, kinds: list[str]) -> tuple[str, bool] | None:
    """The first type within nominal quota, else the first that fits by borrowing."""
    borrow: str | None = None
    for kind in kinds:
        ok, borrows = usage.fits(job.tenant, kind, job.accelerators)
        if ok and not borrows:
            return kind, False
        if ok and borrow is None:
            borrow = kind
    return (borrow, True) if borrow is not None else None


# ---------------------------------------------------------------------- the wrapper

Inner = Callable[[PlanRequest], PlanReply]


def plan_with_quotas(
    req: PlanRequest, quotas: Quotas, inner: Inner, mode: Admission, preempts: bool
) -> PlanReply:
    """Admit the request's jobs under ``quotas``, plan the admitted ones with ``inner``
    (the request without quotas), and, when ``preempts``, place jobs whose deadline is at
    risk by preempting lower-priority checkpointable work."""
    usage = Usage.of_request(req, quotas)
    adm = admit(req, quotas, mode, usage)
    reply = inner(replace(req, jobs=adm.jobs, quotas=None))
    reply = _note_borrowing(reply, adm.borrowing)
    deferred = list(reply.deferred) + list(adm.denied)
    infeasible = list(reply.infeasible)
    placements = list(reply.placements)
    preemptions: list[Preemption] = []
    if preempts:
        placed, taken = _preempt_for_at_risk(req, quotas, inner, reply, adm)
        done = {p.job_id for p in placed}
        placements += placed
        preemptions += taken
        deferred = [d for d in deferred if d.job_id not in done]
        infeasible = [d for d in infeasible if d.job_id not in done]
    placements.sort(key=lambda p: (p.start_s, p.job_id))
    deferred.sort(key=lambda d: d.job_id)
    infeasible.sort(key=lambda d: d.job_id)
    preemptions.sort(key=lambda p: p.job_id)
    return replace(
        reply,
        placements=tuple(placements),
        deferred=tuple(deferred),
        infeasible=tuple(infeasible),
        preemptions=tuple(preemptions),
        objective_cny=float(sum(p.breakdown.objective_cny for p in placements)),
        cost_cny=float(sum(p.breakdown.cost_cny for p in placements)),
        carbon_kg=float(sum(p.breakdown.carbon_kg for p in placements)),
    )


def _note_borrowing(reply: PlanReply, borrowing: Mapping[str, int]) -> PlanReply:
    if not borrowing:
        return reply
    out = []
    for p in reply.placements:
        n = borrowing.get(p.job_id)
        out.append(
            p if n is None else replace(p, reason=f"{p.reason}; borrows {n} {p.accelerator}")
        )
    return replace(reply, placements=tuple(out))


# ---------------------------------------------------------------------- preemption


def _latest_start_s(req: PlanRequest, job: TrainingJob) -> float:
    speeds = [s for s in job.accelerator_speed.values() if s > 0] if job.accelerator_speed else []
    fastest = max(speeds) if speeds else max(req.network.speed(k) for k in req.network.accelerators)
    return job.deadline_s - job.work_h * 3600.0 / fastest


def _speed(req: PlanRequest, job: TrainingJob, kind: str) -> float:
    if job.accelerator_speed:
        return job.accelerator_speed.get(kind, 0.0)
    return req.network.speed(kind)


def lost_s(holder: Holder, alloc: Allocation, now_s: int) -> int:
    """Work (s of run time) a victim loses if stopped now: the time since its last
    checkpoint (less than one interval), 0 if it has not started."""
    if alloc.start_s >= now_s:
        return 0
    started = min(holder.started_s, alloc.start_s) if holder.started_s else alloc.start_s
    return (now_s - started) % max(1, holder.checkpoint_interval_s)


def _preempt_for_at_risk(
    req: PlanRequest,
    quotas: Quotas,
    inner: Inner,
    reply: PlanReply,
    adm: Admitted,
) -> tuple[list[Placement], list[Preemption]]:
    """Place unplaced at-risk jobs by stopping lower-priority checkpointable work: at most
    ``MAX_PREEMPTION_TRIES`` re-plans, highest priority first."""
    unplaced = {d.job_id for d in reply.deferred} | {d.job_id for d in adm.denied}
    unplaced |= {d.job_id for d in reply.infeasible if d.constraint in ("capacity", "deadline")}
    holders = {h.job_id: h for h in quotas.holders}
    allocs = {a.job_id: a for a in req.running_allocations() if a.end_s > req.now_s}
    lowest = min((h.priority for h in holders.values() if h.checkpointable), default=None)
    if lowest is None:
        return [], []
    at_risk = sorted(
        (
            j
            for j in req.jobs
            if j.id in unplaced
            and j.priority > lowest
            and _latest_start_s(req, j) - req.now_s < PREEMPT_SLACK_S
        ),
        key=_job_key,
    )
    placed: list[Placement] = []
    taken: list[Preemption] = []
    gone: set[str] = set()
    tries = 0
    for job in at_risk:
        if tries >= MAX_PREEMPTION_TRIES:
            break
        for kind in kinds_of(req, job):
            now_taken = [*reply.placements, *placed]
            plan = _victims(req, quotas, job, kind, holders, allocs, gone, now_taken)
            if plan is None:
                continue
            tries += 1
            victims, site = plan
            got = _replan(req, inner, job, kind, site, gone | victims, now_taken)
            if got is not None:
                gone |= victims
                placed.append(got)
                for vid in sorted(victims):
                    h, a = holders[vid], allocs[vid]
                    loss = lost_s(h, a, req.now_s)
                    taken.append(
                        Preemption(
                            vid,
                            job.id,
                            a.site_id,
                            a.accelerator,
                            a.count,
                            loss,
                            f"{PREEMPTED}: by {job.id} (priority {job.priority} > "
                            f"{h.priority}) whose deadline is at risk; "
                            + (
                                f"loses {loss / 3600:.2f} h of run since its last checkpoint "
                                f"(interval {h.checkpoint_interval_s / 3600:.2f} h)"
                                if loss
                                else "had not started: loses no work"
                            ),
                        )
                    )
            break  # one attempt per job
    return placed, taken


def _victims(
    req: PlanRequest,
    quotas: Quotas,
    job: TrainingJob,
    kind: str,
    holders: Mapping[str, Holder],
    allocs: Mapping[str, Allocation],
    gone: set[str],
    placed: list[Placement],
) -> tuple[set[str], str] | None:
    """The cheapest set of lower-priority checkpointable allocations of ``kind`` at one
    site whose accelerators, with those free now, fit ``job``'s gang and leave its tenant
    within quota; ``None`` if no site has one."""
    now = req.now_s
    cap: dict[str, int] = defaultdict(int)
    for s in req.network.sites:
        if s.id in req.down_sites:
            continue
        for p in s.pools:
            if p.accelerator == kind:
                cap[s.id] += p.count
    busy: dict[str, int] = defaultdict(int)
    cands: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    # Allocations that overlap the job's run from now block it; stopping one frees it.
    until = now + math.ceil(job.work_h * 3600.0 / max(1e-9, _speed(req, job, kind)))
    for jid, a in allocs.items():
        if a.accelerator != kind or jid in gone or a.start_s >= until:
            continue
        busy[a.site_id] += a.count
    for jid, a in allocs.items():
        if a.accelerator != kind or jid in gone or a.site_id not in cap:
            continue
        h = holders.get(jid)
        if h is None or not h.checkpointable or h.priority >= job.priority:
            continue
        cands[a.site_id].append((h.priority, lost_s(h, a, now), jid))
    for pl in placed:
        if pl.accelerator == kind and pl.start_s < until:
            busy[pl.site_id] += pl.count
    best: tuple[int, str, set[str]] | None = None
    for site_id in sorted(cands):
        free = cap[site_id] - busy[site_id]
        chosen: set[str] = set()
        loss = 0
        for _, lost, jid in sorted(cands[site_id]):
            if free >= job.accelerators:
                break
            a = allocs[jid]
            if a.start_s < until:
                free += a.count
            chosen.add(jid)
            loss += lost * a.count
        if free < job.accelerators or not chosen:
            continue
        tenant_of = {j.id: j.tenant for j in req.jobs}
        if not _quota_after(quotas, job, kind, chosen | gone, holders, allocs, placed, tenant_of):
            continue
        if best is None or (loss, site_id) < best[:2]:
            best = (loss, site_id, chosen)
    return None if best is None else (best[2], best[1])


def _quota_after(
    quotas: Quotas,
    job: TrainingJob,
    kind: str,
    gone: set[str],
    holders: Mapping[str, Holder],
    allocs: Mapping[str, Allocation],
    placed: list[Placement],
    tenant_of: Mapping[str, str],
) -> bool:
    """Whether ``job`` fits its tenant's quota once the ``gone`` allocations are stopped
    and the ``placed`` ones (this request's) are held."""
    usage = Usage(quotas)
    for jid, a in allocs.items():
        h = holders.get(jid)
        if h is not None and jid not in gone:
            usage.add(h.tenant, a.accelerator, a.count)
    for p in placed:
        usage.add(tenant_of[p.job_id], p.accelerator, p.count)
    return usage.fits(job.tenant, kind, job.accelerators)[0]


def _replan(
    req: PlanRequest,
    inner: Inner,
    job: TrainingJob,
    kind: str,
    site_id: str,
    gone: set[str],
    placed: list[Placement],
) -> Placement | None:
    """``job`` planned alone on ``kind`` with the ``gone`` allocations freed and the
    ``placed`` ones taken; its placement if it starts now at ``site_id``."""
    running = [a for a in req.running_allocations() if a.job_id not in gone]
    running += [
        Allocation(p.job_id, p.site_id, p.accelerator, p.count, p.start_s, p.end_s) for p in placed
    ]
    sub = replace(
        req,
        jobs=(restrict(req, job, kind),),
        running=(),
        capacity=CapacityLedger(running),
        quotas=None,
    )
    out = inner(sub)
    for p in out.placements:
        if p.job_id == job.id and p.site_id == site_id and p.start_s < req.now_s + req.slot_s:
            return replace(p, reason=f"{p.reason}; by preemption")
    return None
