"""/v1/jobs: submit, read, list, cancel, explain."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from computenet.api.deps import ServiceState, principal, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import (
    Explanation,
    JobIn,
    JobList,
    JobOut,
    JobOutput,
    JobQuery,
    ReasonOut,
)
from computenet.engine import reasons
from computenet.errors import ForbiddenError, InputError
from computenet.store.repository import JobSpec, Principal

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)
OUTPUT_BYTES = 64 * 1024


async def job_principal(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller, if its role may handle jobs: a grid operator posts grid events and reads
    their reports, and neither submits nor reads jobs."""
    if who.role == "grid-operator":
        raise ForbiddenError(
            "role 'grid-operator' may not submit or read jobs; it may post grid events "
            "(POST /v1/grid-events) and read their reports"
        )
    return who


Who = Annotated[Principal, Depends(job_principal)]


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    responses={
        200: {"model": JobOut, "description": "the Idempotency-Key was used before: its job"}
    },
)
async def submit_job(
    body: JobIn,
    request: Request,
    who: Who,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Submit a job. Acknowledged (201) only after it is committed. The same
    ``Idempotency-Key`` returns the same job (200) and never creates a second.

    Defaults: no deadline (it must finish within 7 days), any accelerator type, no
    datasets, no command (the executor runs a placeholder that succeeds), priority 0.
    ``priority_class`` names a class (``GET /v1/priority-classes``) whose priority the job
    gets instead."""
    st = state(request)
    if body.command is not None:
        await _check_may_run_commands(st, who)
    if body.accelerator_types and st.network is not None:
        unknown = sorted(set(body.accelerator_types) - set(st.network.accelerators))
        if unknown:
            raise InputError(
                f"unknown accelerator type {unknown[0]!r}",
                where="accelerator_types",
                fix=f"use some of: {', '.join(sorted(st.network.accelerators))}",
            )
    if body.datasets:
        missing = await asyncio.to_thread(st.repo.missing_datasets, who, body.datasets)
        if missing:
            raise InputError(
                f"unknown dataset {missing[0]!r}",
                where="datasets",
                fix="register it with POST /v1/datasets and use the id it returns",
            )
    priority = body.priority
    if body.priority_class is not None:
        priority = await _class_priority(st, body.priority_class, body.priority)
    spec = JobSpec(
        name=body.name,
        accelerators=body.accelerators,
        duration_h=body.duration_h,
        deadline_s=body.deadline_s,
        accelerator_types=tuple(body.accelerator_types),
        datasets=tuple(body.datasets),
        command=body.command,
        priority=priority,
        checkpointable=body.checkpointable,
        checkpoint_interval_s=body.checkpoint_interval_s,
        flex_class=body.flex_class,
    )
    job, created = await st.batcher.submit((who, spec, idempotency_key))
    # The dict is built by the repository with exactly JobOut's fields; answering it
    # directly skips a second validation pass on the hot path (the tests check the shape).
    return JSONResponse(
        job, status_code=201 if created else 200, headers={"Location": f"/v1/jobs/{job['id']}"}
    )


async def _class_priority(st: ServiceState, name: str, priority: int) -> int:
    """The priority of class ``name``; a clear error when it is unknown or when a different
    ``priority`` was given too."""
    classes = await asyncio.to_thread(st.repo.priority_classes)
    if name not in classes:
        raise InputError(
            f"unknown priority class {name!r}",
            where="priority_class",
            fix=f"use one of: {', '.join(classes)} (GET /v1/priority-classes)",
        )
    if priority not in (0, classes[name]):
        raise InputError(
            f"priority {priority} and priority_class {name!r} ({classes[name]}) disagree",
            where="priority_class",
            fix="give one of priority or priority_class",
        )
    return classes[name]


async def _check_may_run_commands(st: ServiceState, who: Principal) -> None:
    """A command runs on a site's machines: only tenants an admin trusted with it may send
    one. Read from the database, not the token cache, so a revocation applies at once."""
    if not await asyncio.to_thread(st.repo.has_permission, who.tenant_id, "commands"):
        raise ForbiddenError(
            f"tenant {who.tenant_id} may not submit a command: running commands needs the "
            "'commands' permission. An admin grants it with PUT "
            f'/v1/tenants/{who.tenant_id}/permissions {{"commands": true}} (or `computenet '
            "tenants --grant commands NAME`); without a command the job runs a placeholder"
        )


@router.get("", response_model=JobList)
def list_jobs(request: Request, who: Who, q: Annotated[JobQuery, Query()]) -> dict[str, object]:
    """The caller's jobs (all jobs for an admin), newest first."""
    items, total = state(request).repo.list_jobs(
        who, state=q.state, name=q.name, limit=q.limit, offset=q.offset
    )
    items = [_rendered(j) for j in items]
    return {"items": items, "total": total, "limit": q.limit, "offset": q.offset}


def _rendered(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with its stored reasons rendered again from their codes and facts
    (``engine.reasons.rendered``): every reader sees the same words for the same code."""
    return dict(d, reasons=reasons.rendered(d.get("reasons") or ()))


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, request: Request, who: Who) -> dict[str, object]:
    """The job, with its structured reasons (``reasons``, as ``/explain``)."""
    return _rendered(state(request).repo.get_job(who, job_id))


@router.get("/{job_id}/placement", response_model=Explanation)
def get_placement(job_id: str, request: Request, who: Who) -> dict[str, object]:
    """Where and when the job runs, with the engine's explanation."""
    return _rendered(state(request).repo.get_explanation(who, job_id))


@router.get("/{job_id}/explain", response_model=list[ReasonOut])
def explain_job(job_id: str, request: Request, who: Who) -> list[dict[str, Any]]:
    """Why the job is where it is: a list of ``{"code", "role", "message", ...facts}``
    (``computenet.engine.reasons``), its own decision first, then the alternatives it
    beat, each group sorted by code and message. Empty until it is planned; kept across
    restarts (stored with the job)."""
    return reasons.rendered(state(request).repo.get_reasons(who, job_id))


@router.get("/{job_id}/output", response_model=JobOutput)
def get_output(job_id: str, request: Request, who: Who) -> dict[str, object]:
    """What the job's run printed so far (stdout and stderr, the last 64 KiB), read through
    its site's executor; empty until it is dispatched, or when that executor keeps no logs.
    503 when the site's engine does not answer."""
    st = state(request)
    job = st.repo.get_job(who, job_id)
    dispatch = st.repo.dispatch_of(job_id)
    text, truncated = "", False
    if dispatch is not None:
        site, request_id, local_id = dispatch
        executor = st.executors.get(site)
        if executor is not None and executor.capabilities.logs:
            text, truncated = executor.output(request_id, local_id, OUTPUT_BYTES)
    return {"job_id": job["id"], "output": text, "truncated": truncated}


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, request: Request, who: Who) -> dict[str, object]:
    """Cancel; the live loop kills a running process. Cancelling twice is a no-op;
    a finished job answers 409."""
    return state(request).repo.cancel_job(who, job_id)
