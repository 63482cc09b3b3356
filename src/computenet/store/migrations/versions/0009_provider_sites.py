"""Providers own their sites: the sites each provider may post capacity and signals for.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_sites",
        sa.Column("provider_id", sa.String(40), primary_key=True),
        sa.Column("site_id", sa.String(80), primary_key=True),
        sa.Column("bound_s", sa.BigInteger, nullable=False),
        sa.Column("bound_by", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provider_sites")
