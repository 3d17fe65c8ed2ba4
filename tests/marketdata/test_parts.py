"""Where each range of a candle answer was read (``Answer.parts``): the store's covered
ranges and the exchange's pages, kept by memory and Redis with the value, for the
dashboard's market panel and the API's ``source.parts``."""

from __future__ import annotations

from mystic_trading.marketdata import codec
from mystic_trading.marketdata.answer import Answer, Layer, Part
from mystic_trading.marketdata.candles import parts_of
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.models import Interval
from mystic_trading.sandbox import SandboxServer

MINUTE = 60_000
S, U = Layer.STORE, Layer.UPSTREAM


def test_parts_of_a_window_read_from_the_store_but_for_its_pages() -> None:
    assert parts_of(0, 100, []) == (Part(0, 100, S),)
    assert parts_of(0, 100, [(0, 100)]) == (Part(0, 100, U),)
    assert parts_of(0, 100, [(20, 40), (60, 80)]) == (
        Part(0, 20, S),
        Part(20, 40, U),
        Part(40, 60, S),
        Part(60, 80, U),
        Part(80, 100, S),
    )
    # Pages next to each other are one part; the open candle's page reaches past the
    # closed part's end.
    assert parts_of(0, 100, [(50, 75), (75, 100), (100, 110)]) == (
        Part(0, 50, S),
        Part(50, 110, U),
    )
    # A window wholly in the future: nothing read from anywhere.
    assert parts_of(100, 100, []) == ()


async def test_a_window_partly_stored_says_which_ranges_came_from_where(
    md: MarketData, exchange: SandboxServer
) -> None:
    await md.provider.sync_clock()
    base = Interval.M1.floor(exchange.clock_ms()) - 120 * MINUTE
    first = await md.candles("BTCUSDT", "1m", start=base + 10 * MINUTE, end=base + 40 * MINUTE)
    assert first.layer is Layer.UPSTREAM
    assert first.parts == (Part(base + 10 * MINUTE, base + 40 * MINUTE, U),)
    await md.flush()

    wider = await md.candles("BTCUSDT", "1m", start=base, end=base + 50 * MINUTE)
    assert wider.parts == (
        Part(base, base + 10 * MINUTE, U),
        Part(base + 10 * MINUTE, base + 40 * MINUTE, S),
        Part(base + 40 * MINUTE, base + 50 * MINUTE, U),
    )
    assert [c.open_time for c in wider.value] == list(range(base, base + 50 * MINUTE, MINUTE))

    again = await md.candles("BTCUSDT", "1m", start=base, end=base + 50 * MINUTE)
    assert again.layer is Layer.MEMORY  # served from memory, assembled as before
    assert again.parts == wider.parts


def test_parts_survive_the_redis_codec_and_an_entry_without_them_reads_as_none() -> None:
    answer = Answer([], Layer.UPSTREAM, 1_700_000_000_000, parts=(Part(0, 60_000, S),))
    assert codec.decode(codec.encode(answer)).parts == (Part(0, 60_000, S),)
    old = b'{"k":"candles","v":2,"f":1700000000000,"s":"","i":"","r":[]}'
    decoded = codec.decode(old)
    assert decoded.parts == ()
    assert decoded.value == []
