"""/v1/datasets: register, read and list a tenant's datasets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from computenet.api.deps import principal, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import DatasetIn, DatasetList, DatasetOut, Page
from computenet.errors import InputError
from computenet.store.repository import DatasetSpec, Principal

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]


@router.post("", status_code=201, response_model=DatasetOut)
def create_dataset(body: DatasetIn, request: Request, who: Who) -> dict[str, Any]:
    """Register a dataset at its home site; jobs name it in ``datasets``. Only its owner
    (and an admin) can see it or use it."""
    st = state(request)
    if st.network is not None and body.home_site not in {s.id for s in st.network.sites}:
        raise InputError(
            f"unknown site {body.home_site!r}",
            where="home_site",
            fix="use a site id from GET /v1/sites",
        )
    return st.repo.create_dataset(who, DatasetSpec(**body.model_dump()))


@router.get("", response_model=DatasetList)
def list_datasets(request: Request, who: Who, q: Annotated[Page, Query()]) -> dict[str, Any]:
    """The caller's datasets (all for an admin), newest first."""
    items, total = state(request).repo.list_datasets(who, limit=q.limit, offset=q.offset)
    return {"items": items, "total": total, "limit": q.limit, "offset": q.offset}


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, request: Request, who: Who) -> dict[str, Any]:
    return state(request).repo.get_dataset(who, dataset_id)
