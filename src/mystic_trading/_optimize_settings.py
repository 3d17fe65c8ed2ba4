"""Optimize: which recommendations may be applied, within which bounds, how often, and
how a change is watched and rolled back.

Kept outside ``config.py`` beside ``_thresholds.py`` so that ``monitor/`` can import it
without importing every setting.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OptimizeSettings"]

Seconds = Annotated[float, Field(gt=0)]


class OptimizeSettings(BaseModel):
    """``mystic optimize`` and the optional auto-optimize mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Auto-optimize in every long-lived process, one leader deciding (off by default).
    auto: bool = False
    # At least this long between two applied changes of a venue.
    cooldown_s: Seconds = 300.0
    # A change followed by 429s or worse latency within this window is rolled back.
    watch_s: Seconds = 120.0
