"""The controller commands with ``--url``: acting through a real service (``create_app`` on a
real uvicorn on 127.0.0.1, in front of the sandbox exchange, over a SQLite store) as real
``mystic`` subprocesses, against the same commands run locally on that store; and the parts
that need no service (URL checks, the plain-http warning, the token kept out of output)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mystic_trading.api import create_app
from mystic_trading.cli._remote import (
    Remote,
    ServiceUnreachable,
    check_service_url,
    cleartext_warning,
)
from mystic_trading.config import Settings
from mystic_trading.sandbox import SandboxConfig, SandboxServer
from mystic_trading.throttle import parse_level

from .conftest import on_uvicorn

TOKEN = "s3cret-admin-token-for-the-test"
# The CLI run with --url gets a store it cannot open: a remote command must not touch one.
NO_STORE = "postgresql+asyncpg://nobody@127.0.0.1:9/nothing"
# Fields stamped with the time of the call: two calls a moment apart differ only there.
STAMPS = ("now", "at")


@pytest.fixture
def exchange() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(port=0)).start()
    yield server
    server.stop()


@pytest.fixture
def local_env(exchange: SandboxServer, tmp_path: Path) -> dict[str, str]:
    """The settings of the service, as a local `mystic` reads them: the same store."""
    return {
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}",
        "MYSTIC_PROVIDER__BASE_URL": exchange.url,
        "MYSTIC_MONITOR__ENABLED": "false",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }


def service_settings(env: dict[str, str], token: str | None) -> Settings:
    return Settings(
        store={"url": env["MYSTIC_STORE__URL"]},
        provider={"base_url": env["MYSTIC_PROVIDER__BASE_URL"]},
        monitor={"enabled": False},
        api={"admin_token": token},
    )


@dataclass
class Service:
    url: str
    local_env: dict[str, str]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20.0)

    async def get(self, path: str) -> dict[str, Any]:
        async with self.client() as client:
            answer = await client.get(path)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data


@contextlib.asynccontextmanager
async def serving(settings: Settings, env: dict[str, str]) -> AsyncIterator[Service]:
    """``create_app(settings)`` on uvicorn on a free loopback port, as tests/api does."""
    async with on_uvicorn(create_app(settings)) as port:
        yield Service(f"http://127.0.0.1:{port}", env)


@pytest.fixture
async def service(local_env: dict[str, str]) -> AsyncIterator[Service]:
    async with serving(service_settings(local_env, TOKEN), local_env) as running:
        yield running


class Cli:
    """`mystic` as a subprocess, run off the loop (the service answers on it meanwhile);
    every run is checked never to show the token."""

    def __init__(self, mystic_cli: Any) -> None:
        self.mystic_cli = mystic_cli

    async def __call__(
        self, env: dict[str, str], *args: str, secret: str = TOKEN
    ) -> subprocess.CompletedProcess[str]:
        done: subprocess.CompletedProcess[str] = await asyncio.to_thread(
            self.mystic_cli, env, *args, timeout_s=120
        )
        assert secret not in done.stdout + done.stderr
        return done

    async def remote(
        self, service: Service, *args: str, token: str | None = TOKEN, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``mystic ARGS --url`` with the token from MYSTIC_API_TOKEN, no usable store."""
        extra = {"MYSTIC_STORE__URL": NO_STORE, "MYSTIC_URL": service.url, **env}
        if token is not None:
            extra["MYSTIC_API_TOKEN"] = token
        return await self(extra, *args, secret=token or TOKEN)

    async def local(self, service: Service, *args: str) -> subprocess.CompletedProcess[str]:
        return await self(service.local_env, *args)


@pytest.fixture
def cli(mystic_cli: Any) -> Cli:
    return Cli(mystic_cli)


def without(data: dict[str, Any], keys: tuple[str, ...] = STAMPS) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def parsed(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- through a real service ---------------------------------------------------------------


async def test_status_json_is_the_services_status_and_the_local_one(
    service: Service, cli: Cli
) -> None:
    """`status --json --url` prints what GET /api/v1/status returns, which is what the same
    command prints on the service's store (apart from the time each was taken)."""
    remote = parsed(await cli.remote(service, "status", "--json"))
    served = await service.get("/api/v1/status")
    local = parsed(await cli.local(service, "status", "--json"))
    assert remote["venue"].startswith("sandbox-")
    assert without(remote) == without(served) == without(local)


async def test_decrease_through_the_service_changes_the_level(service: Service, cli: Cli) -> None:
    """`decrease --url --token` moves the level one step down, as the service's status then
    shows (audited with the reason given), and prints what the local command prints for the
    same step."""
    before = (await service.get("/api/v1/status"))["level"]["name"]
    lower = parse_level(before).down()
    assert lower is not None
    done = await cli.remote(service, "decrease", "--reason", "remote step")
    assert done.returncode == 0, done.stderr
    status = await service.get("/api/v1/status")
    assert status["level"]["name"] == lower.value
    entry = status["audit"][0]
    assert (entry["field"], entry["to"], entry["actor"]) == ("level", lower.value, "api")
    assert "remote step" in entry["reason"]
    # The same step locally (after stepping back up) prints the same line.
    assert (await cli.local(service, "increase")).returncode == 0
    local = await cli.local(service, "decrease")
    assert local.returncode == 0, local.stderr
    assert done.stdout == local.stdout
    assert f"level {before} -> {lower.value}" in done.stdout


async def test_decrease_json_through_the_service(service: Service, cli: Cli) -> None:
    """`decrease --json --url` prints the controller's answer the service returned."""
    before = (await service.get("/api/v1/status"))["level"]["name"]
    data = parsed(await cli.remote(service, "decrease", "--json"))
    assert (data["from"], data["changed"]) == (before, True)
    assert (await service.get("/api/v1/status"))["level"]["name"] == data["to"]


async def test_at_the_bottom_decrease_exits_1_as_the_local_command(
    service: Service, cli: Cli
) -> None:
    """At the lowest level the service answers 409 at_limit: exit 1 with the same refusal
    the local command prints, and nothing changed."""
    level = parse_level((await service.get("/api/v1/status"))["level"]["name"])
    while level.down() is not None:
        assert (await cli.remote(service, "decrease")).returncode == 0
        level = parse_level((await service.get("/api/v1/status"))["level"]["name"])
    audit = (await service.get("/api/v1/status"))["audit"]
    remote = await cli.remote(service, "decrease")
    local = await cli.local(service, "decrease")
    assert (remote.returncode, local.returncode) == (1, 1)
    assert "refused" in remote.stderr and "lowest level" in remote.stderr
    assert remote.stderr == local.stderr
    assert (await service.get("/api/v1/status"))["audit"] == audit


async def test_a_wrong_or_missing_token_is_refused_and_changes_nothing(
    service: Service, cli: Cli
) -> None:
    """401 from the service: exit 1 with one line saying the token is wrong (or missing),
    the token given never shown, the level and the audit untouched."""
    before = await service.get("/api/v1/status")
    wrong = "not-the-token-" + TOKEN[::-1]
    done = await cli.remote(service, "increase", token=wrong)
    assert done.returncode == 1
    assert "not the service's api.admin_token" in done.stderr
    assert service.url in done.stderr
    missing = await cli.remote(service, "decrease", token=None)
    assert missing.returncode == 1
    assert "no token was given" in missing.stderr
    after = await service.get("/api/v1/status")
    assert (after["level"], after["audit"]) == (before["level"], before["audit"])


async def test_a_service_without_admin_token_says_so(local_env: dict[str, str], cli: Cli) -> None:
    """403 admin_disabled: exit 1 naming the setting the service lacks."""
    async with serving(service_settings(local_env, None), local_env) as service:
        done = await cli.remote(service, "optimize", "--yes")
    assert done.returncode == 1
    assert "api.admin_token is not set on the service" in done.stderr


async def test_invalid_input_exits_2_naming_the_field(service: Service, cli: Cli) -> None:
    """A reason longer than the service takes: 422, exit 2 naming the field; nothing changed."""
    before = await service.get("/api/v1/status")
    done = await cli.remote(service, "decrease", "--reason", "x" * 1000)
    assert done.returncode == 2
    assert "reason" in done.stderr
    assert (await service.get("/api/v1/status"))["audit"] == before["audit"]


async def test_recommendations_optimize_and_clear_through_the_service(
    service: Service, cli: Cli
) -> None:
    """recommendations, optimize --dry-run and clear print what the local commands print on
    the same store; the clear is audited by the service."""
    remote = parsed(await cli.remote(service, "recommendations", "--json"))
    local = parsed(await cli.local(service, "recommendations", "--json"))
    assert without(remote) == without(local)
    assert without(remote) == without(await service.get("/api/v1/recommendations"))

    remote = parsed(await cli.remote(service, "optimize", "--dry-run", "--json"))
    local = parsed(await cli.local(service, "optimize", "--dry-run", "--json"))
    assert remote == local

    cleared = parsed(await cli.remote(service, "clear", "BTC/USDT", "--memory", "--json"))
    assert (cleared["symbol"], cleared["layers"]) == ("BTCUSDT", ["memory"])
    entry = (await service.get("/api/v1/status"))["audit"][0]
    assert entry["actor"] == "api"
    assert "BTCUSDT" in json.dumps(entry)


async def test_monitor_once_through_the_service(service: Service, cli: Cli) -> None:
    """`monitor --once --json --url` draws its frame from the service's status: the frame
    the local command draws from the same store."""
    remote = parsed(await cli.remote(service, "monitor", "--once", "--json"))
    local = parsed(await cli.local(service, "monitor", "--once", "--json"))
    assert without(remote) == without(local)


async def test_optimize_watch_is_refused_with_url(service: Service, cli: Cli) -> None:
    """--watch reads heartbeats from the store, which --url does not open: exit 2 naming it."""
    done = await cli.remote(service, "optimize", "--yes", "--watch")
    assert done.returncode == 2
    assert "--watch" in done.stderr


# -- no service -----------------------------------------------------------------------------


async def test_nothing_listening_is_one_line_naming_the_url(cli: Cli) -> None:
    """Connection refused: exit 1, one line naming the URL; no store was opened."""
    url = f"http://127.0.0.1:{free_port()}"
    env = {"MYSTIC_STORE__URL": NO_STORE, "MYSTIC_API_TOKEN": TOKEN}
    for args in (("status",), ("decrease", "--json"), ("monitor", "--once")):
        done = await cli(env, *args, "--url", url)
        assert done.returncode == 1, args
        assert url in done.stderr and "connection refused" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stdout == ""


async def test_remote_errors_carry_their_facts() -> None:
    """The Remote's own error names the URL and exits 1; it has no token in its repr."""
    url = f"http://127.0.0.1:{free_port()}"
    remote = Remote(url, TOKEN)
    assert TOKEN not in repr(remote)
    async with remote:
        with pytest.raises(ServiceUnreachable) as caught:
            await remote.status()
    assert (caught.value.url, caught.value.status, caught.value.exit_code) == (url, None, 1)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("localhost:8080", "not a service URL"),
        ("ftp://127.0.0.1:8080", "not a service URL"),
        ("http://", "not a service URL"),
        ("http://127.0.0.1:port", "not a URL"),
        ("http://admin:pw@127.0.0.1:8080", "must not hold credentials"),
        ("http://127.0.0.1:8080/?x=1", "no query"),
    ],
)
def test_a_bad_service_url_is_refused(url: str, why: str) -> None:
    """A URL that is not http(s)://host[:port][/prefix] is refused saying why."""
    with pytest.raises(ValueError, match=why):
        check_service_url(url)


async def test_a_bad_url_exits_2_before_anything_is_sent(cli: Cli) -> None:
    """On the command line a bad --url is exit 2 naming the option."""
    done = await cli({"MYSTIC_STORE__URL": NO_STORE}, "status", "--url", "ftp://127.0.0.1:1")
    assert done.returncode == 2
    assert "--url" in done.stderr and "not a service URL" in done.stderr


def test_a_service_url_keeps_its_path_prefix() -> None:
    """A service behind a reverse proxy at a path keeps it; the trailing slash goes."""
    assert check_service_url("https://ops.example/mystic/") == "https://ops.example/mystic"


@pytest.mark.parametrize(
    ("url", "token", "warned"),
    [
        ("http://10.1.2.3:8080", TOKEN, True),
        ("http://mystic.internal:8080", TOKEN, True),
        ("http://[::ffff:10.1.2.3]:8080", TOKEN, True),
        ("https://10.1.2.3:8080", TOKEN, False),
        ("http://127.0.0.1:8080", TOKEN, False),
        ("http://127.9.9.9:8080", TOKEN, False),
        ("http://localhost:8080", TOKEN, False),
        ("http://api.localhost:8080", TOKEN, False),
        ("http://[::1]:8080", TOKEN, False),
        ("http://[::ffff:127.0.0.1]:8080", TOKEN, False),
        ("http://10.1.2.3:8080", None, False),
    ],
)
def test_the_plain_http_warning(url: str, token: str | None, warned: bool) -> None:
    """A token over plain http to a host that is not loopback is warned about (naming the
    host, never the token); https, loopback or no token is not."""
    warning = cleartext_warning(url, token)
    assert (warning is not None) is warned
    if warning is not None:
        assert "plain http" in warning and TOKEN not in warning


async def test_the_help_never_shows_the_token(cli: Cli) -> None:
    """With MYSTIC_API_TOKEN set, --help names the variable but never shows its value."""
    done = await cli({"MYSTIC_API_TOKEN": TOKEN}, "decrease", "--help")
    assert done.returncode == 0
    assert "MYSTIC_API_TOKEN" in done.stdout


# -- the warning, end to end: the token through a proxy to a name that is not loopback ----


@contextlib.asynccontextmanager
async def forward_proxy(target: str, seen: list[bytes]) -> AsyncIterator[str]:
    """An HTTP forward proxy on 127.0.0.1 that sends every request to ``target`` (the
    service) whatever host it names, keeping each request's bytes in ``seen``: the CLI
    talks to a non-loopback name and nothing leaves this machine."""
    host, port = target.removeprefix("http://").split(":")

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (
                int(v)
                for k, _, v in (x.partition(": ") for x in lines)
                if k.lower() == "content-length"
            ),
            0,
        )
        body = await reader.readexactly(length)
        seen.append(head + body)
        method, absolute, version = lines[0].split(" ")
        path = "/" + absolute.split("://", 1)[1].partition("/")[2]
        kept = [x for x in lines[1:] if x and not x.lower().startswith(("connection", "proxy-"))]
        out = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        up_writer.write(out.encode("latin-1") + body)
        await up_writer.drain()
        writer.write(await up_reader.read())
        await writer.drain()
        up_writer.close()
        writer.close()

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_the_token_over_plain_http_is_warned_and_sent_in_the_header_only(
    service: Service, cli: Cli
) -> None:
    """To a host that is not loopback over http the CLI warns once (naming the host, not
    the token) and sends the token in the Authorization header of the admin call only."""
    seen: list[bytes] = []
    async with forward_proxy(service.url, seen) as proxy:
        proxied = {"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
        env = {"MYSTIC_STORE__URL": NO_STORE, "MYSTIC_API_TOKEN": TOKEN, **proxied}
        done = await cli(env, "decrease", "--url", "http://mystic-ops.test:8080")
        status = await cli(env, "status", "--json", "--url", "http://mystic-ops.test:8080")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning") == 1
    assert "plain http to mystic-ops.test" in done.stderr
    assert status.returncode == 0 and "warning" not in status.stderr
    post, get = (request.decode("latin-1") for request in seen)
    assert post.startswith("POST http://mystic-ops.test:8080/api/v1/admin/decrease ")
    headers = dict(line.split(": ", 1) for line in post.split("\r\n\r\n")[0].splitlines()[1:])
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == f"Bearer {TOKEN}"
    assert post.count(TOKEN) == 1  # the header only: not in the URL, nor the body
    assert get.startswith("GET http://mystic-ops.test:8080/api/v1/status")
    assert TOKEN not in get
