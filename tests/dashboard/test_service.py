"""The dashboard's routes without a browser: the page and its assets, the hour of history
and the event stream, over a real service in front of the sandbox."""

from __future__ import annotations

import json
from typing import Any

import httpx

from mystic_trading.api._dashboard import FIELDS, SELF, DashboardSampler

from .conftest import Served


def _row(sample: list[Any]) -> dict[str, Any]:
    return dict(zip(FIELDS, sample, strict=True))


async def _frames(
    client: httpx.AsyncClient, url: str, count: int
) -> tuple[list[dict[str, Any]], int]:
    """The first ``count`` data frames of the stream at ``url`` and the bytes they took."""
    frames: list[dict[str, Any]] = []
    size = 0
    async with client.stream("GET", url) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for line in answer.aiter_lines():
            size += len(line.encode()) + 1
            if line.startswith("data: "):
                frames.append(json.loads(line.removeprefix("data: ")))
                if len(frames) == count:
                    break
    return frames, size


async def test_page_and_assets_come_from_the_package(served: Served) -> None:
    """/ is the page, and the script and stylesheet it names are served from the package
    with their types."""
    async with served.client() as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for asset, kind in (
            ("/dashboard/app.js", "javascript"),
            ("/dashboard/app.css", "text/css"),
        ):
            assert asset in page.text
            got = await client.get(asset)
            assert got.status_code == 200, asset
            assert kind in got.headers["content-type"]
            assert len(got.content) > 1000
        assert (await client.get("/dashboard/nothing.js")).status_code == 404


async def test_history_counts_requests_per_sample(served: Served) -> None:
    """A sample's requests and upstream columns are what this process answered since the
    previous sample; panels name the venue, the level and this process."""
    md = served.state.md
    sampler = served.sampler
    await sampler.sample(md)
    for _ in range(5):
        await md.ticker("BTCUSDT")
    await sampler.sample(md)
    row = _row(sampler.ring[-1])
    assert row["req"] == 5
    assert row["memory"] + row["upstream"] + row["redis"] + row["store"] == 5
    assert row["upstream"] >= 1
    assert row["limit"] > row["ceiling"] > 0
    async with served.client() as client:
        got = (await client.get("/api/v1/dashboard/history")).json()
    assert got["fields"] == list(FIELDS)
    assert len(got["samples"]) >= 2
    assert got["live"]["level"] == served.state.settings.throttle.level
    assert got["live"]["requests"] >= 5
    assert got["procs"][0]["id"] == SELF


async def test_the_ring_keeps_the_last_size_samples(served: Served) -> None:
    """A ring of 3 holds the last 3 samples, oldest first."""
    sampler = DashboardSampler(served.state, size=3)
    for _ in range(5):
        await sampler.sample(served.state.md)
    times = [_row(s)["t"] for s in sampler.ring]
    assert len(times) == 3
    assert times == sorted(times)
    assert sampler.samples_taken == 5


async def test_stream_sends_new_rows_and_only_changed_panels(served: Served) -> None:
    """The first frame carries every panel; later ones the new sample row and only the
    panels that changed (the audit log has not), with the symbol's ticker."""
    async with served.client() as client:
        frames, size = await _frames(client, "/api/v1/dashboard/stream?symbol=BTCUSDT", 3)
    first, *later = frames
    assert {"s", "live", "procs", "alerts", "audit", "ticker"} <= set(first)
    for frame in later:
        assert "audit" not in frame
        assert frame["ticker"]["symbol"] == "BTCUSDT"
        assert frame["ticker"]["layer"] in ("memory", "redis", "store", "upstream")
    times = [_row(f["s"])["t"] for f in frames]
    assert times == sorted(set(times))
    assert size / len(frames) < 2000


async def test_stream_refuses_a_bad_symbol_by_name(served: Served) -> None:
    """A malformed symbol is a 422 naming the parameter, an unlisted one a 404."""
    async with served.client() as client:
        bad = await client.get("/api/v1/dashboard/stream?symbol=bad%20one")
        unknown = await client.get("/api/v1/dashboard/stream?symbol=NOPEUSDT")
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "symbol"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_symbol"


async def test_closing_the_streams_ends_them_and_refuses_new_ones(served: Served) -> None:
    """When the server begins to stop, an open stream ends (its answer completes) and a new
    one is a 503 the page retries, until the service starts again."""
    frames = 0
    async with (
        served.client() as client,
        client.stream("GET", "/api/v1/dashboard/stream") as answer,
    ):
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                frames += 1
                served.sampler.close_streams()
        # Reaching here means the answer ended cleanly after the first frame.
        refused = await client.get("/api/v1/dashboard/stream")
    assert frames == 1
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "not_started"
