"""The sandbox's listing: symbols with their precisions and listing dates, and its downtime.

Everything here is fixed data or derived from the seed alone, so two processes with the same
seed list the same symbols and the same gaps. Listing dates are fixed calendar dates (not
relative to the process clock), so a test written today sees the same market next year;
``NEWUSDT`` (listed 2026-09-15) is the recently listed symbol.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass

__all__ = ["SYMBOLS", "UNIT", "Gap", "SymbolSpec", "format_units", "gap_schedule"]

# Every price and quantity is an integer count of 1e-8, the 8 decimals Binance prints
# ("0.01634790"), so output is exact and aggregation is integer addition.
UNIT = 10**8

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def format_units(value: int) -> str:
    """Binance's fixed 8-decimal form of a count of 1e-8: 163479 -> "0.00163479"."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // UNIT}.{value % UNIT:08d}"


def _utc_ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0)) * 1000


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One listed pair. ``tick`` and ``step`` are in units of 1e-8 (PRICE_FILTER, LOT_SIZE)."""

    symbol: str
    base: str
    quote: str
    listed_ms: int
    price: float  # price on listing day, in quote asset
    tick: int
    step: int
    minute_volume: float  # typical base volume of one active minute
    quiet_share: float  # share of minutes without a trade
    trades_per_minute: int

    @property
    def min_notional(self) -> int:
        return 10 * UNIT if self.quote in ("USDT", "USDC", "FDUSD") else UNIT // 10_000


def _spec(
    symbol: str,
    base: str,
    quote: str,
    listed: tuple[int, int, int, int],
    price: float,
    tick: int,
    step: int,
    minute_volume: float,
    quiet_share: float,
    trades: int,
) -> SymbolSpec:
    return SymbolSpec(
        symbol, base, quote, _utc_ms(*listed), price, tick, step, minute_volume, quiet_share, trades
    )


# Ticks and steps follow Binance's filters for these pairs (2025 captures where known); prices
# are rough listing-time levels; the random walk takes over from there.
SYMBOLS: tuple[SymbolSpec, ...] = (
    _spec("BTCUSDT", "BTC", "USDT", (2017, 8, 17, 4), 4300.0, 1_000_000, 1_000, 25.0, 0.002, 900),
    _spec("ETHUSDT", "ETH", "USDT", (2017, 8, 17, 4), 300.0, 1_000_000, 10_000, 400.0, 0.004, 700),
    _spec("BNBUSDT", "BNB", "USDT", (2017, 11, 6, 3), 1.5, 10_000, 100_000, 900.0, 0.02, 300),
    _spec("LTCUSDT", "LTC", "USDT", (2017, 12, 13, 3), 300.0, 1_000_000, 100_000, 300.0, 0.03, 150),
    _spec("ADAUSDT", "ADA", "USDT", (2018, 4, 17, 4), 0.25, 10_000, 10_000_000, 2e5, 0.02, 200),
    _spec("XRPUSDT", "XRP", "USDT", (2018, 5, 4, 8), 0.6, 10_000, 10_000_000, 3e5, 0.01, 400),
    _spec("TRXUSDT", "TRX", "USDT", (2018, 6, 11, 8), 0.04, 1_000, 10_000_000, 6e5, 0.03, 150),
    _spec("ETCUSDT", "ETC", "USDT", (2018, 6, 12, 8), 15.0, 100_000, 1_000_000, 800.0, 0.05, 100),
    _spec("LINKUSDT", "LINK", "USDT", (2019, 1, 16, 9), 0.5, 100_000, 1_000_000, 2e3, 0.03, 200),
    _spec("DOGEUSDT", "DOGE", "USDT", (2019, 7, 5, 12), 0.004, 1_000, 100_000_000, 5e5, 0.02, 300),
    _spec("SOLUSDT", "SOL", "USDT", (2020, 8, 11, 6), 3.0, 1_000_000, 100_000, 3e3, 0.01, 500),
    _spec("DOTUSDT", "DOT", "USDT", (2020, 8, 18, 23), 3.0, 100_000, 1_000_000, 3e3, 0.03, 150),
    _spec("AVAXUSDT", "AVAX", "USDT", (2020, 9, 22, 6), 5.0, 100_000, 1_000_000, 2e3, 0.03, 150),
    _spec("UNIUSDT", "UNI", "USDT", (2020, 9, 17, 3), 3.0, 100_000, 1_000_000, 1e3, 0.05, 100),
    _spec("FILUSDT", "FIL", "USDT", (2020, 10, 15, 10), 30.0, 100_000, 1_000_000, 1e3, 0.05, 100),
    _spec("NEARUSDT", "NEAR", "USDT", (2020, 10, 14, 12), 1.0, 100_000, 1_000_000, 3e3, 0.05, 100),
    _spec("ATOMUSDT", "ATOM", "USDT", (2019, 4, 29, 4), 7.0, 100_000, 1_000_000, 1e3, 0.05, 100),
    _spec("APTUSDT", "APT", "USDT", (2022, 10, 19, 0), 9.0, 100_000, 1_000_000, 2e3, 0.05, 150),
    _spec("ARBUSDT", "ARB", "USDT", (2023, 3, 23, 13), 1.3, 10_000, 10_000_000, 2e4, 0.04, 150),
    _spec("SUIUSDT", "SUI", "USDT", (2023, 5, 3, 12), 1.2, 10_000, 10_000_000, 2e4, 0.04, 150),
    _spec("PEPEUSDT", "PEPE", "USDT", (2023, 5, 5, 12), 0.00001, 1, 100_000_000, 5e6, 0.03, 200),
    _spec("WLDUSDT", "WLD", "USDT", (2023, 7, 24, 8), 2.0, 100_000, 1_000_000, 5e3, 0.05, 100),
    _spec("TONUSDT", "TON", "USDT", (2024, 8, 8, 10), 6.5, 100_000, 1_000_000, 3e3, 0.05, 100),
    _spec("NEWUSDT", "NEW", "USDT", (2026, 9, 15, 10), 0.8, 10_000, 10_000_000, 4e4, 0.08, 80),
    _spec("BTCUSDC", "BTC", "USDC", (2018, 12, 15, 4), 3500.0, 1_000_000, 1_000, 2.0, 0.05, 100),
    _spec("ETHBTC", "ETH", "BTC", (2017, 7, 14, 4), 0.08, 1_000, 10_000, 60.0, 0.03, 100),
    _spec("BNBBTC", "BNB", "BTC", (2017, 7, 14, 4), 0.0003, 1, 100_000, 100.0, 0.06, 50),
    _spec("LTCBTC", "LTC", "BTC", (2017, 7, 14, 4), 0.02, 100, 100_000, 60.0, 0.08, 40),
    _spec("XRPBTC", "XRP", "BTC", (2018, 5, 4, 8), 0.00009, 1, 10_000_000, 2e4, 0.08, 40),
    _spec("SOLBTC", "SOL", "BTC", (2020, 8, 11, 6), 0.0003, 1, 100_000, 100.0, 0.08, 40),
    _spec("ADABTC", "ADA", "BTC", (2018, 4, 17, 4), 0.00003, 1, 10_000_000, 2e4, 0.1, 30),
    _spec("BNBETH", "BNB", "ETH", (2017, 7, 14, 4), 0.005, 100, 100_000, 30.0, 0.2, 20),
    # Added so the market-data benchmark has the 50 symbols its issue names.
    _spec("ETHUSDC", "ETH", "USDC", (2018, 12, 15, 4), 90.0, 1_000_000, 10_000, 20.0, 0.05, 80),
    _spec("BNBUSDC", "BNB", "USDC", (2018, 12, 15, 4), 5.0, 10_000, 100_000, 50.0, 0.1, 40),
    _spec("XRPUSDC", "XRP", "USDC", (2018, 12, 15, 4), 0.35, 10_000, 10_000_000, 1e4, 0.08, 40),
    _spec("SOLUSDC", "SOL", "USDC", (2021, 6, 1, 8), 35.0, 1_000_000, 100_000, 200.0, 0.05, 80),
    _spec("DOGEUSDC", "DOGE", "USDC", (2021, 6, 1, 8), 0.3, 1_000, 100_000_000, 5e4, 0.05, 60),
    _spec("BTCFDUSD", "BTC", "FDUSD", (2023, 8, 8, 8), 29000.0, 1_000_000, 1_000, 15.0, 0.002, 600),
    _spec("ETHFDUSD", "ETH", "FDUSD", (2023, 8, 8, 8), 1800.0, 1_000_000, 10_000, 150.0, 0.01, 300),
    _spec("SOLFDUSD", "SOL", "FDUSD", (2023, 8, 8, 8), 24.0, 1_000_000, 100_000, 500.0, 0.03, 150),
    _spec("LINKBTC", "LINK", "BTC", (2019, 1, 16, 9), 0.00012, 1, 1_000_000, 500.0, 0.1, 30),
    _spec("DOTBTC", "DOT", "BTC", (2020, 8, 18, 23), 0.00025, 1, 1_000_000, 300.0, 0.1, 30),
    _spec("AVAXBTC", "AVAX", "BTC", (2020, 9, 22, 6), 0.0005, 1, 1_000_000, 200.0, 0.1, 30),
    _spec("TRXBTC", "TRX", "BTC", (2018, 6, 11, 8), 0.0000059, 1, 100_000_000, 5e4, 0.1, 30),
    _spec("ETCBTC", "ETC", "BTC", (2018, 6, 12, 8), 0.0023, 1, 1_000_000, 100.0, 0.15, 20),
    _spec("ATOMBTC", "ATOM", "BTC", (2019, 4, 29, 4), 0.0012, 1, 1_000_000, 100.0, 0.15, 20),
    _spec("NEARBTC", "NEAR", "BTC", (2020, 10, 14, 12), 0.00009, 1, 1_000_000, 300.0, 0.15, 20),
    _spec("FILBTC", "FIL", "BTC", (2020, 10, 15, 10), 0.0025, 1, 1_000_000, 100.0, 0.15, 20),
    _spec("UNIBTC", "UNI", "BTC", (2020, 9, 17, 3), 0.00028, 1, 1_000_000, 100.0, 0.15, 20),
    _spec("LINKETH", "LINK", "ETH", (2019, 1, 16, 9), 0.0045, 1, 1_000_000, 200.0, 0.2, 15),
)


@dataclass(frozen=True, slots=True, order=True)
class Gap:
    """Exchange downtime: no candle of any symbol opens in [start, end) (UTC ms, minute aligned)."""

    start: int
    end: int

    def __contains__(self, ts: object) -> bool:
        return isinstance(ts, int) and self.start <= ts < self.end


_QUARTER_MS = 91 * DAY_MS
_GAPS_FROM = _utc_ms(2017, 7, 1)
_GAPS_UNTIL = _utc_ms(2050, 1, 1)


def _mix(*values: int) -> int:
    """splitmix64 over a tuple of ints: a stable, process-independent hash."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x = z ^ (z >> 31)
    return x


def gap_schedule(seed: int) -> tuple[Gap, ...]:
    """One downtime of 1-5 hours in every 91-day block from 2017-07-01 to 2050, from the seed.

    Real Binance had a handful of such maintenance gaps (e.g. 2018-02-08, 2023-03-24); one per
    quarter is more than reality so that tests and benchmarks meet them.
    """
    gaps: list[Gap] = []
    block = 0
    while (base := _GAPS_FROM + block * _QUARTER_MS) < _GAPS_UNTIL:
        h = _mix(seed, 0x6A7, block)
        start = base + (h % (80 * 24 * 60)) * MINUTE_MS
        duration = (60 + (h >> 20) % (4 * 60 + 1)) * MINUTE_MS
        gaps.append(Gap(start, start + duration))
        block += 1
    return tuple(gaps)
