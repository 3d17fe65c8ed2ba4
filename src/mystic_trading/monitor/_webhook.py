"""Alert events sent to a webhook: a JSON POST each, off the health round's path.

``send`` only puts the event in a bounded queue and returns; one background task POSTs
them in order. A webhook that refuses connections, answers 5xx or 429, or does not answer
within ``timeout_s`` is tried again ``retries`` times, waiting 0.5 s, 1 s, 2 s ... (capped at
30 s) in between; a 4xx other than 429 is the receiver refusing the event and is not
retried. After the last try the event is dropped and counted. When the queue is full (a
webhook down for long while alerts keep coming) new events are dropped and counted, so a
dead webhook costs bounded memory and never slows a round, let alone fails one.

The URL may carry a secret (a token in its path or query, as Slack's and most chat hooks
do), so it is never logged or shown whole: :func:`mask_webhook` keeps the scheme, host and
port only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx

from mystic_trading import __version__
from mystic_trading._tasks import stop
from mystic_trading.config import mask_webhook

__all__ = ["AlertSink", "AlertWebhook", "mask_webhook"]

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
BACKOFF_S = 0.5
BACKOFF_MAX_S = 30.0


class AlertSink(Protocol):
    """Where alert events go. ``send`` must return at once and never raise: True when the
    event was taken (it may still fail later), False when it was dropped."""

    def send(self, event: Mapping[str, Any]) -> bool: ...


class AlertWebhook:
    """POSTs each alert event as JSON to ``url``, in a background task (see the module)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        queue_size: int = QUEUE_SIZE,
        backoff_s: float = BACKOFF_S,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size!r}")
        self.url = url
        self.where = mask_webhook(url)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": f"mystic-trading/{__version__}"},
            follow_redirects=False,
        )
        self._sleep = sleep
        self._queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failing = False
        self._pending = 0
        self.delivered = 0
        self.failed = 0  # given up after every try
        self.dropped = 0  # the queue was full
        self.attempts = 0
        self.last_error: str | None = None

    def stats(self) -> dict[str, Any]:
        """Plain data: where (masked), delivered, failed, dropped, queued, the last error."""
        return {
            "url": self.where,
            "delivered": self.delivered,
            "failed": self.failed,
            "dropped": self.dropped,
            "pending": self._pending,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }

    @property
    def pending(self) -> int:
        """Events taken and not yet delivered or given up (the one being sent included)."""
        return self._pending

    def send(self, event: Mapping[str, Any]) -> bool:
        """Queue ``event`` for the webhook and return at once; False (counted) when closed
        or the queue is full."""
        if self._closed:
            return False
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "alerts: the webhook at %s is behind (%d queued); %d event(s) dropped",
                    self.where,
                    self._queue.qsize(),
                    self.dropped,
                )
            return False
        self._pending += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._deliver_all(), name="alert-webhook"
            )
        return True

    async def wait_idle(self) -> None:
        """Until every queued event is delivered or given up (tests, and closing)."""
        await self._queue.join()

    async def _deliver_all(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._deliver(event)
            except Exception:  # a bug, not the webhook's failure: logged, the next goes on
                log.exception("alerts: sending an event to the webhook failed unexpectedly")
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _deliver(self, event: Mapping[str, Any]) -> None:
        for attempt in range(self.retries + 1):
            if attempt:
                await self._sleep(min(BACKOFF_MAX_S, self.backoff_s * 2 ** (attempt - 1)))
            self.attempts += 1
            error, retry = await self._post(event)
            if error is None:
                self.delivered += 1
                if self._failing:
                    log.warning("alerts: the webhook at %s takes events again", self.where)
                self._failing = False
                return
            self.last_error = error
            if not retry:
                break
        self.failed += 1
        if not self._failing:
            log.warning(
                "alerts: the webhook at %s failed (%s); event %s of %s dropped after %d tries",
                self.where,
                self.last_error,
                event.get("event"),
                event.get("rule"),
                self.attempts,
            )
        self._failing = True

    async def _post(self, event: Mapping[str, Any]) -> tuple[str | None, bool]:
        """(None, _) when delivered, else (what went wrong, whether to try again)."""
        try:
            answer = await self._client.post(self.url, json=dict(event))
        except httpx.TimeoutException as exc:
            return f"no answer within {self.timeout_s:g} s ({type(exc).__name__})", True
        except httpx.HTTPError as exc:
            # httpx's messages may quote the URL: show only its masked form.
            text = str(exc).replace(self.url, self.where)
            return f"{type(exc).__name__}: {text}"[:200], True
        if answer.is_success:
            return None, False
        retry = answer.status_code == 429 or answer.status_code >= 500
        return f"HTTP {answer.status_code}", retry

    async def aclose(self, *, drain_s: float | None = None) -> None:
        """Stop taking events; give the queued ones ``drain_s`` (default ``timeout_s``) to
        go out, then stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._queue.join(), self.timeout_s if drain_s is None else drain_s
                )
        task, self._task = self._task, None
        await stop(task)
        if self._own_client:
            await self._client.aclose()
