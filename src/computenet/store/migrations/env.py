"""Alembic environment: the service passes an open connection in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from computenet.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
