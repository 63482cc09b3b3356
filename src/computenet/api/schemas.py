"""Wire schemas of the REST API (kept apart from the domain and database types)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from computenet.safetext import COMMAND_ALLOWED, refusal


def _no_controls(allowed: str) -> AfterValidator:
    """Refuse NUL bytes and other control characters (except ``allowed``) with a 422 that
    names the field: such text would break ``execve`` or lie in logs and shells."""

    def check(value: str) -> str:
        reason = refusal(value, allowed)
        if reason is not None:
            raise PydanticCustomError("control_character", reason)
        return value

    return AfterValidator(check)


# The same rule as a JSON Schema pattern, so /openapi.json tells clients (and a schema
# fuzzer) which strings are valid; the validator above gives the readable 422.
# The end is a lookahead, not "$": Python's "$" also matches before a final newline.
_TEXT_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*(?![\\s\\S])"
_COMMAND_PATTERN = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*(?![\\s\\S])"

Text = Annotated[str, Field(json_schema_extra={"pattern": _TEXT_PATTERN}), _no_controls("")]
"""A name, an id or a path: no control characters at all."""
CommandText = Annotated[
    str, Field(json_schema_extra={"pattern": _COMMAND_PATTERN}), _no_controls(COMMAND_ALLOWED)
]
"""A shell command: newlines and tabs allowed, no other control characters."""

ClassName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
"""A priority class name: lower-case letters, digits, ``_.-``."""

_TYPE_PATTERN = r"^[A-Za-z0-9_.-]{1,80}$"


def _type_names(counts: dict[str, int]) -> dict[str, int]:
    for name in counts:
        if not re.fullmatch(_TYPE_PATTERN, name):
            raise PydanticCustomError(
                "accelerator_type",
                "accelerator type names are 1-80 letters, digits or _.- (e.g. A100)",
            )
    return counts


AcceleratorCounts = Annotated[
    dict[str, Annotated[int, Field(ge=0, le=10_000_000)]],
    Field(json_schema_extra={"propertyNames": {"pattern": _TYPE_PATTERN}}),
    AfterValidator(_type_names),
]
"""Accelerators per accelerator type, e.g. ``{"A100": 8}``."""


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer, not a boolean")
    return value


Permission = Literal["commands"]
"""``commands``: the tenant may submit a ``command`` that an executor runs."""

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

    # The schema states the one rule between fields too (an interval needs
    # checkpointable: true), so a schema-driven client never sends what answers 422.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # (null is the default: only a number needs checkpointable: true)
            "if": {
                "required": ["checkpoint_interval_s"],
                "properties": {"checkpoint_interval_s": {"type": "integer"}},
            },
            "then": {
                "required": ["checkpointable"],
                "properties": {"checkpointable": {"const": True}},
            },
        },
    )
    name: Text = Field(min_length=1, max_length=200)
    accelerators: int = Field(ge=1, le=100_000, description="accelerators the job needs at once")
    duration_h: float = Field(
        gt=0, le=10_000, allow_inf_nan=False, description="run time on the reference accelerator"
    )
    deadline_s: int | None = Field(
        default=None, ge=0, le=2**40, description="UTC epoch seconds; default: none (7 days)"
    )
    accelerator_types: list[Text] = Field(
        default_factory=list, max_length=32, description="allowed types; default: any"
    )
    datasets: list[Text] = Field(default_factory=list, max_length=64, description="dataset ids")
    command: CommandText | None = Field(
        default=None,
        max_length=8192,
        description="shell command the executor runs (needs the tenant's 'commands' "
        "permission); default none",
    )
    priority: int = Field(default=0, ge=-1000, le=1000, description="higher goes first")
    priority_class: ClassName | None = Field(
        default=None,
        description="a named priority class (GET /v1/priority-classes; defaults low, normal, "
        "high), used instead of priority; a higher class may preempt checkpointable work of a "
        "lower one under the fair-share policy",
    )
    checkpointable: bool = Field(
        default=False,
        description="the job saves a checkpoint every checkpoint_interval_s and can resume "
        "(COMPUTENET_RESUME=1) where its last one left off, e.g. at another site after a "
        "failure; default false",
    )
    checkpoint_interval_s: int | None = Field(
        default=None,
        ge=60,
        le=7 * 24 * 3600,
        description="seconds between checkpoints of a checkpointable job; default 3600",
    )
    flex_class: int = Field(
        default=0,
        ge=0,
        le=3,
        description="how much a grid event may slow it: 0 not at all (default), 1 by 10 %, "
        "2 by 25 %, 3 by 50 % (its finish may move by that share of its run, never past its "
        "deadline)",
    )

    @field_validator("checkpoint_interval_s")
    @classmethod
    def _interval_needs_checkpoints(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and not info.data.get("checkpointable", False):
            raise ValueError(
                "set for a job that is not checkpointable: "
                "set checkpointable to true or leave checkpoint_interval_s out"
            )
        return v


class Page(BaseModel):
    """Paging of a list: ``limit`` items from ``offset``, newest first. Unknown query
    parameters answer 422 (a typo must not silently widen a filter)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class JobQuery(Page):
    state: JobState | None = Field(default=None, description="only jobs in this state")
    name: Text | None = Field(default=None, max_length=200, description="only jobs named so")


class AuditQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)
    object_id: Text | None = Field(default=None, max_length=80, description="one object's log")


class ReasonOut(BaseModel):
    """One structured reason (``computenet.engine.reasons``): ``code`` (a ``Code``),
    ``role`` (placed, deferred, infeasible, rejected), ``message`` rendered from them, and
    the facts behind it as further keys with units in their names (``site_id``,
    ``objective_diff_cny``, ``cost_diff_cny``, ``carbon_diff_kg``, ``late_h``,
    ``classification``, ``rule_source``, ...)."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(description="the reason code, e.g. cost, data_rule, capacity, deadline")
    role: str = Field(description="placed | deferred | infeasible | rejected")
    message: str = Field(description="one sentence rendered from the code and the facts")


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
    executor: str | None = Field(description="the site whose executor runs it, once dispatched")
    local_id: str | None = Field(
        description="what the site's engine calls the run (e.g. slurm:sitea:42)"
    )
    checkpointable: bool
    checkpoint_interval_s: int | None
    work_done_h: float = Field(description="work saved by checkpoints at sites it left, hours")
    checkpoints: int = Field(description="checkpoints it resumes from (0: from the start)")
    reasons: list[ReasonOut] = Field(
        default_factory=list,
        description="why it was placed, deferred or refused and why alternatives lost, sorted",
    )
    flex_class: int = Field(default=0, description="how much a grid event may slow it (0-3)")


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
    executor: str | None = Field(description="the site whose executor runs it, once dispatched")
    local_id: str | None = Field(description="what the site's engine calls the run")
    explanation: dict[str, Any] | None = Field(
        description="breakdown, transfers, alternatives and reason from the engine"
    )
    reasons: list[ReasonOut] = Field(
        default_factory=list, description="the structured reasons, as /v1/jobs/{id}/explain"
    )
    message: str | None = Field(
        default=None,
        description="why it is not placed, e.g. 'waiting: quota: ...' or 'preempted: by ...'",
    )


class JobOutput(BaseModel):
    job_id: str
    output: str = Field(description="stdout and stderr of the job's process (the tail)")
    truncated: bool = Field(description="true if only the last bytes are shown")


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    role: Literal["tenant", "provider", "admin", "grid-operator"] = "tenant"
    permissions: list[Permission] = Field(
        default_factory=list, max_length=8, description="granted at creation; default none"
    )
    sites: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="a provider's own sites (ids of the loaded network): the only sites it "
        "may post capacity, prices and signals for",
    )


class ProviderSitesIn(BaseModel):
    """The complete set of sites a provider owns (replaces the previous set)."""

    model_config = ConfigDict(extra="forbid")
    sites: list[str] = Field(max_length=1000)


class PermissionsIn(BaseModel):
    """Grant (true) or revoke (false) permissions; a permission left out is unchanged."""

    model_config = ConfigDict(extra="forbid")
    commands: bool | None = Field(
        default=None, description="may submit a command that an executor runs"
    )


class TenantCreated(BaseModel):
    id: str
    token: str = Field(description="shown once; only its hash is stored")


class TenantOut(BaseModel):
    id: str
    name: str
    role: str
    created_s: int
    permissions: list[str] = Field(description="granted permissions, sorted")
    sites: list[str] = Field(default_factory=list, description="a provider's own sites, sorted")


class QuotaIn(BaseModel):
    """A tenant's quota: ``nominal`` accelerators per type it is guaranteed, how many more
    it may borrow while other tenants leave theirs idle (``borrowing_limit``, default none),
    and its ``weight`` in fair sharing."""

    model_config = ConfigDict(extra="forbid")
    nominal: AcceleratorCounts = Field(max_length=32, description='e.g. {"A100": 8}')
    borrowing_limit: AcceleratorCounts = Field(
        default_factory=dict, max_length=32, description='e.g. {"A100": 4}; default none'
    )
    weight: float = Field(
        default=1.0, gt=0, le=1000, allow_inf_nan=False, description="fair-share weight"
    )


class QuotaOut(BaseModel):
    tenant_id: str
    nominal: dict[str, int]
    borrowing_limit: dict[str, int]
    weight: float
    usage: dict[str, int] = Field(
        description="accelerators per type its placed or running jobs hold"
    )
    updated_s: int
    updated_by: str


class PriorityClassIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: int = Field(ge=-1000, le=1000, description="the priority jobs of this class get")


class PriorityClassOut(BaseModel):
    name: str
    priority: int


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
    name: Text = Field(min_length=1, max_length=200)
    size_gb: float = Field(ge=0, le=1e9, allow_inf_nan=False, description="size, GB")
    home_site: Text = Field(
        min_length=1, max_length=80, description="site id where the dataset lives"
    )
    classification: Classification = Field(default="general", description="default general")
    # A JSON true is not 1 person, nor 0 a "no": booleans are refused where the schema says
    # integer (6239.0 is still an integer to JSON Schema) and numbers where it says boolean.
    individuals: Annotated[int, BeforeValidator(_no_bool)] = Field(
        default=0,
        ge=0,
        le=2**31 - 1,  # the column is a 32-bit integer; more people than any country has
        description="people in it (personal information)",
    )
    sensitive: bool = Field(
        default=False, strict=True, description="sensitive personal information"
    )
    export_cleared: bool = Field(
        default=False,
        strict=True,
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
        dict[Annotated[Text, Field(max_length=80)], Annotated[int, Field(ge=0, le=10**6)]] | None
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


class SiteHealthOut(BaseModel):
    site_id: str
    kind: str
    up: bool = Field(description="false once marked down (no heartbeat for site_down_after_s)")
    reachable: bool = Field(description="answered its last heartbeat")
    last_heartbeat_s: int | None = Field(description="UTC epoch seconds of its last answer")
    down_since_s: int | None
    message: str | None = Field(description="why it did not answer")


class GreenSupplyOut(BaseModel):
    kind: str = Field(description="share, contract or profile")
    status: str = Field(description="reported, contracted, target (policy) or assumed")
    share: float | None = Field(description="share of consumption (kind share)")
    contract_mw: float | None = Field(description="MW around the clock (kind contract)")
    capacity_mw: float | None = Field(description="installed MW (kind profile)")
    profile: str | None = Field(description="output profile (kind profile), modelled")
    carbon_g_per_kwh: float = Field(description="the green power's own intensity")
    price_cny_per_kwh: float | None = Field(description="its price; null: the grid's")
    applied: bool = Field(description="mixed into the site's effective price and carbon")
    source: str


class SiteSupplyOut(BaseModel):
    grid_carbon_g_per_kwh_now: float | None = Field(description="the grid's carbon now")
    effective_carbon_g_per_kwh_now: float | None = Field(
        description="grid and applied green supply mixed: what the engine plans with"
    )
    grid_price_cny_per_kwh_now: float | None
    effective_price_cny_per_kwh_now: float | None
    green_share_now: float = Field(description="share of consumption the applied supply covers")
    carbon_model: str = Field(
        description="'annual' (the grid's stated factor) or the modelled hourly series' label"
    )
    green_supply: list[GreenSupplyOut]


class SiteOut(BaseModel):
    id: str
    name: str
    hub: str
    province: str
    executor: str = Field(description="kind of the executor that runs jobs placed here")
    capabilities: dict[str, bool] = Field(
        description="what that executor can do (runs_commands, cancel, checkpoint_signal, "
        "logs, survives_restart, binds_accelerators)"
    )
    health: SiteHealthOut | None = Field(
        description="what the loop last heard from the executor; null before its first heartbeat"
    )
    accelerators: dict[str, int] = Field(description="accelerators per type, feeds applied")
    price_cny_per_kwh_now: float | None = Field(description="electricity price now, feeds applied")
    carbon_g_per_kwh_now: float | None = Field(
        description="carbon now, feeds applied: the grid's, mixed with the site's applied "
        "direct green supply when it declares one (see supply)"
    )
    feed: SiteFeedOut | None = Field(description="what was last posted for this site")
    supply: SiteSupplyOut = Field(
        description="where the site's power comes from: grid and effective figures side by side"
    )


class ErrorOut(BaseModel):
    error: str
    detail: str
    fields: list[dict[str, str]] = Field(default_factory=list)


class LoopHealth(BaseModel):
    runs_here: bool = Field(description="this process runs the control loop")
    last_tick_s: float | None = Field(description="when its last tick completed, UTC epoch s")
    age_s: float | None = Field(description="seconds since then (since start if none yet)")
    stale_after_s: float = Field(description="/healthz answers 503 past this age")


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
    status: str = Field(description="ok, or why the service is unhealthy (then 503)")
    database: str
    loop: LoopHealth | None = None
    sites: list[SiteHealthOut] = Field(default_factory=list)
    leader: LeaderHealth | None = None


class GridEventIn(BaseModel):
    """A grid event: the grid asks the sites of ``site`` or ``province`` to draw less over
    ``[start_s, end_s)`` (UTC epoch seconds), by ``target_mw`` (MW of facility power in
    every hour, over all the sites) or ``target_pct`` (% of each site's draw)."""

    model_config = ConfigDict(extra="forbid")
    site: Text | None = Field(default=None, max_length=80, description="a site id")
    province: Text | None = Field(
        default=None, max_length=80, description="every site of this province"
    )
    start_s: int = Field(ge=0, le=2**40, description="UTC epoch seconds")
    end_s: int = Field(ge=0, le=2**40, description="UTC epoch seconds; at most 7 days on")
    target_mw: float | None = Field(
        default=None, gt=0, le=100_000, allow_inf_nan=False, description="MW to shed each hour"
    )
    target_pct: float | None = Field(
        default=None, gt=0, le=100, allow_inf_nan=False, description="% of the draw to shed"
    )
    notice_s: int | None = Field(
        default=None,
        ge=0,
        le=7 * 86400,
        description="the notice the grid gave, seconds (default: from now to start_s)",
    )


class GridHour(BaseModel):
    site: str
    start_s: int
    end_s: int
    baseline_kw: float = Field(description="facility draw planned before the event (mean)")
    asked_kw: float
    committed_kw: float = Field(description="shed in the answer's plan (modelled)")
    shortfall_kw: float
    delivered_kw: float | None = Field(
        default=None, description="shed as delivered (see delivered.kind); null until it runs"
    )
    delivered_ratio: float | None = None
    metered_until_s: int | None = None


class GridAffected(BaseModel):
    job_id: str
    flex_class: int
    action: Literal["deferred", "moved", "paused", "power-capped", "advanced"]
    from_site: str
    to_site: str
    old_start_s: int
    old_end_s: int
    new_start_s: int
    new_end_s: int
    deadline_s: int
    deadline_margin_s: int
    shed_kw: float = Field(description="facility kW it sheds, averaged over the window")
    paused_at_s: int | None = None
    utilisation: float | None = Field(default=None, description="power-capped: busy share")
    accelerator: str = ""


class GridTotal(BaseModel):
    sites: str = Field(description="the event's sites, joined by '+'")
    start_s: int
    end_s: int
    baseline_kw: float
    asked_kw: float
    committed_kw: float
    shortfall_kw: float


class GridAnswer(BaseModel):
    kind: str
    hours: list[GridHour] = Field(description="per site and hour")
    totals: list[GridTotal] = Field(description="per hour, over all the event's sites")
    committed_ratio_min: float = Field(description="lowest hour's committed / asked (totals)")
    affected: list[GridAffected]
    deadline_risk: dict[str, int]
    energy_moved_kwh: float
    carbon_moved_kg: float
    notes: list[str]


class GridDelivered(BaseModel):
    kind: str
    hours: list[GridHour]


class GridEventOut(BaseModel):
    id: str
    created_s: int
    created_by: str
    sites: list[str]
    start_s: int
    end_s: int
    notice_s: int
    target_kw: float | None
    target_share: float | None
    answer: GridAnswer = Field(description="the commitment")
    pauses: list[list[Any]] = Field(description="[job id, stop time, done] of paused work")
    delivered: GridDelivered | None = Field(default=None, description="the event report (GET only)")
