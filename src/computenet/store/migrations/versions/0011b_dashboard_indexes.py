"""Indexes for the dashboard's jobs table: a page of jobs, newest first, for everyone and
for one tenant, read from the index alone (id included), without touching the rows and
their explanations. Only these two: each index slows the submission path (10,000 jobs
submitted in batches of 250 on SQLite here: about 5% slower with these two, 15-20% with
two more for the state and site filters, which therefore read the rows).

Revision ID: 0011b
Revises: 0011
"""

from alembic import op

revision = "0011b"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created_id", "jobs", ["created_s", "id"])
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_s", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_created", table_name="jobs")
    op.drop_index("ix_jobs_created_id", table_name="jobs")
