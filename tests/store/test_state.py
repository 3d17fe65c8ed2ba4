"""Snapshots, control state with its audit log, bans and alerts, over both backends."""

from __future__ import annotations

from decimal import Decimal

from mystic_trading.models import OrderBook, Ticker
from mystic_trading.store import Store

from .conftest import BTC, FakeClock, OpenStore

P = "binance"


async def test_latest_ticker_round_trips_and_older_save_is_ignored(store: Store) -> None:
    """The latest ticker comes back exactly with fetched_at; an older save does not win."""
    t = Ticker(
        BTC, Decimal("43000.12345678"), 5, bid=Decimal("43000.1"), change_pct=Decimal("-1.5")
    )
    await store.snapshots.save_ticker(P, t, fetched_at=200)
    await store.snapshots.save_ticker(P, Ticker(BTC, Decimal("1"), 4), fetched_at=100)
    got = await store.snapshots.load_ticker(P, "BTC/USDT")
    assert got is not None and got.value == t and got.fetched_at == 200
    assert await store.snapshots.load_ticker(P, "ETH/USDT") is None


async def test_latest_order_book_round_trips(store: Store) -> None:
    """An order book's levels keep their exact decimals and order."""
    book = OrderBook(
        BTC,
        77,
        ((Decimal("100.10"), Decimal("0.00000001")), (Decimal("100"), Decimal("2"))),
        ((Decimal("100.2"), Decimal("3.5")),),
        time=9,
    )
    await store.snapshots.save_book(P, book, fetched_at=1)
    got = await store.snapshots.load_book(P, BTC)
    assert got is not None and got.value == book and got.fetched_at == 1
    assert str(got.value.bids[0][0]) == "100.10"


async def test_level_changes_are_audited_with_who_when_from_to_why(
    store: Store, clock: FakeClock
) -> None:
    """Each level change writes one audit entry; saving the same level writes none."""
    c = store.control
    assert await c.load_level(P) is None
    await c.save_level(P, "moderate", actor="ops", reason="start")
    clock.advance(5)
    await c.save_level(P, "aggressive", actor="optimizer", reason="latency low")
    await c.save_level(P, "aggressive", actor="optimizer", reason="again")
    assert await c.load_level(P) == "aggressive"
    log = await c.audit(P)
    assert [(e.field, e.actor, e.from_value, e.to_value, e.reason) for e in log] == [
        ("level", "optimizer", "moderate", "aggressive", "latency low"),
        ("level", "ops", None, "moderate", "start"),
    ]
    assert log[0].at == int(clock.now * 1000)
    assert log[0].at - log[1].at == 5000


async def test_tunables_merge_and_each_change_is_audited(store: Store) -> None:
    """Tunables merge key by key, keep the level, and audit only the keys that changed."""
    c = store.control
    await c.save_level(P, "moderate", actor="ops", reason="r")
    await c.save_tunables(P, {"margin": 0.1, "probe": 2}, actor="ops", reason="tune")
    await c.save_tunables(P, {"margin": 0.2, "probe": 2}, actor="ops", reason="wider")
    state = await c.load(P)
    assert state is not None
    assert state.level == "moderate" and state.tunables == {"margin": 0.2, "probe": 2}
    fields = [(e.field, e.from_value, e.to_value) for e in await c.audit(P)]
    assert fields[0] == ("tunable:margin", "0.1", "0.2")
    assert len(fields) == 4  # level, margin, probe, margin again


async def test_ban_is_saved_loaded_cleared_and_survives_reopen(make_store: OpenStore) -> None:
    """A ban persists across a restart until cleared; both are audited."""
    first = await make_store()
    assert await first.control.load_ban(P) is None
    await first.control.save_ban(P, 1_700_000_123_000, "HTTP 418")
    await first.aclose()
    second = await make_store()
    assert await second.control.load_ban(P) == 1_700_000_123_000
    ban = await second.control.ban(P)
    assert ban is not None and ban.reason == "HTTP 418"
    assert await second.control.clear_ban(P, actor="ops") is True
    assert await second.control.clear_ban(P) is False
    assert await second.control.load_ban(P) is None
    assert [e.to_value for e in await second.control.audit(P)] == [None, "1700000123000"]


async def test_alerts_are_stored_listed_and_resolved(store: Store) -> None:
    """An alert stays open until resolved; open_only lists only unresolved ones."""
    a = await store.alerts.add("store_latency", "warning", "p95 high", 120.0, 100.0, created_at=1)
    b = await store.alerts.add("upstream", "critical", "5xx", 0.5, 0.2, created_at=2)
    assert await store.alerts.resolve(a, resolved_at=3) is True
    assert await store.alerts.resolve(a, resolved_at=4) is False
    assert [x.id for x in await store.alerts.list(open_only=True)] == [b]
    every = await store.alerts.list()
    assert [(x.id, x.resolved_at) for x in every] == [(b, None), (a, 3)]
