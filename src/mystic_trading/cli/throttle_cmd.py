"""``mystic throttle``: the throttle level and the ban of the configured exchange's venue.

Both are control state kept in the store (and the ban in Redis too, when configured), with an
audit entry for every change. The commands never contact the exchange: the venue is what the
configured base URL identified as when last reached (else its URL's), or ``--venue``.
Running processes follow every change within 2 s (``marketdata/control_watch.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mystic_trading.config import Settings
from mystic_trading.models import utc_text
from mystic_trading.providers.venue import venue_from_url
from mystic_trading.store import Store, open_store
from mystic_trading.throttle import parse_level

if TYPE_CHECKING:
    from mystic_trading.throttle import RedisQuota

app = typer.Typer(
    help="The throttle level and the exchange's ban, as kept in the store for every process.",
    no_args_is_help=True,
)
ban_app = typer.Typer(help="Show or lift the exchange's ban (HTTP 418).", no_args_is_help=True)
app.add_typer(ban_app, name="ban")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
VenueOption = Annotated[
    str | None,
    typer.Option(
        "--venue",
        help="The venue to act on (default: what provider.base_url last identified as).",
        show_default=False,
    ),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why, for the audit log.")]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _venue(settings: Settings, store: Store, given: str | None) -> str:
    if given:
        return given
    if settings.provider.venue:
        return settings.provider.venue
    base_url = str(settings.provider.base_url).rstrip("/")
    known = await store.venues.known(base_url)
    return known.venue if known is not None else venue_from_url(base_url)


@app.command("level")
def level_cmd(
    ctx: typer.Context,
    level: Annotated[
        str | None,
        typer.Argument(
            help="conservative, moderate, aggressive or unlimited; omit to show the level.",
            show_default=False,
        ),
    ] = None,
    venue: VenueOption = None,
    reason: ReasonOption = "set with mystic throttle level",
    as_json: JsonOption = False,
) -> None:
    """Show the throttle level in force for the venue, or set it (audited)."""
    settings: Settings = ctx.obj.settings
    new = None if level is None else parse_level(level, setting="LEVEL")

    async def run() -> dict[str, Any]:
        async with await open_store(settings.store) as store:
            name = await _venue(settings, store, venue)
            if new is not None:
                await store.control.save_level(name, new.value, actor="cli", reason=reason)
            state = await store.control.load(name)
        stored = None if state is None else state.level
        return {
            "venue": name,
            "level": stored or settings.throttle.level,
            "source": "store" if stored else "setting throttle.level (nothing stored yet)",
            "updated_at": None if state is None or not stored else utc_text(state.updated_at),
            "updated_by": None if state is None or not stored else state.updated_by,
        }

    data = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    typer.echo(f"{data['venue']}: level {data['level']} ({data['source']})")
    if data["updated_at"]:
        typer.echo(f"set {data['updated_at']} by {data['updated_by']}")
    if new is not None:
        typer.echo("running processes take it up when they next start")


@contextlib.asynccontextmanager
async def _shared_quota(settings: Settings) -> AsyncIterator[RedisQuota | None]:
    """The deployment's shared quota in Redis, or None without Redis."""
    if settings.redis_url is None:
        yield None
        return
    from mystic_trading.throttle import RedisQuota  # redis-py only when Redis is configured

    quota = RedisQuota(settings.redis_url.get_secret_value(), prefix="mystic:throttle")
    try:
        await quota.start()  # a wrong password is a clear error, not a silent local read
        yield quota
    finally:
        await quota.aclose()


async def _ban(settings: Settings, store: Store, name: str) -> dict[str, Any]:
    record = await store.control.ban(name)
    redis_until = None
    async with _shared_quota(settings) as quota:
        if quota is not None:
            redis_until = await quota.banned_until(name)
    now = _now_ms()
    until = max([u for u in (None if record is None else record.until_ms, redis_until) if u] or [0])
    return {
        "venue": name,
        "banned": until > now,
        "until": utc_text(until) if until else None,
        "remaining_s": max(0, (until - now) // 1000) if until else 0,
        "reason": None if record is None else record.reason,
        "recorded_at": None if record is None else utc_text(record.created_at),
        "in_redis": redis_until is not None,
    }


@ban_app.command("show")
def ban_show(ctx: typer.Context, venue: VenueOption = None, as_json: JsonOption = False) -> None:
    """The venue's ban, if any: until when (UTC), why, and how long is left."""
    settings: Settings = ctx.obj.settings

    async def run() -> dict[str, Any]:
        async with await open_store(settings.store) as store:
            return await _ban(settings, store, await _venue(settings, store, venue))

    data = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    if data["until"] is None:
        typer.echo(f"{data['venue']}: no ban recorded")
    elif data["banned"]:
        typer.echo(
            f"{data['venue']}: banned until {data['until']} ({data['remaining_s']} s left); "
            f"reason: {data['reason']}"
        )
    else:
        typer.echo(f"{data['venue']}: the ban recorded until {data['until']} has ended")


@ban_app.command("clear")
def ban_clear(
    ctx: typer.Context,
    venue: VenueOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: without it nothing changes.")
    ] = False,
    reason: ReasonOption = "cleared with mystic throttle ban clear",
) -> None:
    """Lift the venue's ban in the store and in Redis (a stale ban, e.g. a sandbox's). If the
    exchange's ban is real, the next request earns a longer one."""
    settings: Settings = ctx.obj.settings
    if not yes:
        typer.echo("this lifts the ban for every process; add --yes to do it")
        raise typer.Exit(2)

    async def run() -> dict[str, Any]:
        from mystic_trading.monitor import Controller

        async with Controller.open(settings) as controller:
            return await controller.clear_ban(venue=venue, actor="cli", reason=reason)

    typer.echo(asyncio.run(run())["message"])
