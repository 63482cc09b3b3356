"""/v1/tenants and /v1/audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from computenet.api.deps import principal, require, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import AuditOut, TenantCreated, TenantIn, TenantOut
from computenet.store.repository import Principal

router = APIRouter(prefix="/v1", tags=["tenants"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]


@router.post("/tenants", status_code=201, response_model=TenantCreated)
def create_tenant(body: TenantIn, request: Request, who: Who) -> dict[str, str]:
    """Admin only. Returns the new tenant's token once; only its hash is stored."""
    require(who, "admin")
    tenant_id, token = state(request).repo.create_tenant(body.name, body.role, who.tenant_id)
    return {"id": tenant_id, "token": token}


@router.get("/tenants", response_model=list[TenantOut])
def list_tenants(request: Request, who: Who) -> list[dict[str, object]]:
    require(who, "admin")
    return state(request).repo.list_tenants()


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    request: Request,
    who: Who,
    object_id: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, object]]:
    """State changes with who and when, newest first (a tenant sees its own actions)."""
    return state(request).repo.audit(who, object_id=object_id, limit=limit, offset=offset)
