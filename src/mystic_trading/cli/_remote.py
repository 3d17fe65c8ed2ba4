"""The controller's commands acting through a running service (``--url``, issue 13 item 6).

``Remote(url, token)`` has the methods the commands call on
:class:`~mystic_trading.monitor.Controller` (``status``, ``recommendations``, ``increase``,
``decrease``, ``optimize``, ``clear``), each one request to the service's ``/api/v1/``, whose
answer is what the service's own Controller returned. So a command picks ``Remote`` or
``Controller.open(settings)`` in one place and renders the same data the same way; it opens
no store and no Redis of its own.

The token goes in the ``Authorization`` header of the admin POSTs only: the read routes need
none, and a token sent where it is not needed is one more place it can leak. It is never
printed, logged nor part of an error's message or this object's repr. Over plain http to a
host that is not loopback it crosses the network readable by anyone on the path, so the
first request that carries it is preceded by a warning (the request still goes: a private
network may be trusted, and refusing it would push operators to turn TLS checks off rather
than on).

The service records its own actor in the audit ("api" and the client's address); a client
cannot claim another, so the ``actor`` the commands pass is not sent.

Errors, all ``RemoteError`` (a ``MysticError``) with the CLI's exit code in ``exit_code``::

    RemoteError              url, status (None when not reached), code, field, exit_code
    ├── ServiceUnreachable   connection refused, timeout, a broken answer         exit 1
    └── ServiceRefused       4xx/5xx: 401/403 the token, 409 at_limit/cooldown    exit 1
                             422 invalid input (field named), a token no header
                             can carry (field "token")                           exit 2
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from mystic_trading import __version__
from mystic_trading.errors import MysticError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Control",
    "Remote",
    "RemoteError",
    "ServiceRefused",
    "ServiceUnreachable",
    "check_service_url",
    "cleartext_warning",
]

# Connecting to a service that is up takes milliseconds; five seconds means it is not.
CONNECT_TIMEOUT_S = 5.0
# An answer: a clear may scan Redis for a venue's keys and a status reads every heartbeat,
# both well under this on a healthy deployment.
READ_TIMEOUT_S = 30.0
API = "/api/v1"


class Control(Protocol):
    """What the controller commands call: a ``Controller`` (the store and Redis of the
    settings) or a ``Remote`` (a service's API) alike."""

    async def status(self, venue: str | None = None) -> dict[str, Any]: ...

    async def recommendations(self, venue: str | None = None) -> dict[str, Any]: ...

    async def increase(
        self, *, reason: str = ..., actor: str = ..., venue: str | None = ...
    ) -> dict[str, Any]: ...

    async def decrease(
        self, *, reason: str = ..., actor: str = ..., venue: str | None = ...
    ) -> dict[str, Any]: ...

    async def optimize(
        self,
        venue: str | None = None,
        *,
        dry_run: bool = ...,
        actor: str = ...,
        reason: str = ...,
    ) -> dict[str, Any]: ...

    async def clear(
        self,
        *,
        venue: str | None = ...,
        memory: bool = ...,
        redis: bool = ...,
        query_cache: bool = ...,
        symbol: str | None = ...,
        actor: str = ...,
        reason: str = ...,
    ) -> dict[str, Any]: ...


class RemoteError(MysticError):
    """The service did not do what was asked. ``url`` is the service's (never with the
    token), ``status`` the HTTP status (None when no answer came), ``code`` and ``field``
    the error body's, ``exit_code`` what the command exits with."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        exit_code: int = 1,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.code = code
        self.field = field
        self.exit_code = exit_code


class ServiceUnreachable(RemoteError):
    """No usable answer: connection refused, a timeout, or not an answer of Mystic's API."""


class ServiceRefused(RemoteError):
    """The service answered with an error (its ``code``, ``field`` and message)."""


def check_service_url(value: str) -> str:
    """``value`` as a service URL (``http://host:port``, ``https://...``, a path prefix
    allowed), without a trailing slash; ValueError saying what is wrong otherwise."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not a service URL: expected http://host:port or https://")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in shell history and in every message naming the URL.
        raise ValueError("the service URL must not hold credentials: pass the token with --token")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r}: a service URL has no query nor fragment")
    return value.strip().rstrip("/")


def _loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761, section 6.3
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_loopback


def cleartext_warning(url: str, token: str | None) -> str | None:
    """The warning due before ``token`` is sent to ``url``: over plain http to a host
    that is not loopback anyone on the path can read it. None when there is nothing to say."""
    parts = urlsplit(url)
    if token is None or parts.scheme != "http" or _loopback(parts.hostname or ""):
        return None
    return (
        f"the admin token is sent over plain http to {parts.hostname}: anyone on the network "
        "path can read it; use https:// (a TLS proxy in front of `mystic serve`)"
    )


class Remote:
    """A service's admin API with the Controller's method names; ``async with`` it."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        warn: Callable[[str], None] | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.url = check_service_url(url)
        self._token = token or None
        self._warn = warn
        self._warning = cleartext_warning(self.url, self._token)
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        given = "given" if self._token else "none"
        return f"Remote({self.url!r}, token {given})"

    async def __aenter__(self) -> Remote:
        import httpx

        connect, read = self._timeouts
        self._client = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(read, connect=connect),
            headers={"User-Agent": f"mystic-cli/{__version__}", "Accept": "application/json"},
            # The proxy settings of the environment apply (a service behind one is normal);
            # redirects are not followed, so the token never goes to another host.
            follow_redirects=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- the Controller's methods ---------------------------------------------------------

    async def status(self, venue: str | None = None) -> dict[str, Any]:
        """GET /api/v1/status: the service's ``Controller.status(venue)``."""
        return await self._get("/status", venue)

    async def recommendations(self, venue: str | None = None) -> dict[str, Any]:
        """GET /api/v1/recommendations: the service's ``Controller.recommendations(venue)``."""
        return await self._get("/recommendations", venue)

    async def increase(
        self, *, reason: str = "", actor: str = "", venue: str | None = None
    ) -> dict[str, Any]:
        """POST /api/v1/admin/increase; at the top the service answers 409 ``at_limit``
        (ServiceRefused, exit 1 as the local command's refusal)."""
        return await self._post("/admin/increase", {"reason": reason, "venue": venue})

    async def decrease(
        self, *, reason: str = "", actor: str = "", venue: str | None = None
    ) -> dict[str, Any]:
        """POST /api/v1/admin/decrease; at the bottom 409 ``at_limit`` (exit 1)."""
        return await self._post("/admin/decrease", {"reason": reason, "venue": venue})

    async def optimize(
        self,
        venue: str | None = None,
        *,
        dry_run: bool = False,
        actor: str = "",
        reason: str = "",
    ) -> dict[str, Any]:
        """POST /api/v1/admin/optimize; within the cooldown 409 ``cooldown`` (exit 1)."""
        body = {"dry_run": dry_run, "reason": reason, "venue": venue}
        return await self._post("/admin/optimize", body)

    async def clear(
        self,
        *,
        venue: str | None = None,
        memory: bool = True,
        redis: bool = True,
        query_cache: bool = True,
        symbol: str | None = None,
        actor: str = "",
        reason: str = "",
    ) -> dict[str, Any]:
        """POST /api/v1/admin/clear: the layers asked (none = all), one symbol or all."""
        body = {
            "memory": memory,
            "redis": redis,
            "query_cache": query_cache,
            "symbol": symbol,
            "reason": reason,
            "venue": venue,
        }
        return await self._post("/admin/clear", body)

    # -- requests -------------------------------------------------------------------------

    async def _get(self, path: str, venue: str | None) -> dict[str, Any]:
        params = {} if venue is None else {"venue": venue}
        return await self._send("GET", path, params=params)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # Fields left at their default are not sent: the service applies its own.
        sent = {k: v for k, v in body.items() if v is not None and v != ""}
        headers = {}
        if self._token is not None:
            if self._warning is not None and self._warn is not None:
                self._warn(self._warning)
                self._warning = None  # once per run, not once per request
            headers["Authorization"] = f"Bearer {self._token}"
        return await self._send("POST", path, json=sent, headers=headers)

    async def _send(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        import httpx

        if self._client is None:
            raise RuntimeError("use Remote inside `async with`")
        where = f"{self.url}{API}{path}"
        try:
            response = await self._client.request(method, API + path, **request)
        except httpx.ConnectError as exc:
            raise ServiceUnreachable(
                f"cannot reach the Mystic service at {self.url}: {_why(exc)}", url=self.url
            ) from exc
        except httpx.TimeoutException as exc:
            connect, read = self._timeouts
            limit = connect if isinstance(exc, httpx.ConnectTimeout) else read
            raise ServiceUnreachable(
                f"the Mystic service at {self.url} did not answer {method} {API}{path} "
                f"within {limit:g} s",
                url=self.url,
            ) from exc
        except httpx.LocalProtocolError as exc:
            # What we were about to send is not HTTP: in practice a token holding a
            # character a header cannot carry (a newline pasted with it). Not echoed.
            raise ServiceRefused(
                "the token cannot be sent: it holds a character an HTTP header cannot "
                "carry (a newline or a control character?)",
                url=self.url,
                field="token",
                exit_code=2,
            ) from exc
        except httpx.HTTPError as exc:
            raise ServiceUnreachable(
                f"no answer from the Mystic service at {self.url}: {_why(exc)}", url=self.url
            ) from exc
        body = _json(response)
        if response.is_success and isinstance(body, dict):
            return body
        if response.status_code == 409 and isinstance(body, dict):
            result = body.get("result")
            if isinstance(result, dict):
                # A change the controller refused (at the top or bottom of the ladder, within
                # the cooldown): its answer, which the command prints and exits 1 on as it
                # does locally.
                return result
        if response.is_success:
            raise ServiceUnreachable(
                f"{where} answered {response.status_code} with no JSON object: is {self.url} "
                "a Mystic service?",
                url=self.url,
                status=response.status_code,
            )
        raise self._refusal(response, body, where)

    def _refusal(self, response: httpx.Response, body: Any, where: str) -> RemoteError:
        status = response.status_code
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return ServiceRefused(
                f"{where} answered {status} {response.reason_phrase}: is {self.url} a Mystic "
                "service (of a version with /api/v1/)?",
                url=self.url,
                status=status,
            )
        code = str(error.get("code") or "")
        field = error.get("field")
        field = None if field is None else str(field)
        said = str(error.get("message") or code or response.reason_phrase)
        facts: dict[str, Any] = {"url": self.url, "status": status, "code": code, "field": field}
        if status == 401:
            given = (
                "no token was given (--token or MYSTIC_API_TOKEN)"
                if self._token is None
                else "the token given is not the service's api.admin_token"
            )
            return ServiceRefused(f"{self.url} refused the admin call: {given} ({said})", **facts)
        if status == 403 and code == "admin_disabled":
            return ServiceRefused(
                f"{self.url} has its admin API off: api.admin_token is not set on the "
                f"service ({said})",
                **facts,
            )
        if status == 422:
            named = f" {field}" if field else ""
            return ServiceRefused(
                f"{self.url} refused the input{named}: {said}", exit_code=2, **facts
            )
        if status in (429, 503):
            wait = response.headers.get("Retry-After")
            later = f"; try again in {wait} s" if wait else ""
            return ServiceRefused(f"{self.url} is busy ({status}): {said}{later}", **facts)
        # 409 (at_limit, cooldown: the local commands exit 1 for both), 404 and the rest.
        return ServiceRefused(said if status == 409 else f"{where}: {status}: {said}", **facts)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _why(exc: BaseException) -> str:
    """A transport error in a few words: its root cause ("connection refused") rather than
    what the layers above it made of it ("All connection attempts failed")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return f"the host name does not resolve ({seen.strerror or seen})"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
