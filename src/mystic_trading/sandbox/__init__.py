"""The sandbox exchange: a local server that speaks Binance's spot REST API for public data.

What it is: a Starlette app (``create_app``) served by uvicorn on loopback
(``SandboxServer`` in a background thread for tests and benchmarks, ``run`` blocking for the
CLI, ``python -m mystic_trading.sandbox``), over a deterministic synthetic market
(``Market``), so the real Binance adapter runs over real HTTP in tests, benchmarks and the
Quickstart without touching an exchange.

What it models:

- ``GET /api/v3/`` ping, time, exchangeInfo, klines (and uiKlines), depth, avgPrice,
  ticker/price, ticker/24hr (FULL, MINI), ticker/bookTicker, with Binance's field names and
  types (decimal strings with 8 decimals, the 12-field kline row), its parameter errors
  (-1100, -1102, -1120, -1121, -1128) and its klines ordering rules.
- A market from a seed: 50 symbols (USDT-, USDC-, FDUSD-, BTC- and ETH-quoted) with fixed
  listing dates (``NEWUSDT`` listed 2026-09-15 10:00 UTC is the recent one), integer-tick
  random-walk prices, quiet minutes with zero volume, and a 1-5 hour exchange-wide gap in
  every 91 days. Every interval is the exact aggregate of its minutes; every minute the
  exact aggregate of its seconds; every second the exact aggregate of its trades at
  millisecond offsets; the candle that contains ``now`` is open and holds exactly the trades
  up to ``now``; tickers agree with candles; ``Market.final_candle`` is the truth of a
  candle once final. 3d candles open at multiples of three days since the epoch, 1w
  on Mondays, 1M on the 1st (``mystic_trading.models.Interval``).
- Its own clock: a skew that can step either way at run time (``serverTime``, a ``Date``
  header on every answer, klines' "now"), an aggregation lag that keeps candles and tickers
  that far behind the clock, and market data that never goes backwards. Answers are computed
  before the injected latency, so they are that old on arrival. Every answer declares the
  venue (``X-Sandbox-Venue: sandbox-s<seed>-<hash of the market>``).
- REQUEST_WEIGHT per client IP in clock-aligned fixed windows, the published weight of each
  endpoint, ``X-MBX-USED-WEIGHT-<n><letter>``, 429 with ``Retry-After``, and 418 bans that
  double from 2 minutes up to 3 days for clients that keep sending after a 429.
- Fault injection (latency, a share of 500/503, outages that refuse connections or answer 503,
  budget changes, clock steps and aggregation lag) at start and at run time over a
  token-protected, loopback-only admin API; counters of what reached the exchange.

What it deliberately does not model: trading, accounts and signed endpoints; WebSocket
streams; the trades/aggTrades endpoints (trades exist inside the market, at millisecond
resolution, but are seen only through candles and tickers); the ``timeZone`` klines
parameter; the RAW_REQUESTS and ORDERS limiters (listed in exchangeInfo, not enforced); order
books that persist between requests (each depth snapshot is drawn from the seed around the
last price); HTTP 403 (WAF); trade ids consistent across time (``firstId``/``lastId`` of 24hr
stats are only plausible). Prices follow no real history.
"""

from mystic_trading.sandbox._app import TOKEN_HEADER, VENUE_HEADER, create_app
from mystic_trading.sandbox._catalog import SYMBOLS, Gap, SymbolSpec
from mystic_trading.sandbox._config import Clock, ManualClock, SandboxConfig, system_clock
from mystic_trading.sandbox._exchange import SandboxExchange
from mystic_trading.sandbox._faults import Faults, FaultSettings, OutageMode
from mystic_trading.sandbox._limiter import Decision, WeightLimiter, window_label
from mystic_trading.sandbox._market import KlineRow, Market
from mystic_trading.sandbox._server import SandboxServer, run
from mystic_trading.sandbox._stats import Counters, SandboxStats
from mystic_trading.sandbox._weights import ENDPOINT_WEIGHTS, weight_of

__all__ = [
    "ENDPOINT_WEIGHTS",
    "SYMBOLS",
    "TOKEN_HEADER",
    "VENUE_HEADER",
    "Clock",
    "Counters",
    "Decision",
    "FaultSettings",
    "Faults",
    "Gap",
    "KlineRow",
    "ManualClock",
    "Market",
    "OutageMode",
    "SandboxConfig",
    "SandboxExchange",
    "SandboxServer",
    "SandboxStats",
    "SymbolSpec",
    "WeightLimiter",
    "create_app",
    "run",
    "system_clock",
    "weight_of",
    "window_label",
]
