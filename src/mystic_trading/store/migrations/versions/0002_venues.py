"""Venues: which exchange each base URL was, and exchangeInfo kept per venue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Before this revision every row was keyed ``provider = 'binance'`` whatever exchange it came
from, so the built-in sandbox's synthetic data (``mystic demo``) and Binance's shared one key
(review C1). From here on rows are keyed by a venue id (``providers/venue.py``), and no venue
is called ``binance``: the rows an older Mystic wrote stay where they are, read by no venue,
until an operator says whose they are (``mystic db venues move binance binance-spot``) or
drops them (``mystic db venues drop binance``). Nothing is deleted here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

MS = sa.BigInteger()  # UTC epoch milliseconds


def upgrade() -> None:
    # The venue each base URL last identified as: a process that starts while its exchange
    # is unreachable keys its data as the last one it saw there.
    op.create_table(
        "venues",
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("venue", sa.Text(), nullable=False),
        sa.Column("declared", sa.Text(), nullable=True),
        sa.Column("first_seen", MS, nullable=False),
        sa.Column("last_seen", MS, nullable=False),
        sa.PrimaryKeyConstraint("base_url", name="pk_venues"),
    )
    # The exchange's last exchangeInfo document per venue, shared by every process and CLI
    # call of a deployment (weight 20 a fetch).
    op.create_table(
        "exchange_info",
        sa.Column("venue", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fetched_at", MS, nullable=False),
        sa.PrimaryKeyConstraint("venue", name="pk_exchange_info"),
    )


def downgrade() -> None:
    op.drop_table("exchange_info")
    op.drop_table("venues")
