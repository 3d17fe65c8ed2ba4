"""Fixtures of the throttle tests: quotas over each backend, a Redis server to kill."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from mystic_trading.throttle import MemoryQuota, Quota, RedisQuota


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def quota(request: pytest.FixtureRequest) -> AsyncIterator[Quota]:
    """A quota over each backend; Redis keys under a prefix unique to the test."""
    if request.param == "memory":
        yield MemoryQuota()
        return
    url = request.getfixturevalue("redis_url")
    redis_quota = RedisQuota(url, prefix=f"test:{uuid.uuid4().hex}")
    yield redis_quota
    await redis_quota.aclose()
