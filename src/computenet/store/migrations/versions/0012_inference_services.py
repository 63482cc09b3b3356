"""Inference services and their hour-by-hour placement.

Revision ID: 0012
Revises: 0011b
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inference_services",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_s", sa.BigInteger, nullable=False),
        sa.Column("start_s", sa.BigInteger, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("demand", sa.JSON, nullable=False),
        sa.Column("placement", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inference_services")
