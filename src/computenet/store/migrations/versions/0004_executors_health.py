"""Per-site executors: the site-local id of a run, checkpointing, site health, stale runs.

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("local_id", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("checkpointable", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("checkpoint_interval_s", sa.Integer, nullable=True))
        batch.add_column(sa.Column("work_done_h", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("checkpoints", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("run_started_s", sa.BigInteger, nullable=True))
    op.create_table(
        "site_health",
        sa.Column("site_id", sa.String(80), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("up", sa.Boolean, nullable=False),
        sa.Column("last_heartbeat_s", sa.BigInteger, nullable=True),
        sa.Column("down_since_s", sa.BigInteger, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("updated_s", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "stale_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), nullable=False, index=True),
        sa.Column("site_id", sa.String(80), nullable=False, index=True),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("local_id", sa.String(200), nullable=True),
        sa.Column("since_s", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stale_runs")
    op.drop_table("site_health")
    with op.batch_alter_table("jobs") as batch:
        for name in (
            "run_started_s",
            "checkpoints",
            "work_done_h",
            "checkpoint_interval_s",
            "checkpointable",
            "local_id",
        ):
            batch.drop_column(name)
