"""Running the app: uvicorn with uvloop and httptools, one process or several workers.

The listening socket is bound here first, so a port in use is one :class:`ConfigError`
(``api.port``) before anything starts, as ``mystic sandbox`` does it. Several workers
(``workers > 1``) share one quota and one cache only through Redis, so they need
``redis_url``; each worker builds its app from the environment (``app_from_environment``,
an import-string factory: uvicorn's workers are separate processes), and ``MYSTIC_CONFIG``
carries the config file to them. SIGINT and SIGTERM end serving gracefully: requests in
flight finish (up to ``GRACEFUL_S``), then the lifespan closes MarketData, which writes the
candles already answered.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from mystic_trading.config import Settings, load_settings
from mystic_trading.errors import ConfigError

__all__ = ["GRACEFUL_S", "app_from_environment", "bind", "check_bind", "is_loopback", "serve"]

GRACEFUL_S = 10
FACTORY = "mystic_trading.api._serve:app_from_environment"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str, workers: int = 1) -> None:
    """Refuse what cannot be served safely: a non-loopback address without
    ``api.admin_token``, several workers without Redis. ConfigError naming the setting."""
    if workers < 1:
        raise ConfigError(f"--workers must be 1 or more, got {workers}", setting="workers")
    if not is_loopback(host) and settings.api.admin_token is None:
        raise ConfigError(
            f"refusing to bind {host}, which is not a loopback address, without an admin "
            "token: set api.admin_token (MYSTIC_API__ADMIN_TOKEN) first, or bind 127.0.0.1",
            setting="api.admin_token",
            value=host,
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
    """The app over the settings of the environment (``MYSTIC_*``, ``MYSTIC_CONFIG``): the
    factory each worker process calls."""
    from mystic_trading.api._app import create_app

    return create_app(load_settings())


def _config(app: Starlette | str, workers: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
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


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    config_file: Path | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM. ``host`` and ``port`` default to ``settings.api``;
    ``sock``, when given, is an already bound listener (``bind``)."""
    from mystic_trading.api._app import create_app

    host = settings.api.host if host is None else host
    port = settings.api.port if port is None else port
    check_bind(settings, host, workers)
    if sock is None:
        sock = bind(host, port)
    if workers == 1:
        server = uvicorn.Server(_config(create_app(settings), 1))
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(server.serve(sockets=[sock]))
        return
    from uvicorn.supervisors import Multiprocess

    if config_file is not None:
        os.environ["MYSTIC_CONFIG"] = str(config_file)
    config = _config(FACTORY, workers)
    Multiprocess(config, sockets=[sock]).run()
