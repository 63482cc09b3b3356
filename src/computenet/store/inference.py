"""Persistence of inference services: one row per service with its request and placement.

A tenant reads only its own services (another tenant's answer 404, as if absent); an admin
reads any. Creation is audited (``service.create``)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from computenet.errors import NotFoundError
from computenet.store.models import AuditRow, InferenceServiceRow
from computenet.store.repository import Principal, now_s


def _audit(s: Session, actor: str, action: str, object_id: str, **detail: Any) -> None:
    s.add(AuditRow(at_s=now_s(), actor=actor, action=action, object_id=object_id, detail=detail))


class InferenceStore:
    def __init__(self, engine: Engine) -> None:
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.writes = sessionmaker(
            engine.execution_options(sqlite_write=True), expire_on_commit=False
        )

    def create(
        self,
        who: Principal,
        name: str,
        start_s: int,
        spec: dict[str, Any],
        demand: dict[str, Any],
        placement: dict[str, Any],
    ) -> dict[str, Any]:
        row = InferenceServiceRow(
            id=f"svc-{uuid.uuid4().hex[:16]}",
            tenant_id=who.tenant_id,
            name=name,
            created_s=now_s(),
            start_s=start_s,
            spec=spec,
            demand=demand,
            placement=placement,
        )
        with self.writes.begin() as s:
            s.add(row)
            _audit(s, who.tenant_id, "service.create", row.id, name=name)
        return _out(row)

    def get(self, who: Principal, service_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            row = s.get(InferenceServiceRow, service_id)
            if row is None or (who.role != "admin" and row.tenant_id != who.tenant_id):
                raise NotFoundError(f"no service {service_id!r}")
            return _out(row)


def _out(row: InferenceServiceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "name": row.name,
        "created_s": row.created_s,
        "start_s": row.start_s,
        "spec": row.spec,
        "demand": row.demand,
        "placement": row.placement,
    }
