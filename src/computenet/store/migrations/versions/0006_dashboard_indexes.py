"""Indexes for the dashboard's jobs table: a page of jobs, newest first, for everyone, for
one tenant, in one state or at one site, read from the index alone (id included), without
touching the rows and their explanations.

Revision ID: 0006d
Revises: 0005
"""

from alembic import op

revision = "0006d"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created_id", "jobs", ["created_s", "id"])
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_s", "id"])
    op.create_index("ix_jobs_state_created", "jobs", ["state", "created_s", "id"])
    op.create_index("ix_jobs_site_created", "jobs", ["site_id", "created_s", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_site_created", table_name="jobs")
    op.drop_index("ix_jobs_state_created", table_name="jobs")
    op.drop_index("ix_jobs_tenant_created", table_name="jobs")
    op.drop_index("ix_jobs_created_id", table_name="jobs")
