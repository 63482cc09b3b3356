"""The dashboard's reads: pages of jobs, one job with its history, load and totals, audit.

Every query takes the caller's ``Scope`` and filters by it in SQL, so a tenant's rows never
leave the database for another tenant's page. Reads go through the repository's session
factory (``Repository.sessions``); nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from computenet.errors import NotFoundError
from computenet.store.models import AuditRow, DatasetRow, JobRow, TenantRow
from computenet.store.repository import Principal, Repository, dataset_dict, job_dict

Q = TypeVar("Q", bound=Select)  # a select of any row shape

PLANNED_STATES = ("placed", "transferring", "running")
"""States whose placement holds capacity (planned load)."""
PLACED_STATES = (*PLANNED_STATES, "checkpointed", "succeeded", "failed")
"""States whose placement (and its cost) the totals count: planned, running or done."""


@dataclass(frozen=True)
class Scope:
    """What a caller may see. ``tenant_id`` None: every tenant's jobs (an admin);
    ``site_ids`` None: every site; a provider sees the sites it owns (bound by an admin)."""

    principal: Principal
    tenant_id: str | None
    site_ids: frozenset[str] | None

    @property
    def role(self) -> str:
        return self.principal.role


def scope_of(repo: Repository, who: Principal) -> Scope:
    """The caller's scope: an admin sees everything; a tenant its own jobs and datasets and
    every site (the network is what it submits to); a provider its own jobs and the sites
    it owns (``PUT /v1/tenants/{id}/sites``, the only sites it may post for)."""
    if who.role == "admin":
        return Scope(who, None, None)
    if who.role == "provider":
        return Scope(who, who.tenant_id, frozenset(repo.provider_sites(who.tenant_id)))
    return Scope(who, who.tenant_id, None)


def data_version(repo: Repository) -> int:
    """The newest audit entry's id: every change to jobs, datasets and site feeds writes
    one in its own transaction, so this moves whenever what the views show may have."""
    with repo.sessions() as s:
        return int(s.scalar(select(func.max(AuditRow.id))) or 0)


def _scoped(q: Q, scope: Scope) -> Q:
    return q if scope.tenant_id is None else q.where(JobRow.tenant_id == scope.tenant_id)


def _aggregate_scoped(q: Q, scope: Scope) -> Q:
    """For sums over jobs (load, totals): a provider counts every tenant's jobs at its own
    sites (it hosts them; no job is named), anyone else as ``_scoped``."""
    if scope.role == "provider" and scope.site_ids is not None:
        return q.where(JobRow.site_id.in_(sorted(scope.site_ids)))
    return _scoped(q, scope)


def _breakdown(name: str) -> Any:
    """One number of a job's cost breakdown, read inside the database (the explanation's
    alternatives never leave it for a table page)."""
    return JobRow.explanation["breakdown"][name].as_float()


@dataclass(frozen=True)
class JobFilter:
    """The jobs table's filters; None or empty: no filter."""

    state: str | None = None
    tenant_id: str | None = None
    site_id: str | None = None
    text: str | None = None  # a part of the name or the id


def list_jobs(
    repo: Repository, scope: Scope, flt: JobFilter, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of jobs, newest first, with cost and carbon; and how many match."""
    q = _scoped(select(JobRow.id), scope)
    if flt.state:
        q = q.where(JobRow.state == flt.state)
    if flt.tenant_id and scope.tenant_id is None:
        q = q.where(JobRow.tenant_id == flt.tenant_id)
    if flt.site_id:
        q = q.where(JobRow.site_id == flt.site_id)
    if flt.text:
        like = "%" + flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(or_(JobRow.name.like(like, escape="\\"), JobRow.id.like(like, escape="\\")))
    with repo.sessions() as s:
        total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
        # The page's ids first (an index walk and a sort of ids), then the columns and the
        # cost numbers of those rows alone: sorting whole rows would read every matching
        # job's explanation.
        ids = list(
            s.scalars(q.order_by(JobRow.created_s.desc(), JobRow.id).limit(limit).offset(offset))
        )
        page = (
            select(
                JobRow.id,
                JobRow.name,
                JobRow.tenant_id,
                TenantRow.name,
                JobRow.state,
                JobRow.site_id,
                JobRow.accelerator,
                JobRow.accelerators,
                JobRow.start_s,
                JobRow.end_s,
                JobRow.created_s,
                _breakdown("cost_cny"),
                _breakdown("carbon_kg"),
            )
            .outerjoin(TenantRow, TenantRow.id == JobRow.tenant_id)
            .where(JobRow.id.in_(ids))
            .order_by(JobRow.created_s.desc(), JobRow.id)
        )
        keys = (
            "id",
            "name",
            "tenant_id",
            "tenant_name",
            "state",
            "site_id",
            "accelerator",
            "accelerators",
            "start_s",
            "end_s",
            "created_s",
            "cost_cny",
            "carbon_kg",
        )
        items = [dict(zip(keys, row, strict=True)) for row in s.execute(page)] if ids else []
    return items, total


def _visible_job(s: Session, scope: Scope, job_id: str) -> JobRow:
    row = s.get(JobRow, job_id)
    # Another tenant's job answers exactly like a missing one (as the API does).
    if row is None or (scope.tenant_id is not None and row.tenant_id != scope.tenant_id):
        raise NotFoundError(f"no job {job_id!r}")
    return row


def job_detail(repo: Repository, scope: Scope, job_id: str) -> dict[str, Any]:
    """One job as the API shows it, with its explanation, its history (every audited
    change, oldest first) and its datasets with the rules that govern them."""
    with repo.sessions() as s:
        row = _visible_job(s, scope, job_id)
        job = job_dict(row)
        job["explanation"] = row.explanation
        history = s.scalars(
            select(AuditRow).where(AuditRow.object_id == job_id).order_by(AuditRow.id)
        )
        job["history"] = [
            {"at_s": a.at_s, "actor": a.actor, "action": a.action, "detail": a.detail}
            for a in history
        ]
        ids = list(row.datasets or [])
        datasets: list[DatasetRow] = (
            list(s.scalars(select(DatasetRow).where(DatasetRow.id.in_(ids)))) if ids else []
        )
        # A dataset is the job owner's (the API checks at submission); filter anyway.
        job["datasets_detail"] = [dataset_dict(d) for d in datasets if d.tenant_id == row.tenant_id]
        tenant = s.get(TenantRow, row.tenant_id)
        job["tenant_name"] = tenant.name if tenant else None
    return job


def planned_runs(
    repo: Repository, scope: Scope, start_s: int, end_s: int
) -> list[tuple[str, int, int, int]]:
    """``(site_id, accelerators, start_s, end_s)`` of the visible jobs that hold capacity
    somewhere in ``[start_s, end_s)``."""
    q = _aggregate_scoped(
        select(JobRow.site_id, JobRow.accelerators, JobRow.start_s, JobRow.end_s)
        .where(JobRow.state.in_(PLANNED_STATES))
        .where(JobRow.start_s < end_s, JobRow.end_s > start_s),
        scope,
    )
    with repo.sessions() as s:
        return [
            (site, int(count), int(start), int(end))
            for site, count, start, end in s.execute(q)
            if site and start is not None and end is not None
        ]


def placed_costs(
    repo: Repository, scope: Scope, start_s: int, end_s: int
) -> list[tuple[str, int, int, int, float, float, float]]:
    """``(site_id, accelerators, start_s, end_s, cost_cny, carbon_kg, energy_kwh)`` of the
    visible placed or finished jobs overlapping ``[start_s, end_s)`` (cancelled ones and
    those never placed have no placement to count)."""
    q = _aggregate_scoped(
        select(
            JobRow.site_id,
            JobRow.accelerators,
            JobRow.start_s,
            JobRow.end_s,
            # The breakdown as one document: one read of each explanation, not three.
            JobRow.explanation["breakdown"],
        )
        .where(JobRow.state.in_(PLACED_STATES))
        .where(JobRow.start_s < end_s, JobRow.end_s > start_s),
        scope,
    )
    out = []
    with repo.sessions() as s:
        for site, count, start, end, bd in s.execute(q):
            if not site or start is None or end is None:
                continue
            bd = bd if isinstance(bd, dict) else {}
            out.append(
                (
                    site,
                    int(count),
                    int(start),
                    int(end),
                    float(bd.get("cost_cny") or 0.0),
                    float(bd.get("carbon_kg") or 0.0),
                    float(bd.get("energy_kwh") or 0.0),
                )
            )
    return out


def state_counts(repo: Repository, scope: Scope) -> dict[str, int]:
    q = _scoped(select(JobRow.state, func.count()).group_by(JobRow.state), scope)
    with repo.sessions() as s:
        return {state: int(n) for state, n in s.execute(q)}


def _audit_scope(q: Q, scope: Scope) -> Q:
    """An admin reads every entry; anyone else its own actions and what happened to its
    own jobs and datasets."""
    if scope.tenant_id is None:
        return q
    own_jobs = select(JobRow.id).where(JobRow.tenant_id == scope.tenant_id)
    own_data = select(DatasetRow.id).where(DatasetRow.tenant_id == scope.tenant_id)
    return q.where(
        or_(
            AuditRow.actor == scope.tenant_id,
            AuditRow.object_id.in_(own_jobs),
            AuditRow.object_id.in_(own_data),
        )
    )


def search_audit(
    repo: Repository, scope: Scope, text: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Audit entries newest first; ``text`` matches the action, the object or the actor."""
    q = _audit_scope(select(AuditRow), scope)
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(
            or_(
                AuditRow.action.like(like, escape="\\"),
                AuditRow.object_id.like(like, escape="\\"),
                AuditRow.actor.like(like, escape="\\"),
            )
        )
    with repo.sessions() as s:
        rows = s.scalars(q.order_by(AuditRow.id.desc()).limit(limit).offset(offset))
        return [
            {
                "id": r.id,
                "at_s": r.at_s,
                "actor": r.actor,
                "action": r.action,
                "object_id": r.object_id,
                "detail": r.detail,
            }
            for r in rows
        ]


def changes_since(
    repo: Repository, scope: Scope, cursor: int | None, limit: int = 500
) -> dict[str, Any]:
    """What changed after audit entry ``cursor``: the visible jobs whose state changed and
    the new cursor. ``cursor`` None: just the current cursor (the page's starting point)."""
    with repo.sessions() as s:
        last = int(s.scalar(select(func.max(AuditRow.id))) or 0)
        if cursor is None or cursor >= last:
            return {"cursor": last, "jobs": [], "more": False}
        q = _audit_scope(
            select(AuditRow.id, AuditRow.object_id)
            .where(AuditRow.id > cursor)
            .where(AuditRow.action.in_(("job.state", "job.submit"))),
            scope,
        )
        rows = list(s.execute(q.order_by(AuditRow.id).limit(limit)))
        more = len(rows) == limit
        new_cursor = int(rows[-1][0]) if more else last
        ids = sorted({r[1] for r in rows})
        if not ids:
            return {"cursor": new_cursor, "jobs": [], "more": more}
        states = _scoped(
            select(JobRow.id, JobRow.state).where(JobRow.id.in_(ids)),
            scope,
        )
        jobs = [{"id": i, "state": st} for i, st in s.execute(states.order_by(JobRow.id))]
        return {"cursor": new_cursor, "jobs": jobs, "more": more}


def tenant_names(repo: Repository, scope: Scope) -> list[dict[str, str]]:
    """Tenants for the jobs filter: all for an admin, the caller alone otherwise."""
    q = select(TenantRow.id, TenantRow.name).order_by(TenantRow.name)
    if scope.tenant_id is not None:
        q = q.where(TenantRow.id == scope.tenant_id)
    with repo.sessions() as s:
        return [{"id": i, "name": n} for i, n in s.execute(q)]


def datasets_of(repo: Repository, scope: Scope, limit: int = 200) -> list[dict[str, Any]]:
    q = select(DatasetRow).order_by(DatasetRow.created_s.desc(), DatasetRow.id).limit(limit)
    if scope.tenant_id is not None:
        q = q.where(DatasetRow.tenant_id == scope.tenant_id)
    with repo.sessions() as s:
        return [dataset_dict(d) for d in s.scalars(q)]


def moved_data(
    repo: Repository, scope: Scope, states: Sequence[str] = PLANNED_STATES, limit: int = 500
) -> list[dict[str, Any]]:
    """Dataset copies of the visible planned jobs (for the map's links): from, to, size;
    of the first ``limit`` such jobs by id (the map draws lines, not a ledger)."""
    transfers = JobRow.explanation["transfers"]
    q = _scoped(
        select(JobRow.id, transfers)
        .where(JobRow.state.in_(list(states)))
        .where(func.json_array_length(transfers) > 0)
        .order_by(JobRow.id)
        .limit(limit),
        scope,
    )
    out = []
    with repo.sessions() as s:
        for job_id, moves in s.execute(q):
            for t in moves or []:
                if isinstance(t, dict) and t.get("from_site") != t.get("to_site"):
                    out.append(dict(t, job_id=job_id))
    return out
