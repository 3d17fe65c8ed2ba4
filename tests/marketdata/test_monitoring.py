"""A process opened with MarketData.open beats and checks its health (issue 12 items 1-2,
wired): its heartbeat is in the deployment's registry, `md.health()` runs a round, and with
`monitor.enabled` off neither happens."""

from __future__ import annotations

import pytest

from mystic_trading.errors import ConfigError
from mystic_trading.monitor import ProcessRegistry

from .conftest import OpenMd


async def test_an_open_process_beats_and_answers_health(open_md: OpenMd) -> None:
    async with open_md() as md:
        await md.ticker("BTCUSDT")
        report = await md.health()
        names = {c.name for c in report.checks}
        assert {"store_round_trip", "upstream_success", "ban", "clock_offset", "heartbeat"} <= names
        assert report.overall in ("ok", "warning"), report.as_dict()
        store = report.check("store_round_trip")
        assert store is not None
        assert store.status == "ok"
        deployment = await ProcessRegistry(md.store).read(md.provider.venue)
        assert len(deployment.alive) == 1
        beat = deployment.alive[0].heartbeat
        assert beat.venue == md.provider.venue
    after = await _registry_after_close(open_md)
    assert after == (0, 1), "a cleanly closed process is kept, not alive"


async def _registry_after_close(open_md: OpenMd) -> tuple[int, int]:
    async with open_md(monitor={"enabled": False}) as md:
        deployment = await ProcessRegistry(md.store).read()
        return len(deployment.alive), len(deployment.processes)


async def test_with_monitoring_off_there_is_no_beat_and_no_health(open_md: OpenMd) -> None:
    async with open_md(monitor={"enabled": False}) as md:
        assert md.monitor is None
        with pytest.raises(ConfigError, match=r"monitor\.enabled"):
            await md.health()
        assert (await ProcessRegistry(md.store).read()).processes == ()
