"""/v1/admin/quotas, /v1/quotas and the priority classes: who may use how many accelerators
(``engine.quotas``). Setting is for admins; a tenant sees only its own quota and usage."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from computenet.api.deps import principal, require, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import PriorityClassIn, PriorityClassOut, QuotaIn, QuotaOut
from computenet.errors import NotFoundError
from computenet.store.repository import Principal

router = APIRouter(prefix="/v1", tags=["quotas"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]
ClassName = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


@router.put("/admin/quotas/{tenant_id}", response_model=QuotaOut)
async def set_quota(tenant_id: str, body: QuotaIn, request: Request, who: Who) -> dict[str, object]:
    """Admin only. Set a tenant's quota (audited as ``quota.set``); the next planning round
    admits its jobs within it."""
    require(who, "admin")
    repo = state(request).repo
    return await asyncio.to_thread(
        repo.set_quota, tenant_id, body.nominal, body.borrowing_limit, body.weight, who.tenant_id
    )


@router.delete("/admin/quotas/{tenant_id}", status_code=204)
async def delete_quota(tenant_id: str, request: Request, who: Who) -> Response:
    """Admin only. Remove a tenant's quota: its work is no longer quota-managed."""
    require(who, "admin")
    await asyncio.to_thread(state(request).repo.delete_quota, tenant_id, who.tenant_id)
    return Response(status_code=204)


@router.get("/admin/quotas", response_model=list[QuotaOut])
async def all_quotas(request: Request, who: Who) -> list[dict[str, object]]:
    """Admin only. Every quota with what each tenant holds now."""
    require(who, "admin")
    return await asyncio.to_thread(state(request).repo.quotas, who)


@router.get("/quotas", response_model=list[QuotaOut])
async def my_quota(request: Request, who: Who) -> list[dict[str, object]]:
    """The caller's own quota and usage (an empty list: its work is not quota-managed)."""
    rows = await asyncio.to_thread(state(request).repo.quotas, who)
    return [r for r in rows if r["tenant_id"] == who.tenant_id]


@router.get("/quotas/{tenant_id}", response_model=QuotaOut)
async def one_quota(tenant_id: str, request: Request, who: Who) -> dict[str, object]:
    """A tenant's quota and usage: an admin may read any, a tenant only its own."""
    rows = await asyncio.to_thread(state(request).repo.quotas, who)
    for r in rows:
        if r["tenant_id"] == tenant_id:
            return r
    raise NotFoundError(f"no quota visible for tenant {tenant_id!r}")


@router.put("/admin/priority-classes/{name}", response_model=PriorityClassOut)
async def set_priority_class(
    name: ClassName, body: PriorityClassIn, request: Request, who: Who
) -> dict[str, object]:
    """Admin only. Define or change a priority class (audited as ``priority_class.set``)."""
    require(who, "admin")
    return await asyncio.to_thread(
        state(request).repo.set_priority_class, name, body.priority, who.tenant_id
    )


@router.get("/priority-classes", response_model=list[PriorityClassOut])
async def priority_classes(request: Request, who: Who) -> list[dict[str, object]]:
    """The priority classes a submission may name, lowest first."""
    classes = await asyncio.to_thread(state(request).repo.priority_classes)
    return [{"name": k, "priority": v} for k, v in classes.items()]
