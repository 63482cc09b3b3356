"""The control loop's leader lease (one row) and the generation that recorded each dispatch.

Revision ID: 0005
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_leader",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder_id", sa.String(80), nullable=True),
        sa.Column("holder_host", sa.String(255), nullable=True),
        sa.Column("holder_pid", sa.Integer, nullable=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("acquired_s", sa.Float, nullable=False),
        sa.Column("renewed_s", sa.Float, nullable=False),
        sa.Column("expires_s", sa.Float, nullable=False),
    )
    op.add_column("jobs", sa.Column("dispatch_generation", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "dispatch_generation")
    op.drop_table("loop_leader")
