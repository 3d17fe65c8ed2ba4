"""The latest ticker and order-book snapshot per (provider, symbol).

These reads are not cached here: the memory layer above keeps them for about a second, and a
five-minute copy in this layer would only serve old prices. A save older than the stored
snapshot (``fetched_at``) is ignored, so a slow writer cannot roll a price back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.models import OrderBook, Symbol, Ticker
from mystic_trading.store import _sql
from mystic_trading.store._codec import book_levels, build_book, build_ticker, ticker_params
from mystic_trading.store._core import Database
from mystic_trading.store._records import Stored

__all__ = ["SnapshotRepository"]


class SnapshotRepository:
    """Save and load the latest ticker and order book of a symbol."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._ticker_get = db.sql(_sql.TICKER_GET)
        self._ticker_put = db.sql(_sql.TICKER_UPSERT)
        self._book_get = db.sql(_sql.BOOK_GET)
        self._book_put = db.sql(_sql.BOOK_UPSERT)

    async def save_ticker(
        self, provider: str, ticker: Ticker, *, fetched_at: int | None = None
    ) -> None:
        """Keep ``ticker`` as the latest of its symbol unless a newer one is stored."""
        db = self._db
        at = db.now_ms() if fetched_at is None else fetched_at
        params = ticker_params(provider, ticker, at, db.enc)

        async def work(conn: AsyncConnection) -> None:
            await conn.exec_driver_sql(self._ticker_put, params)

        await db.write("ticker.save", work, tables=("tickers",), detail=provider)

    async def load_ticker(self, provider: str, symbol: Symbol | str) -> Stored[Ticker] | None:
        """The latest stored ticker of ``symbol`` and when it was fetched, or None."""
        sym = Symbol.parse(symbol)
        dec = self._db.dec

        def build(row: Any) -> Stored[Ticker]:
            return Stored(build_ticker(row, sym, dec), row[12])

        return await self._db.read_one(
            "ticker.load", self._ticker_get, (provider, str(sym)), build, detail=provider
        )

    async def save_book(
        self, provider: str, book: OrderBook, *, fetched_at: int | None = None
    ) -> None:
        """Keep ``book`` as the latest of its symbol unless a newer one is stored."""
        db = self._db
        at = db.now_ms() if fetched_at is None else fetched_at
        params = (
            provider,
            str(book.symbol),
            book.last_update_id,
            book.time,
            book_levels(book.bids),
            book_levels(book.asks),
            at,
        )

        async def work(conn: AsyncConnection) -> None:
            await conn.exec_driver_sql(self._book_put, params)

        await db.write("book.save", work, tables=("books",), detail=provider)

    async def load_book(self, provider: str, symbol: Symbol | str) -> Stored[OrderBook] | None:
        """The latest stored order book of ``symbol`` and when it was fetched, or None."""
        sym = Symbol.parse(symbol)

        def build(row: Any) -> Stored[OrderBook]:
            return Stored(build_book(row, sym), row[4])

        return await self._db.read_one(
            "book.load", self._book_get, (provider, str(sym)), build, detail=provider
        )
