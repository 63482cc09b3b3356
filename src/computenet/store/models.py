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
    role: Mapped[str] = mapped_column(String(20))  # admin | provider | tenant
    created_s: Mapped[int] = mapped_column(BigInteger)


class TenantPermissionRow(Base):
    """A permission an admin granted a tenant (``commands``: may submit a command that an
    executor runs). No row: not granted."""

    __tablename__ = "tenant_permissions"
    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    permission: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted_s: Mapped[int] = mapped_column(BigInteger)
    granted_by: Mapped[str] = mapped_column(String(40))


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
        # (migration 0006d). Two only: each index slows the submission path.
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
