"""The initial schema: candles and coverage, snapshots, control state, bans and alerts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Decimal column type: TEXT on SQLite, NUMERIC on PostgreSQL. Both hold the exchange's decimal
string exactly ("12345678.12345678" comes back as that). A SQLite column declared NUMERIC or
REAL would give the value numeric affinity and store it as a binary double, which is lossy
(sqlite.org/datatype3.html, "Type Affinity"); TEXT keeps the string, and ``Decimal(str)`` is
the cheapest exact way back into Python. Unconstrained PostgreSQL NUMERIC is exact and keeps
the given scale, asyncpg decodes it straight to ``Decimal`` in C, and SQL can still compute
on it. Scaled integers were rejected: eight decimals leave int64 only 9.2e10 of range, less
than the quote volume of a cheap coin, and ``Decimal(int).scaleb()`` is no faster than
``Decimal(str)``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

DEC = sa.Text().with_variant(sa.Numeric(), "postgresql")
MS = sa.BigInteger()  # UTC epoch milliseconds
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY


def upgrade() -> None:
    # Clustered on its key in SQLite (WITHOUT ROWID): a range read is one sequential b-tree
    # walk with the row beside the key, no second lookup per candle.
    op.create_table(
        "candles",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=False),
        sa.Column("open_time", MS, nullable=False),
        sa.Column("open", DEC, nullable=False),
        sa.Column("high", DEC, nullable=False),
        sa.Column("low", DEC, nullable=False),
        sa.Column("close", DEC, nullable=False),
        sa.Column("volume", DEC, nullable=False),
        sa.Column("close_time", MS, nullable=False),
        sa.Column("quote_volume", DEC, nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_volume", DEC, nullable=False),
        sa.Column("taker_buy_quote_volume", DEC, nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("fetched_at", MS, nullable=False),
        sa.PrimaryKeyConstraint("provider", "symbol", "interval", "open_time", name="pk_candles"),
        sqlite_with_rowid=False,
    )
    # Disjoint [start_ms, end_ms) ranges of open times whose candles are known (possibly none).
    op.create_table(
        "coverage",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=False),
        sa.Column("start_ms", MS, nullable=False),
        sa.Column("end_ms", MS, nullable=False),
        sa.PrimaryKeyConstraint("provider", "symbol", "interval", "start_ms", name="pk_coverage"),
        sa.CheckConstraint("end_ms > start_ms", name="ck_coverage_nonempty"),
        sqlite_with_rowid=False,
    )
    # The overlap query (end_ms > start AND start_ms < end) seeks on end_ms.
    op.create_index(
        "ix_coverage_end", "coverage", ["provider", "symbol", "interval", "end_ms"], unique=True
    )
    op.create_table(
        "tickers",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("price", DEC, nullable=False),
        sa.Column("time", MS, nullable=False),
        *(
            sa.Column(name, DEC, nullable=True)
            for name in (
                "bid",
                "bid_qty",
                "ask",
                "ask_qty",
                "open",
                "high",
                "low",
                "volume",
                "quote_volume",
                "change_pct",
            )
        ),
        sa.Column("fetched_at", MS, nullable=False),
        sa.PrimaryKeyConstraint("provider", "symbol", name="pk_tickers"),
    )
    op.create_table(
        "books",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("last_update_id", sa.BigInteger(), nullable=False),
        sa.Column("time", MS, nullable=False),
        # [[price, qty], ...] as JSON arrays of decimal strings: exact, and one column read.
        sa.Column("bids", sa.Text(), nullable=False),
        sa.Column("asks", sa.Text(), nullable=False),
        sa.Column("fetched_at", MS, nullable=False),
        sa.PrimaryKeyConstraint("provider", "symbol", name="pk_books"),
    )
    op.create_table(
        "control_state",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("tunables", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("updated_at", MS, nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_control_state"),
    )
    op.create_table(
        "control_audit",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", MS, nullable=False),
        sa.Column("from_value", sa.Text(), nullable=True),
        sa.Column("to_value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_control_audit_provider", "control_audit", ["provider", "id"])
    op.create_table(
        "bans",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("until_ms", MS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_bans"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("created_at", MS, nullable=False),
        sa.Column("resolved_at", MS, nullable=True),
        sa.CheckConstraint("severity IN ('warning', 'critical')", name="ck_alerts_severity"),
    )
    op.create_index("ix_alerts_open", "alerts", ["resolved_at", "created_at"])


def downgrade() -> None:
    for name in ("alerts", "bans", "control_audit", "control_state", "books", "tickers"):
        op.drop_table(name)
    op.drop_table("coverage")
    op.drop_table("candles")
