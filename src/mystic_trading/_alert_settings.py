"""Alert rules: how long a health check must stay bad before an alert opens, how long it
must stay good before it resolves, and where alerts are sent.

An alert rule follows one health check (``monitor/_checks.py``, by its name) and its
warning and critical thresholds (``monitor.health``). Kept outside ``config.py`` beside
``_thresholds.py`` so that ``monitor/`` can import it without importing every setting.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AlertRule", "AlertSettings"]

Seconds = Annotated[float, Field(ge=0)]


class AlertRule(BaseModel):
    """One check's alert timing, overriding the defaults of :class:`AlertSettings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    for_s: Seconds | None = None
    resolve_s: Seconds | None = None


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
    webhook_url: str | None = None
    webhook_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    webhook_retries: Annotated[int, Field(ge=0, le=10)] = 3
