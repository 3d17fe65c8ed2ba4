"""Control state (the level and the ban) kept outside the process.

The store (``store/``) implements :class:`ControlStateStore` structurally, so a level set
from the CLI reaches every process and a ban survives a restart. Two real implementations
live here: :class:`MemoryControlStore` (one process, tests) and :class:`JsonFileControlStore`
(a small file, written atomically with ``os.replace``), which keeps a ban across a restart
without any server.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ControlStateStore", "JsonFileControlStore", "MemoryControlStore"]


class ControlStateStore(Protocol):
    """Where a provider's ban and level are kept."""

    async def load_ban(self, provider: str) -> int | None:
        """The ban's end (UTC epoch ms), or None."""
        ...

    async def save_ban(self, provider: str, until_ms: int, reason: str) -> None:
        """Keep a ban until ``until_ms``."""
        ...

    async def load_level(self, provider: str) -> str | None:
        """The level's name, or None when never set."""
        ...

    async def save_level(self, provider: str, level: str, *, actor: str, reason: str) -> None:
        """Keep the level, with who set it and why."""
        ...


class MemoryControlStore:
    """Control state in a dict: one process, gone with it."""

    def __init__(self) -> None:
        self.bans: dict[str, tuple[int, str]] = {}
        self.levels: dict[str, tuple[str, str, str]] = {}

    async def load_ban(self, provider: str) -> int | None:
        ban = self.bans.get(provider)
        return None if ban is None else ban[0]

    async def save_ban(self, provider: str, until_ms: int, reason: str) -> None:
        self.bans[provider] = (until_ms, reason)

    async def load_level(self, provider: str) -> str | None:
        level = self.levels.get(provider)
        return None if level is None else level[0]

    async def save_level(self, provider: str, level: str, *, actor: str, reason: str) -> None:
        self.levels[provider] = (level, actor, reason)


class JsonFileControlStore:
    """Control state in one JSON file, replaced atomically on every write."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def _update(self, provider: str, field: str, value: dict[str, Any]) -> None:
        async with self._lock:
            data = await asyncio.to_thread(self._read)
            data.setdefault(provider, {})[field] = value
            await asyncio.to_thread(self._write, data)

    async def _field(self, provider: str, field: str) -> dict[str, Any] | None:
        data = await asyncio.to_thread(self._read)
        entry = data.get(provider, {}).get(field)
        return entry if isinstance(entry, dict) else None

    async def load_ban(self, provider: str) -> int | None:
        entry = await self._field(provider, "ban")
        return None if entry is None else int(entry["until_ms"])

    async def save_ban(self, provider: str, until_ms: int, reason: str) -> None:
        await self._update(provider, "ban", {"until_ms": until_ms, "reason": reason})

    async def load_level(self, provider: str) -> str | None:
        entry = await self._field(provider, "level")
        return None if entry is None else str(entry["level"])

    async def save_level(self, provider: str, level: str, *, actor: str, reason: str) -> None:
        await self._update(provider, "level", {"level": level, "actor": actor, "reason": reason})
