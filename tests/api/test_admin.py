"""POST /api/v1/admin/...: refused without the token (nothing changed, nothing audited),
the controller's operations with it, audited as the actor "api"."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from mystic_trading.api import check_bind, create_app
from mystic_trading.api._serve import bind
from mystic_trading.errors import ConfigError
from mystic_trading.sandbox import SandboxServer

from .conftest import Moved, Served, make_settings

ADMIN = "/api/v1/admin"
TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def serving_settings(
    exchange: SandboxServer, tmp_path: Path, **sections: Any
) -> AsyncIterator[Served]:
    """The service on real uvicorn as ``conftest.serving`` runs it, with settings sections
    of the test's own (``api={"admin_token": ...}``, ``monitor={"enabled": True}``)."""
    clock = Moved()
    app = create_app(make_settings(exchange, tmp_path, **sections), clock=clock)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(
            app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=2
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise AssertionError("the service did not start")
        await asyncio.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", app, clock, exchange)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def admin(exchange: SandboxServer, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving_settings(exchange, tmp_path, api={"admin_token": TOKEN}) as running:
        yield running


async def audit_of(served: Served) -> list[Any]:
    md = served.state.md
    return await md.store.control.audit(md.provider.venue, limit=100)


OPERATIONS = [
    ("increase", {}),
    ("decrease", {}),
    ("level", {"level": "aggressive"}),
    ("optimize", {}),
    ("clear", {}),
    ("ban/clear", {}),
]


@pytest.mark.parametrize(("operation", "body"), OPERATIONS)
async def test_no_token_configured_is_403(served: Served, operation: str, body: Any) -> None:
    """Without api.admin_token every admin route is disabled (403), even with a token sent,
    and nothing is written to the audit log."""
    before = await audit_of(served)
    async with served.client() as c:
        answer = await c.post(f"{ADMIN}/{operation}", json=body, headers=AUTH)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "admin_disabled"
    assert await audit_of(served) == before


@pytest.mark.parametrize(("operation", "body"), OPERATIONS)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_missing_or_wrong_token_is_401_and_changes_nothing(
    admin: Served, operation: str, body: Any, headers: dict[str, str]
) -> None:
    """A missing or wrong token: 401 with WWW-Authenticate, the level and the audit log as
    they were, and the token never echoed."""
    md = admin.state.md
    level_before = await md.store.control.load_level(md.provider.venue)
    before = await audit_of(admin)
    async with admin.client() as c:
        answer = await c.post(f"{ADMIN}/{operation}", json=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"
    assert TOKEN not in answer.text
    assert await audit_of(admin) == before
    assert await md.store.control.load_level(md.provider.venue) == level_before


async def test_set_level_with_the_token_is_audited_as_api(admin: Served) -> None:
    """With the token the level changes, /status shows it, and the audit names the actor
    "api" and the client's address."""
    async with admin.client() as c:
        answer = await c.post(
            f"{ADMIN}/level", json={"level": "conservative", "reason": "quiet"}, headers=AUTH
        )
        status = (await c.get("/api/v1/status")).json()
        audit = (await c.get("/api/v1/audit", params={"limit": "1"})).json()["audit"]
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["to"], done["changed"]) == ("conservative", True)
    assert status["level"]["name"] == "conservative"
    assert status["level"]["set_by"] == "api"
    assert audit[0]["actor"] == "api"
    assert audit[0]["to"] == "conservative"
    assert "quiet" in audit[0]["reason"]
    assert "127.0.0.1" in audit[0]["reason"]


async def test_increase_past_unlimited_and_decrease_past_the_bottom_are_409(
    admin: Served,
) -> None:
    """At the top level increase changes nothing: 409 at_limit, nothing audited; the same
    for decrease at the bottom."""
    async with admin.client() as c:
        up = await c.post(f"{ADMIN}/level", json={"level": "unlimited"}, headers=AUTH)
        assert up.status_code == 200, up.text
        before = await audit_of(admin)
        refused = await c.post(f"{ADMIN}/increase", headers=AUTH)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "at_limit"
        assert await audit_of(admin) == before
        down = await c.post(f"{ADMIN}/decrease", json={"reason": "step"}, headers=AUTH)
        assert down.status_code == 200, down.text
        assert (down.json()["from"], down.json()["to"]) == ("unlimited", "aggressive")
        await c.post(f"{ADMIN}/level", json={"level": "conservative"}, headers=AUTH)
        bottom = await c.post(f"{ADMIN}/decrease", headers=AUTH)
    assert bottom.status_code == 409
    assert bottom.json()["error"]["code"] == "at_limit"


BAD_BODIES = [
    ("level", b'{"level": "aggressive"', "body"),
    ("level", b"[1, 2]", "body"),
    ("level", b"{}", "level"),
    ("level", b'{"level": "warp-speed"}', "level"),
    ("level", b'{"level": "aggressive", "bogus": 1}', "bogus"),
    ("optimize", b'{"dry_run": "yes"}', "dry_run"),
    ("increase", b'{"reason": 5}', "reason"),
    ("increase", b'{"venue": "not a venue!"}', "venue"),
    ("clear", b'{"memory": 1}', "memory"),
    ("clear", b'{"symbol": "BTC$USDT"}', "symbol"),
]


@pytest.mark.parametrize(("operation", "body", "field"), BAD_BODIES)
async def test_bad_bodies_are_422_naming_the_field(
    admin: Served, operation: str, body: bytes, field: str
) -> None:
    """Malformed JSON, a non-object, a missing or unknown field, a wrong type or value:
    422 naming the field, and nothing audited."""
    before = await audit_of(admin)
    async with admin.client() as c:
        answer = await c.post(
            f"{ADMIN}/{operation}",
            content=body,
            headers={**AUTH, "content-type": "application/json"},
        )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert "\n" not in error["message"]
    if body == b'{"level": "warp-speed"}':
        assert "accepted: conservative, moderate, aggressive, unlimited" in error["message"]
    assert await audit_of(admin) == before


async def test_clear_optimize_and_ban_clear(admin: Served) -> None:
    """clear is audited as api; optimize dry run changes nothing; a recorded ban is lifted
    (audited as api) and a second clear finds none."""
    md = admin.state.md
    venue = md.provider.venue
    async with admin.client() as c:
        cleared = await c.post(f"{ADMIN}/clear", json={"memory": True}, headers=AUTH)
        dry = await c.post(f"{ADMIN}/optimize", json={"dry_run": True}, headers=AUTH)
        await md.store.control.save_ban(venue, md.throttler.wall_ms() + 600_000, "test ban")
        lifted = await c.post(f"{ADMIN}/ban/clear", json={"reason": "stale"}, headers=AUTH)
        again = await c.post(f"{ADMIN}/ban/clear", headers=AUTH)
    assert cleared.status_code == 200, cleared.text
    assert dry.status_code == 200, dry.text
    assert dry.json()["applied"] is None
    assert lifted.status_code == 200, lifted.text
    assert (lifted.json()["venue"], lifted.json()["cleared"]) == (venue, True)
    assert again.json()["cleared"] is False
    assert await md.store.control.ban(venue) is None
    entries = await audit_of(admin)
    assert [(e.field, e.actor) for e in entries[:2]] == [("ban", "api"), ("ban", "system")]
    assert any(e.actor == "api" and e.field != "ban" for e in entries)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_non_loopback_bind_without_a_token_is_refused(
    exchange: SandboxServer, tmp_path: Path, host: str
) -> None:
    """serve refuses a non-loopback address without api.admin_token, naming the setting;
    with the token it is allowed."""
    with pytest.raises(ConfigError) as caught:
        check_bind(make_settings(exchange, tmp_path), host)
    assert caught.value.setting == "api.admin_token"
    check_bind(make_settings(exchange, tmp_path, api={"admin_token": TOKEN}), host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10"])
def test_a_short_token_is_refused_for_a_public_bind(
    exchange: SandboxServer, tmp_path: Path, host: str
) -> None:
    """A guessable token does not open a public address (its value is not echoed); on
    loopback it is the operator's choice."""
    short = make_settings(exchange, tmp_path, api={"admin_token": "ab"})
    with pytest.raises(ConfigError) as caught:
        check_bind(short, host)
    assert caught.value.setting == "api.admin_token" and "ab" not in str(caught.value.value)
    assert "16 characters" in str(caught.value)
    check_bind(short, "127.0.0.1")
