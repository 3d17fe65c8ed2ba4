"""Alerts: a 429 burst from the sandbox opens a warning, escalates it to critical after its
`for` duration and resolves it after hysteresis, each event POSTed to a real webhook (or to
one that is down, which changes nothing else); one open alert per rule and subject however
many processes judge it; bad alert settings are a ConfigError naming the setting, and exit
2 from the CLI with nothing written. Clocks are injected: nothing here waits for a `for`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from mystic_trading._alert_settings import AlertSettings
from mystic_trading._thresholds import CHECK_NAMES
from mystic_trading.config import StoreSettings, ThrottleSettings, load_settings
from mystic_trading.errors import ConfigError, DataError, RateLimited
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.monitor import (
    AlertEngine,
    AlertWebhook,
    Check,
    HealthChecker,
    HealthReport,
    alert_rows,
    heartbeat_figures,
)
from mystic_trading.monitor._alerts import VENUE_RULES
from mystic_trading.providers import BinanceProvider
from mystic_trading.providers._clock import ExchangeClock
from mystic_trading.providers.venue import venue_from_url
from mystic_trading.sandbox import ManualClock, SandboxConfig, SandboxServer
from mystic_trading.store import Store, head_revision, migration_status, upgrade
from mystic_trading.throttle import Budget, Throttler

from .conftest import FakeClock, OpenStore, StepTimer
from .test_webhook import Receiver, down_url

MIB = 1024 * 1024
T0 = 1_790_000_000_000 + 30_000  # the sandbox's market clock, half a minute into a minute
# Listed by the sandbox from its start; each 429-earning request asks one not yet cached.
SYMBOLS = (
    "ETHUSDT", "BNBUSDT", "LTCUSDT", "ADAUSDT", "XRPUSDT", "TRXUSDT", "ETCUSDT", "LINKUSDT",
    "DOGEUSDT", "SOLUSDT", "DOTUSDT", "AVAXUSDT", "UNIUSDT", "FILUSDT", "NEARUSDT",
    "ATOMUSDT",
)  # fmt: skip


# -- a process on the sandbox, its clocks moved by hand ------------------------------------


class Local:
    """The process's monotonic clock in ms, moved by hand (throttle pauses, cache TTLs)."""

    def __init__(self) -> None:
        self.ms = 1_000_000.0

    def seconds(self) -> float:
        return self.ms / 1000


class Process:
    """MarketData on the sandbox with its throttler on an injected clock, so a 429's pause
    ends when the test moves time, not when a real Retry-After has passed."""

    def __init__(self, exchange: SandboxServer, store: Store, market: ManualClock) -> None:
        self.exchange = exchange
        self.market = market
        self.local = Local()
        self.throttler = Throttler(
            venue_from_url(exchange.url),
            Budget(limit=6000, window_s=60),
            settings=ThrottleSettings(max_retries=0, default_deadline_s=5.0),
            control=store.control,
            clock=self.local.seconds,
        )
        self.provider = BinanceProvider(
            exchange.url,
            self.throttler,
            clock=ExchangeClock(local=lambda: self.local.ms, wall=lambda: float(T0)),
        )
        self.md = MarketData(self.provider, store, clock=self.local.seconds)
        self._symbols = iter(SYMBOLS)

    def figures(self) -> dict[str, Any]:
        return heartbeat_figures(self.md.stats())

    async def earn_429s(self, n: int) -> None:
        """``n`` requests the exchange answers 429, each in a new minute of its window (so
        none counts as failing to back off) after the last pause has ended."""
        for _ in range(n):
            self.market.advance(61_000)
            self.local.ms += 61_000
            with pytest.raises(RateLimited):
                await asyncio.wait_for(self.md.ticker(next(self._symbols)), 10)

    async def aclose(self) -> None:
        await self.md.aclose()
        await self.provider.aclose()
        await self.throttler.aclose()


@pytest.fixture
def market() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def exchange(market: ManualClock) -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(port=0, clock=market)).start()
    yield server
    server.stop()


@pytest.fixture
async def proc(
    exchange: SandboxServer, store: Store, market: ManualClock
) -> AsyncIterator[Process]:
    process = Process(exchange, store, market)
    await process.md.ticker("BTCUSDT")  # listing, clock and venue known before the burst
    exchange.set_budget(weight_limit=1)  # spent: every request from here on earns a 429
    yield process
    exchange.reset()
    await process.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


# -- the 429 burst -------------------------------------------------------------------------


@pytest.mark.parametrize("webhook", ["up", "down"])
async def test_a_429_burst_opens_escalates_and_resolves_with_the_webhook_told(
    proc: Process,
    exchange: SandboxServer,
    store: Store,
    wall: FakeClock,
    mono: FakeClock,
    receiver: Receiver,
    webhook: str,
) -> None:
    """Rounds every 30 s with for_s 60 and resolve_s 120 (the defaults): one 429 a round
    opens a warning at the third round beyond its threshold, three a round escalate it
    after 60 s more, and quiet rounds resolve it after 120 s, not before. The webhook gets
    opened, escalated and resolved in order; one that is down gets nothing, and nothing
    else changes."""
    settings = AlertSettings()
    url = receiver.url if webhook == "up" else down_url()
    hook = AlertWebhook(url, retries=1, sleep=lambda _s: asyncio.sleep(0))
    engine = AlertEngine(
        store, settings, venue=proc.provider.venue, host="h1", pid=1, sink=hook, interval_s=30
    )
    checker = HealthChecker(
        store,
        proc.figures,
        alerts=engine,
        memory=lambda: 100 * MIB,
        interval_s=30,
        wall=wall,
        clock=mono,
        timer=StepTimer(0.001),
    )
    subject = f"venue:{proc.provider.venue}"

    async def round_after(n429: int) -> HealthReport:
        await proc.earn_429s(n429)
        wall.advance(30)
        mono.advance(30)
        return await checker.run()

    async def open_alert() -> dict[str, Any] | None:
        rows = await alert_rows(store, open_only=True, limit=50)
        mine = [r for r in rows if r["rule"] == "rate_limited"]
        assert len(mine) <= 1
        return mine[0] if mine else None

    try:
        assert (await checker.run()).check("rate_limited").status == "ok"  # type: ignore[union-attr]
        started = wall.now
        # One 429 a round: warning from the first such round, open only after for_s.
        for _ in range(2):
            report = await round_after(1)
            assert report.check("rate_limited").status == "warning"  # type: ignore[union-attr]
            assert await open_alert() is None
        await round_after(1)
        opened = await open_alert()
        assert opened is not None
        assert (opened["severity"], opened["subject"]) == ("warning", subject)
        assert opened["opened_at"] == int((started + 90) * 1000)
        assert (opened["warning"], opened["critical"]) == (
            checker.thresholds.rate_limited_warning,
            checker.thresholds.rate_limited_critical,
        )
        # Three a round: critical; escalated after for_s of critical rounds.
        for _ in range(2):
            report = await round_after(3)
            assert report.check("rate_limited").status == "critical"  # type: ignore[union-attr]
            assert (await open_alert())["severity"] == "warning"  # type: ignore[index]
        await round_after(3)
        escalated = await open_alert()
        assert escalated is not None and escalated["severity"] == "critical"
        assert escalated["escalated_at"] == int((started + 180) * 1000)
        assert escalated["id"] == opened["id"] and escalated["value"] == 3
        # Quiet: ok at once, resolved only after resolve_s of ok rounds.
        for _ in range(4):
            report = await round_after(0)
            assert report.check("rate_limited").status == "ok"  # type: ignore[union-attr]
            assert await open_alert() is not None
        await round_after(0)
        assert await open_alert() is None
        [row] = [
            r for r in await alert_rows(store, open_only=False, limit=50)
            if r["rule"] == "rate_limited"
        ]  # fmt: skip
        assert row["resolved_at"] == int((started + 330) * 1000)
        assert row["resolved_at_utc"].endswith(" UTC")
        # Every 429 counted was the sandbox's, and none turned into a ban.
        assert exchange.stats.total.http_429 == 3 * 1 + 3 * 3
        assert exchange.stats.total.http_418 == 0
        await hook.wait_idle()
    finally:
        await hook.aclose()
    ours = [e for e in receiver.events if e["rule"] == "rate_limited"]
    if webhook == "down":
        assert receiver.events == []
        assert hook.delivered == 0 and hook.failed == engine.counts["sent"] >= 3
        return
    assert [(e["event"], e["severity"]) for e in ours] == [
        ("opened", "warning"),
        ("escalated", "critical"),
        ("resolved", "critical"),
    ]
    first = ours[0]
    assert first["subject"] == subject and first["venue"] == proc.provider.venue
    assert (first["host"], first["pid"]) == ("h1", 1)
    assert first["value"] == 1 and first["thresholds"] == {
        "warning": checker.thresholds.rate_limited_warning,
        "critical": checker.thresholds.rate_limited_critical,
    }
    assert "429 answers since the last round" in first["reason"]
    assert [e["at"] for e in ours] == [int((started + s) * 1000) for s in (90, 180, 330)]
    assert ours[2]["opened_at"] == first["opened_at"] and ours[2]["escalated_at"] is not None


async def test_a_hanging_webhook_never_holds_the_health_round(
    store: Store, wall: FakeClock, mono: FakeClock, receiver: Receiver
) -> None:
    """A round that opens an alert returns with the event still waiting on a webhook that
    does not answer; the next round runs as well."""
    receiver.hang = True
    hook = AlertWebhook(receiver.url, timeout_s=5.0, retries=0)
    e = AlertEngine(
        store, AlertSettings(for_s=0.0), venue=VENUE, host="h", pid=1, sink=hook, interval_s=30
    )
    checker = HealthChecker(
        store, dict, alerts=e, memory=lambda: 8192 * MIB, wall=wall, clock=mono,
        timer=StepTimer(0.001),
    )  # fmt: skip
    try:
        first = await checker.run()
        assert first.check("memory").status == "critical"  # type: ignore[union-attr]
        assert e.counts["opened"] == e.counts["sent"] == 1
        assert hook.pending == 1 and hook.delivered == 0
        wall.advance(30)
        mono.advance(30)
        await checker.run()
        assert checker.rounds == 2 and hook.delivered == 0
    finally:
        await hook.aclose(drain_s=0)


# -- rules judged on reports made here -----------------------------------------------------

VENUE = "sandbox-s0-alerts"


def report(at_s: float, *checks: Check) -> HealthReport:
    return HealthReport("ok", checks, int(at_s * 1000), 1.0)


def lag(status: str, value: float = 0.0) -> Check:
    """A per-process check (event-loop lag) in ``status``."""
    return Check("loop_lag", status, value, 100.0, 1000.0, "ms", f"lag {value} ms")  # type: ignore[arg-type]


def trip(status: str, value: float = 0.0) -> Check:
    """A venue-wide check (the store's round trip) in ``status``."""
    return Check("store_round_trip", status, value, 50.0, 500.0, "ms", f"trip {value} ms")  # type: ignore[arg-type]


def engine(store: Store, pid: int = 1, **settings: Any) -> AlertEngine:
    return AlertEngine(
        store, AlertSettings(**settings), venue=VENUE, host="h", pid=pid, interval_s=30
    )


async def test_a_check_that_flaps_never_opens_and_an_open_alert_does_not_flap(
    store: Store,
) -> None:
    """Warning and ok in turn never lasts for_s: nothing opens. Once open, ok rounds
    shorter than resolve_s between bad ones keep the one alert open: no resolve, no
    second alert."""
    e = engine(store)
    t = 0.0
    for n in range(8):
        assert await e.evaluate(report(t, lag("warning" if n % 2 == 0 else "ok"))) == []
        t += 30
    for _ in range(3):
        events = await e.evaluate(report(t, lag("warning", 150)))
        t += 30
    assert [ev["event"] for ev in events] == ["opened"]
    for n in range(6):
        status = "ok" if n % 3 != 2 else "warning"  # 60 s ok, then bad again
        assert await e.evaluate(report(t, lag(status, 150))) == []
        t += 30
    rows = await alert_rows(store, open_only=False, limit=10)
    assert [(r["rule"], r["subject"], r["resolved_at"]) for r in rows] == [
        ("loop_lag", "process:h:1", None)
    ]
    assert e.counts["opened"] == 1 and e.counts["resolved"] == 0


async def test_critical_at_once_opens_critical_and_never_steps_down(store: Store) -> None:
    """A check critical for for_s opens critical (no warning first); back to warning it
    stays critical until resolved."""
    e = engine(store, for_s=30.0)
    assert await e.evaluate(report(0, trip("critical", 900))) == []
    [opened] = await e.evaluate(report(30, trip("critical", 900)))
    assert (opened["event"], opened["severity"], opened["threshold"]) == ("opened", "critical", 500)
    assert await e.evaluate(report(60, trip("warning", 90))) == []
    assert await e.evaluate(report(90, trip("warning", 90))) == []
    [row] = await alert_rows(store, open_only=True, limit=5)
    assert row["severity"] == "critical" and row["value"] == 90 and row["message"] == "trip 90 ms"


async def test_rule_overrides_and_disabled_rules(store: Store) -> None:
    """A rule's own for_s wins over the default; a disabled rule never opens; alerts off
    judge nothing."""
    e = engine(store, rules={"loop_lag": {"for_s": 0}, "store_round_trip": {"enabled": False}})
    [opened] = await e.evaluate(report(0, lag("warning", 150), trip("critical", 900)))
    assert opened["rule"] == "loop_lag"
    off = engine(store, pid=2, enabled=False)
    assert await off.evaluate(report(0, lag("critical", 5000))) == []
    assert off.stats()["opened"] == 0


async def test_processes_sharing_a_venue_keep_one_alert_and_report_each_event_once(
    make_store: OpenStore,
) -> None:
    """Two processes (each with its own store connection) judge the venue's store round
    trip: one alert opens, once; one escalation; while either still sees it bad it stays
    open, and when both see it ok it resolves once. Each process's own lag is its own
    alert."""
    a, b = engine(await make_store(), pid=1), engine(await make_store(), pid=2)
    events: list[dict[str, Any]] = []

    async def both(t: float, a_check: Check, b_check: Check) -> None:
        results = await asyncio.gather(
            a.evaluate(report(t, a_check, lag("warning", 150))),
            b.evaluate(report(t, b_check, lag("warning", 150))),
        )
        events.extend(ev for r in results for ev in r if ev["rule"] == "store_round_trip")

    t = 0.0
    for _ in range(3):
        await both(t, trip("warning", 90), trip("warning", 90))
        t += 30
    for _ in range(3):
        await both(t, trip("critical", 900), trip("critical", 900))
        t += 30
    for _ in range(6):  # a sees it ok for 150 s, b still bad: stays open
        await both(t, trip("ok", 1), trip("warning", 90))
        last_bad = t
        t += 30
    assert len(events) == 2
    for _ in range(5):
        await both(t, trip("ok", 1), trip("ok", 1))
        t += 30
    assert [(ev["event"], ev["subject"]) for ev in events] == [
        ("opened", f"venue:{VENUE}"),
        ("escalated", f"venue:{VENUE}"),
        ("resolved", f"venue:{VENUE}"),
    ]
    # Resolved by whichever judged it ok once nobody had seen it bad for resolve_s.
    assert events[2]["at"] == int((last_bad + 120) * 1000)
    assert a.counts["adopted"] + b.counts["adopted"] == 1
    store = await make_store()
    rows = await alert_rows(store, open_only=False, limit=10)
    assert sorted((r["rule"], r["subject"], r["open"]) for r in rows) == [
        ("loop_lag", "process:h:1", True),
        ("loop_lag", "process:h:2", True),
        ("store_round_trip", f"venue:{VENUE}", False),
    ]


async def test_an_alert_nobody_judges_resolves_after_resolve_s_and_three_rounds(
    store: Store,
) -> None:
    """A process's alert outlives the process; another process resolves it once no process
    has seen it bad for resolve_s plus three of its rounds (120 + 90 s)."""
    gone = engine(store, pid=1, for_s=0.0)
    [opened] = await gone.evaluate(report(0, lag("critical", 5000)))
    other = engine(store, pid=2)
    assert await other.evaluate(report(180, lag("ok"))) == []
    [resolved] = await other.evaluate(report(210, lag("ok")))
    assert resolved["event"] == "resolved" and resolved["subject"] == "process:h:1"
    assert "no process has judged it" in resolved["reason"]
    assert resolved["id"] == opened["id"]


async def test_a_failing_store_is_logged_not_raised(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """With the alerts table gone, evaluating logs once and counts; it never raises."""
    e = engine(store, for_s=0.0)
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE alerts")
    with caplog.at_level("WARNING", logger="mystic_trading.monitor"):
        assert await e.evaluate(report(0, lag("critical", 5000))) == []
        assert await e.evaluate(report(30, lag("critical", 5000))) == []
    assert e.errors == 2 and e.last_error is not None
    assert caplog.text.count("alerts: the store failed") == 1


# -- the store's part ----------------------------------------------------------------------


async def test_one_open_alert_per_rule_and_subject_in_the_store(store: Store) -> None:
    """A second open of the same rule and subject inserts nothing; escalate and resolve
    change a row once; resolving waits until nobody has seen it bad since quiet_since; once
    resolved, a new alert may open."""
    alerts = store.alerts
    first = await alerts.open("redis", "venue:v", "warning", "slow", 30.0, 20.0, at=1_000)
    assert first is not None and first.opened_at == 1_000 and first.seen_at == 1_000
    assert await alerts.open("redis", "venue:v", "critical", "down", 0.0, 250.0, at=2_000) is None
    assert await alerts.open("redis", "venue:w", "warning", "slow", 30.0, 20.0, at=2_000)
    with pytest.raises(DataError, match="open already"):
        await alerts.add("redis", "warning", "slow", 30.0, 20.0, subject="venue:v")
    assert await alerts.escalate(first.id, threshold=250, value=300, message="m", at=3_000)
    assert not await alerts.escalate(first.id, threshold=250, value=300, message="m", at=4_000)
    assert await alerts.seen(first.id, value=300, message="m", at=5_000)
    assert await alerts.seen(first.id, value=300, message="m", at=4_500)  # never moves back
    assert not await alerts.resolve(first.id, resolved_at=6_000, quiet_since=4_999)
    assert await alerts.resolve(first.id, resolved_at=6_000, quiet_since=5_000)
    assert not await alerts.resolve(first.id, resolved_at=7_000)
    again = await alerts.open("redis", "venue:v", "warning", "slow", 30.0, 20.0, at=8_000)
    assert again is not None and again.id != first.id
    [old] = [a for a in await alerts.list(limit=10) if a.id == first.id]
    assert (old.severity, old.escalated_at, old.seen_at, old.resolved_at) == (
        "critical",
        3_000,
        5_000,
        6_000,
    )


def _alembic(conn: Connection, target: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", "mystic_trading.store:migrations")
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, target)


def _alert_columns(conn: Connection) -> set[str]:
    return {str(c["name"]) for c in sa.inspect(conn).get_columns("alerts")}


async def test_migration_0004_upgrades_and_downgrades(store: Store, store_url: str) -> None:
    """Head is 0004 or later; a downgrade to 0003 drops the new columns and index; two alerts left
    open for one rule by an older Mystic are reduced to the newest when upgrading again."""
    assert head_revision() >= "0004"
    async with store.engine.begin() as conn:
        await conn.run_sync(_alembic, "0003")
    assert "subject" not in await _columns(store)
    async with store.engine.begin() as conn:
        for at in (1, 2):
            await conn.exec_driver_sql(
                "INSERT INTO alerts (rule, severity, message, value, threshold, created_at) "
                f"VALUES ('redis', 'warning', 'old', 1.0, 0.0, {at})"
            )
    settings = StoreSettings(url=store_url)
    assert (await migration_status(settings)).current == "0003"
    assert (await upgrade(settings)).current == head_revision()
    assert {"subject", "escalated_at", "seen_at", "warning", "critical", "unit"} <= (
        await _columns(store)
    )
    rows = [a for a in await store.alerts.list(limit=10) if a.rule == "redis"]
    assert [(a.created_at, a.resolved_at, a.subject) for a in rows] == [(2, None, ""), (1, 1, "")]


async def _columns(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return await conn.run_sync(_alert_columns)


async def test_alert_rows_are_json_ready(store: Store) -> None:
    """alert_rows gives plain data: times as ms and UTC text, newest first."""
    await store.alerts.open(
        "memory", "process:h:1", "warning", "rss 2 GiB", 2048, 1024, at=1_700_000_000_000
    )
    [row] = await alert_rows(store, open_only=True, limit=10)
    assert row["opened_at_utc"] == "2023-11-14 22:13:20 UTC"
    assert row["escalated_at_utc"] is None and row["open"] is True
    assert set(row) >= {
        "rule", "subject", "severity", "opened_at", "escalated_at", "resolved_at", "value",
        "threshold", "message",
    }  # fmt: skip


# -- settings --------------------------------------------------------------------------------


def test_every_check_a_round_gives_has_a_known_name_and_a_scope() -> None:
    """Rules name checks: the venue-wide ones are known check names."""
    assert set(CHECK_NAMES) >= VENUE_RULES
    assert len(CHECK_NAMES) == len(set(CHECK_NAMES))


def test_rule_timing_defaults_and_overrides() -> None:
    """Defaults 60 s to fire and 120 s to resolve; a rule overrides either."""
    s = AlertSettings(rules={"redis": {"for_s": 5}})
    assert (s.rule("memory").for_s, s.rule("memory").resolve_s) == (60.0, 120.0)
    assert (s.rule("redis").for_s, s.rule("redis").resolve_s) == (5.0, 120.0)


BAD_URLS = ["ftp://hooks.example.com/x", "hooks.example.com/x", "http://", "https://h:port/x"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_webhook_url_is_a_config_error_naming_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not http(s) with a host: ConfigError naming monitor.alerts.webhook_url and its
    variable."""
    monkeypatch.setenv("MYSTIC_MONITOR__ALERTS__WEBHOOK_URL", url)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.setting == "monitor.alerts.webhook_url"
    assert "MYSTIC_MONITOR__ALERTS__WEBHOOK_URL" in str(caught.value)
    assert "http:// or https:// URL with a host" in str(caught.value)


def test_an_unknown_rule_is_a_config_error_with_a_suggestion() -> None:
    """A rule named after no check: ConfigError naming monitor.alerts.rules, the closest
    check's name and the known ones."""
    with pytest.raises(ConfigError) as caught:
        load_settings(monitor={"alerts": {"rules": {"upstream_sucess": {"for_s": 10}}}})
    assert caught.value.setting == "monitor.alerts.rules"
    assert "did you mean 'upstream_success'?" in str(caught.value)
    assert "rate_limited" in str(caught.value)


def test_the_cli_exits_2_on_a_malformed_webhook_url_and_writes_nothing(
    tmp_path: Path, mystic_cli: Any
) -> None:
    """`mystic status` with a malformed webhook URL: exit 2, the setting named on stderr,
    no store created."""
    db = tmp_path / "never.db"
    done = mystic_cli(
        {
            "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{db}",
            "MYSTIC_MONITOR__ALERTS__WEBHOOK_URL": "htp://hooks.example.com/x",
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
        },
        "status",
        "--json",
        timeout_s=120,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "monitor.alerts.webhook_url" in done.stderr
    assert not db.exists()
