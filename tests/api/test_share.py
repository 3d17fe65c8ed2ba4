"""Each client's share of the exchange's budget (``client_share_pct``): a runaway client is
refused once past its share while another keeps getting the exchange's answers; a real
uvicorn in front of the sandbox."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from mystic_trading.api import create_app
from mystic_trading.errors import ConfigError
from mystic_trading.sandbox import SandboxServer

from ..conftest import on_uvicorn
from .conftest import Served, make_settings, serving

TICKER = "/api/v3/ticker/price"


@pytest.fixture
async def shared(exchange: SandboxServer, tmp_path: Path) -> AsyncIterator[Served]:
    """The service with a share of 0.1 % of the sandbox's 6,000 a window: 6 weight, three
    tickers (weight 2 each) a client."""
    async with serving(exchange, tmp_path, client_share_pct=0.1) as running:
        async with running.client() as c:
            assert (await c.get("/readyz")).status_code == 200  # the listing, charged to no one
        yield running


def symbols(exchange: SandboxServer) -> list[str]:
    info = httpx.get(f"{exchange.url}/api/v3/exchangeInfo", timeout=10).json()
    return [s["symbol"] for s in info["symbols"]]


async def until_refused(
    c: httpx.AsyncClient, names: list[str], headers: dict[str, str]
) -> tuple[list[str], httpx.Response]:
    """Ask a ticker of each name in turn until one is refused: the names answered, and the
    refusal."""
    answered = []
    for name in names:
        answer = await c.get(TICKER, params={"symbol": name}, headers=headers)
        if answer.status_code != 200:
            return answered, answer
        assert answer.headers["x-mystic-layer"] == "upstream"
        answered.append(name)
    raise AssertionError(f"never refused after {len(answered)} upstream answers")


async def test_a_runaway_is_refused_past_its_share_and_the_others_are_not(
    shared: Served, exchange: SandboxServer
) -> None:
    """Past its share the runaway gets 429 with Retry-After and -1003, nothing more is sent
    for it, its cached answers still come; another client still gets the exchange's."""
    names = symbols(exchange)
    shares = shared.state.shares
    assert shares is not None
    share = shares.share()
    runaway = {"X-Mystic-Client": "runaway"}
    throttler = shared.state.md.throttler
    async with shared.client() as c:
        sent_before = exchange.stats.endpoint("ticker/24hr").requests
        admitted_before = throttler.stats()["weight"]
        answered, refused = await until_refused(c, names, runaway)
        # Refused at the throttler's door: the weight admitted is the answered tickers'
        # (2 each), none of the refused one's.
        assert throttler.stats()["weight"] - admitted_before == 2 * len(answered)
        assert refused.status_code == 429
        assert refused.json()["code"] == -1003
        assert "share of the exchange's budget" in refused.json()["msg"]
        assert int(refused.headers["retry-after"]) >= 1
        # Every answer but the refused one reached the exchange; the refused one did not.
        sent = exchange.stats.endpoint("ticker/24hr").requests - sent_before
        assert sent == len(answered)
        assert shares.used("name:runaway") >= share > shares.used("name:runaway") - 2
        # What is held is still served to the runaway; what is not is refused again.
        again = await c.get(TICKER, params={"symbol": answered[0]}, headers=runaway)
        assert again.status_code == 200
        assert again.headers["x-mystic-layer"] == "memory"
        fresh = names[len(answered) + 1]
        assert (await c.get(TICKER, params={"symbol": fresh}, headers=runaway)).status_code == 429
        # Another client is not held back by the runaway's share.
        calm = await c.get(TICKER, params={"symbol": fresh}, headers={"X-Mystic-Client": "calm"})
        assert calm.status_code == 200, calm.text
        assert calm.headers["x-mystic-layer"] == "upstream"
        assert shares.used("name:calm") > 0
        assert exchange.stats.endpoint("ticker/24hr").requests - sent_before == sent + 1


async def test_v1_refusal_names_the_share(shared: Served, exchange: SandboxServer) -> None:
    """/api/v1 refuses a client past its share with 429, Retry-After and share_exceeded."""
    names = symbols(exchange)
    bot = {"X-Mystic-Client": "bot"}
    async with shared.client() as c:
        answered, _ = await until_refused(c, names, bot)
        refused = await c.get(f"/api/v1/ticker/{names[len(answered) + 1]}", headers=bot)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "share_exceeded"
        assert int(refused.headers["retry-after"]) >= 1


async def test_clients_are_told_apart_by_token_else_address(
    shared: Served, exchange: SandboxServer
) -> None:
    """Two bearer tokens are two clients; without header or token the address counts."""
    names = symbols(exchange)
    shares = shared.state.shares
    assert shares is not None
    async with shared.client() as c:
        first = {"Authorization": "Bearer first-secret"}
        _, refused = await until_refused(c, names, first)
        assert refused.status_code == 429
        other = await c.get(
            TICKER,
            params={"symbol": names[-1]},
            headers={"Authorization": "Bearer second-secret"},
        )
        assert other.status_code == 200
        anonymous = await c.get(TICKER, params={"symbol": names[-2]})
        assert anonymous.status_code == 200
    counted = shares.clients()
    assert counted["addr:127.0.0.1"] > 0
    tokens = [client for client in counted if client.startswith("token:")]
    assert len(tokens) == 2  # the two tokens, each counted apart
    assert not any("secret" in client for client in counted)  # kept as digests only


async def test_off_by_default(served: Served, exchange: SandboxServer) -> None:
    """Without a share, one client may use the whole budget."""
    names = symbols(exchange)
    assert served.state.shares is None
    async with served.client() as c:
        for name in names[:10]:
            answer = await c.get(TICKER, params={"symbol": name})
            assert answer.status_code == 200


@pytest.mark.parametrize("pct", [0, -5, 100.5, float("nan")])
def test_a_share_out_of_range_is_refused(
    exchange: SandboxServer, tmp_path: Path, pct: float
) -> None:
    """A share not above 0 and at most 100 is a ConfigError naming client_share_pct."""
    with pytest.raises(ConfigError, match="client_share_pct") as caught:
        create_app(make_settings(exchange, tmp_path), client_share_pct=pct)
    assert caught.value.setting == "client_share_pct"


@pytest.mark.redis
async def test_with_redis_two_workers_count_one_share(
    exchange: SandboxServer, tmp_path: Path, private_redis_url: str
) -> None:
    """Two services on one Redis (as `--workers 2` runs them) count a client's share once:
    asked in turn of each, the runaway is refused after the same weight as by one service,
    and the refusal is the deployment's (the other worker refuses it too)."""
    names = symbols(exchange)
    base = make_settings(exchange, tmp_path)
    settings = base.model_copy(update={"redis_url": SecretStr(private_redis_url)})
    apps = [create_app(settings, client_share_pct=0.1) for _ in range(2)]
    runaway = {"X-Mystic-Client": "runaway"}
    async with on_uvicorn(apps[0]) as port_a, on_uvicorn(apps[1]) as port_b:
        urls = [f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"]
        shares = apps[0].state.mystic.shares
        share = shares.share()
        async with httpx.AsyncClient(timeout=20.0) as c:
            for url in urls:  # the listing and the clock, charged to no one
                assert (await c.get(f"{url}/readyz")).status_code == 200
            answered = 0
            for k, name in enumerate(names):
                got = await c.get(
                    f"{urls[k % 2]}{TICKER}", params={"symbol": name}, headers=runaway
                )
                if got.status_code != 200:
                    break
                answered += 1
            else:
                raise AssertionError("never refused")
            assert got.status_code == 429 and got.json()["code"] == -1003
            # Weight 2 a ticker: one share is share / 2 tickers, whichever worker served them.
            assert answered == -(-share // 2)
            other = await c.get(
                f"{urls[(k + 1) % 2]}{TICKER}", params={"symbol": names[k + 1]}, headers=runaway
            )
            assert other.status_code == 429


async def test_with_redis_down_each_worker_counts_alone_and_redis_is_left_alone(
    exchange: SandboxServer, tmp_path: Path
) -> None:
    """A Redis that does not answer: the share is still kept, counted by this worker, and
    Redis is not asked again at every request (its timeout would add to each)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # a port nothing listens on once closed
    names = symbols(exchange)
    base = make_settings(exchange, tmp_path)
    settings = base.model_copy(update={"redis_url": SecretStr(f"redis://127.0.0.1:{dead}/0")})
    app = create_app(settings, client_share_pct=0.1)
    bot = {"X-Mystic-Client": "bot"}
    async with on_uvicorn(app) as port, httpx.AsyncClient(timeout=20.0) as c:
        url = f"http://127.0.0.1:{port}"
        assert (await c.get(f"{url}/readyz")).status_code in (200, 503)
        shares = app.state.mystic.shares
        answered = 0
        retries: set[float | None] = set()
        for name in names:
            got = await c.get(f"{url}{TICKER}", params={"symbol": name}, headers=bot)
            if got.status_code != 200:
                break
            answered += 1
            retries.add(shares._redis_retry_at)
        # Redis failed at the first charge and was not asked again since: one retry time.
        assert len(retries) == 1 and None not in retries
        assert got.status_code == 429
        assert answered == -(-shares.share() // 2)
