"""/v1/tenants and /v1/audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from computenet.api.deps import principal, require, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import (
    AuditOut,
    AuditQuery,
    PermissionsIn,
    ProviderSitesIn,
    TenantCreated,
    TenantIn,
    TenantOut,
)
from computenet.errors import InputError
from computenet.store.repository import Principal

router = APIRouter(prefix="/v1", tags=["tenants"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]


@router.post("/tenants", status_code=201, response_model=TenantCreated)
def create_tenant(body: TenantIn, request: Request, who: Who) -> dict[str, str]:
    """Admin only. Returns the new tenant's token once; only its hash is stored.
    ``permissions`` (default none) are granted at once, e.g. ``["commands"]``."""
    require(who, "admin")
    _known_sites(request, body.sites)
    tenant_id, token = state(request).repo.create_tenant(
        body.name, body.role, who.tenant_id, body.permissions, body.sites
    )
    return {"id": tenant_id, "token": token}


@router.put("/tenants/{tenant_id}/sites", response_model=TenantOut)
def set_provider_sites(
    tenant_id: str, body: ProviderSitesIn, request: Request, who: Who
) -> dict[str, object]:
    """Admin only. The complete set of sites a provider owns: the only sites it may post
    capacity, prices and signals for. Audited as ``provider.sites``."""
    require(who, "admin")
    _known_sites(request, body.sites)
    return state(request).repo.set_provider_sites(tenant_id, body.sites, who.tenant_id)


def _known_sites(request: Request, site_ids: list[str]) -> None:
    network = state(request).network
    known = {s.id for s in network.sites} if network is not None else set()
    for k, site_id in enumerate(site_ids):
        if site_id not in known:
            raise InputError(
                f"no site {site_id!r} in the loaded network",
                where=f"sites[{k}]",
                fix="use site ids from GET /v1/sites",
            )


@router.put("/tenants/{tenant_id}/permissions", response_model=TenantOut)
def set_permissions(
    tenant_id: str, body: PermissionsIn, request: Request, who: Who
) -> dict[str, object]:
    """Admin only. Grant (``true``) or revoke (``false``) a tenant's permissions, e.g.
    ``{"commands": true}`` lets it submit commands. Audited as ``tenant.permissions``."""
    require(who, "admin")
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    return state(request).repo.set_permissions(tenant_id, changes, who.tenant_id)


@router.get("/tenants", response_model=list[TenantOut])
def list_tenants(request: Request, who: Who) -> list[dict[str, object]]:
    require(who, "admin")
    return state(request).repo.list_tenants()


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    request: Request, who: Who, q: Annotated[AuditQuery, Query()]
) -> list[dict[str, object]]:
    """State changes with who and when, newest first (a tenant sees its own actions)."""
    return state(request).repo.audit(who, object_id=q.object_id, limit=q.limit, offset=q.offset)
