"""What ``candles.range`` returns: a read-only sequence of candles, built on first access.

A :class:`CandleRange` holds the driver's rows and builds each :class:`Candle` the first time
it is indexed or iterated; the candle is kept, so a second access (or a second caller served
from the query cache, which keeps the range itself) costs nothing. Numeric consumers can skip
candles altogether: ``closes()``, ``open_times()`` and ``column(name)`` decode one field of
every row into a plain list, and ``rows`` hands the raw rows to a bulk exporter.

When laziness pays, and when it does not. Building a candle from a SQLite row (eight
``Decimal(str)`` and the object) costs about 1.8 us, as much as reading the row (1.5-2 us),
so building every candle of a range more than doubles the read. From an asyncpg
row, whose decimals are decoded already, a candle costs about 0.9 us. A consumer that
touches a few candles of a range (the latest, a search by open time) or one column (closes
for an indicator) pays only for what it touches. A consumer that walks every candle
(``list(range)``, a ``for`` loop) pays the full building cost anyway, once, at iteration
instead of inside the read: laziness saves it nothing, and ``bench/store.py`` therefore
reports both the read alone and the read plus building every candle.

The sequence compares equal to any sequence of the same candles (a list, a tuple, another
range), so ``await store.candles.range(...) == [c1, c2]`` holds; like a list it is not
hashable. It is immutable: nothing a caller does changes what the next cache hit returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, cast, overload

from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.store._codec import CandleDecoder, candle_from_native, candle_from_text
from mystic_trading.store._sql import CANDLE_COLUMNS

__all__ = ["COLUMNS", "CandleRange"]

#: The fields of each row of :attr:`CandleRange.rows`, in order.
COLUMNS: tuple[str, ...] = tuple(CANDLE_COLUMNS.split(", "))
_INDEX = {name: i for i, name in enumerate(COLUMNS)}
_DECIMALS = frozenset(
    ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume",
     "taker_buy_quote_volume")
)  # fmt: skip


class CandleRange(Sequence[Candle]):
    """Stored candles of one series, oldest first; each built from its row on first access.

    ``native`` says the rows' decimals are ``Decimal`` already (asyncpg); otherwise they are
    the exact decimal strings SQLite stores.
    """

    __slots__ = ("_decode", "_interval", "_memo", "_native", "_rows", "_symbol")

    def __init__(
        self, rows: Sequence[Sequence[Any]], symbol: Symbol, interval: Interval, *, native: bool
    ) -> None:
        self._rows = rows
        self._symbol = symbol
        self._interval = interval
        self._native = native
        self._decode: CandleDecoder = candle_from_native if native else candle_from_text
        self._memo: list[Candle | None] = [None] * len(rows)

    @property
    def symbol(self) -> Symbol:
        return self._symbol

    @property
    def interval(self) -> Interval:
        return self._interval

    @property
    def rows(self) -> Sequence[Sequence[Any]]:
        """The driver's rows, fields in :data:`COLUMNS` order, for bulk export.

        Decimals are the exact strings stored on SQLite and ``Decimal`` on PostgreSQL (so
        ``str()`` of either is the exact text); ``closed`` is 0/1 on SQLite, a bool on
        PostgreSQL. Symbol and interval are the range's own.
        """
        return self._rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Candle: ...

    @overload
    def __getitem__(self, index: slice) -> CandleRange: ...

    def __getitem__(self, index: int | slice) -> Candle | CandleRange:
        if isinstance(index, slice):
            part = CandleRange(self._rows[index], self._symbol, self._interval, native=self._native)
            part._memo = self._memo[index]  # candles built already stay built
            return part
        memo = self._memo
        candle = memo[index]  # IndexError and negative indices as for a list
        if candle is None:
            candle = memo[index] = self._decode(self._symbol, self._interval, self._rows[index])
        return candle

    def __iter__(self) -> Iterator[Candle]:
        memo, rows, decode = self._memo, self._rows, self._decode
        symbol, interval = self._symbol, self._interval
        for i, candle in enumerate(memo):
            if candle is None:
                candle = memo[i] = decode(symbol, interval, rows[i])
            yield candle

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __repr__(self) -> str:
        n = len(self._rows)
        if not n:
            return f"CandleRange({self._symbol} {self._interval.value}, empty)"
        first, last = self._rows[0][0], self._rows[-1][0]
        return (
            f"CandleRange({self._symbol} {self._interval.value}, {n} candles, "
            f"open_time {first}..{last})"
        )

    def column(self, name: str) -> list[Any]:
        """One field of every candle, decoded as in :class:`Candle`, without building candles.

        ``name`` is one of :data:`COLUMNS`; anything else raises ``KeyError``.
        """
        try:
            i = _INDEX[name]
        except KeyError:
            raise KeyError(f"no candle column {name!r}; columns: {', '.join(COLUMNS)}") from None
        rows = self._rows
        if name == "closed":
            return [bool(r[i]) for r in rows]
        if name in _DECIMALS and not self._native:
            dec = Decimal
            return [dec(r[i]) for r in rows]
        return [r[i] for r in rows]

    def open_times(self) -> list[int]:
        return cast(list[int], self.column("open_time"))

    def opens(self) -> list[Decimal]:
        return cast(list[Decimal], self.column("open"))

    def highs(self) -> list[Decimal]:
        return cast(list[Decimal], self.column("high"))

    def lows(self) -> list[Decimal]:
        return cast(list[Decimal], self.column("low"))

    def closes(self) -> list[Decimal]:
        return cast(list[Decimal], self.column("close"))

    def volumes(self) -> list[Decimal]:
        return cast(list[Decimal], self.column("volume"))
