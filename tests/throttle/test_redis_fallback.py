"""Redis lost and regained: a local share of the budget meanwhile, then back to Redis."""

from __future__ import annotations

from typing import Any

import pytest

from mystic_trading.throttle import BucketSpec, RedisQuota

SPEC = BucketSpec(rate=100.0, burst=10, window_s=10)


@pytest.mark.redis
async def test_fallback_and_return(own_redis: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Killed Redis: local budget of limit/expected_processes, logged; restarted: shared again."""
    quota = RedisQuota(own_redis.url, prefix="t", expected_processes=4, reconnect_s=0.0)
    assert (await quota.reserve("p", 1, SPEC, 0.0)).granted
    assert quota.mode == "redis"
    own_redis.stop()
    with caplog.at_level("WARNING", logger="mystic_trading.throttle"):
        grant = await quota.reserve("p", 1, SPEC, 0.0)
    assert grant.granted
    assert quota.mode == "local-fallback"
    assert "unreachable" in caplog.text
    # The local share: (100 * 10 + 10) / 4 per window, so at most 10 burst, then 24.75 w/s.
    local = SPEC.share(4)
    assert local.rate == pytest.approx(((100 * 10 + 10) / 4 - 10) / 10)
    own_redis.start()
    with caplog.at_level("WARNING", logger="mystic_trading.throttle"):
        assert (await quota.reserve("p", 1, SPEC, 0.0)).granted
    assert quota.mode == "redis"
    assert "answers again" in caplog.text
    await quota.aclose()


@pytest.mark.redis
async def test_ban_learnt_during_outage_reaches_redis(own_redis: Any) -> None:
    """A ban kept locally while Redis was down is handed to Redis when it returns."""
    import time

    quota = RedisQuota(own_redis.url, prefix="t", reconnect_s=0.0)
    await quota.reserve("p", 1, SPEC, 0.0)
    own_redis.stop()
    until = int(time.time() * 1000) + 60_000
    await quota.ban("p", until)
    own_redis.start()
    await quota.reserve("p", 1, SPEC, 0.0)
    other = RedisQuota(own_redis.url, prefix="t")
    handed_over = await other.banned_until("p")
    assert handed_over is not None and abs(handed_over - until) < 1_000
    await quota.aclose()
    await other.aclose()
