"""Tenant permissions (``commands``: may submit a command that an executor runs).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_permissions",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("permission", sa.String(40), primary_key=True),
        sa.Column("granted_s", sa.BigInteger, nullable=False),
        sa.Column("granted_by", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_permissions")
