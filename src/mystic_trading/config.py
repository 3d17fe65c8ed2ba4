"""Settings: environment (``MYSTIC_`` prefix, ``__`` between section and field), an optional
``mystic.toml``, then the defaults, in that order of precedence.

Only ``cli/`` and ``api/`` call :func:`load_settings`; library classes take the typed section
they need. An invalid value raises :class:`ConfigError` naming the setting (and its
environment variable), the value and what is accepted.

The embedded defaults run with no server at all: SQLite in the user's data directory, the
in-process cache, and the built-in sandbox exchange on 127.0.0.1:9000.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mystic_trading._alert_settings import AlertSettings
from mystic_trading._optimize_settings import OptimizeSettings
from mystic_trading._thresholds import HealthThresholds
from mystic_trading.errors import ConfigError

__all__ = [
    "ApiSettings",
    "CacheSettings",
    "MonitorSettings",
    "ProviderSettings",
    "Settings",
    "StoreSettings",
    "ThrottleSettings",
    "default_database_url",
    "load_settings",
    "mask_url",
    "mask_webhook",
]

ENV_PREFIX = "MYSTIC_"
ENV_NESTED = "__"

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
ThrottleLevel = Literal["conservative", "moderate", "aggressive", "unlimited"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_LEVELS: tuple[LogLevel, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_database_url() -> str:
    """SQLite file under ``$XDG_DATA_HOME/mystic`` (``~/.local/share/mystic`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite+aiosqlite:///{Path(base) / 'mystic' / 'mystic.db'}"


_SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "token", "secret", "sslpassword"})


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, in the netloc and in query parameters
    such as ``?password=`` (libpq and redis-py both read one), safe for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None and not any(
        k.lower() in _SECRET_PARAMS for k, _ in parse_qsl(parts.query, keep_blank_values=True)
    ):
        return url  # untouched (urlunsplit would drop the // of sqlite:///path)
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{netloc}")
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            masked = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            parts = parts._replace(query=urlencode(masked, safe="*"))
    return urlunsplit(parts)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """L3: the persistent store (SQLite by default, PostgreSQL by URL)."""

    url: str = Field(default_factory=default_database_url)
    pool_size: PositiveInt = 10
    pool_max_overflow: Annotated[int, Field(ge=0)] = 0
    pool_recycle_s: Positive = 1800.0
    pool_timeout_s: Positive = 10.0
    busy_timeout_ms: Annotated[int, Field(ge=0)] = 5000
    sqlite_cache_size_kib: PositiveInt = 65536
    sqlite_mmap_size_mib: Annotated[int, Field(ge=0)] = 256
    query_cache_ttl_s: NonNegative = 300.0
    query_cache_max_entries: PositiveInt = 10_000
    # A statement this slow is counted and logged (routine background writes at INFO, the
    # rest at WARNING, store/_metrics.py). SQLite's one writer makes a write wait for the one
    # before it, so 100 ms was crossed by routine writes under any load (new-user D11).
    slow_query_ms: Positive = 250.0

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if not scheme.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError(
                "expected a sqlite:// or postgresql:// URL, "
                "e.g. sqlite+aiosqlite:///path/mystic.db or postgresql+asyncpg://host/db"
            )
        return value


class CacheSettings(_Section):
    """L1 memory and L2 Redis caches; TTLs per data kind."""

    memory_max_entries: PositiveInt = 100_000
    memory_max_mib: Positive = 256.0
    ticker_ttl_s: Positive = 1.5
    book_ttl_s: Positive = 0.5
    closed_candle_ttl_s: Positive = 86_400.0
    negative_ttl_s: Positive = 60.0
    stale_if_error_s: NonNegative = 300.0
    # How long a caller that holds a value still within stale_if_error_s waits for its
    # refresh before it gets that value, marked stale (a 429 pause or an outage does not
    # hold it for seconds; a healthy exchange answers well within it).
    stale_wait_s: NonNegative = 0.5


class ThrottleSettings(_Section):
    """Upstream rate control: ceiling level, safety margin, queue and retries."""

    level: ThrottleLevel = "moderate"
    safety_margin: Annotated[float, Field(ge=0, lt=1)] = 0.10
    fallback_weight_per_minute: PositiveInt = 6000
    queue_max: PositiveInt = 10_000
    default_deadline_s: Positive = 30.0
    retry_budget: Annotated[float, Field(ge=0, le=1)] = 0.10
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    expected_processes: PositiveInt = 1


class ProviderSettings(_Section):
    """The exchange. The default points at the built-in sandbox, never at a real exchange."""

    name: Literal["binance"] = "binance"
    base_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:9000")
    # The venue id data is keyed by; by default what the exchange declares, else the base
    # URL's (providers/venue.py). Set "binance-spot" for a proxy in front of Binance.
    venue: str | None = None
    connect_timeout_s: Positive = 3.0
    read_timeout_s: Positive = 10.0
    max_connections: PositiveInt = 32
    # A candle is final once the exchange's clock is certainly this far past its close. At
    # least 1 s: a step of the exchange's clock smaller than a Date header's second goes
    # unseen until the next /api/v3/time, and the grace is what covers it.
    final_grace_s: Annotated[float, Field(ge=1.0)] = 2.0
    clock_resync_s: Positive = 60.0

    @field_validator("venue")
    @classmethod
    def _venue_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value == "binance":
            raise ValueError(
                "'binance' is the key of rows written before venues were recorded; "
                "use binance-spot for Binance's spot market"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}", value):
            raise ValueError(
                "a venue id of letters, digits and . _ : @ - (at most 100), e.g. binance-spot"
            )
        return value


class MonitorSettings(_Section):
    """Heartbeats of every process and health checks (``monitor/``)."""

    # Off: no heartbeat, no health round (bench/monitor.py measures on against off).
    enabled: bool = True
    heartbeat_s: Positive = 2.0
    interval_s: Positive = 30.0
    # Each check's warning and critical thresholds (mystic_trading/_thresholds.py).
    health: HealthThresholds = Field(default_factory=HealthThresholds)
    # Alert rules over the health checks, and the webhook (mystic_trading/_alert_settings.py).
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    # What optimize may apply, cooldown and rollback (mystic_trading/_optimize_settings.py).
    optimize: OptimizeSettings = Field(default_factory=OptimizeSettings)


class ApiSettings(_Section):
    """The HTTP service. Binds loopback unless told otherwise; admin calls need the token."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    admin_token: SecretStr | None = None
    # Requests served at once; one more gets 503 with Retry-After at once rather than a
    # queue that grows behind a slow exchange.
    max_in_flight: PositiveInt = 256
    # Market data are bodiless GETs; admin POSTs are small.
    max_body_bytes: Annotated[int, Field(ge=0)] = 64 * 1024
    # Browsers send 1-2 KiB of headers; nginx's default buffer is 8 KiB, Node's limit 16 KiB.
    max_header_bytes: PositiveInt = 16 * 1024
    # The longest real query is ticker/24hr symbols=[...] of a few hundred symbols.
    max_query_bytes: PositiveInt = 16 * 1024
    # Each client's share of the exchange's budget in %, per window (None: off), so one
    # runaway bot cannot starve the others; clients are told apart by X-Mystic-Client, else
    # their Bearer token, else their address (api/_share.py).
    client_share_pct: Annotated[float, Field(gt=0, le=100)] | None = None


class Settings(BaseSettings):
    """Every setting of Mystic, by section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    redis_url: SecretStr | None = None
    # Mystic's own loggers log at this level and above (any case: debug, Debug); other
    # libraries stay at WARNING unless this is ERROR. The command line applies it.
    log_level: LogLevel = "WARNING"
    store: StoreSettings = Field(default_factory=StoreSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    provider: ProviderSettings = Field(default_factory=ProviderSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
            return value.strip().upper()
        names = ", ".join(repr(level) for level in LOG_LEVELS)
        raise ValueError(f"one of {names}, in any case (debug, Debug and DEBUG alike)")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in (
            "redis",
            "rediss",
            "unix",
        ):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _TOML_PATH.get("path")
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets and URL passwords masked."""
        data: dict[str, Any] = self.model_dump(mode="json")
        data["redis_url"] = _mask_secret_url(self.redis_url)
        data["store"]["url"] = mask_url(self.store.url)
        token = self.api.admin_token
        data["api"]["admin_token"] = None if token is None else "***"
        return data


def _mask_secret_url(value: SecretStr | None) -> str | None:
    return None if value is None else mask_url(value.get_secret_value())


# pydantic-settings builds sources from the class, so the TOML path travels beside it; set and
# cleared by load_settings only, under no concurrency (start-up).
_TOML_PATH: dict[str, Path | None] = {"path": None}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the settings; ``config_file`` (else ``MYSTIC_CONFIG``) names a TOML file.

    Raises :class:`ConfigError` with every invalid setting named.
    """
    path_text = config_file if config_file is not None else os.environ.get("MYSTIC_CONFIG")
    path = Path(path_text) if path_text else None
    if path is not None and not path.is_file():
        raise ConfigError(
            f"config file {str(path)!r} does not exist (from --config or MYSTIC_CONFIG)",
            setting="config",
            value=str(path),
        )
    _check_unknown_env()
    _TOML_PATH["path"] = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc, path) from None
    except ValueError as exc:  # a TOML file that does not parse
        raise ConfigError(
            f"config file {str(path)!r} is not valid TOML: {exc}", setting="config"
        ) from exc
    finally:
        _TOML_PATH["path"] = None


# Variables with the prefix that are not settings: the config path and the test suite's servers.
_NOT_SETTINGS = ("MYSTIC_CONFIG", "MYSTIC_TEST_")


def _check_unknown_env() -> None:
    """A misspelt ``MYSTIC_`` variable would otherwise be ignored without a word."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name in os.environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(_NOT_SETTINGS):
            continue
        if upper.split(ENV_NESTED, 1)[0] not in known:
            sections = ", ".join(sorted(known))
            close = difflib.get_close_matches(upper, _env_names(), n=1, cutoff=_CLOSE)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"unknown setting {name}: no such setting{hint} "
                f"(known top-level names: {sections})",
                setting=name,
                value=os.environ[name],
            )


# How alike a misspelt name must be to a known one to be suggested (difflib's ratio).
_CLOSE = 0.75


def _setting_paths() -> list[tuple[str, ...]]:
    """Every setting as a path: sections and top-level fields, then each section's fields."""
    paths: list[tuple[str, ...]] = []
    for name, field in Settings.model_fields.items():
        paths.append((name,))
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            paths.extend((name, sub) for sub in section.model_fields)
    return paths


def _env_name(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED.join(path).upper()


def _env_names() -> list[str]:
    return [_env_name(path) for path in _setting_paths()]


def _did_you_mean(path: tuple[str, ...]) -> str:
    """``; did you mean throttle.level (MYSTIC_THROTTLE__LEVEL)?`` for a setting that does not
    exist, naming the closest one at the same depth; empty when none is close."""
    candidates = {".".join(p): p for p in _setting_paths() if len(p) == len(path)}
    close = difflib.get_close_matches(".".join(path), candidates, n=1, cutoff=_CLOSE)
    if not close:
        return ""
    return f"; did you mean {close[0]} ({_env_name(candidates[close[0]])})?"


def mask_webhook(url: str) -> str:
    """``url`` without what may be a secret: ``https://hooks.example.com/***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    if not parts.scheme or not parts.hostname:
        # Not a URL at all (a token pasted alone?): say so rather than print a mangled one.
        return f"<not a URL: {len(url)} characters>"
    if ":" in host:
        host = f"[{host}]"
    tail = "/***" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def _config_error(exc: ValidationError, path: Path | None) -> ConfigError:
    lines = []
    first_setting = ""
    first_value: object = None
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal["))]
        setting = ".".join(loc)
        env_name = ENV_PREFIX + ENV_NESTED.join(loc).upper()
        value = err.get("input")
        if isinstance(value, SecretStr) or any(s in setting for s in ("token", "redis_url")):
            value = "***"
        elif setting.endswith("webhook_url") and isinstance(value, str):
            value = mask_webhook(value)  # a webhook's path or query is often its secret
        elif setting.endswith("url") and isinstance(value, str):
            value = mask_url(value)
        accepted = _accepted(err, tuple(loc))
        if not first_setting:
            first_setting, first_value = setting, value
        where = f" in {path}" if path is not None else ""
        lines.append(f"  {setting} ({env_name}{where}): got {value!r}; {accepted}")
    return ConfigError(
        "invalid settings:\n" + "\n".join(lines), setting=first_setting, value=first_value
    )


def _accepted(err: Any, loc: tuple[str, ...]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        return f"accepted: one of {ctx.get('expected', '')}"
    if kind == "extra_forbidden":
        return (
            f"accepted: no such setting{_did_you_mean(loc)} "
            "(see `mystic config show` for the known ones)"
        )
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"accepted: a number {err['msg'].removeprefix('Input should be ')}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"accepted: {msg[0].lower()}{msg[1:]}" if msg else "invalid"
