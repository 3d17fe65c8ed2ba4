"""Throttle levels: operator-chosen ceilings on the rate, in the exchange's units.

A level is named in requests per second (conservative 5, moderate 20, aggressive 50,
unlimited) because that is how operators think. The exchange counts weight, so a level's
ceiling in weight per second is ``req/s * reference_weight``, where ``reference_weight`` is
the weight of the provider's typical call (Binance: 2, the weight of klines, avgPrice and a
one-symbol ticker). On Binance's 6000/min budget that makes conservative 10 weight/s (10 % of
the budget), moderate 40/s (40 %), aggressive 100/s (the whole budget, so in practice the
cap). Every ceiling is clamped to the exchange's safe rate (its limit less the safety margin,
per second: each exchange window is counted, see ``_gcra``); "unlimited" is exactly that
safe rate, never more.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mystic_trading.errors import ConfigError

__all__ = ["LEVELS", "Level", "LevelChange", "level_ceiling", "parse_level"]


class Level(enum.StrEnum):
    """The ladder, from the most cautious up."""

    CONSERVATIVE = "conservative"
    MODERATE = "moderate"
    AGGRESSIVE = "aggressive"
    UNLIMITED = "unlimited"

    @property
    def requests_per_s(self) -> float | None:
        """The nominal requests per second; None for unlimited."""
        return _REQUESTS_PER_S[self]

    def up(self) -> Level | None:
        """The next level up, or None at the top."""
        index = LEVELS.index(self)
        return LEVELS[index + 1] if index + 1 < len(LEVELS) else None

    def down(self) -> Level | None:
        """The next level down, or None at the bottom."""
        index = LEVELS.index(self)
        return LEVELS[index - 1] if index > 0 else None


_REQUESTS_PER_S: dict[Level, float | None] = {
    Level.CONSERVATIVE: 5.0,
    Level.MODERATE: 20.0,
    Level.AGGRESSIVE: 50.0,
    Level.UNLIMITED: None,
}
LEVELS: tuple[Level, ...] = tuple(Level)


def parse_level(value: str | Level, *, setting: str = "throttle.level") -> Level:
    """The level named ``value``; ConfigError naming ``setting`` otherwise."""
    try:
        return Level(str(value).strip().lower())
    except ValueError:
        names = ", ".join(level.value for level in LEVELS)
        raise ConfigError(
            f"unknown throttle level {value!r}; accepted: one of {names}",
            setting=setting,
            value=value,
        ) from None


def level_ceiling(level: Level, *, reference_weight: float, safe_rate: float) -> float:
    """The level's ceiling in weight per second, clamped to the exchange's ``safe_rate``."""
    nominal = level.requests_per_s
    if nominal is None:
        return safe_rate
    return min(nominal * reference_weight, safe_rate)


@dataclass(frozen=True, slots=True)
class LevelChange:
    """The answer to increase/decrease/set: where the level was, where it is, and why not."""

    provider: str
    old: Level
    new: Level
    moved: bool
    message: str
