"""Child processes for the multi-process tests: ``python _child.py <job> <url> [args]``.

Run as a script by the tests (never imported by them), so each job is a real, separate
process with its own connections.
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from mystic_trading.config import StoreSettings
from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.store import open_store, upgrade

BTC = Symbol("BTC", "USDT")


def _candle(t: int) -> Candle:
    d = Decimal("1.5")
    return Candle(
        BTC, Interval.M1, t * 60_000, d, d, d, d, d, t * 60_000 + 59_999, d, 1, d, d, True
    )


async def write(url: str, first: int, count: int, batch: int) -> None:
    """Upsert candles first..first+count in batches of ``batch``."""
    async with await open_store(StoreSettings(url=url, busy_timeout_ms=30_000)) as store:
        for lo in range(first, first + count, batch):
            await store.candles.upsert("binance", [_candle(t) for t in range(lo, lo + batch)])


async def big_batch(url: str, count: int) -> None:
    """Write one batch of ``count`` candles in one transaction, saying when it executes."""
    candles = [_candle(t) for t in range(count)]
    async with await open_store(StoreSettings(url=url)) as store:

        @event.listens_for(store.engine.sync_engine, "before_cursor_execute")
        def _announce(*_args: Any) -> None:
            print("executing", flush=True)  # the batch's transaction is under way

        await store.candles.save_range("binance", BTC, "1m", 0, count * 60_000, candles)
        print("done", flush=True)


async def migrate(url: str, start_at: float = 0.0) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time() - 0.05))
    while time.time() < start_at:  # processes started apart begin together, to the microsecond
        pass
    status = await upgrade(StoreSettings(url=url))
    print(status.current, flush=True)


def main() -> None:
    job, url, *args = sys.argv[1:]
    if job == "write":
        asyncio.run(write(url, *(int(a) for a in args)))  # type: ignore[call-arg]
    elif job == "big_batch":
        asyncio.run(big_batch(url, int(args[0])))
    elif job == "migrate":
        asyncio.run(migrate(url, *(float(a) for a in args)))
    else:
        raise SystemExit(f"unknown job {job}")


if __name__ == "__main__":
    main()
