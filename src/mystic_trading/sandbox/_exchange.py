"""``SandboxExchange``: the state behind one sandbox (market, limiter, faults, counters)."""

from __future__ import annotations

import secrets

from mystic_trading.sandbox._config import Clock, SandboxConfig, system_clock
from mystic_trading.sandbox._endpoints import MarketApi
from mystic_trading.sandbox._faults import Faults, FaultSettings, OutageMode
from mystic_trading.sandbox._limiter import WeightLimiter
from mystic_trading.sandbox._market import Market
from mystic_trading.sandbox._stats import SandboxStats

__all__ = ["SandboxExchange"]


class SandboxExchange:
    """Everything one sandbox knows; the HTTP app and the server share one instance.

    ``admin_token`` is the configured token, or a fresh ``secrets.token_urlsafe`` one.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config = config if config is not None else SandboxConfig()
        self.clock: Clock = config.clock if config.clock is not None else system_clock
        self.admin_token: str = config.admin_token or secrets.token_urlsafe(24)
        self.market = Market(config.seed)
        self.api = MarketApi(self.market, raw_requests_limit=config.raw_requests_limit)
        self.limiter = WeightLimiter(
            config.weight_limit,
            config.window_s,
            ban_after=config.ban_after,
            ban_base_s=config.ban_base_s,
            ban_max_s=config.ban_max_s,
        )
        self.stats = SandboxStats()
        self.faults = Faults(self._initial_faults(), seed=config.seed)

    def _initial_faults(self) -> FaultSettings:
        c = self.config
        return FaultSettings(
            latency_ms=c.latency_ms, jitter_ms=c.jitter_ms, error_rate=c.error_rate
        )

    # -- run-time control (also reachable over POST /sandbox/admin/*) ----------------------

    def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every API answer by ``latency_ms`` plus up to ``jitter_ms``."""
        self.faults.configure(latency_ms=latency_ms, jitter_ms=jitter_ms)

    def set_error_rate(self, rate: float, statuses: tuple[int, ...] | None = None) -> None:
        """Answer a share ``rate`` of API requests with an injected 5xx (``statuses`` in turn)."""
        self.faults.configure(error_rate=rate, error_statuses=statuses)

    def start_outage(self, seconds: float, mode: OutageMode = "refuse") -> None:
        """Go down for ``seconds``: refuse connections, or answer 503 with ``mode="503"``."""
        self.faults.start_outage(seconds, mode)

    def set_budget(self, weight_limit: int | None = None, window_s: int | None = None) -> None:
        """Change the REQUEST_WEIGHT budget (and window) from now on."""
        if (weight_limit is not None and weight_limit < 1) or (
            window_s is not None and window_s < 1
        ):
            raise ValueError(f"invalid budget {weight_limit!r} per {window_s!r} s")
        self.limiter.set_budget(weight_limit, window_s)

    def reset(self) -> None:
        """Zero the counters, forget limiter state and bans, clear faults back to the config."""
        self.stats.reset()
        self.limiter.reset()
        self.limiter.set_budget(self.config.weight_limit, self.config.window_s)
        self.faults.clear(self._initial_faults())
