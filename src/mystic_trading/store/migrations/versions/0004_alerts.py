"""Alerts with a subject, an escalation time and one open alert per rule and subject.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-24

An alert follows one health check (its rule) about one subject: a venue for what the
deployment shares (the store, Redis, a ban, the exchange's clock), a process for what is its
own (event-loop lag, memory). Several processes judge the same rule and subject, so the
store, not a process, decides that only one alert is open for them: a unique index over the
open rows (``resolved_at IS NULL``), which every process's insert meets with ``ON CONFLICT
DO NOTHING`` (SQLite 3.24+ and PostgreSQL both accept a partial unique index there).

Added columns: the subject; when it escalated to critical; when some process last judged it
beyond a threshold (``seen_at``: no process resolves it while another still sees it bad);
the check's warning and critical thresholds and unit. ``created_at`` stays the time it
opened, ``value`` and ``message`` are the latest judged. Rows kept from before this
revision are about no subject (''); where two of them were open for one rule, all but the
newest are closed at their own opening time so that the index can be built.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

MS = sa.BigInteger()  # UTC epoch milliseconds
OPEN = "resolved_at IS NULL"


def upgrade() -> None:
    op.add_column("alerts", sa.Column("subject", sa.Text(), nullable=False, server_default=""))
    op.add_column("alerts", sa.Column("escalated_at", MS, nullable=True))
    op.add_column("alerts", sa.Column("seen_at", MS, nullable=True))
    op.add_column("alerts", sa.Column("warning", sa.Float(), nullable=True))
    op.add_column("alerts", sa.Column("critical", sa.Float(), nullable=True))
    op.add_column("alerts", sa.Column("unit", sa.Text(), nullable=False, server_default=""))
    op.execute(
        "UPDATE alerts SET resolved_at = created_at WHERE resolved_at IS NULL AND id NOT IN "
        "(SELECT MAX(id) FROM alerts WHERE resolved_at IS NULL GROUP BY rule)"
    )
    op.create_index(
        "ix_alerts_open_subject",
        "alerts",
        ["rule", "subject"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_open_subject", table_name="alerts")
    # SQLite drops a column in place since 3.35, which RETURNING needs already.
    for name in ("unit", "critical", "warning", "seen_at", "escalated_at", "subject"):
        op.drop_column("alerts", name)
