"""heartbeat_figures: the flat figures of md.stats(), from a real MarketData against the
sandbox exchange, and judged healthy by a round of checks."""

from __future__ import annotations

from pathlib import Path

from mystic_trading.config import Settings
from mystic_trading.marketdata import MarketData
from mystic_trading.monitor import HealthChecker, HeartbeatPublisher, heartbeat_figures
from mystic_trading.sandbox import SandboxServer


def test_missing_parts_are_none_or_zero_never_an_error() -> None:
    """Stats of another shape (or none at all) give zeros and Nones, not an exception."""
    figures = heartbeat_figures({"throttle": {"failures": {"timeout": 2, "rejected": 9}}})
    assert figures["requests"] == 0 and figures["upstream_failures"] == 2
    assert figures["ceiling"] is None and figures["candle_backlog_rows"] is None
    assert figures["redis_available"] is None and figures["ceiling_utilisation_pct"] is None
    assert heartbeat_figures({})["hits"] == {"memory": 0, "redis": 0, "store": 0, "upstream": 0}
    assert figures["upstream_5xx"] == 0 and figures["upstream_unreachable"] == 2
    assert figures["foreign_weight"] is None and figures["usage_header_used"] is None


def test_failures_by_kind_and_the_usage_header() -> None:
    """5xx answers and an exchange out of reach are told apart (a lower level helps only
    the first); the throttler's usage entry gives the header, what was sent and the
    foreign weight."""
    figures = heartbeat_figures(
        {
            "throttle": {
                "failures": {"server_error": 4, "timeout": 1, "transport": 2, "rate_limited": 3},
                "usage": {"header_used": 120, "own_in_window": 80, "foreign_weight": 40},
            }
        }
    )
    assert figures["upstream_failures"] == 10
    assert (figures["upstream_5xx"], figures["upstream_unreachable"]) == (4, 3)
    assert (figures["usage_header_used"], figures["usage_own"]) == (120, 80)
    assert figures["foreign_weight"] == 40


def test_wait_p95_falls_back_to_p99_and_backlog_is_read() -> None:
    """The queue wait is the throttler's p95 when it keeps one, else its p99; the candle
    backlog comes from candle_writes.pending_rows when reported."""
    only_p99 = heartbeat_figures({"throttle": {"wait_ms": {"p50": 1.0, "p99": 9.0}}})
    assert only_p99["queue_wait_p95_ms"] == 9.0
    both = heartbeat_figures({"throttle": {"wait_ms": {"p95": 4.0, "p99": 9.0}}})
    assert both["queue_wait_p95_ms"] == 4.0
    assert (
        heartbeat_figures({"candle_writes": {"pending_rows": 1234}})["candle_backlog_rows"] == 1234
    )


async def test_figures_of_a_real_process(shared_exchange: SandboxServer, tmp_path: Path) -> None:
    """A MarketData that answered a few requests: its figures count them per layer, carry
    the throttle's ceiling and the exchange's clock, and a round of checks over them, its
    store and its heartbeat is ok; the heartbeat keeps them."""
    settings = Settings(
        store={"url": f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}"},
        provider={"base_url": shared_exchange.url},
    )
    async with MarketData.open(settings) as md:
        for _ in range(3):
            await md.ticker("BTCUSDT")
        await md.candles("BTCUSDT", "1m", limit=10)

        def figures() -> dict[str, object]:
            return heartbeat_figures(md.stats())

        now = figures()
        assert now["requests"] == 4
        assert now["hits"] == {"memory": 2, "redis": 0, "store": 0, "upstream": 2}
        assert now["upstream_successes"] == now["upstream_calls"] >= 2
        assert now["upstream_failures"] == 0 and now["n429"] == now["n418"] == 0
        assert now["level"] == "moderate" and now["ceiling"] and now["limit"]
        assert now["clock_synced"] is True and now["clock_error_ms"] is not None
        assert now["quota_mode"] == "memory" and now["redis_available"] is None
        assert now["usage_own"] >= 1 and now["foreign_weight"] is not None

        publisher = HeartbeatPublisher(md.store, figures, venue=lambda: md.provider.venue)
        kept = await publisher.beat_once()
        assert kept is not None and kept.venue == md.provider.venue
        assert kept.figures["hits"] == now["hits"]
        report = await HealthChecker(md.store, figures, publisher=publisher).run()
        assert report.overall == "ok", [c for c in report.checks if c.status != "ok"]
        assert report.check("cache_hit_redis") is None  # no Redis configured
        await publisher.aclose()
