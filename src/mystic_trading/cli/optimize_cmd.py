"""``mystic recommendations`` and ``mystic optimize``: what to change, and applying it.

Each is a call of :class:`~mystic_trading.monitor.Controller` (which prints nothing),
rendered here as text or, with ``--json``, as its data. Neither contacts the exchange nor
needs a process running: the evidence is the last heartbeats of the venue's processes (alive,
and gone within the hour). ``optimize`` applies at most one throttle level step, within
``monitor.optimize``'s bounds and outside its cooldown, audited with its evidence; every
running process applies it within 2 s. Without ``--yes`` it shows the plan and asks (refused
when there is no terminal to ask); ``--dry-run`` only shows. ``--watch`` stays
``monitor.optimize.watch_s`` after applying, and rolls the change back (audited) if 429s or
worse latency follow. Exit codes: 0 done (or nothing to do), 1 a Mystic error or an
optimize refused (declined, cooldown), 2 bad arguments or settings.

With ``--url`` both act through a running service's API (``status_cmd.control``); the
service applies the step, and ``--watch``, which reads the heartbeats itself, is refused.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Annotated, Any

import typer

from mystic_trading.cli._remote import Control, RemoteError
from mystic_trading.monitor import Controller
from mystic_trading.monitor._optimize import ChangeWatch
from mystic_trading.throttle import parse_level

from .status_cmd import (
    JsonOption,
    TokenOption,
    UrlOption,
    VenueOption,
    _run,
    console,
    err_console,
)

# How often --watch reads the heartbeats (every process beats every 2 s by default).
WATCH_POLL_S = 2.0


def _print_recommendations(data: dict[str, Any]) -> None:
    recs = data["recommendations"]
    console.print(
        f"[bold]{data['venue']}[/] at {data['now']}: level {data['level']}; "
        f"{data['processes']} process(es) read ({data['alive']} alive)"
    )
    if not recs:
        console.print("no recommendation: the figures show nothing to change")
        return
    for i, r in enumerate(recs, 1):
        window = r["evidence"].get("window", {})
        how = "optimize may apply it" if r["applicable"] else "needs an operator"
        console.print(
            f"\n{i}. [bold]{r['title']}[/] ({r['rule']}; {how})\n"
            f"   change:   {r['setting']}: {r['from']} -> {r['to']}\n"
            f"   why:      {r['reason']}\n"
            f"   window:   {window.get('from')} .. {window.get('to')} "
            f"({window.get('seconds', 0):,.0f} s, {window.get('basis')}, "
            f"{window.get('processes')} process(es))\n"
            f"   expected: {r['expected']}",
            highlight=False,
        )


def recommendations(
    ctx: typer.Context,
    venue: VenueOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """What to change, from the figures the venue's processes measured: raise or lower the
    throttle level, enable Redis, grow the memory cache or the store pool, backfill a
    series, fix the clock. Each with its evidence (the figures and the window they cover),
    the change (setting, from, to), the effect expected, and whether `mystic optimize` may
    apply it. Works with no process running (their last heartbeats)."""
    data = _run(ctx, url, token, lambda target: target.recommendations(venue))
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    _print_recommendations(data)


def _confirm(step: dict[str, Any], venue: str) -> bool:
    if not sys.stdin.isatty():
        err_console.print(
            f"[bold red]refused[/]: {venue}: would {step['title'].lower()} "
            f"({step['from']} -> {step['to']}); no terminal to confirm it: run with --yes "
            "to apply or --dry-run to only show"
        )
        return False
    return typer.confirm(
        f"{venue}: {step['title'].lower()} ({step['from']} -> {step['to']})?", default=False
    )


def _print_optimize(data: dict[str, Any]) -> None:
    applied, planned, skipped = data["applied"], data["planned"], data["skipped"]
    if applied is not None:
        change = applied["change"]
        console.print(
            f"{data['venue']}: level {change['from']} -> {change['to']}; ceiling "
            f"{change['from_ceiling_weight_per_min']:,.0f} -> "
            f"{change['ceiling_weight_per_min']:,.0f} weight/min; every running process "
            f"applies it within {change['applied_within_s']:g} s\n"
            f"because: {applied['reason']}\nexpected: {applied['expected']}",
            highlight=False,
        )
    elif skipped is not None:
        err_console.print(f"[bold red]not applied[/]: {skipped['why']}", highlight=False)
    elif planned is not None:
        console.print(
            f"{data['message']}\nbecause: {planned['reason']}\nexpected: {planned['expected']}",
            highlight=False,
        )
    else:
        console.print(data["message"], highlight=False)
    others = [r for r in data["recommendations"] if not r["applicable"]]
    if others:
        console.print(
            "not applied (need an operator; see `mystic recommendations`): "
            + ", ".join(r["title"] for r in others),
            highlight=False,
        )


async def _watch(controller: Controller, data: dict[str, Any], watch_s: float) -> dict[str, Any]:
    """Stay ``watch_s`` after the change; roll it back if 429s or worse latency follow."""
    settings = controller.settings.monitor.optimize
    change = data["applied"]["change"]
    venue = data["venue"]
    old, new = parse_level(change["from"]), parse_level(change["to"])
    deployment = await controller.registry.read(venue)
    watch = ChangeWatch.after(venue, old, new, deployment, now_s=time.time(), watch_s=watch_s)
    while time.time() < watch.until_s:
        await asyncio.sleep(WATCH_POLL_S)
        current, _ = await controller.level(venue)
        if current is not new:
            return {"rolled_back": False, "why": f"the level was changed again ({current})"}
        why = watch.worse(
            await controller.registry.read(venue),
            ratio=settings.rollback_latency_ratio,
            extra_ms=settings.rollback_latency_ms,
        )
        if why is not None:
            reason = f"rollback of {old.value} -> {new.value}: {why} the change"
            back = await controller.set_level(old, actor="cli optimize", reason=reason, venue=venue)
            return {"rolled_back": True, "why": reason, "change": back}
    return {"rolled_back": False, "why": f"no 429 nor worse latency in {watch_s:g} s"}


def optimize(
    ctx: typer.Context,
    venue: VenueOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be applied; change nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="After applying, stay monitor.optimize.watch_s and roll the change back "
            "(audited) if 429s or worse latency follow.",
        ),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Apply the safe recommendations: one throttle level step at most, within
    monitor.optimize's bounds (never above the exchange's limit less the safety margin),
    not within the cooldown after the last change, audited with its evidence; every running
    process applies it within 2 s. Without --yes it shows the step and asks (and refuses
    when it cannot ask); --dry-run only shows. Exit 1 when declined or in the cooldown."""
    if watch and url is not None:
        raise typer.BadParameter(
            "--watch reads the processes' heartbeats from the store and Redis, which --url "
            "does not open; watch with `mystic monitor --url` instead",
            param_hint="--watch",
        )

    async def work(target: Control) -> dict[str, Any]:
        try:
            plan = await target.optimize(venue, dry_run=True, actor="cli optimize")
        except RemoteError as exc:
            if exc.code == "cooldown" and dry_run:
                # Only shown, as the local dry run shows a plan waiting for the cooldown.
                err_console.print(f"[bold red]not applied[/]: {exc}", highlight=False)
                raise typer.Exit(0) from None
            raise
        if dry_run or plan["planned"] is None or plan["skipped"] is not None:
            return plan
        if not yes and not _confirm(plan["planned"], plan["venue"]):
            plan["message"] = f"{plan['venue']}: not confirmed; nothing changed"
            plan["declined"] = True
            return plan
        done = await target.optimize(venue, actor="cli optimize")
        if watch and done["applied"] is not None:
            assert isinstance(target, Controller)  # --watch with --url is refused above
            done["watch"] = await _watch(target, done, target.settings.monitor.optimize.watch_s)
        return done

    data = _run(ctx, url, token, work)
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
    elif not data.get("declined"):
        _print_optimize(data)
        if data.get("watch"):
            console.print(f"watch: {data['watch']['why']}", highlight=False)
    if data.get("declined") or (data["skipped"] is not None and not dry_run):
        raise typer.Exit(1)
