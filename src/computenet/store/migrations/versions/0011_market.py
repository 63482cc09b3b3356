"""The compute market: offers, orders with their quotes, and pool certificates.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_offers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("provider_id", sa.String(40), nullable=False, index=True),
        sa.Column("site_id", sa.String(80), nullable=False, index=True),
        sa.Column("accelerator", sa.String(80), nullable=False),
        sa.Column("accelerators", sa.Integer, nullable=False),
        sa.Column("start_s", sa.BigInteger, nullable=False),
        sa.Column("end_s", sa.BigInteger, nullable=False, index=True),
        sa.Column("price_fen_per_unit", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("created_s", sa.BigInteger, nullable=False),
        sa.Column("withdrawn_s", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "market_orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("order", sa.JSON, nullable=False),
        sa.Column("quote", sa.JSON, nullable=True),
        sa.Column("offer_id", sa.String(40), nullable=True, index=True),
        sa.Column("provider_id", sa.String(40), nullable=True, index=True),
        sa.Column("job_id", sa.String(40), nullable=True),
        sa.Column("expires_s", sa.BigInteger, nullable=False),
        sa.Column("created_s", sa.BigInteger, nullable=False),
        sa.Column("updated_s", sa.BigInteger, nullable=False),
        sa.Column("settlement", sa.JSON, nullable=True),
    )
    op.create_table(
        "pool_certificates",
        sa.Column("site_id", sa.String(80), primary_key=True),
        sa.Column("accelerator", sa.String(80), primary_key=True),
        sa.Column("provider_id", sa.String(40), nullable=False),
        sa.Column("certificate_id", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("submitted_s", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pool_certificates")
    op.drop_table("market_orders")
    op.drop_table("market_offers")
