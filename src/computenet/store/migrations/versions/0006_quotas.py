"""Tenants' quotas (nominal and borrowing limit per accelerator type, fair-share weight) and
named priority classes.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_quotas",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("nominal", sa.JSON, nullable=False),
        sa.Column("borrowing_limit", sa.JSON, nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("updated_s", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=False),
    )
    op.create_table(
        "priority_classes",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("updated_s", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("priority_classes")
    op.drop_table("tenant_quotas")
