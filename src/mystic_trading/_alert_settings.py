"""Alert rules: how long a health check must stay bad before an alert opens, how long it
must stay good before it resolves, and where alerts are sent.

An alert rule follows one health check (``monitor/_checks.py``, by its name) and its
warning and critical thresholds (``monitor.health``). Kept outside ``config.py`` beside
``_thresholds.py`` so that ``monitor/`` can import it without importing every setting.

The defaults and why: a check beyond a threshold for 60 s (two rounds at the default
``monitor.interval_s`` of 30 s, so one slow round never pages anyone) opens its alert, or
escalates it to critical; back within its thresholds for 120 s resolves it. Resolving
takes longer than firing so that a check hovering at its threshold keeps one alert open
instead of opening and resolving one every minute (hysteresis).
"""

from __future__ import annotations

import difflib
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mystic_trading._thresholds import CHECK_NAMES

__all__ = ["AlertRule", "AlertSettings", "RuleTiming"]

Seconds = Annotated[float, Field(ge=0)]


class AlertRule(BaseModel):
    """One check's alert timing, overriding the defaults of :class:`AlertSettings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    for_s: Seconds | None = None
    resolve_s: Seconds | None = None


class RuleTiming(BaseModel):
    """A rule as it applies: the defaults with its overrides laid over them."""

    model_config = ConfigDict(frozen=True)

    enabled: bool
    for_s: float
    resolve_s: float


class AlertSettings(BaseModel):
    """Alerts from the health checks, kept in the store and sent to an optional webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # A check beyond a threshold for this long opens (or escalates) its alert ...
    for_s: Seconds = 60.0
    # ... and back within its thresholds for this long resolves it (hysteresis: no flapping).
    resolve_s: Seconds = 120.0
    # Per check name (e.g. "upstream_success"): enabled, for_s, resolve_s.
    rules: dict[str, AlertRule] = Field(default_factory=dict)
    # Each event (opened, escalated, resolved) is POSTed here as JSON; the URL may carry a
    # token, so it is never logged whole (monitor/_webhook.py).
    webhook_url: str | None = None
    webhook_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    webhook_retries: Annotated[int, Field(ge=0, le=10)] = 3

    @field_validator("rules", mode="after")
    @classmethod
    def _known_checks(cls, rules: dict[str, AlertRule]) -> dict[str, AlertRule]:
        for name in rules:
            if name in CHECK_NAMES:
                continue
            close = difflib.get_close_matches(name, CHECK_NAMES, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"no health check is called {name!r}: {hint}rules are named after the checks "
                f"({', '.join(CHECK_NAMES)})"
            )
        return rules

    @field_validator("webhook_url", mode="after")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        try:
            parts = urlsplit(url.strip())
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"an http:// or https:// URL with a host ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host, e.g. https://host/hook")
        return url.strip()

    def rule(self, name: str) -> RuleTiming:
        """The timing of the rule that follows check ``name``."""
        own = self.rules.get(name)
        if own is None:
            return RuleTiming(enabled=True, for_s=self.for_s, resolve_s=self.resolve_s)
        return RuleTiming(
            enabled=own.enabled,
            for_s=self.for_s if own.for_s is None else own.for_s,
            resolve_s=self.resolve_s if own.resolve_s is None else own.resolve_s,
        )
