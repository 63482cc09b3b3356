"""/v1/sites: the network's sites and which executor runs jobs there."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from computenet.api.deps import principal, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import SiteOut
from computenet.store.repository import Principal

router = APIRouter(prefix="/v1/sites", tags=["sites"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[SiteOut])
def list_sites(request: Request, who: Annotated[Principal, Depends(principal)]) -> list[dict]:
    """Sites of the loaded network. On this single machine every site maps to the
    ``local`` executor unless configured otherwise."""
    net = state(request).network
    if net is None:
        return []
    out = []
    for site in net.sites:
        counts: dict[str, int] = {}
        for pool in site.pools:
            counts[pool.accelerator] = counts.get(pool.accelerator, 0) + pool.count
        out.append(
            {
                "id": site.id,
                "name": site.name,
                "province": site.province,
                "executor": "local",
                "accelerators": counts,
            }
        )
    return out
