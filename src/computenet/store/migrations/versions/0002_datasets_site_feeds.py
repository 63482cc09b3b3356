"""Datasets and site feeds (capacity, price and carbon posted by operators/providers).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("size_gb", sa.Float, nullable=False),
        sa.Column("home_site", sa.String(80), nullable=False),
        sa.Column("classification", sa.String(20), nullable=False),
        sa.Column("individuals", sa.Integer, nullable=False),
        sa.Column("sensitive", sa.Boolean, nullable=False),
        sa.Column("export_cleared", sa.Boolean, nullable=False),
        sa.Column("created_s", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "site_feeds",
        sa.Column("site_id", sa.String(80), primary_key=True),
        sa.Column("capacity", sa.JSON, nullable=True),
        sa.Column("price_cny_per_kwh", sa.JSON, nullable=True),
        sa.Column("carbon_g_per_kwh", sa.JSON, nullable=True),
        sa.Column("updated_s", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=False),
    )
    # The live loop looks for due placements by state and start time.
    op.create_index("ix_jobs_state_start", "jobs", ["state", "start_s"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_start", "jobs")
    op.drop_table("site_feeds")
    op.drop_table("datasets")
