"""GCRA admission with an injected clock: exact spacing, the fixed-window bound, header sync."""

from __future__ import annotations

import random

import pytest

from mystic_trading.throttle._gcra import BucketState, reserve, sync_usage


def test_burst_then_exact_spacing() -> None:
    """A full burst goes at once; the next request waits exactly weight / rate."""
    state = BucketState(at=0.0)
    assert reserve(state, 10, 5.0, 10, 0.0, 0, 0.0).granted
    grant = reserve(state, 5, 5.0, 10, 0.0, 0, 0.0)
    assert not grant.granted
    assert grant.delay_s == pytest.approx(1.0)
    assert reserve(state, 5, 5.0, 10, 1.0, 1000, 0.0).granted


def test_refused_reservation_spends_nothing() -> None:
    """A request refused beyond the horizon leaves the bucket as it was."""
    state = BucketState(at=0.0)
    reserve(state, 10, 5.0, 10, 0.0, 0, 0.0)
    before = (state.fill, state.at)
    assert not reserve(state, 3, 5.0, 10, 0.1, 100, 0.0).granted
    assert (state.fill, state.at) == before


def test_reservation_ahead_is_granted_with_its_delay() -> None:
    """Within the horizon a request is granted with the delay until its start."""
    state = BucketState(at=0.0)
    reserve(state, 10, 10.0, 10, 0.0, 0, 0.0)
    grant = reserve(state, 1, 10.0, 10, 0.0, 0, 0.5)
    assert grant.granted
    assert grant.delay_s == pytest.approx(0.1)


def test_fixed_window_bound_holds_at_any_alignment() -> None:
    """Greedy mixed-weight traffic never puts more than rate*W + burst in any fixed window."""
    rng = random.Random(7)
    rate, burst, window = 100.0, 50, 10.0
    state = BucketState(at=0.0)
    now, admitted = 0.0, []
    while now < 200.0:
        weight = rng.randint(1, 50)
        grant = reserve(state, weight, rate, burst, now, int(now * 1000), 0.0)
        if grant.granted:
            admitted.append((now, weight))
        else:
            now += grant.delay_s
    for offset in (0.0, 0.013, 3.7, 9.999):
        sums: dict[int, int] = {}
        for t, w in admitted:
            key = int((t + offset) // window)
            sums[key] = sums.get(key, 0) + w
        assert max(sums.values()) <= rate * window + burst + 1e-6
    total = sum(w for _, w in admitted)
    assert rate * 200.0 - 50 <= total <= rate * 200.0 + burst


def test_rate_change_never_widens_the_burst() -> None:
    """A slower rate keeps the burst in weight: after a full burst nothing more goes at once."""
    state = BucketState(at=0.0)
    assert reserve(state, 10, 100.0, 10, 0.0, 0, 0.0).granted
    assert not reserve(state, 1, 1.0, 10, 0.0, 0, 0.0).granted


def test_pause_holds_every_request_until_it_ends() -> None:
    """While paused nothing is granted; the delay is the pause's remainder."""
    state = BucketState(at=0.0, paused_until=3.0)
    grant = reserve(state, 1, 10.0, 10, 1.0, 1000, 0.0)
    assert not grant.granted
    assert grant.delay_s == pytest.approx(2.0)


def test_ban_refuses_with_its_end() -> None:
    """A ban in force refuses every request and names its end."""
    state = BucketState(at=0.0, banned_until_ms=5000)
    grant = reserve(state, 1, 10.0, 10, 1.0, 1000, 100.0)
    assert not grant.granted
    assert grant.banned_until_ms == 5000


def test_header_sync_counts_foreign_usage() -> None:
    """Usage reported above ours raises the fill so the rest of the window fits the limit."""
    rate, burst, limit_eff, window = 10.0, 10, 110.0, 10.0
    state = BucketState(at=0.0)
    changed = sync_usage(state, 100, limit_eff, window, rate, burst, 0.0)
    assert changed
    admitted, now = 0, 0.0
    while now < window:
        grant = reserve(state, 1, rate, burst, now, int(now * 1000), 0.0)
        if grant.granted:
            admitted += 1
        else:
            now += grant.delay_s
    assert admitted <= limit_eff - 100 + 1e-9


def test_header_sync_never_lowers_the_fill() -> None:
    """Usage below what we already counted changes nothing (upward only)."""
    state = BucketState(at=0.0)
    reserve(state, 10, 1.0, 10, 0.0, 0, 0.0)
    assert not sync_usage(state, 0, 1000.0, 10.0, 1.0, 10, 0.0)
    assert state.fill == 10
