"""Settings: sources, precedence, masking, and a named error for every invalid value."""

from __future__ import annotations

from pathlib import Path

import pytest

from mystic_trading.config import Settings, load_settings, mask_url
from mystic_trading.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("MYSTIC_") and not name.upper().startswith("MYSTIC_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def test_defaults_are_embedded_and_loopback_only(tmp_path: Path) -> None:
    """With nothing set: SQLite in the data dir, no Redis, the sandbox, a loopback API."""
    settings = load_settings()
    assert settings.store.url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mystic' / 'mystic.db'}"
    assert settings.redis_url is None
    assert str(settings.provider.base_url).startswith("http://127.0.0.1:9000")
    assert settings.api.host == "127.0.0.1"
    assert settings.store.pool_size == 10
    assert settings.store.query_cache_ttl_s == 300
    assert settings.monitor.interval_s == 30
    assert settings.throttle.safety_margin == pytest.approx(0.10)


def test_environment_overrides_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """MYSTIC_SECTION__FIELD sets a nested value."""
    monkeypatch.setenv("MYSTIC_THROTTLE__LEVEL", "aggressive")
    monkeypatch.setenv("MYSTIC_STORE__POOL_SIZE", "4")
    settings = load_settings()
    assert settings.throttle.level == "aggressive"
    assert settings.store.pool_size == 4


def test_toml_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Values come from mystic.toml; the environment overrides the file."""
    toml = tmp_path / "mystic.toml"
    toml.write_text('[throttle]\nlevel = "conservative"\nqueue_max = 7\n[api]\nport = 9999\n')
    monkeypatch.setenv("MYSTIC_API__PORT", "8181")
    settings = load_settings(toml)
    assert settings.throttle.level == "conservative"
    assert settings.throttle.queue_max == 7
    assert settings.api.port == 8181


def test_config_path_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MYSTIC_CONFIG names the TOML file when --config is not given."""
    toml = tmp_path / "other.toml"
    toml.write_text('log_level = "DEBUG"\n')
    monkeypatch.setenv("MYSTIC_CONFIG", str(toml))
    assert load_settings().log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "value", "setting", "accepted"),
    [
        ("MYSTIC_THROTTLE__LEVEL", "turbo", "throttle.level", "'conservative'"),
        ("MYSTIC_THROTTLE__SAFETY_MARGIN", "-0.1", "throttle.safety_margin", "greater than"),
        ("MYSTIC_THROTTLE__SAFETY_MARGIN", "1.5", "throttle.safety_margin", "less than 1"),
        ("MYSTIC_THROTTLE__QUEUE_MAX", "0", "throttle.queue_max", "greater than 0"),
        ("MYSTIC_THROTTLE__RETRY_BUDGET", "2", "throttle.retry_budget", "less than or equal"),
        ("MYSTIC_THROTTLE__MAX_RETRIES", "x", "throttle.max_retries", "valid integer"),
        ("MYSTIC_STORE__POOL_SIZE", "-1", "store.pool_size", "greater than 0"),
        ("MYSTIC_STORE__URL", "mysql://db/x", "store.url", "sqlite:// or postgresql://"),
        ("MYSTIC_STORE__SLOW_QUERY_MS", "0", "store.slow_query_ms", "greater than 0"),
        ("MYSTIC_CACHE__TICKER_TTL_S", "-1", "cache.ticker_ttl_s", "greater than 0"),
        ("MYSTIC_CACHE__MEMORY_MAX_ENTRIES", "lots", "cache.memory_max_entries", "integer"),
        ("MYSTIC_PROVIDER__BASE_URL", "not a url", "provider.base_url", "url"),
        ("MYSTIC_PROVIDER__NAME", "ftx", "provider.name", "'binance'"),
        ("MYSTIC_PROVIDER__READ_TIMEOUT_S", "0", "provider.read_timeout_s", "greater than 0"),
        (
            "MYSTIC_PROVIDER__FINAL_GRACE_S",
            "0.5",
            "provider.final_grace_s",
            "greater than or equal",
        ),
        ("MYSTIC_PROVIDER__VENUE", "binance", "provider.venue", "binance-spot"),
        ("MYSTIC_PROVIDER__VENUE", "a b", "provider.venue", "letters, digits"),
        ("MYSTIC_MONITOR__INTERVAL_S", "-5", "monitor.interval_s", "greater than 0"),
        ("MYSTIC_API__PORT", "70000", "api.port", "less than or equal to 65535"),
        ("MYSTIC_LOG_LEVEL", "LOUD", "log_level", "'DEBUG'"),
        ("MYSTIC_REDIS_URL", "http://cache:6379", "redis_url", "redis://"),
        ("MYSTIC_THROTTLE__NO_SUCH", "1", "throttle.no_such", "no such setting"),
    ],
)
def test_every_invalid_value_names_setting_value_and_accepted(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, setting: str, accepted: str
) -> None:
    """An invalid value raises ConfigError naming the setting, its variable, value and range."""
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert setting in message
    assert env in message
    assert accepted.lower() in message.lower()
    assert info.value.setting == setting
    if "REDIS" not in env:
        assert repr(value) in message


def test_misspelt_top_level_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """MYSTIC_THROTLE__LEVEL (a typo) is reported, not silently ignored."""
    monkeypatch.setenv("MYSTIC_THROTLE__LEVEL", "aggressive")
    with pytest.raises(ConfigError, match="MYSTIC_THROTLE__LEVEL"):
        load_settings()


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    """A --config path that does not exist is a ConfigError with the path."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings(missing)


def test_invalid_toml_value_names_the_file(tmp_path: Path) -> None:
    """A bad value from the file names the setting and the file it came from."""
    toml = tmp_path / "mystic.toml"
    toml.write_text("[store]\npool_size = -3\n")
    with pytest.raises(ConfigError, match=r"store\.pool_size.*mystic\.toml"):
        load_settings(toml)


def test_unparsable_toml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not TOML is a ConfigError naming the file."""
    toml = tmp_path / "broken.toml"
    toml.write_text("[store\npool_size = \n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(toml)


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords in URLs and the admin token never appear in the shown settings."""
    monkeypatch.setenv("MYSTIC_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")
    monkeypatch.setenv("MYSTIC_STORE__URL", "postgresql+asyncpg://bot:s3cret@127.0.0.1/test")
    monkeypatch.setenv("MYSTIC_API__ADMIN_TOKEN", "tok-123456")
    shown = repr(load_settings().masked())
    for secret in ("hunter2", "s3cret", "tok-123456"):
        assert secret not in shown
    assert "bot:***@127.0.0.1" in shown


def test_invalid_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejected store URL shows its password masked in the error."""
    monkeypatch.setenv("MYSTIC_STORE__URL", "mysql://bot:s3cret@db/x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "s3cret" not in str(info.value)


def test_mask_url_keeps_everything_but_the_password() -> None:
    """mask_url replaces only the password."""
    assert mask_url("postgresql://u:p@h:5432/d?x=1") == "postgresql://u:***@h:5432/d?x=1"
    assert mask_url("sqlite:///tmp/a.db") == "sqlite:///tmp/a.db"


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are read."""
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.store.pool_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "hidden"),
    [
        ("postgresql+asyncpg://bot@db/test?password=s3cret&ssl=require", "s3cret"),
        ("redis://127.0.0.1:6379/0?password=hunter2", "hunter2"),
        ("postgresql://bot:s3cret@db/test?sslpassword=k3y", "k3y"),
    ],
)
def test_query_string_passwords_are_masked(url: str, hidden: str) -> None:
    """A password given as a query parameter is masked too (review: it was printed)."""
    masked = mask_url(url)
    assert hidden not in masked
    assert "***" in masked


@pytest.mark.parametrize("given", ["debug", "Debug", "DEBUG", " debug "])
def test_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    """MYSTIC_LOG_LEVEL=debug is DEBUG: lower-case was refused (new-user D4)."""
    monkeypatch.setenv("MYSTIC_LOG_LEVEL", given)
    assert load_settings().log_level == "DEBUG"


def test_log_level_defaults_to_warning() -> None:
    """The default is WARNING, what the command line always printed at."""
    assert load_settings().log_level == "WARNING"


def test_a_bad_log_level_names_the_accepted_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad level is a ConfigError listing every accepted level, and that case is free."""
    monkeypatch.setenv("MYSTIC_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "'loud'" in message
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        assert level in message
    assert "any case" in message


@pytest.mark.parametrize(
    ("toml", "suggestion"),
    [
        (
            '[throttle]\nlevle = "moderate"\n',
            "did you mean throttle.level (MYSTIC_THROTTLE__LEVEL)?",
        ),
        ('log_levle = "DEBUG"\n', "did you mean log_level (MYSTIC_LOG_LEVEL)?"),
        ('[throtle]\nlevel = "moderate"\n', "did you mean throttle (MYSTIC_THROTTLE)?"),
        (
            "[store]\nslow_query = 5\n",
            "did you mean store.slow_query_ms (MYSTIC_STORE__SLOW_QUERY_MS)?",
        ),
    ],
)
def test_a_misspelt_toml_key_suggests_the_closest_setting(
    tmp_path: Path, toml: str, suggestion: str
) -> None:
    """A TOML key typo said only "no such setting" (new-user D11); now it names the closest."""
    path = tmp_path / "mystic.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "no such setting" in str(info.value)
    assert suggestion in str(info.value)


def test_a_far_off_toml_key_suggests_nothing(tmp_path: Path) -> None:
    """No suggestion is better than a wrong one."""
    path = tmp_path / "mystic.toml"
    path.write_text("[throttle]\nxyzzy = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("MYSTIC_THROTLE__LEVEL", "did you mean MYSTIC_THROTTLE__LEVEL?"),
        ("MYSTIC_LOGLEVEL", "did you mean MYSTIC_LOG_LEVEL?"),
        ("MYSTIC_THROTTLE__LEVLE", "did you mean throttle.level (MYSTIC_THROTTLE__LEVEL)?"),
        ("MYSTIC_REDIS_ULR", "did you mean MYSTIC_REDIS_URL?"),
    ],
)
def test_a_misspelt_variable_suggests_the_closest_one(
    monkeypatch: pytest.MonkeyPatch, name: str, suggestion: str
) -> None:
    """A misspelt MYSTIC_ variable names the closest known one."""
    monkeypatch.setenv(name, "x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert suggestion in str(info.value)
