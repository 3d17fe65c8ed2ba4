"""Heartbeats: the last beat of every process of a deployment that runs MarketData.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10

One row per process, replaced at every beat (``monitor/``): who the process is (host, pid,
version, venue), when it started and last beat (UTC epoch ms on the store's clock), the
interval it promised to beat at (a reader calls it gone after three missed beats, of its own
interval), and its figures as one JSON document, which only monitoring reads and which grows
with the figures Mystic measures, so it is not spread into columns. This table is where
heartbeats go when no Redis is configured, or while Redis is down; rows of processes gone
for longer than an hour are deleted by the next beat of any process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

MS = sa.BigInteger()  # UTC epoch milliseconds


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("process_id", sa.Text(), nullable=False),
        sa.Column("venue", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("started_at", MS, nullable=False),
        sa.Column("beat_at", MS, nullable=False),
        sa.Column("interval_ms", sa.BigInteger(), nullable=False),
        # The process's own count of beats: a late write never replaces a newer one.
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False, server_default="{}"),
        # Set when the process closed cleanly: gone at once, not three beats later.
        sa.Column("stopped_at", MS, nullable=True),
        sa.PrimaryKeyConstraint("process_id", name="pk_heartbeats"),
        sa.CheckConstraint("interval_ms > 0", name="ck_heartbeats_interval"),
    )
    # The prune (beat_at < cutoff) and the registry's read of recent beats seek on beat_at.
    op.create_index("ix_heartbeats_beat_at", "heartbeats", ["beat_at"])


def downgrade() -> None:
    op.drop_index("ix_heartbeats_beat_at", table_name="heartbeats")
    op.drop_table("heartbeats")
