"""Running the app: uvicorn with uvloop and httptools, one process or several workers.

The listening socket is bound here first, so a port in use is one :class:`ConfigError`
(``api.port``) before anything starts, as ``mystic sandbox`` does it. SIGINT and SIGTERM end
serving gracefully: requests in flight finish (up to ``GRACEFUL_S``), then the lifespan
closes MarketData, which writes the candles already answered. The dashboard's event streams
never finish by themselves, so the app is told the moment serving begins to stop
(``_stopping``) and ends them, rather than holding the shutdown for ``GRACEFUL_S`` and
being cancelled with an error.

Several workers (``workers > 1``) are uvicorn's ``Multiprocess`` supervisor over the one
socket: each worker is a spawned process that builds its own app. They share one quota and
one cache only through Redis, so they need ``redis_url``. Each worker gets the very
``Settings`` this process was given (``WorkerApp``, pickled to it by multiprocessing), not a
second reading of the environment, so settings built in code reach the workers too. The
supervisor passes SIGINT and SIGTERM on as SIGTERM to each worker and waits for them all:
every worker flushes its candle writes before ``serve`` returns.

With several workers, Prometheus metrics are kept in prometheus-client's multiprocess mode:
``serve`` makes a private directory for the run, hands it to the workers in
``PROMETHEUS_MULTIPROC_DIR`` (read by prometheus-client when a worker imports it), marks a
worker that died as dead there (its live gauges stop counting) and removes the directory at
exit (see ``_metrics.py``).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from mystic_trading.config import Settings, load_settings
from mystic_trading.errors import ConfigError, MysticError

__all__ = [
    "GRACEFUL_S",
    "MULTIPROC_ENV",
    "WorkerApp",
    "app_from_environment",
    "bind",
    "check_bind",
    "is_loopback",
    "serve",
]

GRACEFUL_S = 10
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# uvicorn's exit code for a worker whose app never started (uvicorn.config.STARTUP_FAILURE).
_STARTUP_FAILURE = 3

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# An admin token guarding a service others can reach: 16 characters of a random token are
# about 95 bits (token_urlsafe), beyond any guessing over HTTP.
MIN_PUBLIC_TOKEN_CHARS = 16


def check_bind(settings: Settings, host: str, workers: int = 1) -> None:
    """Refuse what cannot be served safely: a non-loopback address without
    ``api.admin_token`` or with a short one, several workers without Redis. ConfigError
    naming the setting."""
    if workers < 1:
        raise ConfigError(f"--workers must be 1 or more, got {workers}", setting="workers")
    if not is_loopback(host) and settings.api.admin_token is None:
        raise ConfigError(
            f"refusing to bind {host}, which is not a loopback address, without an admin "
            "token: set api.admin_token (MYSTIC_API__ADMIN_TOKEN) first, or bind 127.0.0.1",
            setting="api.admin_token",
            value=host,
        )
    token = settings.api.admin_token
    short = token is not None and len(token.get_secret_value()) < MIN_PUBLIC_TOKEN_CHARS
    if not is_loopback(host) and short:
        raise ConfigError(
            f"refusing to bind {host}, which is not a loopback address, with an admin "
            f"token of fewer than {MIN_PUBLIC_TOKEN_CHARS} characters: anyone who can "
            "reach it could guess it; set a longer api.admin_token, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
            setting="api.admin_token",
            value="***",
        )
    if workers > 1 and settings.redis_url is None:
        raise ConfigError(
            f"--workers {workers} needs redis_url (MYSTIC_REDIS_URL): workers share one "
            "quota and one cache only through Redis; without it each would spend the "
            "exchange's budget on its own. Run one worker, or configure Redis.",
            setting="redis_url",
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ConfigError (``api.port``) when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use; choose another with --port "
                "(or api.port)",
                setting="api.port",
                value=port,
            ) from exc
        raise ConfigError(
            f"cannot bind {host}:{port}: {exc.strerror or exc}", setting="api.host", value=host
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def app_from_environment() -> Starlette:
    """The app over the settings of the environment (``MYSTIC_*``, ``MYSTIC_CONFIG``): a
    factory for running the service under uvicorn's own command line or another server."""
    from mystic_trading.api._app import create_app

    return create_app(load_settings())


class WorkerApp:
    """The app factory each worker process calls (uvicorn ``factory=True``): picklable, so
    the supervisor's settings travel to the spawned worker as they are."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self) -> Starlette:
        from mystic_trading.api._app import create_app

        _worker_logging(self.settings.log_level)
        app = create_app(self.settings)
        _stop_with_signals(app)
        return app


def _stopping(app: Starlette) -> None:
    """Serving begins to stop: end what would never finish by itself (the dashboard's
    streams), so the connections close and the lifespan's shutdown comes at once."""
    state = getattr(app.state, "mystic", None)
    sampler = None if state is None else state.dashboard
    if sampler is not None:
        sampler.close_streams()


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when it begins to stop (a signal, or
    ``should_exit`` set by whoever runs it) before it waits for the connections."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        _stopping(self.app)
        await super().shutdown(sockets)


def _stop_with_signals(app: Starlette) -> None:
    """In a worker, uvicorn's supervisor runs its own server, not ``_Server``: chain the
    stop signals' handlers, which are that server's (the factory is called inside its signal
    capture, on its loop), so the app hears of the stop as that server does."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # called outside a server: nothing to chain to
    for sig in _STOP_SIGNALS:
        prior = signal.getsignal(sig)
        if not callable(prior):
            continue

        def chained(signum: int, frame: FrameType | None, prior: _Handler = prior) -> None:
            prior(signum, frame)
            with suppress(RuntimeError):  # the loop has closed: nothing to end
                loop.call_soon_threadsafe(_stopping, app)

        signal.signal(sig, chained)


def _worker_logging(level: str) -> None:
    """A spawned worker starts with no logging set up: the CLI's rule (Mystic's loggers at
    ``log_level``, other libraries at WARNING), each line naming the worker's pid."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(levelname)s [worker %(process)d] %(name)s: %(message)s")
        )
        root.addHandler(handler)
    number = logging.getLevelName(level)
    logging.getLogger("mystic_trading").setLevel(number)
    root.setLevel(max(number, logging.WARNING))


def _config(app: Starlette | WorkerApp, workers: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, WorkerApp),
        workers=workers,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_S,
        server_header=False,
    )


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, telling prometheus-client when a worker died: a replaced
    worker's live gauges (requests in flight, memory held) must stop counting."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics_dir: str):
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        from prometheus_client import multiprocess

        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    sock: socket.socket | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM. ``host`` and ``port`` default to ``settings.api``;
    ``sock``, when given, is an already bound listener (``bind``). The workers get
    ``settings`` themselves, not the files and variables they were read from.

    Raises :class:`MysticError` when the app (or, with several workers, any worker) could
    not start: the reason is logged by uvicorn just before.
    """
    from mystic_trading.api._app import create_app

    host = settings.api.host if host is None else host
    port = settings.api.port if port is None else port
    check_bind(settings, host, workers)
    if sock is None:
        sock = bind(host, port)
    if workers == 1:
        app = create_app(settings)
        server = _Server(_config(app, 1), app)
        import uvloop

        with _signals_kept(), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(server.serve(sockets=[sock]))
        if not server.started and not server.should_exit:
            raise MysticError("the service did not start; its error is logged above")
        return
    with _signals_kept():
        _serve_workers(settings, workers, sock)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_Handler = Callable[[int, FrameType | None], Any]


@contextmanager
def _signals_kept() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as "stop serving" for the run, and put the handlers back
    after it. uvicorn raises the signal that stopped it again once it has shut down, for
    the handler in place before; without this one a SIGTERM would then kill the process
    (exit -15) after a clean shutdown, and the supervisor's handlers would outlive it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (*_STOP_SIGNALS, *_SUPERVISOR_SIGNALS)}
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _already_stopped)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _already_stopped(sig: int, frame: object) -> None:
    """The signal uvicorn raises again after its graceful shutdown: serving has stopped."""


# The signals uvicorn's supervisor takes over (reload, more or fewer workers, stop).
_SUPERVISOR_SIGNALS = tuple(
    getattr(signal, f"SIG{name}")
    for name in ("HUP", "QUIT", "TTIN", "TTOU", "USR1", "USR2", "WINCH")
    if hasattr(signal, f"SIG{name}")
)


def _serve_workers(settings: Settings, workers: int, sock: socket.socket) -> None:
    metrics_dir = tempfile.mkdtemp(prefix="mystic-metrics-")
    before = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by each worker spawned below
    try:
        supervisor = _Supervisor(_config(WorkerApp(settings), workers), [sock], metrics_dir)
        supervisor.run()
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before
        shutil.rmtree(metrics_dir, ignore_errors=True)
    failed = [p.pid for p in supervisor.processes if p.exitcode == _STARTUP_FAILURE]
    if failed:
        raise MysticError(
            f"worker process {failed[0]} could not start its app (its error is logged "
            "above); the service stopped"
        )
