"""``SandboxExchange``: the state behind one sandbox (market, clock, limiter, faults, counters).

Two times matter to every answer. The exchange's *clock* is its base clock (the configured
``clock``, real time by default) plus a skew that can step either way at run time; it gives
``serverTime``, ``Date``, which symbols are listed, and the limiter's windows. The *data
cutoff* is the latest trade time its market data shows: the clock less the aggregation lag,
but never less than a cutoff already shown, so market data never goes backwards when the
clock steps back (or the lag grows); it only holds still until the clock catches up.
"""

from __future__ import annotations

import secrets
import threading

from mystic_trading.models import Interval
from mystic_trading.sandbox._config import (
    Clock,
    SandboxConfig,
    check_aggregation_lag,
    check_clock_skew,
    system_clock,
)
from mystic_trading.sandbox._endpoints import MarketApi
from mystic_trading.sandbox._faults import Faults, FaultSettings, OutageMode
from mystic_trading.sandbox._limiter import WeightLimiter
from mystic_trading.sandbox._market import KlineRow, Market
from mystic_trading.sandbox._stats import SandboxStats

__all__ = ["SandboxExchange"]


class SandboxExchange:
    """Everything one sandbox knows; the HTTP app and the server share one instance.

    ``admin_token`` is the configured token, or a fresh ``secrets.token_urlsafe`` one.
    ``venue`` is who it says it is (``X-Sandbox-Venue``): ``sandbox-s<seed>-<8 hex>``, the
    hex a sha256 of everything that decides its market data, so two sandboxes that could
    print different candles never share an id.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config = config if config is not None else SandboxConfig()
        self._base_clock: Clock = config.clock if config.clock is not None else system_clock
        self._skew_ms = check_clock_skew(config.clock_skew_ms)
        self._lag_ms = check_aggregation_lag(config.aggregation_lag_ms)
        self._cutoff = -(2**62)
        self._time_lock = threading.Lock()
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

    @property
    def venue(self) -> str:
        """The venue id every /api/v3 answer declares in ``X-Sandbox-Venue``."""
        return self.market.venue

    # -- time ----------------------------------------------------------------------------

    def clock_ms(self) -> int:
        """The exchange's clock (UTC epoch ms): the base clock plus the skew."""
        return self._base_clock() + self._skew_ms

    def read_clock(self) -> tuple[int, int]:
        """(clock, data cutoff) for one answer; the cutoff never goes backwards."""
        now = self._base_clock() + self._skew_ms
        with self._time_lock:
            cutoff = now - self._lag_ms
            if cutoff < self._cutoff:
                cutoff = self._cutoff
            else:
                self._cutoff = cutoff
        return now, cutoff

    @property
    def data_cutoff(self) -> int:
        """The latest trade time shown so far (no answer yet: a very early time)."""
        return self._cutoff

    @property
    def clock_skew_ms(self) -> int:
        return self._skew_ms

    @property
    def aggregation_lag_ms(self) -> int:
        return self._lag_ms

    def final_candle(
        self, symbol: str, interval: Interval | str, open_time: int
    ) -> KlineRow | None:
        """The kline row the candle opening at ``open_time`` has once final (the oracle of
        :meth:`Market.final_candle`), whatever the exchange shows now."""
        return self.market.final_candle(symbol, interval, open_time)

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

    def set_clock_skew(self, skew_ms: int) -> None:
        """Step the exchange's clock to the base clock plus ``skew_ms`` (either way, at once).

        Market data never goes backwards: after a backward step it holds still until the
        clock passes what was already shown, while ``serverTime`` and ``Date`` do go back.
        """
        self._skew_ms = check_clock_skew(skew_ms)

    def set_aggregation_lag(self, lag_ms: int) -> None:
        """Show only trades up to ``lag_ms`` before the clock in candles and tickers."""
        self._lag_ms = check_aggregation_lag(lag_ms)

    def set_budget(self, weight_limit: int | None = None, window_s: int | None = None) -> None:
        """Change the REQUEST_WEIGHT budget (and window) from now on."""
        if (weight_limit is not None and weight_limit < 1) or (
            window_s is not None and window_s < 1
        ):
            raise ValueError(f"invalid budget {weight_limit!r} per {window_s!r} s")
        self.limiter.set_budget(weight_limit, window_s)

    def reset(self) -> None:
        """Zero the counters, forget limiter state and bans, clear faults, clock skew and
        aggregation lag back to the config. The data cutoff is kept: what was shown stays."""
        self._skew_ms = check_clock_skew(self.config.clock_skew_ms)
        self._lag_ms = check_aggregation_lag(self.config.aggregation_lag_ms)
        self.stats.reset()
        self.limiter.reset()
        self.limiter.set_budget(self.config.weight_limit, self.config.window_s)
        self.faults.clear(self._initial_faults())
