"""Serving the sandbox: ``SandboxServer`` (background thread, for tests and benchmarks) and
``run`` (blocking, for the CLI and ``python -m mystic_trading.sandbox``).

Both use one runner that owns the listening socket, so a "refuse" outage can really close the
listener (connects get ECONNREFUSED, open keep-alive connections are closed) and reopen it on
the same port when the outage ends. uvicorn serves with httptools, and uvloop when installed;
its own ``Date`` header is off, since the app stamps every answer with the exchange's clock.
A port already in use is a :class:`~mystic_trading.errors.ConfigError` on ``port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from mystic_trading.errors import ConfigError
from mystic_trading.models import Interval
from mystic_trading.sandbox._app import create_app
from mystic_trading.sandbox._config import SandboxConfig
from mystic_trading.sandbox._exchange import SandboxExchange
from mystic_trading.sandbox._faults import Faults, OutageMode
from mystic_trading.sandbox._market import KlineRow, Market
from mystic_trading.sandbox._stats import SandboxStats

__all__ = ["SandboxServer", "run"]

_log = logging.getLogger("mystic_trading.sandbox")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"sandbox port {port} on {host} is already in use",
                setting="port",
                value=port,
            ) from exc
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Runner:
    """Serves ``app`` until stopped; closes and reopens the listener for refuse outages."""

    def __init__(self, app: Starlette, faults: Faults, host: str, port: int, log_level: str):
        self.app = app
        self.faults = faults
        self.host = host
        self.port = port
        self.log_level = log_level
        self.stop_event: asyncio.Event | None = None

    async def serve(self, ready: Callable[[int], None]) -> None:
        loop = asyncio.get_running_loop()
        stop = self.stop_event = asyncio.Event()
        wake = asyncio.Event()

        def notify() -> None:
            loop.call_soon_threadsafe(wake.set)

        self.faults.add_listener(notify)
        announced = False
        try:
            while not stop.is_set():
                sock = _bind(self.host, self.port)
                self.port = sock.getsockname()[1]
                server = uvicorn.Server(
                    uvicorn.Config(
                        self.app,
                        lifespan="off",
                        log_config=None,
                        log_level=self.log_level,
                        access_log=False,
                        http="httptools",
                        ws="none",
                        date_header=False,
                        timeout_graceful_shutdown=1,
                    )
                )
                task = asyncio.create_task(server.serve(sockets=[sock]))
                while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
                    await asyncio.sleep(0.005)
                if task.done():
                    await task
                    return
                if not announced:
                    announced = True
                    ready(self.port)
                why = await self._wait(task, stop, wake)
                # uvicorn polls should_exit every 0.1 s, then closes idle keep-alive connections.
                server.should_exit = True
                await task
                if why != "outage":
                    return
                _log.info("sandbox outage: listener on port %d closed", self.port)
                while (o := self.faults.outage()) is not None and o[0] == "refuse":
                    # Woken by the outage's end, a stop, or a change of faults (a reset ends
                    # the outage at once: the listener reopens then, not when it would have).
                    wake.clear()
                    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
                    await asyncio.wait(waits, timeout=o[1], return_when=asyncio.FIRST_COMPLETED)
                    for w in waits:
                        w.cancel()
                    if stop.is_set():
                        return
                _log.info("sandbox outage over: reopening port %d", self.port)
        finally:
            self.faults.remove_listener(notify)

    async def _wait(
        self, task: asyncio.Task[None], stop: asyncio.Event, wake: asyncio.Event
    ) -> str:
        """ "outage" when a refuse outage begins, "stop" when asked to stop, "ended" if uvicorn
        finished on its own (a signal)."""
        while True:
            stop_wait = asyncio.ensure_future(stop.wait())
            wake_wait = asyncio.ensure_future(wake.wait())
            await asyncio.wait({task, stop_wait, wake_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            wake_wait.cancel()
            if task.done():
                return "ended"
            if stop.is_set():
                return "stop"
            wake.clear()
            outage = self.faults.outage()
            if outage is not None and outage[0] == "refuse":
                return "outage"


class SandboxServer:
    """The sandbox on a loopback port, served from a background thread with its own loop.

    ::

        async with SandboxServer(SandboxConfig(port=0, weight_limit=100, window_s=2)) as sb:
            async with httpx.AsyncClient(base_url=sb.url) as client:
                await client.get("/api/v3/ping")
            sb.stats.total.requests
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig(port=0)
        self.exchange = SandboxExchange(self.config)
        self.app = create_app(exchange=self.exchange)
        self._runner = _Runner(
            self.app,
            self.exchange.faults,
            self.config.host,
            self.config.port,
            self.config.log_level,
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Start serving; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("sandbox server already started")
        self._thread = threading.Thread(target=self._main, name="mystic-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        loop = self._loop = _loop_factory()()
        try:
            loop.run_until_complete(self._runner.serve(lambda port: self._ready.set()))
        except BaseException as exc:  # reported to the thread that called start()
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        thread, loop, stop = self._thread, self._loop, self._runner.stop_event
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = None

    async def __aenter__(self) -> SandboxServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop serving without blocking the caller's event loop."""
        await asyncio.to_thread(self.stop)

    # -- what tests read -----------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._runner.port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43121``."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def market(self) -> Market:
        return self.exchange.market

    @property
    def stats(self) -> SandboxStats:
        return self.exchange.stats

    @property
    def admin_token(self) -> str:
        return self.exchange.admin_token

    @property
    def faults(self) -> Faults:
        return self.exchange.faults

    @property
    def venue(self) -> str:
        """The venue id its answers declare in ``X-Sandbox-Venue``."""
        return self.exchange.venue

    def clock_ms(self) -> int:
        """The exchange's clock now (UTC epoch ms), skew included."""
        return self.exchange.clock_ms()

    def final_candle(
        self, symbol: str, interval: Interval | str, open_time: int
    ) -> KlineRow | None:
        """The candle opening at ``open_time`` as it is once final: the truth to compare with."""
        return self.exchange.final_candle(symbol, interval, open_time)

    # -- run-time control ----------------------------------------------------------------

    def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every API answer by ``latency_ms`` plus up to ``jitter_ms``."""
        self.exchange.set_latency(latency_ms, jitter_ms)

    def set_error_rate(self, rate: float, statuses: tuple[int, ...] | None = None) -> None:
        """Answer a share ``rate`` of API requests with an injected 5xx."""
        self.exchange.set_error_rate(rate, statuses)

    def start_outage(self, seconds: float, mode: OutageMode = "refuse") -> None:
        """Refuse connections (or answer 503) for ``seconds``."""
        self.exchange.start_outage(seconds, mode)

    def set_budget(self, weight_limit: int | None = None, window_s: int | None = None) -> None:
        """Change the REQUEST_WEIGHT budget per window from now on."""
        self.exchange.set_budget(weight_limit, window_s)

    def set_clock_skew(self, skew_ms: int) -> None:
        """Step the exchange's clock to the base clock plus ``skew_ms``, either way."""
        self.exchange.set_clock_skew(skew_ms)

    def set_aggregation_lag(self, lag_ms: int) -> None:
        """Let candles and tickers show only trades up to ``lag_ms`` before the clock."""
        self.exchange.set_aggregation_lag(lag_ms)

    def reset(self) -> None:
        """Zero counters and limiter state; faults, clock skew and lag back to the config (the
        data already shown stays shown)."""
        self.exchange.reset()


def run(
    config: SandboxConfig | None = None,
    *,
    exchange: SandboxExchange | None = None,
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Serve the sandbox in this thread until interrupted (SIGINT/SIGTERM).

    ``exchange`` serves a :class:`SandboxExchange` the caller made (its config is used, and
    the caller can read its venue and token first); else one is made from ``config``.
    ``on_ready(url, admin_token)`` is called once the port accepts connections, so the caller
    (the CLI) can print them; this function prints nothing. A signal ends serving; uvicorn then
    re-raises it, so Ctrl-C surfaces as ``KeyboardInterrupt``. A port in use raises
    :class:`~mystic_trading.errors.ConfigError` (``setting="port"``) before anything serves.
    """
    if exchange is None:
        exchange = SandboxExchange(config if config is not None else SandboxConfig())
    config = exchange.config
    app = create_app(exchange=exchange)
    runner = _Runner(app, exchange.faults, config.host, config.port, config.log_level)
    host = f"[{config.host}]" if ":" in config.host else config.host

    def ready(port: int) -> None:
        url = f"http://{host}:{port}"
        _log.info("sandbox exchange serving on %s (venue %s)", url, exchange.venue)
        if on_ready is not None:
            on_ready(url, exchange.admin_token)

    with asyncio.Runner(loop_factory=_loop_factory()) as r:
        r.run(runner.serve(ready))
