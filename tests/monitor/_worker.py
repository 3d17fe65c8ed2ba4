"""One process of a deployment under test (tests/monitor/test_deployment.py), run by path:

    python tests/monitor/_worker.py '<Settings as JSON>'

It opens MarketData (so it beats and runs health rounds like any process) and keeps the
exchange busy: ``--tasks`` loops each asking a past window of 1m candles of a random symbol
at a random time (one the store has never seen, so each goes upstream: enough demand to hold
the throttle at its ceiling), and one loop asking tickers. A request refused by the throttle
or the exchange is counted, never fatal.

It speaks one JSON object a line on stdout: ``ready`` (pid, venue, level, ceiling) once the
first request was answered, ``level`` each time the throttler's level or ceiling changes
(with the wall time it was seen), and ``stopped`` (requests answered, errors by type) at the
end. A line ``stop`` on stdin, or stdin closing, stops it; it then closes MarketData (its
last heartbeat says it stopped) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from typing import Any

from mystic_trading import MarketData, MysticError, Settings
from mystic_trading.sandbox import SYMBOLS

MINUTE_MS = 60_000
# Windows are drawn from these past days; about 14,000 windows of 10 candles each a day per
# symbol, so two requests almost never ask the same one.
HISTORY_DAYS = 30


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "at": time.time(), **fields}), flush=True)


async def candles(md: MarketData, served: Counter[str], errors: Counter[str]) -> None:
    rng = random.Random()
    now = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
    while True:
        symbol = rng.choice(SYMBOLS).symbol
        start = now - rng.randrange(2, HISTORY_DAYS * 1440) * MINUTE_MS
        try:
            await md.candles(symbol, "1m", start=start, limit=10)
            served["candles"] += 1
        except MysticError as exc:
            errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)


async def tickers(md: MarketData, served: Counter[str], errors: Counter[str]) -> None:
    rng = random.Random()
    while True:
        try:
            await md.ticker(rng.choice(SYMBOLS[:4]).symbol)
            served["tickers"] += 1
        except MysticError as exc:
            errors[type(exc).__name__] += 1
        await asyncio.sleep(0.05)


async def watch_level(md: MarketData) -> None:
    """A ``level`` line whenever the throttler's level or ceiling changes."""
    seen = (md.throttler.level.value, md.throttler.ceiling)
    while True:
        await asyncio.sleep(0.05)
        now = (md.throttler.level.value, md.throttler.ceiling)
        if now != seen:
            seen = now
            say("level", level=now[0], ceiling=now[1])


async def stop_requested() -> None:
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line or line.strip() == "stop":
            return


async def main(settings: Settings, tasks: int) -> None:
    served: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    async with MarketData.open(settings) as md:
        await md.ticker(SYMBOLS[0].symbol)
        say(
            "ready",
            pid=os.getpid(),
            venue=md.provider.venue,
            level=md.throttler.level.value,
            ceiling=md.throttler.ceiling,
        )
        work = [asyncio.create_task(candles(md, served, errors)) for _ in range(tasks)]
        work.append(asyncio.create_task(tickers(md, served, errors)))
        work.append(asyncio.create_task(watch_level(md)))
        await stop_requested()
        for task in work:
            task.cancel()
        await asyncio.gather(*work, return_exceptions=True)
    say("stopped", served=dict(served), errors=dict(errors))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("settings", help="Settings as a JSON object")
    parser.add_argument("--tasks", type=int, default=8, help="concurrent candle loops")
    args = parser.parse_args()
    asyncio.run(main(Settings(**json.loads(args.settings)), args.tasks))
