"""What the monitor measures itself: event-loop lag, process memory and free disk.

**Loop lag.** A task asks to sleep ``period_s`` and notes how late it woke: the time its
wake-up waited behind other callbacks, which is what every request of the process waits
too. Percentiles come from the samples of a window ending now (each sample keeps its time),
so the heartbeat (every 2 s) and the health round (every 30 s) read the same samples over
their own windows without taking them from each other. At the default period of 0.1 s the
probe costs ten wake-ups a second, a few microseconds each. The clock and the sleep are
injected: tests drive the probe with a clock that moves only when told.

**Memory** is the resident set (RSS) from ``/proc/self/statm`` (pages, current), falling back
to ``getrusage``'s peak resident set where there is no procfs (macOS: bytes; Linux: KiB).

**Free disk** is ``shutil.disk_usage`` of the SQLite file's directory: a store that cannot
grow fails every candle write.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mystic_trading._tasks import stop

__all__ = ["LoopLag", "free_disk_bytes", "process_rss_bytes"]

# Samples kept: at 0.1 s a sample, the last 400 s, more than any window read.
_SAMPLES = 4096


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


class LoopLag:
    """How late a periodic task wakes against when it asked to: the event loop's lag."""

    def __init__(
        self,
        period_s: float = 0.1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s!r}")
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._samples: deque[tuple[float, float]] = deque(maxlen=_SAMPLES)
        self._task: asyncio.Task[None] | None = None
        self.samples = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def aclose(self) -> None:
        """Stop sampling; idempotent."""
        task, self._task = self._task, None
        await stop(task)

    async def _run(self) -> None:
        while True:
            expected = self._clock() + self.period_s
            await self._sleep(self.period_s)
            woke = self._clock()
            self.record(woke, woke - expected)

    def record(self, at: float, lag_s: float) -> None:
        """One sample: at ``at`` (the clock's time) the loop was ``lag_s`` late."""
        self._samples.append((at, max(0.0, lag_s)))
        self.samples += 1

    def percentile_ms(self, q: float, window_s: float) -> float | None:
        """The ``q`` quantile (0..1) of the lag over the last ``window_s``, in ms; None
        without a sample in the window."""
        horizon = self._clock() - window_s
        values = [lag for at, lag in self._samples if at >= horizon]
        if not values:
            return None
        return _nearest_rank(values, q) * 1000

    def p99_ms(self, window_s: float) -> float | None:
        """The 99th percentile of the lag over the last ``window_s``, in ms."""
        return self.percentile_ms(0.99, window_s)


def process_rss_bytes() -> int | None:
    """This process's resident memory in bytes (current where procfs has it, else the
    peak); None when neither can be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def free_disk_bytes(path: str | Path) -> int:
    """Bytes free to an unprivileged user on the file system holding ``path``."""
    return shutil.disk_usage(path).free
