"""Wire schemas of the REST API (kept apart from the domain and database types)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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


class Page(BaseModel):
    """Paging of a list: ``limit`` items from ``offset``, newest first. Unknown query
    parameters answer 422 (a typo must not silently widen a filter)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class JobQuery(Page):
    state: JobState | None = Field(default=None, description="only jobs in this state")
    name: str | None = Field(default=None, max_length=200, description="only jobs named so")


class AuditQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)
    object_id: str | None = Field(default=None, max_length=80, description="one object's log")


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


class JobOutput(BaseModel):
    job_id: str
    output: str = Field(description="stdout and stderr of the job's process (the tail)")
    truncated: bool = Field(description="true if only the last bytes are shown")


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


Classification = Literal["public", "general", "important", "core", "personal"]


class DatasetIn(BaseModel):
    """A dataset a tenant's jobs read. Its class decides where it may be processed or
    copied (Data Security Law, PIPL); the engine enforces that as a hard constraint."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    size_gb: float = Field(ge=0, le=1e9, allow_inf_nan=False, description="size, GB")
    home_site: str = Field(
        min_length=1, max_length=80, description="site id where the dataset lives"
    )
    classification: Classification = Field(default="general", description="default general")
    individuals: int = Field(
        default=0, ge=0, le=10**10, description="people in it (personal information)"
    )
    sensitive: bool = Field(default=False, description="sensitive personal information")
    export_cleared: bool = Field(
        default=False,
        description="an approved cross-border transfer exists (declared by the tenant, audited)",
    )


class DatasetOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    size_gb: float
    home_site: str
    classification: Classification
    individuals: int
    sensitive: bool
    export_cleared: bool
    created_s: int


class DatasetList(BaseModel):
    items: list[DatasetOut]
    total: int
    limit: int
    offset: int


FiniteFloat = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]


class SeriesIn(BaseModel):
    """Values on a regular grid: ``values[k]`` holds over
    ``[start_s + k*step_s, start_s + (k+1)*step_s)``. Outside it the catalog's signal holds."""

    model_config = ConfigDict(extra="forbid")
    start_s: int = Field(ge=0, le=2**40, description="UTC epoch seconds")
    step_s: int = Field(default=3600, ge=60, le=86400, description="seconds per value")
    values: list[FiniteFloat] = Field(min_length=1, max_length=2976)


class SiteSignalsIn(BaseModel):
    """What an operator or provider posts for a site. A field left out keeps its current
    value; ``null`` returns it to the catalog's."""

    model_config = ConfigDict(extra="forbid")
    capacity: (
        dict[Annotated[str, Field(max_length=80)], Annotated[int, Field(ge=0, le=10**6)]] | None
    ) = Field(default=None, max_length=64, description="accelerators per type now offered")
    price_cny_per_kwh: SeriesIn | None = Field(default=None, description="electricity, CNY/kWh")
    carbon_g_per_kwh: SeriesIn | None = Field(default=None, description="grid, gCO2/kWh")


class SeriesOut(BaseModel):
    start_s: int
    step_s: int
    values: list[float]


class SiteFeedOut(BaseModel):
    capacity: dict[str, int] | None
    price_cny_per_kwh: SeriesOut | None
    carbon_g_per_kwh: SeriesOut | None
    updated_s: int
    updated_by: str


class SiteOut(BaseModel):
    id: str
    name: str
    hub: str
    province: str
    executor: str = Field(description="executor that runs jobs placed here")
    accelerators: dict[str, int] = Field(description="accelerators per type, feeds applied")
    price_cny_per_kwh_now: float | None = Field(description="electricity price now, feeds applied")
    carbon_g_per_kwh_now: float | None = Field(description="grid carbon now, feeds applied")
    feed: SiteFeedOut | None = Field(description="what was last posted for this site")


class ErrorOut(BaseModel):
    error: str
    detail: str
    fields: list[dict[str, str]] = Field(default_factory=list)


class LeaderHealth(BaseModel):
    """Who runs the control loop among the service processes on this database."""

    this_process: bool = Field(description="this process holds the lease and runs the loop")
    candidate: bool = Field(description="this process competes for the loop (not --no-loop)")
    holder: str | None = Field(description="the lease holder's id (host:pid:suffix); None: nobody")
    host: str | None
    pid: int | None
    generation: int = Field(description="grows by one at every change of holder")
    expires_in_s: float | None = Field(description="seconds until the lease lapses unrenewed")
    lease_s: float | None
    renew_s: float | None
    takeover_within_s: float | None = Field(
        description="most seconds from the holder's death to another's first tick"
    )
    first_tick_s: float | None = Field(description="epoch s of this process's first tick as leader")


class Health(BaseModel):
    status: str
    database: str
    leader: LeaderHealth | None = None
