"""/v1/services: inference services placed hour by hour (``engine.inference``).

``POST /v1/services`` takes the service model (latency target, token sizes, data class,
accepted accelerator types, minimum replicas) and its demand per user region and hour,
plans its replicas on the service's network and stores the plan;
``GET /v1/services/{id}/placement`` answers the hour-by-hour plan with its reasons. A tenant
sees only its own services."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from computenet.api.deps import principal, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.engine.inference import Demand, InferenceRequest, ServiceSpec
from computenet.engine.inference.plan import plan_inference, plan_to_json
from computenet.errors import InputError, NotFoundError
from computenet.model import Classification
from computenet.store.inference import InferenceStore
from computenet.store.repository import Principal

router = APIRouter(prefix="/v1", tags=["services"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]
ServiceId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^svc-[0-9a-f]+$")]
MAX_HOURS = 168
MAX_REGIONS = 200
Finite = Field(allow_inf_nan=False)


class ServiceIn(BaseModel):
    """An inference service and its demand (requests/s per user region, one value per hour
    from ``start_s``, which is on the hour)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")
    ttft_target_ms: float = Field(gt=0, le=60_000, allow_inf_nan=False)
    prompt_tokens_mean: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)
    prompt_tokens_p99: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)
    output_tokens_mean: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)
    accelerator_types: list[str] = Field(default_factory=list, max_length=20)
    accelerators_per_replica: int = Field(default=1, ge=1, le=64)
    weights_gb: float = Field(default=13.5, gt=0, le=10_000, allow_inf_nan=False)
    data_class: Literal["public", "general", "important", "core", "personal"] = "general"
    min_replicas: int = Field(default=1, ge=0, le=10_000)
    headroom: float = Field(default=0.15, ge=0, le=2, allow_inf_nan=False)
    policy: Literal["cost-carbon", "casper", "carbon-only", "latency-only"] = "cost-carbon"
    method: Literal["auto", "milp", "heuristic"] = "auto"
    start_s: int = Field(ge=0, lt=2**40, multiple_of=3600)
    demand_rps: dict[str, list[Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]]] = Field(
        min_length=1, max_length=MAX_REGIONS
    )


def _store(request: Request) -> InferenceStore:
    app_state = request.app.state
    if getattr(app_state, "inference", None) is None:
        app_state.inference = InferenceStore(state(request).repo.engine)
    store: InferenceStore = app_state.inference
    return store


def _request(body: ServiceIn) -> InferenceRequest:
    lengths = {len(v) for v in body.demand_rps.values()}
    if len(lengths) != 1 or not (1 <= next(iter(lengths)) <= MAX_HOURS):
        raise InputError(
            "every region needs the same number of hourly rates",
            where="demand_rps",
            fix=f"give each region 1 to {MAX_HOURS} values, one per hour",
        )
    spec = ServiceSpec(
        id=body.name,
        ttft_target_ms=body.ttft_target_ms,
        prompt_tokens_mean=body.prompt_tokens_mean,
        prompt_tokens_p99=body.prompt_tokens_p99,
        output_tokens_mean=body.output_tokens_mean,
        accelerator_types=tuple(body.accelerator_types),
        accelerators_per_replica=body.accelerators_per_replica,
        weights_gb=body.weights_gb,
        data_class=Classification(body.data_class),
        min_replicas=body.min_replicas,
        headroom=body.headroom,
    )
    ids = tuple(sorted(body.demand_rps))
    rps = np.array([body.demand_rps[r] for r in ids], dtype=np.float64)
    demand = Demand(ids, rps, body.start_s, source="POST /v1/services")
    return InferenceRequest(spec, demand, policy=body.policy, method=body.method)


@router.post("/services", status_code=201)
async def create_service(body: ServiceIn, request: Request, who: Who) -> dict[str, Any]:
    """Plan the service's replicas hour by hour and store the plan (audited)."""
    network = state(request).network
    if network is None:
        raise NotFoundError("this service has no network loaded: nothing to place on")
    req = _request(body)
    plan = await asyncio.to_thread(plan_inference, network, req)
    placement = plan_to_json(plan)
    spec = body.model_dump(exclude={"demand_rps", "start_s", "name"})
    row = await asyncio.to_thread(
        _store(request).create, who, body.name, body.start_s, spec,
        {"demand_rps": body.demand_rps}, placement,
    )  # fmt: skip
    return {"id": row["id"], "name": row["name"], "placement": placement}


@router.get("/services/{service_id}")
async def get_service(service_id: ServiceId, request: Request, who: Who) -> dict[str, Any]:
    """The service as submitted, with its placement."""
    return await asyncio.to_thread(_store(request).get, who, service_id)


@router.get("/services/{service_id}/placement")
async def get_placement(service_id: ServiceId, request: Request, who: Who) -> dict[str, Any]:
    """The hour-by-hour plan: replicas per site and type, the regions each serves, and the
    reasons (cost, latency, data rule)."""
    row = await asyncio.to_thread(_store(request).get, who, service_id)
    placement: dict[str, Any] = row["placement"]
    return placement
