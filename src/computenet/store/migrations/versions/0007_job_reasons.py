"""The engine's structured reasons stored with each job (``jobs.reasons``, JSON).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("reasons", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "reasons")
