"""SQLAlchemy 2 tables of the service. Times are int UTC epoch seconds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin | provider | tenant | grid-operator
    created_s: Mapped[int] = mapped_column(BigInteger)


class TenantPermissionRow(Base):
    """A permission an admin granted a tenant (``commands``: may submit a command that an
    executor runs). No row: not granted."""

    __tablename__ = "tenant_permissions"
    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    permission: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted_s: Mapped[int] = mapped_column(BigInteger)
    granted_by: Mapped[str] = mapped_column(String(40))


class ProviderSiteRow(Base):
    """A site a provider owns: it may post capacity, prices and signals for it, and only
    for it. An admin binds sites to providers."""

    __tablename__ = "provider_sites"
    provider_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    bound_s: Mapped[int] = mapped_column(BigInteger)
    bound_by: Mapped[str] = mapped_column(String(40))


class TokenRow(Base):
    """A bearer token, stored only as the sha256 hex of the (high-entropy) token."""

    __tablename__ = "tokens"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    created_s: Mapped[int] = mapped_column(BigInteger)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_idem"),
        Index("ix_jobs_state_start", "state", "start_s"),
        # The dashboard's pages of jobs, newest first, for everyone and for one tenant
        # (migration 0011b). Two only: each index slows the submission path.
        Index("ix_jobs_created_id", "created_s", "id"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_s", "id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), index=True)
    accelerators: Mapped[int] = mapped_column(Integer)
    duration_h: Mapped[float] = mapped_column(Float)
    deadline_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    accelerator_types: Mapped[list[str]] = mapped_column(JSON)
    datasets: Mapped[list[str]] = mapped_column(JSON)
    command: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_s: Mapped[int] = mapped_column(BigInteger, index=True)
    updated_s: Mapped[int] = mapped_column(BigInteger)
    site_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    accelerator: Mapped[str | None] = mapped_column(String(80), nullable=True)
    start_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    end_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Why it was placed, deferred or refused, and why each alternative lost: the engine's
    # structured reasons as JSON (``engine.reasons.Reason.to_json``), sorted.
    reasons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # Dispatch bookkeeping: the request id handed to the executor makes repeats safe.
    executor: Mapped[str | None] = mapped_column(String(40), nullable=True)
    dispatch_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_until_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The loop leader's generation that recorded the dispatch (its fence; see control/leader).
    dispatch_generation: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the site's engine calls the run (``slurm:sitea:42``): reconcile asks with it.
    local_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A checkpointable job saves every ``checkpoint_interval_s`` and can resume elsewhere.
    checkpointable: Mapped[bool] = mapped_column(Boolean, default=False)
    checkpoint_interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Work saved by checkpoints at sites it left (reference-accelerator hours, and how many
    # checkpoints that is), and when its current run started.
    work_done_h: Mapped[float] = mapped_column(Float, default=0.0)
    checkpoints: Mapped[int] = mapped_column(Integer, default=0)
    run_started_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # How much a grid event may slow it (``model.FLEX_SLOWDOWN``): 0 never, 3 by half.
    flex_class: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AuditRow(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at_s: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(40))  # tenant id, or "system"
    action: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str] = mapped_column(String(80), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class DatasetRow(Base):
    """A tenant's dataset: where it lives and its class under the Data Security Law/PIPL."""

    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    size_gb: Mapped[float] = mapped_column(Float)
    home_site: Mapped[str] = mapped_column(String(80))
    classification: Mapped[str] = mapped_column(String(20))
    individuals: Mapped[int] = mapped_column(Integer)
    sensitive: Mapped[bool] = mapped_column(Boolean)
    export_cleared: Mapped[bool] = mapped_column(Boolean)
    created_s: Mapped[int] = mapped_column(BigInteger)


class SiteFeedRow(Base):
    """What an operator or provider posted for a site: capacity per accelerator type and
    price/carbon series (``{"start_s", "step_s", "values"}``); NULL keeps the catalog's."""

    __tablename__ = "site_feeds"
    site_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    capacity: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    price_cny_per_kwh: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    carbon_g_per_kwh: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_s: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(40))


class SiteHealthRow(Base):
    """What the loop last heard from a site's executor. ``up`` is persisted so a site marked
    down stays down across a restart until its engine answers again."""

    __tablename__ = "site_health"
    site_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    up: Mapped[bool] = mapped_column(Boolean)
    last_heartbeat_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    down_since_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_s: Mapped[int] = mapped_column(BigInteger)


class StaleRunRow(Base):
    """A run left behind at a site that went down after its job was planned elsewhere: it
    is cancelled when the site answers again, and nothing it reports reaches the job."""

    __tablename__ = "stale_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(40), index=True)
    site_id: Mapped[str] = mapped_column(String(80), index=True)
    request_id: Mapped[str] = mapped_column(String(40))
    local_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    since_s: Mapped[int] = mapped_column(BigInteger)


class LoopLeaderRow(Base):
    """The one lease on the control loop (a single row, ``id`` 1): which service process runs
    the loop, until when, and the generation that grows at every change of holder (a fence).
    Times are the database's clock, UTC epoch seconds with fractions."""

    __tablename__ = "loop_leader"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    holder_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    holder_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    acquired_s: Mapped[float] = mapped_column(Float)
    renewed_s: Mapped[float] = mapped_column(Float)
    expires_s: Mapped[float] = mapped_column(Float)


class LedgerTransactionRow(Base):
    """One balanced ledger transaction (``computenet.market.ledger``). Append-only: rows are
    never updated or deleted. ``key`` makes a retried post a no-op; ``seq`` orders them."""

    __tablename__ = "ledger_transactions"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(String(200), unique=True)
    at_s: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(20))
    memo: Mapped[str] = mapped_column(Text)
    refs: Mapped[dict[str, str]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(40))


class LedgerPostingRow(Base):
    """One posting of a transaction: integer fen credited (positive) or debited (negative)."""

    __tablename__ = "ledger_postings"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tx_seq: Mapped[int] = mapped_column(BigInteger, index=True)
    account: Mapped[str] = mapped_column(String(60), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class MarketOfferRow(Base):
    """A provider's offer of one pool's accelerators over a window (``market.orders``)."""

    __tablename__ = "market_offers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40), index=True)
    site_id: Mapped[str] = mapped_column(String(80), index=True)
    accelerator: Mapped[str] = mapped_column(String(80))
    accelerators: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[int] = mapped_column(BigInteger)
    end_s: Mapped[int] = mapped_column(BigInteger, index=True)
    price_fen_per_unit: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    created_s: Mapped[int] = mapped_column(BigInteger)
    withdrawn_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class MarketOrderRow(Base):
    """A tenant's order and its quote: quoted -> committed -> settled, or expired or
    cancelled. A committed order holds its job (placed at the quoted site and start)."""

    __tablename__ = "market_orders"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    order: Mapped[dict[str, Any]] = mapped_column(JSON)
    quote: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    offer_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    provider_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    expires_s: Mapped[int] = mapped_column(BigInteger)
    created_s: Mapped[int] = mapped_column(BigInteger)
    updated_s: Mapped[int] = mapped_column(BigInteger)
    settlement: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class PoolCertificateRow(Base):
    """The measurement certificate a provider submitted for one of its pools."""

    __tablename__ = "pool_certificates"
    site_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    accelerator: Mapped[str] = mapped_column(String(80), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    certificate_id: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_s: Mapped[int] = mapped_column(BigInteger)


class TenantQuotaRow(Base):
    """A tenant's quota (``engine.quotas.TenantQuota``): nominal accelerators and the
    borrowing limit per accelerator type (``{"A100": 8}``), and its fair-share weight. No
    row: the tenant's work is not quota-managed."""

    __tablename__ = "tenant_quotas"
    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    nominal: Mapped[dict[str, int]] = mapped_column(JSON)
    borrowing_limit: Mapped[dict[str, int]] = mapped_column(JSON)
    weight: Mapped[float] = mapped_column(Float)
    updated_s: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(40))


class PriorityClassRow(Base):
    """A named priority class (``priority_class`` of a submission) and the priority it
    gives; the defaults of ``engine.quotas.PRIORITY_CLASSES`` hold unless overridden."""

    __tablename__ = "priority_classes"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)
    updated_s: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(40))


class GridEventRow(Base):
    """A grid event (``POST /v1/grid-events``): what the grid asked, computenet's answer
    (the commitment, as JSON) and the caps it keeps in force while the event lasts."""

    __tablename__ = "grid_events"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_s: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(40))
    sites: Mapped[list[str]] = mapped_column(JSON)
    start_s: Mapped[int] = mapped_column(BigInteger)
    end_s: Mapped[int] = mapped_column(BigInteger, index=True)
    notice_s: Mapped[int] = mapped_column(BigInteger)
    target_kw: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    caps: Mapped[list[list[Any]]] = mapped_column(JSON)  # [site, start_s, end_s, limit_kw]
    pauses: Mapped[list[list[Any]]] = mapped_column(JSON)  # [job id, at_s, done (bool)]


class InferenceServiceRow(Base):
    """An inference service (``POST /v1/services``): what was asked, the demand it was
    planned for and the hour-by-hour placement with its reasons, as the engine answered."""

    __tablename__ = "inference_services"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_s: Mapped[int] = mapped_column(BigInteger)
    start_s: Mapped[int] = mapped_column(BigInteger)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    demand: Mapped[dict[str, Any]] = mapped_column(JSON)
    placement: Mapped[dict[str, Any]] = mapped_column(JSON)
