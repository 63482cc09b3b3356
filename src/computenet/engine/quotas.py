"""Quotas, fair share and preemption (what Kueue's ClusterQueues and cohorts give Kubernetes
users), as inputs to the plan request.

* Every tenant with a ``TenantQuota`` has a **nominal quota** of accelerators per accelerator
  type (the pool kind), and a **borrowing limit** per type: it may hold up to ``nominal +
  borrowing_limit`` accelerators of that type, the part over its nominal only while the
  cohort (all tenants with a quota) has nominal quota left idle. An absent borrowing limit is
  0 (no borrowing). Tenants without a quota are not managed (as work outside any Kueue
  queue): their jobs are admitted as before.
* A tenant's **usage** at a moment is the accelerators its allocations hold then (quota is
  held over a run, as accelerators are: a job placed to start later holds none before).
  The caller says who holds each allocation (``Holder``); the engine never looks it up.
* **Admission** takes pending jobs in one of two orders: ``fifo`` (priority, then arrival:
  Kueue's BestEffortFIFO) or ``fair`` (priority first, then the tenant with the lowest
  weighted dominant share: dominant-resource fairness over the cohort's nominal quota, the
  share divided by the tenant's ``weight``). A job is admitted if it fits its tenant's
  quota were it to start as soon as it may, on the first accelerator type it accepts
  (network order) that fits within nominal quota, else the first that fits by borrowing;
  it is then restricted to that type. The policy places the admitted jobs in admission
  order, and each placement is held to the quota over the run it was given. A job that
  does not fit is deferred with a reason that starts with ``quota:``.
* **Preemption** (policies that declare ``PREEMPTS``): (a) a job left unplaced while its
  deadline is at risk (its latest start within ``PREEMPT_SLACK_S``) may stop lower-priority
  work; (b) a job of a tenant within its nominal quota, unplaced or placed to start after
  the first slot, may stop work of tenants that borrow (no higher priority, no more from a
  tenant than it borrows: Kueue's reclaimWithinCohort). Work that has started is stopped
  only if it is checkpointable. Victims are taken at one site, lowest priority first, then
  least work lost, then job id; the preemption happens only if re-planning with the
  victims' accelerators free starts the job within the first slot there. A victim that has
  started loses the work since its last checkpoint, less than one
  ``checkpoint_interval_s``; one placed to start later loses nothing. Each preemption is in
  ``PlanReply.preemptions`` with a reason starting ``preempted:``; the caller must stop the
  victims before it commits the placements.

Pure: no clock, no I/O; the budgets are counts (``MAX_PREEMPTION_TRIES``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
from computenet.model import PRIORITY_CLASSES, TrainingJob

__all__ = ["PRIORITY_CLASSES"]  # re-exported: the defaults live in the leaf ``model``

Admission = Literal["fifo", "fair"]


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


# ---------------------------------------------------------------------- usage


class Usage:
    """Quota held over time: per (tenant, type), and the cohort's per type, as a
    ``CapacityLedger`` keyed by tenant instead of site (a job holds its quota over its
    run, as it holds its accelerators). Admission adds the jobs it accepts."""

    COHORT = "\x00cohort"

    def __init__(self, quotas: Quotas) -> None:
        self.quotas = {q.tenant: q for q in quotas.tenants}
        self.ledger = CapacityLedger()
        self.cohort_nominal: dict[str, int] = defaultdict(int)
        for q in quotas.tenants:
            for kind, n in q.nominal.items():
                self.cohort_nominal[kind] += n

    @classmethod
    def of_request(cls, req: PlanRequest, quotas: Quotas) -> Usage:
        """The quota held by the request's running allocations (those of managed tenants
        that have not ended)."""
        u = cls(quotas)
        tenant_of = {h.job_id: h.tenant for h in quotas.holders}
        for a in req.running_allocations():
            t = tenant_of.get(a.job_id)
            if t is not None and a.end_s > req.now_s:
                u.add(t, a.accelerator, a.count, a.start_s, a.end_s)
        return u

    def add(self, tenant: str, kind: str, count: int, start_s: int, end_s: int) -> None:
        if tenant not in self.quotas:
            return
        self.ledger.add(Allocation("", tenant, kind, count, start_s, end_s))
        self.ledger.add(Allocation("", self.COHORT, kind, count, start_s, end_s))

    def held(self, tenant: str, kind: str, start_s: int, end_s: int) -> int:
        """Most accelerators of ``kind`` the tenant holds at any moment of the interval."""
        return self.ledger.peak(tenant, kind, start_s, end_s)

    def dominant_share(self, tenant: str, at_s: int) -> float:
        """The tenant's largest share of the cohort's nominal quota over all types at
        ``at_s``, divided by its weight (dominant-resource fairness)."""
        q = self.quotas.get(tenant)
        if q is None:
            return 0.0
        share = 0.0
        for kind, total in self.cohort_nominal.items():
            if total > 0:
                share = max(share, self.held(tenant, kind, at_s, at_s + 1) / total)
        return share / q.weight

    def fits(
        self, tenant: str, kind: str, count: int, start_s: int, end_s: int
    ) -> tuple[bool, int]:
        """(fits, borrowed): whether ``count`` more of ``kind`` over the interval fit the
        tenant's quota, and how many it then holds beyond its nominal quota. Unmanaged
        tenants always fit."""
        q = self.quotas.get(tenant)
        if q is None:
            return True, 0
        after = self.held(tenant, kind, start_s, end_s) + count
        nominal = q.nominal.get(kind, 0)
        if after <= nominal:
            return True, 0
        if after > q.limit(kind):
            return False, after - nominal
        # Borrow only what the cohort leaves idle over the whole interval.
        used = self.ledger.peak(self.COHORT, kind, start_s, end_s)
        return used + count <= self.cohort_nominal.get(kind, 0), after - nominal

    def describe(self, tenant: str, kind: str, count: int, start_s: int, end_s: int) -> str:
        q = self.quotas[tenant]
        idle = self.cohort_nominal.get(kind, 0) - self.ledger.peak(
            self.COHORT, kind, start_s, end_s
        )
        return (
            f"{QUOTA}: tenant {tenant} holds {self.held(tenant, kind, start_s, end_s)} "
            f"{kind} (nominal {q.nominal.get(kind, 0)}, borrowing limit "
            f"{q.borrowing_limit.get(kind, 0)}, cohort idle {max(0, idle)}); "
            f"{count} more do not fit"
        )


# ---------------------------------------------------------------------- admission


@dataclass(frozen=True)
class Admitted:
    """The jobs admitted in admission order (each restricted to the type it was admitted
    on), and the jobs deferred by quota."""

    jobs: tuple[TrainingJob, ...]
    denied: tuple[Deferral, ...]


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


def _speed(req: PlanRequest, job: TrainingJob, kind: str) -> float:
    if job.accelerator_speed:
        return job.accelerator_speed.get(kind, 0.0)
    return req.network.speed(kind)


def earliest_run(req: PlanRequest, job: TrainingJob, kind: str) -> tuple[int, int]:
    """The job's run on ``kind`` if it started as soon as it may (s, s)."""
    start = max(req.now_s, job.earliest_start_s)
    return start, start + math.ceil(job.work_h * 3600.0 / max(1e-9, _speed(req, job, kind)))


def _job_key(job: TrainingJob) -> tuple[int, int, int, str]:
    return (-job.priority, job.earliest_start_s, job.deadline_s, job.id)


def _fair_order(req: PlanRequest, usage: Usage) -> list[TrainingJob]:
    """Jobs by priority, then the tenant with the lowest weighted dominant share now
    (counting the jobs ordered before as held), then arrival."""
    queues: dict[str, list[TrainingJob]] = defaultdict(list)
    for j in req.jobs:
        queues[j.tenant].append(j)
    for q in queues.values():
        q.sort(key=_job_key, reverse=True)  # pop() takes the first in job order
    share = {t: usage.dominant_share(t, req.now_s) for t in queues}
    total = {k: max(1, n) for k, n in usage.cohort_nominal.items()}
    out = []
    while queues:
        tenant = min(
            queues,
            key=lambda t: (-queues[t][-1].priority, share[t], _job_key(queues[t][-1]), t),
        )
        job = queues[tenant].pop()
        if not queues[tenant]:
            del queues[tenant]
        tq = usage.quotas.get(tenant)
        if tq is not None:
            kinds = [k for k in kinds_of(req, job) if k in total] or list(total)
            grow = max((job.accelerators / total[k] for k in kinds), default=0.0)
            share[tenant] += grow / tq.weight
        out.append(job)
    return out


def admit(req: PlanRequest, quotas: Quotas, mode: Admission, usage: Usage) -> Admitted:
    """Admit the request's jobs under ``quotas`` in ``mode`` order: a job is admitted if it
    fits its tenant's quota were it to start as soon as it may (on the first type that
    fits within nominal quota, else the first that fits by borrowing). ``usage`` is
    updated with the admitted jobs' earliest runs; ``check_placements`` then holds the
    placements to the quota over the runs they were given."""
    jobs = sorted(req.jobs, key=_job_key) if mode == "fifo" else _fair_order(req, usage)
    admitted: list[TrainingJob] = []
    denied: list[Deferral] = []
    for job in jobs:
        if job.tenant not in usage.quotas:
            admitted.append(job)
            continue
        kinds = kinds_of(req, job)
        kind = _pick_kind(req, usage, job, kinds)
        if kind is None:
            why = (
                usage.describe(
                    job.tenant, kinds[0], job.accelerators, *earliest_run(req, job, kinds[0])
                )
                if kinds
                else f"{QUOTA}: tenant {job.tenant}: no accelerator type to admit it on"
            )
            denied.append(Deferral(job.id, why))
            continue
        usage.add(job.tenant, kind, job.accelerators, *earliest_run(req, job, kind))
        admitted.append(restrict(req, job, kind))
    return Admitted(tuple(admitted), tuple(denied))


def _pick_kind(req: PlanRequest, usage: Usage, job: TrainingJob, kinds: list[str]) -> str | None:
    """The first type within nominal quota, else the first that fits by borrowing."""
    borrow: str | None = None
    for kind in kinds:
        ok, over = usage.fits(job.tenant, kind, job.accelerators, *earliest_run(req, job, kind))
        if ok and not over:
            return kind
        if ok and borrow is None:
            borrow = kind
    return borrow


def check_placements(
    req: PlanRequest, quotas: Quotas, order: list[TrainingJob], placements: list[Placement]
) -> tuple[list[Placement], list[Deferral]]:
    """Hold ``placements`` to the quotas over the runs they were given, in admission
    ``order``: one that would take its tenant past its quota is deferred (``quota:``);
    one that borrows says so."""
    usage = Usage.of_request(req, quotas)
    rank = {j.id: n for n, j in enumerate(order)}
    tenant_of = {j.id: j.tenant for j in order}
    kept: list[Placement] = []
    dropped: list[Deferral] = []
    for p in sorted(placements, key=lambda p: rank.get(p.job_id, len(rank))):
        t = tenant_of.get(p.job_id, "")
        ok, over = usage.fits(t, p.accelerator, p.count, p.start_s, p.end_s)
        if not ok:
            dropped.append(
                Deferral(p.job_id, usage.describe(t, p.accelerator, p.count, p.start_s, p.end_s))
            )
            continue
        usage.add(t, p.accelerator, p.count, p.start_s, p.end_s)
        kept.append(
            p if not over else replace(p, reason=f"{p.reason}; borrows {over} {p.accelerator}")
        )
    return kept, dropped


# ---------------------------------------------------------------------- the wrapper

Inner = Callable[[PlanRequest], PlanReply]


def in_order(jobs: tuple[TrainingJob, ...]) -> tuple[TrainingJob, ...]:
    """The jobs with priorities that make the policies' own order (``base.job_order``,
    priority first) follow the admission order."""
    n = len(jobs)
    return tuple(replace(j, priority=n - k) for k, j in enumerate(jobs))


def plan_with_quotas(
    req: PlanRequest, quotas: Quotas, inner: Inner, mode: Admission, preempts: bool
) -> PlanReply:
    """Admit the request's jobs under ``quotas``, plan the admitted ones with ``inner``
    (the request without quotas, in admission order), hold the placements to the quotas,
    and, when ``preempts``, place jobs whose deadline is at risk by preempting
    lower-priority checkpointable work."""
    adm = admit(req, quotas, mode, Usage.of_request(req, quotas))
    reply = inner(replace(req, jobs=in_order(adm.jobs), quotas=None))
    kept, dropped = check_placements(req, quotas, list(adm.jobs), list(reply.placements))
    reply = replace(reply, placements=tuple(kept))
    deferred = list(reply.deferred) + list(adm.denied) + dropped
    infeasible = list(reply.infeasible)
    placements = list(kept)
    preemptions: list[Preemption] = []
    if preempts:
        unplaced = {d.job_id for d in deferred}
        unplaced |= {d.job_id for d in infeasible if d.constraint in ("capacity", "deadline")}
        placed, taken = _preempt_for_at_risk(req, quotas, inner, placements, unplaced)
        done = {p.job_id for p in placed}
        placements = [p for p in placements if p.job_id not in done] + placed
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


# ---------------------------------------------------------------------- preemption


def _latest_start_s(req: PlanRequest, job: TrainingJob) -> float:
    speeds = [_speed(req, job, k) for k in kinds_of(req, job)]
    return job.deadline_s - job.work_h * 3600.0 / max([1e-9, *speeds])


def lost_s(holder: Holder, alloc: Allocation, now_s: int) -> int:
    """Work (s of run time) a victim loses if stopped now: the time since its last
    checkpoint (less than one interval), 0 if it has not started."""
    if alloc.start_s >= now_s:
        return 0
    started = min(holder.started_s, alloc.start_s) if holder.started_s else alloc.start_s
    return (now_s - started) % max(1, holder.checkpoint_interval_s)


@dataclass
class _Preempting:
    """What preemption in one request works with: the request's allocations and their
    holders, this request's placements so far, and the allocations already stopped."""

    req: PlanRequest
    quotas: Quotas
    inner: Inner
    holders: Mapping[str, Holder]
    allocs: Mapping[str, Allocation]
    placements: list[Placement]
    tenant_of: Mapping[str, str]
    gone: set[str] = field(default_factory=set)


def _preempt_for_at_risk(
    req: PlanRequest,
    quotas: Quotas,
    inner: Inner,
    placements: list[Placement],
    unplaced: set[str],
) -> tuple[list[Placement], list[Preemption]]:
    """Place jobs by stopping other work, at most ``MAX_PREEMPTION_TRIES`` re-plans:
    first unplaced jobs whose deadline is at risk (highest priority first), stopping
    lower-priority work; then jobs unplaced or placed to start after the first slot whose
    tenant is within its nominal quota, reclaiming it from tenants that borrow (work of no
    higher priority). A job placed later keeps that placement unless it can start now."""
    holders = {h.job_id: h for h in quotas.holders}
    if not holders:
        return [], []
    waiting = [j for j in req.jobs if j.id in unplaced]
    risky = {j.id for j in waiting if _latest_start_s(req, j) - req.now_s < PREEMPT_SLACK_S}
    tries = [(j, "priority") for j in sorted(waiting, key=_job_key) if j.id in risky]
    managed = {q.tenant for q in quotas.tenants}
    later = {p.job_id for p in placements if p.start_s >= req.now_s + req.slot_s}
    tries += [
        (j, "reclaim")
        for j in sorted(req.jobs, key=_job_key)
        if (j.id in unplaced or j.id in later) and j.id not in risky and j.tenant in managed
    ]
    ctx = _Preempting(
        req,
        quotas,
        inner,
        holders,
        {a.job_id: a for a in req.running_allocations() if a.end_s > req.now_s},
        list(placements),
        {j.id: j.tenant for j in req.jobs} | {h.job_id: h.tenant for h in quotas.holders},
    )
    placed: list[Placement] = []
    taken: list[Preemption] = []
    replans = 0
    for job, why in tries:
        if replans >= MAX_PREEMPTION_TRIES:
            break
        own = [p for p in ctx.placements if p.job_id == job.id]
        ctx.placements = [p for p in ctx.placements if p.job_id != job.id]
        for kind in kinds_of(req, job):
            found = _victims(ctx, job, kind, why)
            if found is None:
                continue
            replans += 1
            victims, site = found
            got = _replan(ctx, job, kind, site, victims)
            if got is not None:
                ctx.gone |= victims
                ctx.placements.append(got)
                placed.append(got)
                taken += [_preemption(ctx, vid, job, why) for vid in sorted(victims)]
                own = []
            break  # one re-plan per job
        ctx.placements += own
    return placed, taken


def _preemption(ctx: _Preempting, vid: str, job: TrainingJob, why: str) -> Preemption:
    h, a = ctx.holders[vid], ctx.allocs[vid]
    loss = lost_s(h, a, ctx.req.now_s)
    lost = (
        f"loses {loss / 3600:.2f} h of run since its last checkpoint "
        f"(interval {h.checkpoint_interval_s / 3600:.2f} h)"
        if loss
        else "had not started: loses no work"
    )
    cause = (
        f"priority {job.priority} > {h.priority}, deadline at risk"
        if why == "priority"
        else f"tenant {job.tenant} reclaims its nominal quota from {h.tenant}, which borrows"
    )
    return Preemption(
        vid,
        job.id,
        a.site_id,
        a.accelerator,
        a.count,
        loss,
        f"{PREEMPTED}: by {job.id} ({cause}); {lost}",
    )


def _victims(
    ctx: _Preempting, job: TrainingJob, kind: str, why: str
) -> tuple[set[str], str] | None:
    """The cheapest set of allocations of ``kind`` at one site whose accelerators, with
    those free, fit ``job``'s gang from now and leave its tenant within quota; ``None`` if
    no site has one. Work that has started must be checkpointable. ``why`` ``priority``:
    lower-priority work; ``reclaim`` (the job's tenant stays within its nominal quota):
    work of no higher priority of other tenants, no more from each than it borrows."""
    req = ctx.req
    now, until = earliest_run(req, job, kind)
    usage = _usage_now(ctx)
    if why == "reclaim" and usage.fits(job.tenant, kind, job.accelerators, now, until)[1] > 0:
        return None
    borrowed: dict[str, int] = {}
    if why == "reclaim":
        for q in ctx.quotas.tenants:
            if q.tenant != job.tenant:
                over = usage.held(q.tenant, kind, req.now_s, req.now_s + 1) - q.nominal.get(kind, 0)
                borrowed[q.tenant] = max(0, over)
    cap: dict[str, int] = defaultdict(int)
    for s in req.network.sites:
        if s.id not in req.down_sites:
            cap[s.id] += sum(p.count for p in s.pools if p.accelerator == kind)
    # What overlaps the job's run from now blocks it (counted whole: an upper bound on the
    # accelerators taken at once); stopping an allocation frees it.
    busy: dict[str, int] = defaultdict(int)
    cands: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for jid, a in ctx.allocs.items():
        if a.accelerator != kind or jid in ctx.gone or a.start_s >= until or a.end_s <= now:
            continue
        busy[a.site_id] += a.count
        h = ctx.holders.get(jid)
        if h is None or not (h.checkpointable or a.start_s >= req.now_s):
            continue
        lower = h.priority < job.priority
        reclaims = h.priority <= job.priority and borrowed.get(h.tenant, 0) > 0
        if (why == "priority" and lower) or (why == "reclaim" and reclaims):
            cands[a.site_id].append((h.priority, lost_s(h, a, req.now_s), jid))
    for p in ctx.placements:
        if p.accelerator == kind and p.start_s < until and p.end_s > now:
            busy[p.site_id] += p.count
    best: tuple[int, str, set[str]] | None = None
    for site_id in sorted(cands):
        free = cap[site_id] - busy[site_id]
        chosen: set[str] = set()
        took: dict[str, int] = defaultdict(int)
        loss = 0
        for _, lost, jid in sorted(cands[site_id]):
            if free >= job.accelerators:
                break
            a, t = ctx.allocs[jid], ctx.holders[jid].tenant
            if why == "reclaim" and took[t] + a.count > borrowed.get(t, 0):
                continue
            took[t] += a.count
            free += a.count
            chosen.add(jid)
            loss += lost * a.count
        if free < job.accelerators or not chosen:
            continue
        if not _quota_after(ctx, job, kind, chosen, (now, until)):
            continue
        if best is None or (loss, site_id) < best[:2]:
            best = (loss, site_id, chosen)
    return None if best is None else (best[2], best[1])


def _usage_now(ctx: _Preempting, victims: frozenset[str] | set[str] = frozenset()) -> Usage:
    """Quota held by the request's allocations (less those stopped) and its placements."""
    usage = Usage(ctx.quotas)
    for jid, a in ctx.allocs.items():
        t = ctx.tenant_of.get(jid)
        if t is not None and jid not in victims and jid not in ctx.gone:
            usage.add(t, a.accelerator, a.count, a.start_s, a.end_s)
    for p in ctx.placements:
        usage.add(ctx.tenant_of[p.job_id], p.accelerator, p.count, p.start_s, p.end_s)
    return usage


def _quota_after(
    ctx: _Preempting, job: TrainingJob, kind: str, victims: set[str], run: tuple[int, int]
) -> bool:
    """Whether ``job`` over ``run`` fits its tenant's quota once the victims (and the
    earlier ones) are stopped, with this request's placements held."""
    return _usage_now(ctx, victims).fits(job.tenant, kind, job.accelerators, *run)[0]


def _replan(
    ctx: _Preempting, job: TrainingJob, kind: str, site_id: str, victims: set[str]
) -> Placement | None:
    """``job`` planned alone on ``kind`` with the victims' (and earlier victims')
    accelerators free and this request's placements taken; its placement if it starts
    within the first slot at ``site_id``."""
    req = ctx.req
    gone = ctx.gone | victims
    running = [a for a in req.running_allocations() if a.job_id not in gone]
    running += [
        Allocation(p.job_id, p.site_id, p.accelerator, p.count, p.start_s, p.end_s)
        for p in ctx.placements
    ]
    sub = replace(
        req,
        jobs=(restrict(req, job, kind),),
        running=(),
        capacity=CapacityLedger(running),
        quotas=None,
    )
    for p in ctx.inner(sub).placements:
        if (
            p.job_id == job.id
            and p.site_id == site_id
            and p.start_s < req.now_s + req.slot_s
            and _quota_after(ctx, job, kind, victims, (p.start_s, p.end_s))
        ):
            return replace(p, reason=f"{p.reason}; by preemption")
    return None
