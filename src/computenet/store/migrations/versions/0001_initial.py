"""Initial schema: tenants, tokens, jobs, audit.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_s", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
        sa.Column("created_s", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("accelerators", sa.Integer, nullable=False),
        sa.Column("duration_h", sa.Float, nullable=False),
        sa.Column("deadline_s", sa.BigInteger, nullable=True),
        sa.Column("accelerator_types", sa.JSON, nullable=False),
        sa.Column("datasets", sa.JSON, nullable=False),
        sa.Column("command", sa.Text, nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("created_s", sa.BigInteger, nullable=False, index=True),
        sa.Column("updated_s", sa.BigInteger, nullable=False),
        sa.Column("site_id", sa.String(80), nullable=True),
        sa.Column("accelerator", sa.String(80), nullable=True),
        sa.Column("start_s", sa.BigInteger, nullable=True),
        sa.Column("end_s", sa.BigInteger, nullable=True),
        sa.Column("explanation", sa.JSON, nullable=True),
        sa.Column("executor", sa.String(40), nullable=True),
        sa.Column("dispatch_id", sa.String(40), nullable=True),
        sa.Column("lease_owner", sa.String(40), nullable=True),
        sa.Column("lease_until_s", sa.BigInteger, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_idem"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_s", sa.BigInteger, nullable=False, index=True),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("object_id", sa.String(80), nullable=False, index=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("audit", "jobs", "tokens", "tenants"):
        op.drop_table(table)
