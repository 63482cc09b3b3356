"""The one module that reads and writes the service database.

Every state change goes through here and is audited in the same transaction. Job state
changes go through ``computenet.control.lifecycle.check_transition``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from computenet.control.lifecycle import TERMINAL, check_transition
from computenet.errors import ConflictError, InputError, MissingDependencyError, NotFoundError
from computenet.model import PRIORITY_CLASSES
from computenet.store.models import (
    AuditRow,
    DatasetRow,
    GridEventRow,
    JobRow,
    LoopLeaderRow,
    PriorityClassRow,
    ProviderSiteRow,
    SiteFeedRow,
    SiteHealthRow,
    StaleRunRow,
    TenantPermissionRow,
    TenantQuotaRow,
    TenantRow,
    TokenRow,
)

ROLES = ("admin", "provider", "tenant", "grid-operator")
"""``grid-operator``: posts grid events and reads their reports; no jobs, no tenants."""
PERMISSIONS = ("commands",)
"""What an admin may grant a tenant. ``commands``: submit a command that an executor runs."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant id and its role."""

    tenant_id: str
    role: str


@dataclass(frozen=True)
class JobSpec:
    """A validated submission. ``duration_h`` is run time on the reference accelerator."""

    name: str
    accelerators: int
    duration_h: float
    deadline_s: int | None = None
    accelerator_types: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    command: str | None = None
    priority: int = 0
    checkpointable: bool = False
    checkpoint_interval_s: int | None = None  # how often it saves; None: the default
    flex_class: int = 0  # how much a grid event may slow it (model.FLEX_SLOWDOWN)


@dataclass(frozen=True)
class DatasetSpec:
    """A validated dataset registration. ``size_gb`` in gigabytes; ``classification`` one of
    ``computenet.model.Classification``; ``home_site`` a site id of the loaded network."""

    name: str
    size_gb: float
    home_site: str
    classification: str = "general"
    individuals: int = 0
    sensitive: bool = False
    export_cleared: bool = False


@dataclass(frozen=True)
class Holder:
    """One service process competing to run the control loop."""

    id: str  # unique per process start (host, pid and a random suffix)
    host: str
    pid: int


@dataclass(frozen=True)
class LeaderLease:
    """The loop's lease as the database holds it. Times are the DATABASE's clock (UTC epoch
    seconds with fractions), so hosts whose clocks disagree still agree on who leads."""

    holder: Holder | None
    generation: int  # grows by one at every change of holder: the fence of a term
    acquired_s: float  # when the current holder took it
    expires_s: float  # until when it holds without renewing
    now_s: float  # the database's time when this was read

    @property
    def live(self) -> bool:
        return self.holder is not None and self.expires_s > self.now_s


LEADER_ROW_ID = 1


def hash_token(token: str) -> str:
    """sha256 hex of a bearer token; tokens are 32 random bytes, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "cn_" + secrets.token_urlsafe(32)


def now_s() -> int:
    return int(time.time())


def open_engine(url: str) -> Engine:
    """An engine for ``sqlite:///...`` or ``postgresql://...`` (psycopg 3)."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("psycopg", "postgres", "a PostgreSQL database") from exc
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # The sqlite3 module would start transactions late (at the first write), so a
            # read and the write that depends on it could see different data; SQLAlchemy
            # emits BEGIN itself instead (below).
            dbapi_conn.isolation_level = None
            # WAL lets readers run while the batch writer commits; synchronous=FULL keeps
            # every acknowledged commit on disk across a kill -9 or power loss.
            cur = dbapi_conn.cursor()
            # The busy timeout first: switching to WAL takes a lock, and processes opening
            # a fresh database at once must wait for each other, not fail as "locked".
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            write = conn.get_execution_options().get("sqlite_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    raise InputError(
        f"unsupported database URL {url!r}",
        source="--db",
        fix="use sqlite:///path/to/file.db or postgresql://user@host/dbname",
    )


MIGRATE_LOCK_KEY = 0x636E6D67  # "cnmg": the advisory lock that serializes migrations


def _private_sqlite_file(url: str) -> None:
    """Create the database file 0600 (and tighten an older one): jobs run on this machine,
    and none may read it. SQLite gives its -wal and -shm files the database file's mode."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path.startswith(":memory:") or path.startswith("file:"):
        return
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        if name == path:
            os.close(os.open(name, os.O_RDWR | os.O_CREAT, 0o600))
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)


def migrate(engine: Engine) -> None:
    """Apply the Alembic migrations shipped in ``computenet.store.migrations``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("computenet.store") / "migrations"))
    # Several service processes may start at once against one database: the first to get
    # the lock migrates, the others then find the schema at head (an advisory lock held to
    # the end of the transaction on PostgreSQL; SQLite's write lock, BEGIN IMMEDIATE).
    with engine.execution_options(sqlite_write=True).begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _audit(s: Session, actor: str, action: str, object_id: str, **detail: Any) -> None:
    s.add(AuditRow(at_s=now_s(), actor=actor, action=action, object_id=object_id, detail=detail))


def _check_permissions(names: Sequence[str]) -> None:
    unknown = [p for p in names if p not in PERMISSIONS]
    if unknown:
        raise InputError(
            f"unknown permission {unknown[0]!r}",
            where="permissions",
            fix=f"use one of {PERMISSIONS}",
        )


def _permission_row(tenant_id: str, permission: str, actor: str) -> TenantPermissionRow:
    return TenantPermissionRow(
        tenant_id=tenant_id, permission=permission, granted_s=now_s(), granted_by=actor
    )


def job_dict(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "name": row.name,
        "state": row.state,
        "accelerators": row.accelerators,
        "duration_h": row.duration_h,
        "deadline_s": row.deadline_s,
        "accelerator_types": list(row.accelerator_types or []),
        "datasets": list(row.datasets or []),
        "command": row.command,
        "priority": row.priority,
        "idempotency_key": row.idempotency_key,
        "created_s": row.created_s,
        "updated_s": row.updated_s,
        "site_id": row.site_id,
        "accelerator": row.accelerator,
        "start_s": row.start_s,
        "end_s": row.end_s,
        "exit_code": row.exit_code,
        "message": row.message,
        "executor": row.executor,
        "local_id": row.local_id,
        "reasons": list(row.reasons or []),
        "checkpointable": bool(row.checkpointable),
        "checkpoint_interval_s": row.checkpoint_interval_s,
        "work_done_h": float(row.work_done_h or 0.0),
        "checkpoints": int(row.checkpoints or 0),
        "flex_class": int(row.flex_class or 0),
    }


# Submission SQL (see ``Repository._insert_new``). Column lists match models.JobRow.
_PG_ARRAYS = {
    "id": "text",
    "tenant_id": "text",
    "name": "text",
    "accelerators": "int",
    "duration_h": "float8",
    "deadline_s": "bigint",
    "command": "text",
    "priority": "int",
    "idempotency_key": "text",
    "checkpointable": "bool",
    "checkpoint_interval_s": "int",
    "flex_class": "int",
}
_PG_INSERT = (
    "WITH j AS (INSERT INTO jobs (id, tenant_id, name, state, accelerators, duration_h, "
    "deadline_s, accelerator_types, datasets, command, priority, idempotency_key, checkpointable, "
    "checkpoint_interval_s, flex_class, work_done_h, checkpoints, created_s, updated_s) SELECT "
    "id, tenant_id, name, 'submitted', accelerators, duration_h, deadline_s, "
    "accelerator_types::json, datasets::json, command, priority, idempotency_key, "
    "checkpointable, checkpoint_interval_s, flex_class, 0, 0, %(t)s, %(t)s FROM unnest("
    + ", ".join(f"%({c})s::{t}[]" for c, t in _PG_ARRAYS.items())
    + ", %(accelerator_types)s::text[], %(datasets)s::text[]) AS u("
    + ", ".join(_PG_ARRAYS)
    + ", accelerator_types, datasets) RETURNING id, tenant_id, name) "
    "INSERT INTO audit (at_s, actor, action, object_id, detail) "
    "SELECT %(t)s, tenant_id, 'job.submit', id, json_build_object('name', name) FROM j"
)
_SQLITE_INSERT_JOB = (
    "INSERT INTO jobs (id, tenant_id, name, state, accelerators, duration_h, deadline_s, "
    "accelerator_types, datasets, command, priority, idempotency_key, checkpointable, "
    "checkpoint_interval_s, flex_class, work_done_h, checkpoints, created_s, updated_s) "
    "VALUES (?, ?, ?, 'submitted', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)"
)
_SQLITE_INSERT_AUDIT = (
    "INSERT INTO audit (at_s, actor, action, object_id, detail) VALUES (?, ?, 'job.submit', ?, ?)"
)


def _quota_dict(row: TenantQuotaRow) -> dict[str, Any]:
    return {
        "tenant_id": row.tenant_id,
        "nominal": dict(row.nominal),
        "borrowing_limit": dict(row.borrowing_limit),
        "weight": row.weight,
        "updated_s": row.updated_s,
        "updated_by": row.updated_by,
    }


def dataset_dict(row: DatasetRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "name": row.name,
        "size_gb": row.size_gb,
        "home_site": row.home_site,
        "classification": row.classification,
        "individuals": row.individuals,
        "sensitive": row.sensitive,
        "export_cleared": row.export_cleared,
        "created_s": row.created_s,
    }


def feed_dict(row: SiteFeedRow) -> dict[str, Any]:
    return {
        "site_id": row.site_id,
        "capacity": row.capacity,
        "price_cny_per_kwh": row.price_cny_per_kwh,
        "carbon_g_per_kwh": row.carbon_g_per_kwh,
        "updated_s": row.updated_s,
        "updated_by": row.updated_by,
    }


# What a placement and its dispatch set; cleared when a job is planned again.
_PLACEMENT_FIELDS = (
    "site_id",
    "accelerator",
    "start_s",
    "end_s",
    "executor",
    "dispatch_id",
    "local_id",
    "run_started_s",
    "lease_owner",
    "lease_until_s",
)

_UNSET_FIELDS = (
    "site_id",
    "accelerator",
    "start_s",
    "end_s",
    "exit_code",
    "message",
    "executor",
    "local_id",
)


def _with_defaults(row: dict[str, Any]) -> dict[str, Any]:
    """A freshly inserted job as ``job_dict`` would show it (nothing placed yet)."""
    return dict(row, **dict.fromkeys(_UNSET_FIELDS), work_done_h=0.0, checkpoints=0, reasons=[])


class Repository:
    """Transactions over one database. Safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        # Writes take SQLite's write lock when they begin (BEGIN IMMEDIATE), so a
        # read-then-write (a claim, a state change) cannot interleave with another writer.
        self.writes = sessionmaker(
            engine.execution_options(sqlite_write=True), expire_on_commit=False
        )
        self.is_postgres = engine.dialect.name == "postgresql"

    # -- tenants and tokens -------------------------------------------------------------

    def create_tenant(
        self,
        name: str,
        role: str,
        actor: str,
        permissions: Sequence[str] = (),
        sites: Sequence[str] = (),
    ) -> tuple[str, str]:
        """Create a tenant (with ``permissions`` granted; a provider with the ``sites`` it
        owns) and its first token; returns ``(id, token)``. The token is shown once: only
        its hash is stored. Site ids are checked against the network by the caller."""
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}", where="role", fix=f"use one of {ROLES}")
        if sites and role != "provider":
            raise InputError(
                f"a {role} owns no sites", where="sites", fix="give sites to a provider only"
            )
        granted = sorted(set(permissions))
        _check_permissions(granted)
        tenant_id = "t_" + uuid.uuid4().hex[:16]
        token = new_token()
        with self.writes.begin() as s:
            if s.scalar(select(TenantRow.id).where(TenantRow.name == name)) is not None:
                raise ConflictError(f"a tenant named {name!r} already exists")
            s.add(TenantRow(id=tenant_id, name=name, role=role, created_s=now_s()))
            s.add(TokenRow(token_sha256=hash_token(token), tenant_id=tenant_id, created_s=now_s()))
            for permission in granted:
                s.add(_permission_row(tenant_id, permission, actor))
            for site_id in sorted(set(sites)):
                s.add(
                    ProviderSiteRow(
                        provider_id=tenant_id, site_id=site_id, bound_s=now_s(), bound_by=actor
                    )
                )
            _audit(
                s,
                actor,
                "tenant.create",
                tenant_id,
                name=name,
                role=role,
                permissions=granted,
                sites=sorted(set(sites)),
            )
        return tenant_id, token

    def set_provider_sites(
        self, provider_id: str, sites: Sequence[str], actor: str
    ) -> dict[str, Any]:
        """Make ``sites`` exactly the sites ``provider_id`` owns; audited as
        ``provider.sites`` with what was bound and unbound."""
        wanted = set(sites)
        with self.writes.begin() as s:
            row = s.get(TenantRow, provider_id)
            if row is None:
                raise NotFoundError(f"no tenant {provider_id!r}")
            if row.role != "provider":
                raise InputError(
                    f"{row.name!r} is a {row.role}, not a provider",
                    where="sites",
                    fix="bind sites to a provider (tenants --create NAME --role provider)",
                )
            held = self._sites_of(s, [provider_id]).get(provider_id, set())
            bound, unbound = sorted(wanted - held), sorted(held - wanted)
            for site_id in bound:
                s.add(
                    ProviderSiteRow(
                        provider_id=provider_id, site_id=site_id, bound_s=now_s(), bound_by=actor
                    )
                )
            for site_id in unbound:
                old = s.get(ProviderSiteRow, (provider_id, site_id))
                if old is not None:
                    s.delete(old)
            if bound or unbound:
                _audit(s, actor, "provider.sites", provider_id, bound=bound, unbound=unbound)
        return next(t for t in self.list_tenants() if t["id"] == provider_id)

    def provider_sites(self, provider_id: str) -> set[str]:
        """The sites a provider owns, read at the moment of use (an admin's change applies
        to the next request on any process)."""
        with self.sessions() as s:
            return self._sites_of(s, [provider_id]).get(provider_id, set())

    @staticmethod
    def _sites_of(s: Session, provider_ids: Sequence[str] | None) -> dict[str, set[str]]:
        q = select(ProviderSiteRow.provider_id, ProviderSiteRow.site_id)
        if provider_ids is not None:
            q = q.where(ProviderSiteRow.provider_id.in_(list(provider_ids)))
        out: dict[str, set[str]] = {}
        for provider_id, site_id in s.execute(q):
            out.setdefault(provider_id, set()).add(site_id)
        return out

    def set_permissions(
        self, tenant_id: str, changes: dict[str, bool], actor: str
    ) -> dict[str, Any]:
        """Grant (True) or revoke (False) permissions of ``tenant_id``; audited with what
        actually changed. Returns the tenant as ``list_tenants`` shows it."""
        _check_permissions(sorted(changes))
        with self.writes.begin() as s:
            if s.get(TenantRow, tenant_id) is None:
                raise NotFoundError(f"no tenant {tenant_id!r}")
            held = self._permissions(s, [tenant_id]).get(tenant_id, set())
            granted = sorted(p for p, on in changes.items() if on and p not in held)
            revoked = sorted(p for p, on in changes.items() if not on and p in held)
            for permission in granted:
                s.add(_permission_row(tenant_id, permission, actor))
            for permission in revoked:
                row = s.get(TenantPermissionRow, (tenant_id, permission))
                if row is not None:
                    s.delete(row)
            if granted or revoked:
                _audit(s, actor, "tenant.permissions", tenant_id, granted=granted, revoked=revoked)
        return next(t for t in self.list_tenants() if t["id"] == tenant_id)

    def has_permission(self, tenant_id: str, permission: str) -> bool:
        """Read at the moment of use (not from the token cache), so a revocation applies to
        the next request on any service process."""
        with self.sessions() as s:
            return s.get(TenantPermissionRow, (tenant_id, permission)) is not None

    @staticmethod
    def _permissions(s: Session, tenant_ids: Sequence[str] | None) -> dict[str, set[str]]:
        q = select(TenantPermissionRow.tenant_id, TenantPermissionRow.permission)
        if tenant_ids is not None:
            q = q.where(TenantPermissionRow.tenant_id.in_(list(tenant_ids)))
        out: dict[str, set[str]] = {}
        for tenant_id, permission in s.execute(q):
            out.setdefault(tenant_id, set()).add(permission)
        return out

    def ensure_admin_token(self, token: str) -> str:
        """Register ``token`` as the bootstrap admin's token (idempotent); returns its id."""
        digest = hash_token(token)
        with self.writes.begin() as s:
            existing = s.get(TokenRow, digest)
            if existing is not None:
                return existing.tenant_id
            admin_id = s.scalar(select(TenantRow.id).where(TenantRow.name == "admin"))
            if admin_id is None:
                admin_id = "t_admin"
                s.add(TenantRow(id=admin_id, name="admin", role="admin", created_s=now_s()))
            s.add(TokenRow(token_sha256=digest, tenant_id=admin_id, created_s=now_s()))
            _audit(s, "system", "token.bootstrap", admin_id)
        return admin_id

    def principal_for(self, token: str) -> Principal | None:
        with self.sessions() as s:
            row = s.execute(
                select(TenantRow.id, TenantRow.role)
                .join(TokenRow, TokenRow.tenant_id == TenantRow.id)
                .where(TokenRow.token_sha256 == hash_token(token))
            ).first()
        return None if row is None else Principal(row[0], row[1])

    def list_tenants(self) -> list[dict[str, Any]]:
        with self.sessions() as s:
            rows = s.scalars(select(TenantRow).order_by(TenantRow.created_s, TenantRow.id))
            held = self._permissions(s, None)
            owned = self._sites_of(s, None)
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "role": r.role,
                    "created_s": r.created_s,
                    "permissions": sorted(held.get(r.id, ())),
                    "sites": sorted(owned.get(r.id, ())),
                }
                for r in rows
            ]

    # -- jobs ---------------------------------------------------------------------------

    def submit_batch(
        self, items: Sequence[tuple[Principal, JobSpec, str | None]]
    ) -> list[tuple[dict[str, Any], bool]]:
        """Insert many submissions in ONE transaction; returns ``(job, created)`` per item.

        An ``Idempotency-Key`` already used by the tenant returns the existing job; the
        unique constraint on (tenant, key) is the backstop if two servers race.
        """
        try:
            return self._submit_batch(items)
        except IntegrityError:
            # A concurrent writer took one of the keys; one at a time sorts it out.
            return [self._submit_batch([item])[0] for item in items]

    def _submit_batch(
        self, items: Sequence[tuple[Principal, JobSpec, str | None]]
    ) -> list[tuple[dict[str, Any], bool]]:
        out: list[tuple[dict[str, Any], bool]] = []
        t = now_s()
        with self.writes.begin() as s:
            keyed = [(p.tenant_id, k) for p, _, k in items if k is not None]
            existing: dict[tuple[str, str], dict[str, Any]] = {}
            if keyed:
                tenants = {a for a, _ in keyed}
                keys = {b for _, b in keyed}
                for row in s.scalars(
                    select(JobRow).where(
                        JobRow.tenant_id.in_(tenants), JobRow.idempotency_key.in_(keys)
                    )
                ):
                    existing[(row.tenant_id, row.idempotency_key or "")] = job_dict(row)
            new_rows: list[dict[str, Any]] = []
            for principal, spec, key in items:
                if key is not None and (principal.tenant_id, key) in existing:
                    out.append((existing[(principal.tenant_id, key)], False))
                    continue
                new = {
                    "id": "j_" + uuid.uuid4().hex[:20],
                    "tenant_id": principal.tenant_id,
                    "name": spec.name,
                    "state": "submitted",
                    "accelerators": spec.accelerators,
                    "duration_h": spec.duration_h,
                    "deadline_s": spec.deadline_s,
                    "accelerator_types": list(spec.accelerator_types),
                    "datasets": list(spec.datasets),
                    "command": spec.command,
                    "priority": spec.priority,
                    "idempotency_key": key,
                    "checkpointable": spec.checkpointable,
                    "checkpoint_interval_s": spec.checkpoint_interval_s,
                    "flex_class": spec.flex_class,
                    "created_s": t,
                    "updated_s": t,
                }
                if key is not None:
                    existing[(principal.tenant_id, key)] = _with_defaults(new)
                new_rows.append(new)
                out.append((_with_defaults(new), True))
            if new_rows:
                self._insert_new(s, new_rows, t)
        return out

    def _insert_new(self, s: Session, rows: list[dict[str, Any]], t: int) -> None:
        """Insert new jobs and their ``job.submit`` audit entries: the hot path of the
        service, so plain SQL through the driver (the ORM's per-row work was a third of the
        server's CPU under load). PostgreSQL: ONE statement for the whole batch (arrays
        unnested, audit rows written from ``RETURNING``); SQLite: two C-level executemany."""
        conn = s.connection()
        if self.is_postgres:
            cols = {c: [r[c] for r in rows] for c in _PG_ARRAYS}
            cols["accelerator_types"] = [json.dumps(r["accelerator_types"]) for r in rows]
            cols["datasets"] = [json.dumps(r["datasets"]) for r in rows]
            conn.exec_driver_sql(_PG_INSERT, {**cols, "t": t})
            return
        conn.exec_driver_sql(
            _SQLITE_INSERT_JOB,
            [
                (
                    r["id"],
                    r["tenant_id"],
                    r["name"],
                    r["accelerators"],
                    r["duration_h"],
                    r["deadline_s"],
                    json.dumps(r["accelerator_types"]),
                    json.dumps(r["datasets"]),
                    r["command"],
                    r["priority"],
                    r["idempotency_key"],
                    r["checkpointable"],
                    r["checkpoint_interval_s"],
                    r["flex_class"],
                    t,
                    t,
                )
                for r in rows
            ],
        )
        conn.exec_driver_sql(
            _SQLITE_INSERT_AUDIT,
            [(t, r["tenant_id"], r["id"], json.dumps({"name": r["name"]})) for r in rows],
        )

    def _visible(self, s: Session, principal: Principal, job_id: str) -> JobRow:
        row = s.get(JobRow, job_id)
        # Another tenant's job answers exactly like a missing one: no existence leak.
        if row is None or (principal.role != "admin" and row.tenant_id != principal.tenant_id):
            raise NotFoundError(f"no job {job_id!r}")
        return row

    def get_job(self, principal: Principal, job_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            return job_dict(self._visible(s, principal, job_id))

    def get_explanation(self, principal: Principal, job_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            row = self._visible(s, principal, job_id)
            return {
                "job_id": row.id,
                "state": row.state,
                "site_id": row.site_id,
                "accelerator": row.accelerator,
                "start_s": row.start_s,
                "end_s": row.end_s,
                "executor": row.executor,
                "local_id": row.local_id,
                "explanation": row.explanation,
                "reasons": list(row.reasons or []),
                "message": row.message,
            }

    def get_reasons(self, principal: Principal, job_id: str) -> list[dict[str, Any]]:
        """The job's stored reasons (``engine.reasons`` JSON), as the planner wrote them."""
        with self.sessions() as s:
            return list(self._visible(s, principal, job_id).reasons or [])

    def list_jobs(
        self,
        principal: Principal,
        *,
        state: str | None = None,
        name: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        with self.sessions() as s:
            q = select(JobRow)
            if principal.role != "admin":
                q = q.where(JobRow.tenant_id == principal.tenant_id)
            if state is not None:
                q = q.where(JobRow.state == state)
            if name is not None:
                q = q.where(JobRow.name == name)
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(
                q.order_by(JobRow.created_s.desc(), JobRow.id).limit(limit).offset(offset)
            )
            return [job_dict(r) for r in rows], int(total)

    def cancel_job(self, principal: Principal, job_id: str) -> dict[str, Any]:
        with self.writes.begin() as s:
            row = self._visible(s, principal, job_id)
            if row.state == "cancelled":
                return job_dict(row)  # cancelling twice is a no-op, not an error
            self._transition(s, row, "cancelled", principal.tenant_id)
            return job_dict(row)

    def _transition(self, s: Session, row: JobRow, new: str, actor: str, **detail: Any) -> None:
        check_transition(row.id, row.state, new)
        old = row.state
        row.state = new
        row.updated_s = now_s()
        _audit(s, actor, "job.state", row.id, old=old, new=new, **detail)

    def transition(self, job_id: str, new: str, actor: str = "system", **fields: Any) -> bool:
        """Move a job to ``new`` and set ``fields``; False (no change) if already there
        or the edge is not allowed any more (level-triggered callers repeat safely)."""
        with self.writes.begin() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.state == new or row.state in TERMINAL:
                return False
            try:
                self._transition(s, row, new, actor)
            except ConflictError:
                return False
            for key, value in fields.items():
                setattr(row, key, value)
            return True

    # -- live loop ----------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        states: Sequence[str],
        lease_s: int,
        limit: int,
        *,
        due_by_s: int | None = None,
    ) -> list[JobRow]:
        """Lease up to ``limit`` jobs in ``states`` for ``owner`` (only those starting by
        ``due_by_s`` if given): a job is handled by one loop at a time. PostgreSQL uses
        ``FOR UPDATE SKIP LOCKED``; both use the lease."""
        t = now_s()
        with self.writes.begin() as s:
            q = (
                select(JobRow)
                .where(JobRow.state.in_(list(states)))
                .where((JobRow.lease_until_s.is_(None)) | (JobRow.lease_until_s < t))
                .order_by(JobRow.priority.desc(), JobRow.created_s, JobRow.id)
                .limit(limit)
            )
            if due_by_s is not None:
                q = q.where(JobRow.start_s <= due_by_s)
            if self.is_postgres:
                q = q.with_for_update(skip_locked=True)
            rows = list(s.scalars(q))
            for r in rows:
                r.lease_owner = owner
                r.lease_until_s = t + lease_s
            return rows

    def release(self, job_ids: Sequence[str], owner: str) -> None:
        if not job_ids:
            return
        with self.writes.begin() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id.in_(list(job_ids)), JobRow.lease_owner == owner)
                .values(lease_owner=None, lease_until_s=None)
            )

    def set_fields(self, job_id: str, **fields: Any) -> None:
        """Set bookkeeping fields (never the state: that goes through ``transition``)."""
        if "state" in fields:
            raise ValueError("use transition() to change a job's state")
        with self.writes.begin() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(**fields))

    def set_dispatch(
        self,
        job_id: str,
        site_id: str,
        dispatch_id: str,
        fence: tuple[str, int] | None = None,
    ) -> bool:
        """Record the request id BEFORE calling the executor, once, and only while the job
        is still placed (not cancelled meanwhile): a restart reuses it, so the executor sees
        the same id and never starts the job twice. With ``fence`` (holder id, generation)
        it is recorded only while that holder still leads in that generation, in the same
        transaction, and the job keeps the generation: a loop deposed in mid-tick
        dispatches nothing more."""
        with self.writes.begin() as s:
            if fence is not None and not self._fence_holds(s, fence):
                return False
            res = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.dispatch_id.is_(None), JobRow.state == "placed")
                .values(
                    executor=site_id,
                    dispatch_id=dispatch_id,
                    dispatch_generation=None if fence is None else fence[1],
                )
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def dispatch_of(self, job_id: str) -> tuple[str, str, str | None] | None:
        """``(site whose executor runs it, request id, site-local id)`` of a dispatched job,
        else None."""
        with self.sessions() as s:
            row = s.execute(
                select(JobRow.executor, JobRow.dispatch_id, JobRow.local_id).where(
                    JobRow.id == job_id
                )
            ).first()
        if row is None or row[0] is None or row[1] is None:
            return None
        return str(row[0]), str(row[1]), row[2]

    def jobs_in(self, states: Sequence[str]) -> list[JobRow]:
        with self.sessions() as s:
            return list(s.scalars(select(JobRow).where(JobRow.state.in_(list(states)))))

    def to_reconcile(self) -> list[JobRow]:
        """Dispatched jobs whose executor may have news: running ones, and cancelled ones
        whose process has not been killed yet (``exit_code`` still empty)."""
        with self.sessions() as s:
            q = select(JobRow).where(
                JobRow.dispatch_id.is_not(None),
                (JobRow.state == "running")
                | ((JobRow.state == "cancelled") & JobRow.exit_code.is_(None)),
            )
            return list(s.scalars(q))

    def jobs_at(self, site_id: str, states: Sequence[str]) -> list[JobRow]:
        with self.sessions() as s:
            q = select(JobRow).where(JobRow.site_id == site_id, JobRow.state.in_(list(states)))
            return list(s.scalars(q.order_by(JobRow.id)))

    # -- failover -----------------------------------------------------------------------

    def replan_from_down_site(
        self,
        job_id: str,
        site_id: str,
        reason: str,
        *,
        run_left_behind: bool,
        reasons: list[dict[str, Any]] | None = None,
        checkpoints_added: int = 0,
        work_added_h: float = 0.0,
    ) -> bool:
        """Send a placed or running job at the down ``site_id`` back to planning, in ONE
        transaction (a restart finds it either still there or fully moved). A running job
        with new checkpoints passes through ``checkpointed`` and keeps the work they saved.
        ``run_left_behind``: its run could not be cancelled there, so it is recorded as a
        stale run to cancel when the site answers again. ``reasons`` replace the job's
        stored reasons (why it moves) until it is planned again."""
        with self.writes.begin() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.site_id != site_id or row.state not in ("placed", "running"):
                return False
            self._send_back(s, row, reason, run_left_behind, checkpoints_added, work_added_h)
            row.reasons = reasons
            return True

    def _send_back(
        self,
        s: Session,
        row: JobRow,
        reason: str,
        run_left_behind: bool,
        checkpoints_added: int,
        work_added_h: float,
    ) -> None:
        """A placed or running job back to planning (see ``replan_from_down_site``)."""
        t = now_s()
        site_id = str(row.site_id)
        if run_left_behind and row.dispatch_id is not None:
            s.add(
                StaleRunRow(
                    job_id=row.id,
                    site_id=site_id,
                    request_id=row.dispatch_id,
                    local_id=row.local_id,
                    since_s=t,
                )
            )
        if row.state == "running" and checkpoints_added > 0:
            self._transition(
                s, row, "checkpointed", "system", site=site_id, checkpoints=checkpoints_added
            )
        self._transition(s, row, "submitted", "system", site=site_id, reason=reason)
        row.work_done_h = float(row.work_done_h or 0.0) + work_added_h
        row.checkpoints = int(row.checkpoints or 0) + checkpoints_added
        for name in _PLACEMENT_FIELDS:
            setattr(row, name, None)
        row.message = reason

    def preempt(
        self,
        job_id: str,
        site_id: str,
        reason: str,
        *,
        by_job_id: str,
        checkpoints_added: int,
        work_added_h: float,
        lost_s: int,
    ) -> bool:
        """Stop a placed or running job at ``site_id`` for ``by_job_id`` and send it back
        to planning, in one transaction, audited as ``job.preempt``: a running one keeps
        the work of its checkpoints, and its run is recorded as a stale run that the
        control loop cancels at the site. False if the job is no longer there."""
        with self.writes.begin() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.site_id != site_id or row.state not in ("placed", "running"):
                return False
            running = row.state == "running"
            self._send_back(s, row, reason, running, checkpoints_added, work_added_h)
            _audit(
                s,
                "system",
                "job.preempt",
                job_id,
                by=by_job_id,
                site=site_id,
                lost_s=lost_s,
                checkpoints=checkpoints_added,
                reason=reason,
            )
            return True

    def note_waiting(self, job_id: str, message: str, action: str | None = None) -> None:
        """Set a queued job's message; when ``action`` is given and the message is new,
        audit it (a quota denial is audited once, not at every planning tick)."""
        with self.writes.begin() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.message == message:
                return
            row.message = message
            if action is not None:
                _audit(s, "system", action, job_id, message=message)

    def stale_runs(self, site_id: str | None = None) -> list[StaleRunRow]:
        """Stale runs at ``site_id`` (default: at every site), oldest first."""
        with self.sessions() as s:
            q = select(StaleRunRow)
            if site_id is not None:
                q = q.where(StaleRunRow.site_id == site_id)
            return list(s.scalars(q.order_by(StaleRunRow.id)))

    def drop_stale_run(self, run: StaleRunRow, outcome: str) -> None:
        """Forget a stale run once its site has cancelled it (audited on its job)."""
        with self.writes.begin() as s:
            s.execute(delete(StaleRunRow).where(StaleRunRow.id == run.id))
            _audit(
                s,
                "system",
                "job.stale_run",
                run.job_id,
                site=run.site_id,
                request_id=run.request_id,
                local_id=run.local_id,
                outcome=outcome,
            )

    # -- site health --------------------------------------------------------------------

    def site_health(self) -> dict[str, dict[str, Any]]:
        with self.sessions() as s:
            return {
                r.site_id: {
                    "kind": r.kind,
                    "up": bool(r.up),
                    "last_heartbeat_s": r.last_heartbeat_s,
                    "down_since_s": r.down_since_s,
                    "message": r.message,
                }
                for r in s.scalars(select(SiteHealthRow))
            }

    def record_heartbeats(self, beats: Sequence[tuple[str, str, bool, str | None]]) -> None:
        """Record one heartbeat round: ``(site, kind, answered, message)`` per site."""
        t = now_s()
        with self.writes.begin() as s:
            for site_id, kind, answered, message in beats:
                row = self._site_row(s, site_id, kind, t)
                row.kind = kind
                if answered:
                    row.last_heartbeat_s = t
                row.message = message
                row.updated_s = t

    def mark_site(self, site_id: str, kind: str, up: bool, reason: str) -> bool:
        """Mark a site up or down (audited as ``site.up``/``site.down``); False if it
        already was."""
        t = now_s()
        with self.writes.begin() as s:
            row = self._site_row(s, site_id, kind, t)
            if bool(row.up) == up:
                return False
            row.up = up
            row.down_since_s = None if up else t
            row.updated_s = t
            _audit(s, "system", "site.up" if up else "site.down", site_id, kind=kind, reason=reason)
            return True

    def _site_row(self, s: Session, site_id: str, kind: str, t: int) -> SiteHealthRow:
        """The site's health row, created (as up) if missing, locked for this transaction:
        two loops racing on a new site must not both insert it."""
        if self.is_postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        s.execute(
            insert(SiteHealthRow)
            .values(site_id=site_id, kind=kind, up=True, updated_s=t)
            .on_conflict_do_nothing(index_elements=["site_id"])
        )
        row = s.get(SiteHealthRow, site_id, with_for_update=self.is_postgres)
        assert row is not None  # inserted above or already there
        return row

    # -- loop leadership ----------------------------------------------------------------

    def _db_now_s(self, s: Session) -> float:
        """The database's clock, UTC epoch seconds: every process compares lease times on
        this one clock, so skew between hosts cannot make two leaders."""
        if self.is_postgres:
            sql = "SELECT EXTRACT(EPOCH FROM clock_timestamp())"
        else:
            sql = "SELECT (julianday('now') - 2440587.5) * 86400.0"
        return float(s.execute(text(sql)).scalar_one())

    def _lease_row(self, s: Session) -> LoopLeaderRow | None:
        """The lease row, locked until the transaction ends (FOR UPDATE on PostgreSQL;
        SQLite's write transaction already excludes every other writer)."""
        return s.scalar(
            select(LoopLeaderRow).where(LoopLeaderRow.id == LEADER_ROW_ID).with_for_update()
        )

    @staticmethod
    def _lease_of(row: LoopLeaderRow | None, now: float) -> LeaderLease:
        if row is None:
            return LeaderLease(None, 0, 0.0, 0.0, now)
        holder = None
        if row.holder_id is not None:
            holder = Holder(row.holder_id, row.holder_host or "", row.holder_pid or 0)
        return LeaderLease(holder, row.generation, row.acquired_s, row.expires_s, now)

    def take_leadership(self, holder: Holder, lease_s: float) -> LeaderLease:
        """One round of the leader election, in ONE transaction on the locked lease row:
        ``holder`` renews its lease if it holds it, takes it over if it lapsed (the
        generation grows, the loop claims of the previous holder are void, and the audit
        log says who took over from whom), else stays standby. Answers the lease after."""
        try:
            return self._take_leadership(holder, lease_s)
        except IntegrityError:  # two processes created the first row at once: one won
            return self.leader_lease()

    def _take_leadership(self, holder: Holder, lease_s: float) -> LeaderLease:
        with self.writes.begin() as s:
            now = self._db_now_s(s)
            row = self._lease_row(s)
            if row is None:
                row = LoopLeaderRow(id=LEADER_ROW_ID, generation=0, acquired_s=now)
                row.renewed_s = row.expires_s = now
                s.add(row)
            if row.holder_id == holder.id:
                row.renewed_s, row.expires_s = now, now + lease_s
            elif row.holder_id is None or row.expires_s <= now:
                self._take_over(s, row, holder, now, lease_s)
            return self._lease_of(row, now)

    def _take_over(
        self, s: Session, row: LoopLeaderRow, holder: Holder, now: float, lease_s: float
    ) -> None:
        previous = row.holder_id
        row.holder_id, row.holder_host, row.holder_pid = holder.id, holder.host, holder.pid
        row.generation += 1
        row.acquired_s = row.renewed_s = now
        row.expires_s = now + lease_s
        # Only the leader's loop claims jobs: claims left by an earlier holder (killed in
        # mid-tick) would hold their jobs for the rest of the job lease.
        s.execute(
            update(JobRow)
            .where(JobRow.lease_owner.is_not(None))
            .values(lease_owner=None, lease_until_s=None)
        )
        _audit(
            s,
            "system",
            "loop.leader",
            holder.id,
            generation=row.generation,
            host=holder.host,
            pid=holder.pid,
            previous=previous,
        )

    def release_leadership(self, holder_id: str, generation: int) -> None:
        """Give the lease up at once (a clean shutdown): another process takes over at its
        next round instead of waiting for the lease to lapse."""
        with self.writes.begin() as s:
            now = self._db_now_s(s)
            row = self._lease_row(s)
            if row is None or row.holder_id != holder_id or row.generation != generation:
                return
            row.expires_s = now
            _audit(s, "system", "loop.leader.release", holder_id, generation=generation)

    def leader_lease(self) -> LeaderLease:
        """The lease as it stands (read only)."""
        with self.sessions() as s:
            now = self._db_now_s(s)
            row = s.get(LoopLeaderRow, LEADER_ROW_ID)
            return self._lease_of(row, now)

    def _fence_holds(self, s: Session, fence: tuple[str, int]) -> bool:
        """Whether ``fence`` (holder id, generation) still leads, with the lease row locked
        for the rest of the transaction so no takeover commits in between."""
        holder_id, generation = fence
        row = s.scalar(
            select(LoopLeaderRow)
            .where(LoopLeaderRow.id == LEADER_ROW_ID)
            .with_for_update(read=True)
        )
        return (
            row is not None
            and row.holder_id == holder_id
            and row.generation == generation
            and row.expires_s > self._db_now_s(s)
        )

    # -- datasets -----------------------------------------------------------------------

    def create_dataset(self, principal: Principal, spec: DatasetSpec) -> dict[str, Any]:
        row = DatasetRow(
            id="d_" + uuid.uuid4().hex[:16],
            tenant_id=principal.tenant_id,
            name=spec.name,
            size_gb=spec.size_gb,
            home_site=spec.home_site,
            classification=spec.classification,
            individuals=spec.individuals,
            sensitive=spec.sensitive,
            export_cleared=spec.export_cleared,
            created_s=now_s(),
        )
        with self.writes.begin() as s:
            s.add(row)
            _audit(
                s,
                principal.tenant_id,
                "dataset.create",
                row.id,
                name=spec.name,
                home_site=spec.home_site,
                classification=spec.classification,
                export_cleared=spec.export_cleared,
            )
        return dataset_dict(row)

    def get_dataset(self, principal: Principal, dataset_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None or (principal.role != "admin" and row.tenant_id != principal.tenant_id):
                raise NotFoundError(f"no dataset {dataset_id!r}")
            return dataset_dict(row)

    def list_datasets(
        self, principal: Principal, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        with self.sessions() as s:
            q = select(DatasetRow)
            if principal.role != "admin":
                q = q.where(DatasetRow.tenant_id == principal.tenant_id)
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(
                q.order_by(DatasetRow.created_s.desc(), DatasetRow.id).limit(limit).offset(offset)
            )
            return [dataset_dict(r) for r in rows], int(total)

    def missing_datasets(self, principal: Principal, ids: Sequence[str]) -> list[str]:
        """Those of ``ids`` that the caller cannot see (unknown or another tenant's)."""
        with self.sessions() as s:
            q = select(DatasetRow.id).where(DatasetRow.id.in_(list(ids)))
            if principal.role != "admin":
                q = q.where(DatasetRow.tenant_id == principal.tenant_id)
            found = set(s.scalars(q))
        return [i for i in ids if i not in found]

    def datasets_by_id(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        with self.sessions() as s:
            rows = s.scalars(select(DatasetRow).where(DatasetRow.id.in_(list(ids))))
            return [dataset_dict(r) for r in rows]

    # -- site feeds ---------------------------------------------------------------------

    def put_site_feed(self, actor: str, site_id: str, **fields: Any) -> dict[str, Any]:
        """Set the given feed fields of ``site_id`` (``None`` clears one back to the
        catalog's value; a field not given stays as it was)."""
        with self.writes.begin() as s:
            row = s.get(SiteFeedRow, site_id)
            if row is None:
                row = SiteFeedRow(site_id=site_id, updated_s=now_s(), updated_by=actor)
                s.add(row)
            for key, value in fields.items():
                setattr(row, key, value)
            row.updated_s = now_s()
            row.updated_by = actor
            _audit(s, actor, "site.feed", site_id, fields=sorted(fields))
            return feed_dict(row)

    def site_feeds(self) -> dict[str, dict[str, Any]]:
        with self.sessions() as s:
            return {r.site_id: feed_dict(r) for r in s.scalars(select(SiteFeedRow))}

    # -- quotas and priority classes ------------------------------------------------

    def set_quota(
        self,
        tenant_id: str,
        nominal: dict[str, int],
        borrowing_limit: dict[str, int],
        weight: float,
        actor: str,
    ) -> dict[str, Any]:
        """Set ``tenant_id``'s quota (audited as ``quota.set``); returns it with its usage."""
        with self.writes.begin() as s:
            if s.get(TenantRow, tenant_id) is None:
                raise NotFoundError(f"no tenant {tenant_id!r}")
            row = s.get(TenantQuotaRow, tenant_id)
            if row is None:
                row = TenantQuotaRow(tenant_id=tenant_id)
                s.add(row)
            row.nominal = dict(sorted(nominal.items()))
            row.borrowing_limit = dict(sorted(borrowing_limit.items()))
            row.weight = float(weight)
            row.updated_s = now_s()
            row.updated_by = actor
            _audit(
                s,
                actor,
                "quota.set",
                tenant_id,
                nominal=row.nominal,
                borrowing_limit=row.borrowing_limit,
                weight=row.weight,
            )
            out = _quota_dict(row)
        return out | {"usage": self._usage().get(tenant_id, {})}

    def delete_quota(self, tenant_id: str, actor: str) -> None:
        """Remove ``tenant_id``'s quota (its work is then not quota-managed)."""
        with self.writes.begin() as s:
            row = s.get(TenantQuotaRow, tenant_id)
            if row is None:
                raise NotFoundError(f"tenant {tenant_id!r} has no quota")
            s.delete(row)
            _audit(s, actor, "quota.delete", tenant_id)

    def quotas(self, principal: Principal | None = None) -> list[dict[str, Any]]:
        """Quotas with the accelerators each tenant holds now per type (``usage``): all of
        them for an admin (or ``None``: the control loop), a tenant's own for others."""
        with self.sessions() as s:
            q = select(TenantQuotaRow).order_by(TenantQuotaRow.tenant_id)
            if principal is not None and principal.role != "admin":
                q = q.where(TenantQuotaRow.tenant_id == principal.tenant_id)
            rows = [_quota_dict(r) for r in s.scalars(q)]
        usage = self._usage()
        return [r | {"usage": usage.get(r["tenant_id"], {})} for r in rows]

    def _usage(self) -> dict[str, dict[str, int]]:
        """Accelerators per tenant and type held by jobs placed or running (not ended)."""
        t = now_s()
        out: dict[str, dict[str, int]] = {}
        for r in self.jobs_in(["placed", "transferring", "running"]):
            if r.accelerator and (r.end_s is None or r.end_s > t):
                per = out.setdefault(r.tenant_id, {})
                per[r.accelerator] = per.get(r.accelerator, 0) + r.accelerators
        return out

    def set_priority_class(self, name: str, priority: int, actor: str) -> dict[str, Any]:
        """Define or change a named priority class (audited as ``priority_class.set``)."""
        with self.writes.begin() as s:
            row = s.get(PriorityClassRow, name)
            if row is None:
                row = PriorityClassRow(name=name)
                s.add(row)
            row.priority = int(priority)
            row.updated_s = now_s()
            row.updated_by = actor
            _audit(s, actor, "priority_class.set", name, priority=row.priority)
        return {"name": name, "priority": int(priority)}

    def priority_classes(self) -> dict[str, int]:
        """Name -> priority: the defaults (``model.PRIORITY_CLASSES``) with the operator's
        classes over them."""
        with self.sessions() as s:
            rows = {r.name: r.priority for r in s.scalars(select(PriorityClassRow))}
        return dict(sorted((dict(PRIORITY_CLASSES) | rows).items(), key=lambda kv: kv[1]))

    # -- audit --------------------------------------------------------------------------

    def audit(
        self, principal: Principal, *, object_id: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        with self.sessions() as s:
            q = select(AuditRow)
            if principal.role != "admin":
                q = q.where(AuditRow.actor == principal.tenant_id)
            if object_id is not None:
                q = q.where(AuditRow.object_id == object_id)
            rows = s.scalars(q.order_by(AuditRow.id.desc()).limit(limit).offset(offset))
            return [
                {
                    "id": r.id,
                    "at_s": r.at_s,
                    "actor": r.actor,
                    "action": r.action,
                    "object_id": r.object_id,
                    "detail": r.detail,
                }
                for r in rows
            ]

    # -- grid events ----------------------------------------------------------------------

    def create_grid_event(
        self,
        actor: str,
        event: dict[str, Any],
        answer: dict[str, Any],
        caps: list[list[Any]],
        pauses: list[list[Any]],
        moves: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Store a grid event with its answer and carry out the answer's new places for jobs
        not yet started (``moves``: job id, site, accelerator, start and end), in ONE
        transaction, audited: the event, and each job it moves."""
        t = now_s()
        with self.writes.begin() as s:
            row = GridEventRow(
                id=event["id"],
                created_s=t,
                created_by=actor,
                sites=list(event["sites"]),
                start_s=event["start_s"],
                end_s=event["end_s"],
                notice_s=event["notice_s"],
                target_kw=event["target_kw"],
                target_share=event["target_share"],
                answer=answer,
                caps=caps,
                pauses=pauses,
            )
            s.add(row)
            for m in moves:
                job = s.get(JobRow, m["job_id"])
                if job is None or job.state != "placed" or job.dispatch_id is not None:
                    continue
                job.site_id, job.accelerator = m["site_id"], m["accelerator"]
                job.start_s, job.end_s = m["start_s"], m["end_s"]
                job.message = m["message"]
                job.updated_s = t
                _audit(s, "system", "job.grid_event", job.id, event=row.id, **m)
            _audit(
                s,
                actor,
                "grid_event.create",
                row.id,
                sites=row.sites,
                start_s=row.start_s,
                end_s=row.end_s,
                target_kw=row.target_kw,
                target_share=row.target_share,
                affected=len(answer.get("affected", [])),
                committed_ratio_min=answer.get("committed_ratio_min"),
            )
            return grid_event_dict(row)

    def get_grid_event(self, event_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            row = s.get(GridEventRow, event_id)
            if row is None:
                raise NotFoundError(f"no grid event {event_id!r}")
            return grid_event_dict(row)

    def grid_events_active(self, now: int) -> list[dict[str, Any]]:
        """Events whose window has not ended, oldest first."""
        with self.sessions() as s:
            rows = s.scalars(
                select(GridEventRow)
                .where(GridEventRow.end_s > now)
                .order_by(GridEventRow.created_s)
            )
            return [grid_event_dict(r) for r in rows]

    def grid_pause(
        self,
        event_id: str,
        job_id: str,
        reason: str,
        *,
        checkpoints_added: int,
        work_added_h: float,
    ) -> bool:
        """A running job stops for a grid event after a checkpoint and goes back to planning
        (which plans it under the event's caps), in ONE transaction with the event's record
        of the pause. False when the job is not running any more (nothing changes but the
        record)."""
        with self.writes.begin() as s:
            ev = s.get(GridEventRow, event_id)
            row = s.get(JobRow, job_id)
            if ev is not None:
                ev.pauses = [[j, at, True if j == job_id else done] for j, at, done in ev.pauses]
            if row is None or row.state != "running":
                return False
            self._transition(
                s, row, "checkpointed", "system", event=event_id, checkpoints=checkpoints_added
            )
            self._transition(s, row, "submitted", "system", event=event_id, reason=reason)
            row.work_done_h = float(row.work_done_h or 0.0) + work_added_h
            row.checkpoints = int(row.checkpoints or 0) + checkpoints_added
            if row.dispatch_id is not None and row.executor is not None:
                s.add(
                    StaleRunRow(
                        job_id=row.id,
                        site_id=row.executor,
                        request_id=row.dispatch_id,
                        local_id=row.local_id,
                        since_s=now_s(),
                    )
                )
            for name in _PLACEMENT_FIELDS:
                setattr(row, name, None)
            row.message = reason
            return True

    def runs_of(self, job_ids: Sequence[str]) -> dict[str, list[tuple[int, int | None]]]:
        """Per job, its runs as the executors reported them: from each audited change into
        ``running`` to the next change out of it (``None``: still running)."""
        out: dict[str, list[tuple[int, int | None]]] = {j: [] for j in job_ids}
        if not job_ids:
            return out
        with self.sessions() as s:
            rows = s.execute(
                select(AuditRow.object_id, AuditRow.at_s, AuditRow.detail)
                .where(AuditRow.action == "job.state", AuditRow.object_id.in_(list(job_ids)))
                .order_by(AuditRow.id)
            )
            for job_id, at, detail in rows:
                runs = out[job_id]
                if detail.get("new") == "running":
                    runs.append((at, None))
                elif detail.get("old") == "running" and runs and runs[-1][1] is None:
                    runs[-1] = (runs[-1][0], at)
        return out


def grid_event_dict(row: GridEventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_s": row.created_s,
        "created_by": row.created_by,
        "sites": list(row.sites),
        "start_s": row.start_s,
        "end_s": row.end_s,
        "notice_s": row.notice_s,
        "target_kw": row.target_kw,
        "target_share": row.target_share,
        "answer": row.answer,
        "caps": row.caps,
        "pauses": row.pauses,
    }
