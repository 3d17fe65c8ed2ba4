"""The alert webhook: events POSTed as JSON to a real local HTTP receiver, retried with
backoff on refusals, 5xx and 429, given up on a 4xx and after its tries, dropped and counted
when its queue is full; a receiver that is down or hangs never holds the sender up, and the
URL's secret never reaches the log."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from mystic_trading.config import load_settings
from mystic_trading.errors import ConfigError
from mystic_trading.monitor import AlertWebhook
from mystic_trading.monitor._webhook import mask_webhook


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each JSON body POSTed to it and answers
    the statuses it is told, in turn (200 once they run out), or never (``hang``)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests = 0
        self.statuses: list[int] = []
        self.hang = False
        self.received = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/s3cr3t-path?token=t0k3n"

    async def _hook(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.json()
        self.received.set()
        if self.hang:
            await self._release.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.events.append(body)
        return web.Response(status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{rest:.*}", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def down_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook/s3cr3t-path?token=t0k3n"


class Sleeps:
    """The backoff, recorded instead of slept."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


EVENT = {"event": "opened", "rule": "rate_limited", "severity": "warning", "value": 1.0}


async def test_an_event_is_posted_as_json(receiver: Receiver) -> None:
    """send() returns at once; the receiver gets the event as a JSON body."""
    hook = AlertWebhook(receiver.url)
    try:
        assert hook.send(EVENT) is True
        assert hook.pending == 1  # taken, not yet sent: send did not wait for it
        await hook.wait_idle()
    finally:
        await hook.aclose()
    assert receiver.events == [EVENT]
    assert hook.stats()["delivered"] == 1 and hook.stats()["failed"] == 0


async def test_5xx_and_429_are_retried_with_backoff(receiver: Receiver) -> None:
    """503 then 429 then 200: delivered on the third try, after backoffs of 0.5 s and 1 s."""
    receiver.statuses = [503, 429]
    sleeps = Sleeps()
    hook = AlertWebhook(receiver.url, retries=3, sleep=sleeps)
    try:
        hook.send(EVENT)
        await hook.wait_idle()
    finally:
        await hook.aclose()
    assert receiver.requests == 3 and receiver.events == [EVENT]
    assert sleeps.slept == [0.5, 1.0]
    assert hook.delivered == 1 and hook.attempts == 3


async def test_a_4xx_is_not_retried(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    """A 400 is the receiver refusing the event: one try, counted failed, logged once."""
    receiver.statuses = [400]
    hook = AlertWebhook(receiver.url, retries=3, sleep=Sleeps())
    try:
        with caplog.at_level("WARNING", logger="mystic_trading.monitor"):
            hook.send(EVENT)
            await hook.wait_idle()
    finally:
        await hook.aclose()
    assert receiver.requests == 1 and hook.failed == 1 and hook.last_error == "HTTP 400"
    assert "HTTP 400" in caplog.text


async def test_a_webhook_that_is_down_is_retried_then_given_up_without_its_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connection refused: every try fails, the event is given up and counted; the log
    names the webhook by scheme, host and port only (its path and query hold a token)."""
    url = down_url()
    sleeps = Sleeps()
    hook = AlertWebhook(url, retries=2, sleep=sleeps)
    try:
        with caplog.at_level("WARNING", logger="mystic_trading.monitor"):
            assert hook.send(EVENT) is True
            await hook.wait_idle()
    finally:
        await hook.aclose()
    assert hook.attempts == 3 and hook.failed == 1 and hook.delivered == 0
    assert sleeps.slept == [0.5, 1.0]
    assert hook.last_error is not None and "ConnectError" in hook.last_error
    assert mask_webhook(url) in caplog.text
    for secret in ("s3cr3t-path", "t0k3n"):
        assert secret not in caplog.text
        assert secret not in str(hook.stats())


async def test_a_webhook_that_hangs_times_out_and_never_holds_the_sender(
    receiver: Receiver,
) -> None:
    """A receiver that never answers: send() has returned long before; the try ends at the
    timeout and the event is given up."""
    receiver.hang = True
    hook = AlertWebhook(receiver.url, timeout_s=0.2, retries=0)
    try:
        assert hook.send(EVENT) is True
        await receiver.received.wait()  # the POST is on the wire, unanswered
        assert hook.pending == 1 and hook.delivered == 0
        await hook.wait_idle()
    finally:
        await hook.aclose()
    assert hook.failed == 1 and hook.last_error is not None
    assert "no answer within 0.2 s" in hook.last_error


async def test_a_full_queue_drops_and_counts(receiver: Receiver) -> None:
    """With the receiver hanging and room for two, further events are dropped, counted and
    refused at once."""
    receiver.hang = True
    hook = AlertWebhook(receiver.url, timeout_s=5.0, retries=0, queue_size=2)
    try:
        taken = [hook.send({**EVENT, "n": n}) for n in range(5)]
        assert taken == [True, True, False, False, False]
        assert hook.dropped == 3 and hook.stats()["dropped"] == 3
    finally:
        await hook.aclose(drain_s=0)
    assert hook.send(EVENT) is False  # closed: refused, never raised


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.example.com/services/T0/B0/XyZ", "https://hooks.example.com/***"),
        ("http://user:pw@127.0.0.1:8080/hook?token=abc", "http://127.0.0.1:8080/***"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://h:notaport/x", "<unparsable URL>"),
        ("not a url", "<not a URL: 9 characters>"),
        ("T0K3N-only", "<not a URL: 10 characters>"),
    ],
)
def test_mask_webhook(url: str, masked: str) -> None:
    """The masked form keeps scheme, host and port, nothing that may be a secret."""
    assert mask_webhook(url) == masked


def test_bad_arguments_are_refused() -> None:
    """A timeout that is not positive or negative retries are a ValueError naming them."""
    with pytest.raises(ValueError, match="timeout_s"):
        AlertWebhook("http://127.0.0.1:1/", timeout_s=0)
    with pytest.raises(ValueError, match="retries"):
        AlertWebhook("http://127.0.0.1:1/", retries=-1)


def test_a_bad_webhook_url_is_masked_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigError of an invalid webhook URL names the setting but not its secret path."""
    monkeypatch.setenv("MYSTIC_MONITOR__ALERTS__WEBHOOK_URL", "ftp://hooks.example/T0K3N-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.setting == "monitor.alerts.webhook_url"
    assert "T0K3N-secret" not in str(caught.value)
    assert "ftp://hooks.example/***" in str(caught.value)
