"""The dashboard in Debian's Chromium (Playwright): it loads without console errors, its
charts draw a running workload's figures, the live figures move, decrease with the admin
token changes the level and a wrong token shows an error; a screenshot under load is kept;
the axes are readable; the page comes back live after the service refused its stream."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.async_api import Page, expect

from mystic_trading.sandbox import SandboxServer
from mystic_trading.throttle import parse_level

from .conftest import (
    TOKEN,
    Served,
    browser_page,
    dashboard_settings,
    refusing,
    serving,
    workload,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT")
README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


async def _number(page: Page, selector: str, attribute: str) -> float:
    value = await page.get_attribute(selector, attribute)
    assert value not in (None, ""), (selector, attribute)
    return float(value)


async def _open(page: Page, served: Served) -> None:
    await page.goto(served.url + "/")
    await page.wait_for_selector("body[data-ready='1']")


# Per drawn chart: its id, its tick labels on each axis, and how far its leftmost text
# starts from the chart's left edge (negative: clipped).
_TICKS = """() => [...document.querySelectorAll("svg.chart[data-drawn='1'], #chart-candles")]
  .filter((svg) => svg.querySelector("text.y-tick"))
  .map((svg) => ({
    id: svg.id,
    y: [...svg.querySelectorAll("text.y-tick")].map((t) => t.textContent),
    x: [...svg.querySelectorAll("text.x-tick")].map((t) => t.firstChild.nodeValue),
    left: Math.min(...[...svg.querySelectorAll("text")].map((t) => t.getBBox().x)),
  }))"""


async def _assert_axes_readable(page: Page) -> None:
    """Every drawn chart's tick labels differ from each other along an axis, and none
    starts left of the chart (clipped)."""
    charts = await page.evaluate(_TICKS)
    assert {c["id"] for c in charts} >= {"chart-weight", "chart-layers", "chart-candles"}
    for chart in charts:
        assert len(set(chart["y"])) == len(chart["y"]) == 3, chart
        assert len(set(chart["x"])) == len(chart["x"]) >= 2, chart
        assert chart["left"] >= 0, chart


async def test_charts_draw_the_workload_and_figures_move(
    chromium: str, served: Served, artifacts: Path
) -> None:
    """Under a workload the page logs no error, the layer and weight charts draw its
    figures (read back from the SVG), the live figures change from frame to frame, the
    market panel draws the candles the API gives, and a screenshot is kept."""
    async with workload(served.url, SYMBOLS), browser_page(chromium) as (page, errors):
        await _open(page, served)
        # Two frames after the load: both panels have samples with requests in them.
        await page.wait_for_function("Number(document.body.dataset.frames || 0) >= 2")
        await page.wait_for_function(
            "Number(document.querySelector('#chart-layers path[data-series=memory]')"
            ".dataset.max || 0) > 0"
        )
        assert await page.get_attribute("#chart-layers", "data-drawn") == "1"
        assert await _number(page, "#chart-layers", "data-points") >= 2
        limit = await _number(page, "#chart-weight path[data-series=limit]", "data-last")
        ceiling = await _number(page, "#chart-weight path[data-series=ceiling]", "data-last")
        assert limit > ceiling > 0
        async with served.client() as client:
            status = (await client.get("/api/v1/status")).json()
        assert ceiling == round(status["level"]["ceiling_weight_per_min"], 1)
        assert await _number(page, "#chart-latency path[data-series=p95]", "data-max") > 0
        assert await page.is_hidden("#empty")
        assert await page.locator("#procs tbody tr[data-state=alive]").count() >= 1

        first = await _number(page, "#fig-requests", "data-value")
        frames = await _number(page, "body", "data-frames")
        await page.wait_for_function(
            f"Number(document.body.dataset.frames) >= {frames + 2} && "
            f"Number(document.querySelector('#fig-requests').dataset.value) > {first}"
        )

        await page.fill("#symbol", "BTCUSDT")
        await page.click("#market-form button[type=submit]")
        await page.wait_for_function(
            "Number(document.querySelector('#chart-candles').dataset.candles || 0) > 0"
        )
        async with served.client() as client:
            api = (await client.get("/api/v1/candles/BTCUSDT?interval=1m&limit=60")).json()
        drawn = page.locator("#chart-candles g.candle")
        assert await drawn.count() == len(api["candles"])
        first_candle = api["candles"][0]
        assert await drawn.first.get_attribute("data-open-time") == str(first_candle["open_time"])
        assert await drawn.first.get_attribute("data-close") == first_candle["close"]
        layer = await page.get_attribute("#chart-candles", "data-layer")
        assert layer in ("memory", "redis", "store", "upstream")
        # A band per part of the window, each where its range was read; together they hold
        # every candle drawn.
        bands = page.locator("#chart-candles rect.layer-band")
        assert await bands.count() >= 1
        banded = 0
        for k in range(await bands.count()):
            band = bands.nth(k)
            assert await band.get_attribute("data-layer") in ("store", "upstream")
            banded += int(await band.get_attribute("data-candles") or 0)
        assert banded == await drawn.count()
        assert "read " in await page.inner_text("#candles-source")
        await page.wait_for_selector("#ticker[data-price]")
        await page.wait_for_timeout(500)  # let the last frame draw before the picture
        await _assert_axes_readable(page)
        # The processes table shows every column without scrolling on a laptop.
        table = await page.evaluate(
            "(() => { const s = document.querySelector('#procs').parentElement;"
            " return [s.scrollWidth, s.clientWidth]; })()"
        )
        assert table[0] <= table[1], table
        shot = artifacts / "dashboard-under-load.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert errors == []
    assert shot.stat().st_size > 10_000
    if os.environ.get("MYSTIC_README_SCREENSHOT"):  # refresh the README's picture on purpose
        README_SHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, README_SHOT)


async def test_decrease_needs_the_right_token(chromium: str, served: Served) -> None:
    """A wrong token shows the service's refusal and is forgotten; the right one lowers the
    level one step, as GET /api/v1/status then says, and the page shows what changed."""
    async with served.client() as client:
        before = (await client.get("/api/v1/status")).json()["level"]["name"]
    expected = parse_level(before).down()
    assert expected is not None
    async with browser_page(chromium) as (page, errors):
        await _open(page, served)
        await page.click("button[data-op=decrease]")
        await expect(page.locator("#token-form")).to_be_visible()
        await page.fill("#token-input", "not-the-token")
        await page.press("#token-input", "Enter")
        result = page.locator("#action-result[data-kind=error]")
        await expect(result).to_contain_text("401")
        await expect(result).to_contain_text("unauthorized")
        async with served.client() as client:
            still = (await client.get("/api/v1/status")).json()["level"]["name"]
        assert still == before

        await page.focus("button[data-op=decrease]")  # reachable from the keyboard
        await page.keyboard.press("Enter")
        await expect(page.locator("#token-form")).to_be_visible()
        await page.fill("#token-input", TOKEN)
        await page.press("#token-input", "Enter")
        done = page.locator("#action-result[data-kind=done]")
        await expect(done).to_contain_text(f"{before} -> {expected.value}")
        async with served.client() as client:
            after = (await client.get("/api/v1/status")).json()["level"]["name"]
        assert after == expected.value
        await expect(page.locator("#level")).to_have_attribute("data-level", expected.value)
        await expect(page.locator("#audit li[data-field]").first).to_contain_text(expected.value)
        # Chromium logs the refused request itself; nothing else may be logged.
        assert len(errors) == 1
        assert "status of 401" in errors[0]


async def test_an_empty_deployment_says_what_to_do(chromium: str, served: Served) -> None:
    """With nothing requested yet the page explains how to start instead of empty charts,
    and it fits a phone's width without scrolling sideways."""
    async with browser_page(chromium) as (page, errors):
        await page.set_viewport_size({"width": 390, "height": 844})
        await _open(page, served)
        await expect(page.locator("#empty")).to_be_visible()
        await expect(page.locator("#empty")).to_contain_text("/api/v3/ticker/price")
        wide = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0
        assert errors == []


async def test_the_page_comes_back_live_after_the_service_refused_it(
    chromium: str, exchange: SandboxServer, tmp_path: Path
) -> None:
    """The service stops and its port answers 503 for a while (a proxy in front of a
    restarting service): the browser's EventSource gives up on a 503, the page shows it is
    disconnected and keeps trying, and once the service is back it is live again, with the
    history loaded again and frames arriving."""
    settings = dashboard_settings(exchange, tmp_path)
    async with browser_page(chromium) as (page, errors):
        conn = page.locator("#conn")
        async with serving(settings) as first:
            port = int(first.url.rsplit(":", 1)[1])
            await _open(page, first)
            await expect(conn).to_have_attribute("data-state", "live")
            histories = await _number(page, "body", "data-histories")
        async with refusing(port):
            await expect(conn).to_have_attribute("data-state", "down", timeout=30_000)
            await expect(conn).to_contain_text("retrying")
        async with serving(settings, port=port) as second:
            await expect(conn).to_have_attribute("data-state", "live", timeout=60_000)
            assert await _number(page, "body", "data-retries") >= 1
            assert await _number(page, "body", "data-histories") > histories
            frames = await _number(page, "body", "data-frames")
            await page.wait_for_function(f"Number(document.body.dataset.frames) > {frames}")
            assert await page.get_attribute("#level", "data-level") == (
                second.state.settings.throttle.level
            )
        # Chromium logs the refused requests; the page itself threw nothing.
        assert [e for e in errors if not e.startswith("console: ")] == []
