"""Where the store lives: a database URL read once into a typed target.

SQLite URLs (``sqlite:///path`` or ``sqlite+aiosqlite:///path``) name a file; an in-memory
database is refused because the hot-read connections (see ``_readers``) must see the same
data as the writers. PostgreSQL URLs (``postgresql://``, ``postgres://``,
``postgresql+asyncpg://``) always use asyncpg. As in asyncpg's own DSN parser, query
parameters that are not connection arguments become server settings, so
``postgresql+asyncpg://host/db?search_path=mystic`` keeps the schema in ``mystic``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mystic_trading.config import mask_url
from mystic_trading.errors import StoreError

__all__ = ["Target", "parse_target"]

Backend = Literal["sqlite", "postgresql"]

# Query parameters that asyncpg.connect() takes as arguments; everything else is a server
# setting (asyncpg docs, "connect(): dsn ... other query parameters become server_settings").
_CONNECT_ARGS = frozenset({"ssl", "sslmode", "timeout", "command_timeout", "passfile"})


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed store URL: the backend, the SQLAlchemy URL and what to show in errors."""

    backend: Backend
    sqlalchemy_url: str
    display: str
    sqlite_path: Path | None = None
    asyncpg_dsn: str = ""
    server_settings: dict[str, str] = field(default_factory=dict)
    connect_args: dict[str, str] = field(default_factory=dict)


def parse_target(url: str) -> Target:
    """Read ``url``; raise :class:`StoreError` for a scheme or form the store cannot open."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    base, _, _driver = scheme.partition("+")
    if base == "sqlite":
        return _sqlite_target(url, parts.path, parts.netloc)
    if base in ("postgresql", "postgres"):
        return _postgres_target(url)
    raise StoreError(
        f"cannot open store {mask_url(url)}: unsupported scheme {scheme!r}; "
        "use sqlite+aiosqlite:///path/mystic.db or postgresql+asyncpg://host/db",
        target=mask_url(url),
    )


def _sqlite_target(url: str, path_text: str, netloc: str) -> Target:
    # sqlite:///relative.db has path "/relative.db"; sqlite:////abs.db has "//abs.db".
    raw = path_text[1:] if path_text.startswith("/") else path_text
    if netloc or not raw or raw == ":memory:" or "mode=memory" in url:
        raise StoreError(
            f"cannot open store {url}: an in-memory or networked SQLite database is not "
            "supported; name a file, e.g. sqlite+aiosqlite:///var/lib/mystic/mystic.db",
            target=url,
        )
    path = Path(raw).expanduser().absolute()
    return Target(
        backend="sqlite",
        sqlalchemy_url=f"sqlite+aiosqlite:///{path}",
        display=str(path),
        sqlite_path=path,
    )


def _postgres_target(url: str) -> Target:
    split = urlsplit(url)
    query = parse_qsl(split.query, keep_blank_values=True)
    server = {k: v for k, v in query if k not in _CONNECT_ARGS}
    connect = {k: v for k, v in query if k in _CONNECT_ARGS}
    plain = urlunsplit(split._replace(scheme="postgresql", query=urlencode(connect)))
    sa_url = urlunsplit(split._replace(scheme="postgresql+asyncpg", query=urlencode(connect)))
    return Target(
        backend="postgresql",
        sqlalchemy_url=sa_url,
        display=mask_url(url),
        asyncpg_dsn=plain,
        server_settings=server,
        connect_args=connect,
    )
