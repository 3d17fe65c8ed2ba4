"""HealthThresholds: sane defaults, and bad thresholds refused naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mystic_trading.monitor import HealthThresholds


def test_defaults_are_valid_and_ordered() -> None:
    """The defaults validate; each warning comes before its critical."""
    t = HealthThresholds()
    assert t.store_round_trip_warning_ms < t.store_round_trip_critical_ms
    assert t.upstream_success_warning_pct > t.upstream_success_critical_pct
    assert t.disk_free_warning_mib > t.disk_free_critical_mib
    assert t.loop_lag_warning_ms == 100.0
    assert t.rate_limited_warning == 0.0 < t.rate_limited_critical


BAD = [
    ({"loop_lag_warning_ms": 500.0, "loop_lag_critical_ms": 200.0}, "loop_lag_critical_ms",
     "below loop_lag_warning_ms"),
    ({"upstream_success_warning_pct": 90.0, "upstream_success_critical_pct": 95.0},
     "upstream_success_critical_pct", "above upstream_success_warning_pct"),
    ({"disk_free_critical_mib": 2048.0}, "disk_free_critical_mib",
     "above disk_free_warning_mib"),
    ({"store_round_trip_warning_ms": -1.0}, "store_round_trip_warning_ms",
     "greater than or equal to 0"),
    ({"memory_critical_mib": -5.0}, "memory_critical_mib", "greater than or equal to 0"),
    ({"memory_hit_rate_warning_pct": 150.0}, "memory_hit_rate_warning_pct",
     "less than or equal to 100"),
    ({"min_requests": 0}, "min_requests", "greater than or equal to 1"),
    ({"rate_limited_warning": 5.0, "rate_limited_critical": 1.0}, "rate_limited_critical",
     "below rate_limited_warning"),
    ({"loop_lag_warn_ms": 1.0}, "loop_lag_warn_ms", "Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "field", "words"), BAD)
def test_bad_thresholds_are_refused_naming_the_field(
    overrides: dict[str, float], field: str, words: str
) -> None:
    """A warning beyond its critical, a negative or out-of-range value, or an unknown name
    is a validation error located at the field, saying what is wrong."""
    with pytest.raises(ValidationError) as caught:
        HealthThresholds(**overrides)  # type: ignore[arg-type]
    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    assert words in error["msg"]


def test_equal_warning_and_critical_are_allowed() -> None:
    """Equal thresholds mean no warning band: accepted."""
    t = HealthThresholds(queue_wait_warning_ms=300.0, queue_wait_critical_ms=300.0)
    assert t.queue_wait_warning_ms == t.queue_wait_critical_ms
