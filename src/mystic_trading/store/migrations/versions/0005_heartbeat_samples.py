"""Heartbeat samples: the last hour of every process's figures, one row per beat.

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-07

``heartbeats`` keeps a process's last beat; this keeps its recent ones, so the dashboard of a
service started late (or restarted) still draws the deployment's last hour: each process's
ring of samples, merged across the deployment (``monitor/_history.py``). A sample is the
few figures the dashboard charts, as one compact JSON array (``sample``), stamped on the
store's clock like the beat it came with. Written in the beat's transaction when the store
keeps the beats (no Redis, or Redis down); rows older than an hour are deleted by the next
beat of a process of the same venue.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

MS = sa.BigInteger()  # UTC epoch milliseconds


def upgrade() -> None:
    op.create_table(
        "heartbeat_samples",
        sa.Column("process_id", sa.Text(), nullable=False),
        sa.Column("venue", sa.Text(), nullable=False),
        sa.Column("beat_at", MS, nullable=False),
        sa.Column("sample", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("process_id", "beat_at", name="pk_heartbeat_samples"),
    )
    # The dashboard's read (a venue's last hour) and the prune (a venue's rows before a
    # cutoff) both seek on (venue, beat_at).
    op.create_index("ix_heartbeat_samples_venue_at", "heartbeat_samples", ["venue", "beat_at"])


def downgrade() -> None:
    op.drop_index("ix_heartbeat_samples_venue_at", table_name="heartbeat_samples")
    op.drop_table("heartbeat_samples")
