"""Wire schemas of the REST API (kept apart from the domain and database types)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobState = Literal[
    "submitted",
    "placed",
    "transferring",
    "running",
    "checkpointed",
    "succeeded",
    "failed",
    "cancelled",
]


class JobIn(BaseModel):
    """A submission. Only ``name``, ``accelerators`` and ``duration_h`` are required."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    accelerators: int = Field(ge=1, le=100_000, description="accelerators the job needs at once")
    duration_h: float = Field(
        gt=0, le=10_000, allow_inf_nan=False, description="run time on the reference accelerator"
    )
    deadline_s: int | None = Field(
        default=None, ge=0, le=2**40, description="UTC epoch seconds; default: none (7 days)"
    )
    accelerator_types: list[str] = Field(
        default_factory=list, max_length=32, description="allowed types; default: any"
    )
    datasets: list[str] = Field(default_factory=list, max_length=64, description="dataset ids")
    command: str | None = Field(
        default=None, max_length=8192, description="shell command the executor runs; default none"
    )
    priority: int = Field(default=0, ge=-1000, le=1000, description="higher goes first")


class JobOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    state: JobState
    accelerators: int
    duration_h: float
    deadline_s: int | None
    accelerator_types: list[str]
    datasets: list[str]
    command: str | None
    priority: int
    idempotency_key: str | None
    created_s: int
    updated_s: int
    site_id: str | None
    accelerator: str | None
    start_s: int | None
    end_s: int | None
    exit_code: int | None
    message: str | None


class JobList(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class Explanation(BaseModel):
    job_id: str
    state: JobState
    site_id: str | None
    accelerator: str | None
    start_s: int | None
    end_s: int | None
    explanation: dict[str, Any] | None = Field(
        description="breakdown, transfers, alternatives and reason from the engine"
    )


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    role: Literal["tenant", "provider", "admin"] = "tenant"


class TenantCreated(BaseModel):
    id: str
    token: str = Field(description="shown once; only its hash is stored")


class TenantOut(BaseModel):
    id: str
    name: str
    role: str
    created_s: int


class AuditOut(BaseModel):
    id: int
    at_s: int
    actor: str
    action: str
    object_id: str
    detail: dict[str, Any]


class SiteOut(BaseModel):
    id: str
    name: str
    province: str
    executor: str = Field(description="executor that runs jobs placed here")
    accelerators: dict[str, int]


class ErrorOut(BaseModel):
    error: str
    detail: str
    fields: list[dict[str, str]] = Field(default_factory=list)


class Health(BaseModel):
    status: str
    database: str
