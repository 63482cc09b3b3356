"""Grid events (demand response) and each job's flexibility class.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("flex_class", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "grid_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_s", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("sites", sa.JSON, nullable=False),
        sa.Column("start_s", sa.BigInteger, nullable=False),
        sa.Column("end_s", sa.BigInteger, nullable=False, index=True),
        sa.Column("notice_s", sa.BigInteger, nullable=False),
        sa.Column("target_kw", sa.Float, nullable=True),
        sa.Column("target_share", sa.Float, nullable=True),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("caps", sa.JSON, nullable=False),
        sa.Column("pauses", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("grid_events")
    op.drop_column("jobs", "flex_class")
