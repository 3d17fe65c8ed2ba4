"""Every statement the repositories run, written once for both backends.

Statements are plain SQL with ``?`` placeholders (SQLite's qmark style); :func:`for_backend`
rewrites them to asyncpg's ``$1, $2`` for PostgreSQL. The hot reads run as these exact
strings on the bare drivers (see ``_readers``), so their plans are what the plan tests
check. ``"interval"`` is quoted because it is a keyword in PostgreSQL.
"""

# Every statement here is assembled from the constant column lists above it, never from
# input; values always travel as bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import re
from typing import Literal

__all__ = ["HOT_READS", "for_backend"]

SERIES = 'provider = ? AND symbol = ? AND "interval" = ?'

CANDLE_COLUMNS = (
    "open_time, open, high, low, close, volume, close_time, quote_volume, trades, "
    "taker_buy_volume, taker_buy_quote_volume, closed"
)

CANDLE_GET = f"SELECT {CANDLE_COLUMNS} FROM candles WHERE {SERIES} AND open_time = ?"

CANDLE_RANGE = (
    f"SELECT {CANDLE_COLUMNS} FROM candles "
    f"WHERE {SERIES} AND open_time >= ? AND open_time < ? ORDER BY open_time"
)

# Idempotent batch upsert (SQLite >= 3.24 and PostgreSQL share the ON CONFLICT syntax):
# a stored closed candle never changes; a stored open one is replaced by its closed version
# or by an open version fetched no earlier.
CANDLE_UPSERT = (
    'INSERT INTO candles (provider, symbol, "interval", open_time, open, high, low, close, '
    "volume, close_time, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, "
    "closed, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    'ON CONFLICT (provider, symbol, "interval", open_time) DO UPDATE SET '
    "open = excluded.open, high = excluded.high, low = excluded.low, "
    "close = excluded.close, volume = excluded.volume, close_time = excluded.close_time, "
    "quote_volume = excluded.quote_volume, trades = excluded.trades, "
    "taker_buy_volume = excluded.taker_buy_volume, "
    "taker_buy_quote_volume = excluded.taker_buy_quote_volume, "
    "closed = excluded.closed, fetched_at = excluded.fetched_at "
    "WHERE NOT candles.closed "
    "AND (excluded.closed OR excluded.fetched_at >= candles.fetched_at)"
)

# Ranges that overlap [start, end); ranges are disjoint, so end_ms order is start_ms order.
COVERAGE_OVERLAP = (
    f"SELECT start_ms, end_ms FROM coverage WHERE {SERIES} AND end_ms > ? AND start_ms < ? "
    "ORDER BY end_ms"
)
# Ranges that overlap or touch [start, end]: the ones a new range merges with.
COVERAGE_TOUCHING = (
    f"SELECT start_ms, end_ms FROM coverage WHERE {SERIES} AND end_ms >= ? AND start_ms <= ?"
)
COVERAGE_DELETE_TOUCHING = f"DELETE FROM coverage WHERE {SERIES} AND end_ms >= ? AND start_ms <= ?"
COVERAGE_INSERT = (
    'INSERT INTO coverage (provider, symbol, "interval", start_ms, end_ms) VALUES (?, ?, ?, ?, ?)'
)
COVERAGE_ALL = f"SELECT start_ms, end_ms FROM coverage WHERE {SERIES} ORDER BY end_ms"
# PostgreSQL only: serialises merges of one series (SQLite's BEGIN IMMEDIATE already does).
COVERAGE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))"

TICKER_FIELDS = (
    "price, time, bid, bid_qty, ask, ask_qty, open, high, low, volume, quote_volume, change_pct"
)
TICKER_GET = f"SELECT {TICKER_FIELDS}, fetched_at FROM tickers WHERE provider = ? AND symbol = ?"
TICKER_UPSERT = (
    f"INSERT INTO tickers (provider, symbol, {TICKER_FIELDS}, fetched_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (provider, symbol) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*TICKER_FIELDS.split(", "), "fetched_at"))
    + " WHERE excluded.fetched_at >= tickers.fetched_at"
)

BOOK_GET = (
    "SELECT last_update_id, time, bids, asks, fetched_at FROM books "
    "WHERE provider = ? AND symbol = ?"
)
BOOK_UPSERT = (
    "INSERT INTO books (provider, symbol, last_update_id, time, bids, asks, fetched_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, symbol) DO UPDATE SET "
    "last_update_id = excluded.last_update_id, time = excluded.time, bids = excluded.bids, "
    "asks = excluded.asks, fetched_at = excluded.fetched_at "
    "WHERE excluded.fetched_at >= books.fetched_at"
)

CONTROL_GET = "SELECT level, tunables, updated_at, updated_by FROM control_state WHERE provider = ?"
CONTROL_UPSERT = (
    "INSERT INTO control_state (provider, level, tunables, updated_at, updated_by) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE SET level = excluded.level, "
    "tunables = excluded.tunables, updated_at = excluded.updated_at, "
    "updated_by = excluded.updated_by"
)
AUDIT_INSERT = (
    "INSERT INTO control_audit (provider, field, actor, at, from_value, to_value, reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
AUDIT_COLUMNS = "id, provider, field, actor, at, from_value, to_value, reason"
AUDIT_BY_PROVIDER = (
    f"SELECT {AUDIT_COLUMNS} FROM control_audit WHERE provider = ? ORDER BY id DESC LIMIT ?"
)
AUDIT_ALL = f"SELECT {AUDIT_COLUMNS} FROM control_audit ORDER BY id DESC LIMIT ?"
# What running processes follow (marketdata/control_watch.py): entries after the last seen.
AUDIT_AFTER = f"SELECT {AUDIT_COLUMNS} FROM control_audit WHERE id > ? ORDER BY id LIMIT ?"
AUDIT_HEAD = "SELECT max(id) FROM control_audit"
AUDIT_INSERT_ID = f"{AUDIT_INSERT} RETURNING id"

BAN_GET = "SELECT until_ms, reason, created_at FROM bans WHERE provider = ?"
BAN_UPSERT = (
    "INSERT INTO bans (provider, until_ms, reason, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (provider) DO UPDATE SET until_ms = excluded.until_ms, "
    "reason = excluded.reason, created_at = excluded.created_at"
)
BAN_DELETE = "DELETE FROM bans WHERE provider = ?"

ALERT_COLUMNS = (
    "id, rule, severity, message, value, threshold, created_at, resolved_at, subject, "
    "escalated_at, seen_at, warning, critical, unit"
)
# One open alert per rule and subject (the partial unique index ix_alerts_open_subject of
# migration 0004): a second process opening the same one inserts nothing and returns no row.
ALERT_INSERT = (
    "INSERT INTO alerts (rule, subject, severity, message, value, threshold, warning, "
    "critical, unit, created_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT DO NOTHING RETURNING {ALERT_COLUMNS}"
)
ALERT_GET_OPEN = (
    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE rule = ? AND subject = ? AND resolved_at IS NULL"
)
# Escalating and resolving change a row only once, whoever tries: the process whose update
# changed it is the one that reports the event.
ALERT_ESCALATE = (
    "UPDATE alerts SET severity = 'critical', escalated_at = ?, threshold = ?, value = ?, "
    "message = ? WHERE id = ? AND resolved_at IS NULL AND severity = 'warning'"
)
ALERT_SEEN = (
    "UPDATE alerts SET value = ?, message = ?, "
    "seen_at = CASE WHEN seen_at IS NULL OR seen_at < ? THEN ? ELSE seen_at END "
    "WHERE id = ? AND resolved_at IS NULL"
)
ALERT_RESOLVE = "UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL"
# Resolved only when no process has judged it bad since ``?`` (hysteresis across processes).
ALERT_RESOLVE_QUIET = (
    "UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL "
    "AND (seen_at IS NULL OR seen_at <= ?)"
)
ALERT_OPEN = (
    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE resolved_at IS NULL ORDER BY created_at DESC LIMIT ?"
)
ALERT_ALL = f"SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?"

# The reads on the hot path, each with sample parameters and the index its plan must use
# (tests/store/test_plans.py).
HOT_READS: dict[str, tuple[str, tuple[object, ...], str]] = {
    "candles.get": (CANDLE_GET, ("binance", "BTC/USDT", "1m", 0), "pk_candles"),
    "candles.range": (CANDLE_RANGE, ("binance", "BTC/USDT", "1m", 0, 60_000), "pk_candles"),
    "coverage.overlap": (
        COVERAGE_OVERLAP,
        ("binance", "BTC/USDT", "1m", 0, 60_000),
        "ix_coverage_end",
    ),
    "ticker.load": (TICKER_GET, ("binance", "BTC/USDT"), "pk_tickers"),
    "book.load": (BOOK_GET, ("binance", "BTC/USDT"), "pk_books"),
    "control.load": (CONTROL_GET, ("binance",), "pk_control_state"),
    "ban.load": (BAN_GET, ("binance",), "pk_bans"),
    "audit.list": (AUDIT_BY_PROVIDER, ("binance", 10), "ix_control_audit_provider"),
    # The open alert of a rule and subject, read by a process that found it opened by
    # another. (The list of open alerts, read every health round, seeks ix_alerts_open on
    # SQLite and the partial ix_alerts_open_subject on PostgreSQL: one name too many here.)
    "alerts.get_open": (ALERT_GET_OPEN, ("store_round_trip", "venue:v"), "ix_alerts_open_subject"),
}

_QMARK = re.compile(r"\?")


def for_backend(sql: str, backend: Literal["sqlite", "postgresql"]) -> str:
    """``sql`` in the placeholder style of ``backend`` (no statement holds a literal ``?``)."""
    if backend == "sqlite":
        return sql
    counter = iter(range(1, 1000))
    return _QMARK.sub(lambda _m: f"${next(counter)}", sql)


VENUE_GET = "SELECT venue, declared, first_seen, last_seen FROM venues WHERE base_url = ?"
VENUE_UPSERT = (
    "INSERT INTO venues (base_url, venue, declared, first_seen, last_seen) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (base_url) DO UPDATE SET venue = excluded.venue, "
    "declared = excluded.declared, last_seen = excluded.last_seen, first_seen = CASE "
    "WHEN venues.venue = excluded.venue THEN venues.first_seen ELSE excluded.first_seen END"
)
VENUE_ALL = "SELECT base_url, venue, declared, first_seen, last_seen FROM venues ORDER BY base_url"

INFO_GET = "SELECT body, fetched_at FROM exchange_info WHERE venue = ?"
INFO_UPSERT = (
    "INSERT INTO exchange_info (venue, body, fetched_at) VALUES (?, ?, ?) "
    "ON CONFLICT (venue) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at "
    "WHERE exchange_info.fetched_at < excluded.fetched_at"
)

# Every table keyed by the venue (named ``provider`` in the tables of revision 0001), with
# its key column: what `mystic db venues` counts, moves and drops.
VENUE_TABLES: tuple[tuple[str, str], ...] = (
    ("candles", "provider"),
    ("coverage", "provider"),
    ("tickers", "provider"),
    ("books", "provider"),
    ("control_state", "provider"),
    ("bans", "provider"),
    ("exchange_info", "venue"),
)

# Heartbeats (monitor/): one row per process, replaced at every beat. A write carrying an
# older beat of the same process (seq) than the kept one changes nothing; started_at stays as
# first written. Never read through the query cache: other processes write these rows.
HEARTBEAT_COLUMNS = (
    "process_id, venue, host, pid, version, started_at, beat_at, interval_ms, seq, figures, "
    "stopped_at"
)
HEARTBEAT_UPSERT = (
    f"INSERT INTO heartbeats ({HEARTBEAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (process_id) DO UPDATE SET venue = excluded.venue, host = excluded.host, "
    "pid = excluded.pid, version = excluded.version, beat_at = excluded.beat_at, "
    "interval_ms = excluded.interval_ms, seq = excluded.seq, figures = excluded.figures, "
    "stopped_at = excluded.stopped_at WHERE excluded.seq >= heartbeats.seq"
)
HEARTBEAT_STOP = "UPDATE heartbeats SET stopped_at = ? WHERE process_id = ? AND stopped_at IS NULL"
HEARTBEAT_RECENT = (
    f"SELECT {HEARTBEAT_COLUMNS} FROM heartbeats WHERE beat_at >= ? ORDER BY started_at, process_id"
)
HEARTBEAT_PRUNE = "DELETE FROM heartbeats WHERE beat_at < ?"
# A process's ring of samples (migration 0005): one row per beat, the last hour kept.
SAMPLE_INSERT = (
    "INSERT INTO heartbeat_samples (process_id, venue, beat_at, sample) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (process_id, beat_at) DO NOTHING"
)
SAMPLE_PRUNE = "DELETE FROM heartbeat_samples WHERE venue = ? AND beat_at < ?"
SAMPLE_RECENT = (
    "SELECT process_id, beat_at, sample FROM heartbeat_samples WHERE venue = ? AND beat_at >= ? "
    "ORDER BY process_id, beat_at"
)

# The health check's round trip: a one-row read that touches the database file or server.
STORE_PING = "SELECT version_num FROM alembic_version"
