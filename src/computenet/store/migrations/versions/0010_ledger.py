"""The market's double-entry ledger: transactions (append-only, one key each) and postings.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_transactions",
        sa.Column("seq", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("at_s", sa.BigInteger, nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("memo", sa.Text, nullable=False),
        sa.Column("refs", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("recorded_by", sa.String(40), nullable=False),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("tx_seq", sa.BigInteger, nullable=False, index=True),
        sa.Column("account", sa.String(60), nullable=False, index=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_postings")
    op.drop_table("ledger_transactions")
