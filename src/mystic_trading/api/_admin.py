"""``POST /api/v1/admin/...``: the deployment's control operations over HTTP.

Each route calls the function the controller CLI calls (``Controller.increase``,
``decrease``, ``set_level``, ``optimize``, ``clear``; the ban's ``clear_ban`` in the store and
the shared quota, as ``mystic throttle ban clear --yes``), so HTTP and the CLI cannot
disagree. The audit log names the actor ``api``; the reason recorded ends with the client's
address.

**Who may.** ``Authorization: Bearer <api.admin_token>``, compared in constant time
(``hmac.compare_digest``). With no token configured every admin route answers 403
``admin_disabled`` (``mystic serve`` refuses a non-loopback bind without one, so the door
is shut, not open); a missing or wrong token answers 401 ``unauthorized`` with
``WWW-Authenticate: Bearer``. Authorization is checked before the body is read, so a caller
without the token learns nothing about the operation. The token is never logged.

**Bodies** are JSON objects decoded by msgspec into the structs below, which forbid unknown
fields: a malformed body, an unknown field or a value of the wrong type is a 422 naming the
field (``body`` when the JSON itself is broken). An empty body is ``{}``.

**Refusals.** ``increase`` at "unlimited" and ``decrease`` at "conservative" change nothing:
409 ``at_limit`` with the controller's answer as the message; ``optimize`` within the
cooldown: 409 ``cooldown``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mystic_trading._optimize_settings import LEVEL_NAMES, LevelName
from mystic_trading.api._errors import V1Error
from mystic_trading.api._state import ApiState
from mystic_trading.api._v1 import PREFIX, json_response, v1_guarded

__all__ = [
    "BanClearBody",
    "ChangeBody",
    "ClearBody",
    "LevelBody",
    "OptimizeBody",
    "admin_routes",
]

ADMIN = f"{PREFIX}/admin"
ACTOR = "api"
MAX_REASON_CHARS = 200
_FIELD = re.compile(r"`\$\.([A-Za-z_][A-Za-z0-9_]*)|field `([A-Za-z_][A-Za-z0-9_]*)`")


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: str = ""
    venue: str | None = None


class ChangeBody(_Body):
    """``increase`` and ``decrease``."""


class LevelBody(_Body):
    """``level``: the level to set (required; ``throttle.Level``'s names)."""

    level: LevelName


class OptimizeBody(_Body):
    dry_run: bool = False


class ClearBody(_Body):
    """None of the three layers true means all of them."""

    memory: bool = False
    redis: bool = False
    query_cache: bool = False
    symbol: str | None = None


class BanClearBody(_Body):
    pass


Body = TypeVar("Body", bound=_Body)


def _field_of(message: str) -> str | None:
    found = _FIELD.search(message)
    return None if found is None else found.group(1) or found.group(2)


async def _body(request: Request, kind: type[Body]) -> Body:
    raw = await request.body()
    if not raw.strip():
        raw = b"{}"
    try:
        body = msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        said = str(exc)
        if field == "level":
            said = f"{said}; accepted: {', '.join(LEVEL_NAMES)}"
        raise V1Error(422, "invalid", f"{field or 'body'}: {said}", field or "body") from None
    except msgspec.DecodeError as exc:
        raise V1Error(422, "invalid", f"body: not a JSON object ({exc})", "body") from None
    if len(body.reason) > MAX_REASON_CHARS:
        raise V1Error(
            422,
            "invalid",
            f"reason: at most {MAX_REASON_CHARS} characters, got {len(body.reason)}",
            "reason",
        )
    return body


class AdminApi:
    """The admin handlers of one app."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    def authorize(self, request: Request) -> None:
        """403 without a configured token; 401 unless the request carries it."""
        token = self.state.settings.api.admin_token
        if token is None:
            raise V1Error(
                403,
                "admin_disabled",
                "admin operations are disabled: no api.admin_token (MYSTIC_API__ADMIN_TOKEN) "
                "is configured",
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise V1Error(
                401,
                "unauthorized",
                "admin operations need Authorization: Bearer <api.admin_token>; it was "
                "missing or wrong",
            )

    @staticmethod
    def _reason(request: Request, reason: str, default: str) -> str:
        client = request.client
        where = "unknown client" if client is None else client.host
        return f"{reason or default} (api client {where})"

    async def increase(self, request: Request) -> Response:
        return await self._step(request, up=True)

    async def decrease(self, request: Request) -> Response:
        return await self._step(request, up=False)

    async def _step(self, request: Request, *, up: bool) -> Response:
        body = await _body(request, ChangeBody)
        controller = self.state.controller
        act = controller.increase if up else controller.decrease
        word = "increase" if up else "decrease"
        done = await act(
            reason=self._reason(request, body.reason, word), actor=ACTOR, venue=body.venue
        )
        if not done["changed"]:
            raise V1Error(409, "at_limit", done["message"], result=done)
        return json_response(done)

    async def level(self, request: Request) -> Response:
        body = await _body(request, LevelBody)
        done = await self.state.controller.set_level(
            body.level,
            reason=self._reason(request, body.reason, "set level"),
            actor=ACTOR,
            venue=body.venue,
        )
        return json_response(done)

    async def optimize(self, request: Request) -> Response:
        body = await _body(request, OptimizeBody)
        done = await self.state.controller.optimize(
            body.venue,
            dry_run=body.dry_run,
            actor=ACTOR,
            reason=self._reason(request, body.reason, "optimize"),
        )
        if done.get("skipped") and done.get("cooldown_until") and not body.dry_run:
            raise V1Error(409, "cooldown", done["message"], result=done)
        return json_response(done)

    async def clear(self, request: Request) -> Response:
        body = await _body(request, ClearBody)
        every = not (body.memory or body.redis or body.query_cache)
        done = await self.state.controller.clear(
            venue=body.venue,
            memory=every or body.memory,
            redis=every or body.redis,
            query_cache=every or body.query_cache,
            symbol=body.symbol or None,
            actor=ACTOR,
            reason=self._reason(request, body.reason, "clear"),
        )
        return json_response(done)

    async def ban_clear(self, request: Request) -> Response:
        """What ``mystic throttle ban clear --yes`` does: the store's ban (audited) and
        the shared quota's in Redis."""
        body = await _body(request, BanClearBody)
        done = await self.state.controller.clear_ban(
            venue=body.venue,
            actor=ACTOR,
            reason=self._reason(request, body.reason, "cleared with the api"),
        )
        return json_response(done)

    def guarded(self, handler: Callable[[Request], Awaitable[Response]]) -> Any:
        async def endpoint(request: Request) -> Response:
            self.authorize(request)
            return await handler(request)

        return v1_guarded(endpoint)


def admin_routes(state: ApiState) -> list[BaseRoute]:
    """The admin routes: POST only, each behind the bearer token."""
    api = AdminApi(state)
    g = api.guarded
    post = ["POST"]
    return [
        Route(f"{ADMIN}/increase", g(api.increase), methods=post),
        Route(f"{ADMIN}/decrease", g(api.decrease), methods=post),
        Route(f"{ADMIN}/level", g(api.level), methods=post),
        Route(f"{ADMIN}/optimize", g(api.optimize), methods=post),
        Route(f"{ADMIN}/clear", g(api.clear), methods=post),
        Route(f"{ADMIN}/ban/clear", g(api.ban_clear), methods=post),
    ]
