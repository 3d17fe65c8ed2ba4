"""``SandboxConfig``: every setting of the sandbox exchange in one frozen object."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mystic_trading.errors import ConfigError

__all__ = [
    "MAX_AGGREGATION_LAG_MS",
    "MAX_CLOCK_SKEW_MS",
    "Clock",
    "ManualClock",
    "SandboxConfig",
    "check_aggregation_lag",
    "check_clock_skew",
    "system_clock",
]

MAX_CLOCK_SKEW_MS = 366 * 86_400_000  # a skew of more than a year is a typo, not a test
MAX_AGGREGATION_LAG_MS = 3_600_000

Clock = Callable[[], int]
"""A clock: returns the current time as UTC epoch milliseconds."""


def system_clock() -> int:
    """The real time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class ManualClock:
    """A clock tests set and advance by hand: ``clock.advance(1500)``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        """Move forward ``ms`` milliseconds; returns the new time."""
        self.now += ms
        return self.now


def _whole_ms(name: str, value: object) -> int:
    # JSON has one number type: 1500.0 is 1500 ms, 1500.5 is a mistake; True is not a number.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number of milliseconds, not {value!r}")
    return value


def check_clock_skew(value: object) -> int:
    """``value`` as a clock skew in ms; ValueError naming ``clock_skew_ms`` if it is not one."""
    ms = _whole_ms("clock_skew_ms", value)
    if abs(ms) > MAX_CLOCK_SKEW_MS:
        raise ValueError(f"clock_skew_ms must be within +-{MAX_CLOCK_SKEW_MS}, not {ms}")
    return ms


def check_aggregation_lag(value: object) -> int:
    """``value`` as an aggregation lag in ms; ValueError naming ``aggregation_lag_ms`` if not."""
    ms = _whole_ms("aggregation_lag_ms", value)
    if not 0 <= ms <= MAX_AGGREGATION_LAG_MS:
        raise ValueError(f"aggregation_lag_ms must be 0 to {MAX_AGGREGATION_LAG_MS}, not {ms}")
    return ms


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Settings of one sandbox exchange; the defaults are Binance's published limits.

    ``weight_limit`` per ``window_s`` is the REQUEST_WEIGHT budget of each client IP (6000 per
    minute today). ``ban_after`` requests sent after a 429 in the same window earn a 418 ban of
    ``ban_base_s`` seconds, doubled for every earlier ban, at most ``ban_max_s`` (2 min to 3
    days on Binance). ``latency_ms`` + up to ``jitter_ms`` delays every API answer;
    ``error_rate`` is the share of API requests answered by an injected 500 or 503. With no
    ``admin_token`` one is generated per exchange. ``clock`` (epoch ms) drives the market,
    windows and bans; outages and latency always use real time. ``host`` must be a loopback
    address unless ``allow_remote`` is set; ``port`` 0 picks a free port.
    ``trust_forwarded_for`` takes the client IP from ``X-Forwarded-For`` (to simulate many
    IPs from one test).

    The exchange's own clock is ``clock`` plus ``clock_skew_ms`` (either sign, at most a year):
    every answer's ``serverTime`` and ``Date``, its market data and its limiter windows follow
    it. With ``aggregation_lag_ms`` (0 to an hour) its candles and tickers show only the trades
    up to that long before its clock, as Binance finalises klines late; the clock itself does
    not lag. Both change at run time (``SandboxExchange.set_clock_skew``, admin API).
    """

    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 9000
    weight_limit: int = 6000
    window_s: int = 60
    raw_requests_limit: int = 61_000
    ban_after: int = 5
    ban_base_s: float = 120.0
    ban_max_s: float = 259_200.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    admin_token: str | None = None
    trust_forwarded_for: bool = False
    allow_remote: bool = False
    log_level: str = "warning"
    clock_skew_ms: int = 0
    aggregation_lag_ms: int = 0
    clock: Clock | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        checks: list[tuple[str, object, bool, str]] = [
            ("weight_limit", self.weight_limit, self.weight_limit >= 1, ">= 1"),
            ("window_s", self.window_s, self.window_s >= 1, "whole seconds >= 1"),
            ("ban_after", self.ban_after, self.ban_after >= 1, ">= 1"),
            ("ban_base_s", self.ban_base_s, self.ban_base_s > 0, "> 0"),
            ("ban_max_s", self.ban_max_s, self.ban_max_s >= self.ban_base_s, ">= ban_base_s"),
            ("latency_ms", self.latency_ms, self.latency_ms >= 0, ">= 0"),
            ("jitter_ms", self.jitter_ms, self.jitter_ms >= 0, ">= 0"),
            ("error_rate", self.error_rate, 0.0 <= self.error_rate <= 1.0, "0.0 to 1.0"),
            ("port", self.port, 0 <= self.port <= 65_535, "0 to 65535"),
            (
                "host",
                self.host,
                self.allow_remote or is_loopback(self.host),
                "a loopback address (set allow_remote to bind elsewhere)",
            ),
            (
                "admin_token",
                self.admin_token,
                self.admin_token is None or len(self.admin_token) >= 8,
                "at least 8 characters",
            ),
        ]
        for name, check in (
            ("clock_skew_ms", check_clock_skew),
            ("aggregation_lag_ms", check_aggregation_lag),
        ):
            try:
                check(getattr(self, name))
            except ValueError as exc:
                raise ConfigError(
                    f"sandbox setting {exc}", setting=name, value=getattr(self, name)
                ) from None
        for name, value, ok, accepted in checks:
            if not ok:
                raise ConfigError(
                    f"sandbox setting {name}={value!r} is invalid; accepted: {accepted}",
                    setting=name,
                    value=value,
                )
