"""`mystic ticker | candles | backfill | demo` as real subprocesses against a real sandbox."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.sandbox import SandboxConfig, SandboxServer

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def exchange(shared_exchange: SandboxServer) -> SandboxServer:
    return shared_exchange


@pytest.fixture
def mystic(exchange: SandboxServer, tmp_path: Path, mystic_cli: Any) -> Run:
    """Run `mystic ...` on the sandbox and a SQLite file of this test's own."""
    base = {
        "MYSTIC_PROVIDER__BASE_URL": exchange.url,
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return mystic_cli({**base, **(env or {})}, *args, timeout_s=120)

    return run


def test_ticker_json(mystic: Run) -> None:
    """`mystic ticker A B --json` gives one entry per symbol with price and provenance."""
    result = mystic("ticker", "BTCUSDT", "ETH/BTC", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["symbol"] for d in data] == ["BTC/USDT", "ETH/BTC"]
    assert all(d["layer"] == "upstream" and not d["stale"] for d in data)
    assert all(float(d["price"]) > 0 for d in data)


def test_candles_csv_and_table(mystic: Run) -> None:
    """--format csv prints a header and one row per candle; the table marks the open one."""
    result = mystic("candles", "BTCUSDT", "1h", "--limit", "5", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 5
    assert [r["closed"] for r in rows] == ["true"] * 4 + ["false"]  # as in the JSON
    for r in rows:  # plain notation, as the exchange writes decimals
        assert "E" not in r["volume"] + r["close"] + r["quote_volume"]
    table = mystic("candles", "BTCUSDT", "1d", "--start", "2024-01-01", "--end", "2024-01-08")
    assert table.returncode == 0, table.stderr
    assert "7 candles" in table.stdout
    assert "2024-01-07 00:00:00" in table.stdout
    assert "not final yet" not in table.stdout  # no open candle, no caption about one


def test_candles_json_range(mystic: Run) -> None:
    """--format json gives exact decimal strings for a fixed range."""
    result = mystic(
        "candles",
        "ETHBTC",
        "1d",
        "--start",
        "2024-03-01",
        "--end",
        "2024-03-04",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data) == 3
    assert all(isinstance(c["close"], str) and c["closed"] for c in data)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("candles", "BTCUSDT", "1s", "--start", "2015-01-01"), "--yes"),
        (("ticker", "FOO/USDT"), "unknown symbol FOO/USDT"),
    ],
)
def test_errors_found_by_mystic_exit_1_with_the_reason(
    mystic: Run, args: tuple[str, ...], needle: str
) -> None:
    """Errors Mystic finds after the arguments pass (unlisted symbol, too large) exit 1."""
    result = mystic(*args)
    assert result.returncode == 1, result.stdout
    assert needle in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


CANDLES = ("candles", "BTCUSDT", "1d")
BACKFILL = ("backfill", "BTCUSDT", "--interval", "1d")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("candles", "BTCUSDT", "7m"), "invalid interval '7m'"),
        (("ticker", "BTC//USDT"), "invalid symbol 'BTC//USDT': it has more than one separator"),
        (("ticker", "BTCUSDT", "ß/USDT"), "'ß' (U+00DF) is not an ASCII letter"),
        (("candles", "ＢＴＣUSDT", "1h"), "invalid symbol"),
        (
            ("candles", "BTCUSDT", "1h", "--start", "2024-02-01", "--end", "2024-01-01"),
            "--end 2024-01-01 (1704067200000 ms) is before --start 2024-02-01 (1706745600000 ms)",
        ),
        ((*CANDLES, "--start", "1704067200"), "give 1704067200000"),
        ((*CANDLES, "--start", "-1"), "--start '-1' is negative"),
        ((*CANDLES, "--end", "-1000000000000"), "is negative"),
        ((*CANDLES, "--start", "100000000000000000000"), "is after 2100-01-01"),
        ((*CANDLES, "--start", "2204-01-01"), "is after 2100-01-01"),
        ((*CANDLES, "--start", "1704067200000.5"), "is not a timestamp"),
        ((*CANDLES, "--end", "yesterday"), "--end 'yesterday' is not a timestamp"),
        ((*CANDLES, "--limit", "0"), "--limit must be a whole number of candles from 1"),
        ((*CANDLES, "--limit", "-1"), "got -1"),
        ((*CANDLES, "--limit", "2.5"), "got '2.5'"),
        ((*CANDLES, "--limit", "1000000000", "--yes"), "more than 1,000,000 candles"),
        ((*BACKFILL, "--since", "1704067200"), "--since '1704067200' looks like epoch seconds"),
        ((*BACKFILL, "--since", "2024-13-01"), "--since '2024-13-01' is not a timestamp"),
        ((*BACKFILL, "--since", "2099-01-01"), "--since 2099-01-01 is in the future"),
        (
            (*BACKFILL, "--since", "2024-01-02", "--until", "2024-01-01"),
            "--until 2024-01-01 (1704067200000 ms) is before --since 2024-01-02",
        ),
        ((*BACKFILL, "--since", "2024-01-01", "--until", "1.5"), "--until '1.5' is not"),
        (("backfill", "BTCUSDT", "--interval", "7m", "--since", "2024-01-01"), "invalid interval"),
    ],
)
def test_invalid_arguments_exit_2_on_one_line_before_any_request(
    mystic: Run, exchange: SandboxServer, args: tuple[str, ...], needle: str
) -> None:
    """A bad symbol, interval, time or limit: one stderr line, exit 2, nothing sent upstream."""
    before = exchange.stats.total.requests
    result = mystic(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("invalid argument (")
    assert needle in lines[0]
    assert result.stdout == ""
    assert exchange.stats.total.requests == before


def test_epoch_ms_and_iso_give_the_same_candles(mystic: Run) -> None:
    """--start/--end in epoch ms read exactly as the same times in ISO, as the API reads them."""
    by_iso = mystic(*CANDLES, "--start", "2024-01-01", "--end", "2024-01-08", "--format", "json")
    by_ms = mystic(
        *CANDLES, "--start", "1704067200000", "--end", "1704672000000", "--format", "json"
    )
    assert by_iso.returncode == by_ms.returncode == 0, by_iso.stderr + by_ms.stderr
    assert json.loads(by_ms.stdout) == json.loads(by_iso.stdout)
    assert len(json.loads(by_ms.stdout)) == 7


def test_backfill_accepts_epoch_ms_as_its_help_says(mystic: Run) -> None:
    """backfill --since/--until take epoch ms as well as ISO dates (once refused as ms)."""
    result = mystic(*BACKFILL, "--since", "1704067200000", "--until", "1704326400000")
    assert result.returncode == 0, result.stderr
    assert "BTCUSDT 1d:" in result.stdout


def test_unreachable_exchange_says_what_to_do(mystic: Run) -> None:
    """With no exchange listening, the error names the URL and suggests `mystic sandbox`."""
    result = mystic("ticker", "BTCUSDT", env={"MYSTIC_PROVIDER__BASE_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "http://127.0.0.1:9" in message
    assert "mystic sandbox" in message


def test_backfill_is_resumable_and_idempotent(mystic: Run, exchange: SandboxServer) -> None:
    """A backfill fetches pages once; running it again fetches nothing."""
    first = mystic("backfill", "BNBUSDT", "SOLUSDT", "--interval", "1d", "--since", "2021-01-01")
    assert first.returncode == 0, first.stderr
    assert "BNBUSDT 1d:" in first.stdout
    assert "pages fetched" in first.stdout
    before = exchange.stats.endpoint("klines").requests
    again = mystic("backfill", "BNBUSDT", "SOLUSDT", "--interval", "1d", "--since", "2021-01-01")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already complete") == 2
    assert exchange.stats.endpoint("klines").requests == before


def test_demo_prints_the_optimization_report(mystic: Run) -> None:
    """`mystic demo` runs its own sandbox and prints layers, cold/warm and quota figures."""
    result = mystic("demo", "--seconds", "1", "--bots", "2", "--latency-ms", "5")
    assert result.returncode == 0, result.stderr
    for heading in ("Where answers came from", "Cold against warm", "calls saved", "429s / 418s"):
        assert heading in result.stdout


def test_decimals_are_printed_in_plain_notation() -> None:
    """A tiny price prints as the exchange writes it, 0.00000026, never 2.6E-7 (review)."""
    from decimal import Decimal

    from mystic_trading.cli.market_cmd import plain

    assert plain(Decimal("2.6E-7")) == "0.00000026"
    assert plain(Decimal("0E-8")) == "0.00000000"
    assert plain(Decimal("12345678.12345678")) == "12345678.12345678"


def _popen(exchange: SandboxServer, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
    env |= {
        "MYSTIC_PROVIDER__BASE_URL": exchange.url,
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "COLUMNS": "200",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "mystic_trading", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_long_window_is_printed_as_it_is_fetched(exchange: SandboxServer, tmp_path: Path) -> None:
    """`candles --yes` over a long range writes rows while later pages are still to come:
    with its first rows unread (the pipe full), the process has sent a chunk's pages, not
    the range's 98 (new-user D3: all of it was held, then printed; 2.7 GB for two years)."""
    before = exchange.stats.endpoint("klines").requests
    proc = _popen(
        exchange, tmp_path, "candles", "BTCUSDT", "1m", "--start", "2021-01-01",
        "--end", "2021-03-10", "--yes", "--format", "csv",
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        header = proc.stdout.readline()
        first = proc.stdout.readline()
        assert header.startswith("open_time,open,high"), header
        assert first.startswith("1609459200000,")
        # The process now blocks writing its first chunk: the pipe holds about 64 KiB.
        sent = exchange.stats.endpoint("klines").requests - before
        assert sent <= 20, f"{sent} pages sent before the first row was read"
        rest = proc.stdout.read()
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    rows = [first, *rest.splitlines()]
    assert len(rows) > 97_000
    assert exchange.stats.endpoint("klines").requests - before == 98


def test_streamed_json_and_csv_keep_their_documented_form(mystic: Run) -> None:
    """A window printed chunk by chunk is the same JSON array and the same CSV as one printed
    whole: one header, every candle once, in order."""
    args = ("candles", "ETHUSDT", "1h", "--start", "2022-01-01", "--end", "2024-01-01")
    as_json = mystic(*args, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert len(data) > 17_000
    assert [d["open_time"] for d in data] == sorted({d["open_time"] for d in data})
    assert as_json.stdout.startswith('[\n {\n  "open_time": 1640995200000,\n  "open": "')
    as_csv = mystic(*args, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert as_csv.stdout.count("open_time") == 1
    assert [r["open_time"] for r in rows] == [str(d["open_time"]) for d in data]
    assert [r["close"] for r in rows] == [d["close"] for d in data]


def test_a_streamed_table_has_one_header_and_says_what_it_printed(mystic: Run) -> None:
    """The table of a long window prints its header once and ends with the title line the
    table of a short one starts with."""
    result = mystic("candles", "ETHUSDT", "1h", "--start", "2022-01-01", "--end", "2024-01-01")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("open time (UTC)") == 1
    assert "2022-01-01 00:00:00" in result.stdout
    assert "2023-12-31 23:00:00" in result.stdout
    lines = result.stdout.strip().splitlines()
    rows = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d \d\d:00:00", line)]
    assert lines[-1] == f"ETHUSDT 1h: {len(rows)} candles from upstream"
    assert len(rows) > 17_000
    assert len({len(line) for line in rows}) == 1  # the columns line up from chunk to chunk


def test_the_last_million_hours_of_a_new_listing_cost_a_few_requests(
    mystic: Run, exchange: SandboxServer
) -> None:
    """`--limit 1000000 --yes` reaching back to 1970 gets the candles since the listing
    in a few requests (faults 4: 251 failing requests), not a page per empty 1,000 hours."""
    before = exchange.stats.endpoint("klines").requests
    result = mystic("candles", "NEWUSDT", "1h", "--limit", "1000000", "--yes", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[-1]["closed"] == "false"
    pages = -(-len(rows) // 1000)
    assert exchange.stats.endpoint("klines").requests - before <= 2 + pages


def test_a_stale_ticker_says_so_on_stderr_and_exits_0(tmp_path: Path, mystic_cli: Any) -> None:
    """With the exchange down, a ticker answered from the store exits 0 as documented, but
    no longer silently: the table marks it STALE and one stderr line says the exchange was
    unreachable, where the answer came from and how old it is (new-user D10)."""
    own = SandboxServer(SandboxConfig(port=0)).start()
    env = {
        "MYSTIC_PROVIDER__BASE_URL": own.url,
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "MYSTIC_THROTTLE__MAX_RETRIES": "0",
    }
    try:
        fresh = mystic_cli(env, "ticker", "BTCUSDT")
        assert fresh.returncode == 0, fresh.stderr
        assert "stale" not in fresh.stderr
    finally:
        own.stop()  # the exchange is down from here on
    table = mystic_cli(env, "ticker", "BTCUSDT")
    assert table.returncode == 0, table.stderr
    assert "STALE" in table.stdout
    note = next(line for line in table.stderr.splitlines() if line.startswith("stale"))
    assert "unreachable" in note and "answered from the store" in note
    assert "BTC/USDT" in note and " old" in note
    as_json = mystic_cli(env, "ticker", "BTCUSDT", "--json")
    assert as_json.returncode == 0, as_json.stderr
    (entry,) = json.loads(as_json.stdout)  # stdout stays one JSON document
    assert entry["stale"] is True and entry["layer"] == "store"
    assert "answered from the store" in as_json.stderr


def test_backfill_of_an_unknown_symbol_draws_no_bar(mystic: Run) -> None:
    """An unknown symbol is refused before a `0/?` bar is drawn (new-user D11)."""
    result = mystic("backfill", "BTCUSTD", "--interval", "1h", "--since", "2024-01-01")
    assert result.returncode == 1
    assert "did you mean BTC/USDT?" in result.stderr
    assert "0/?" not in result.stdout + result.stderr
    assert "BTCUSTD 1h" not in result.stdout


def test_backfill_says_1_page_not_1_pages(mystic: Run) -> None:
    """One page fetched is "1 page fetched" (new-user D11)."""
    result = mystic(
        "backfill", "ETHBTC", "--interval", "1d", "--since", "2024-01-01", "--until", "2024-01-05"
    )
    assert result.returncode == 0, result.stderr
    assert "ETHBTC 1d: 1 page fetched" in result.stdout
