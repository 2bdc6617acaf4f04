"""Continuous concurrent load on AsyncContextPool, pages served on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser

from pytest_ctxleak import AsyncContextPool

CRAWLS = 40
CONCURRENCY = 8
SIGNATURES = 10
CAP = 4


@pytest.mark.asyncio(loop_scope="session")
async def test_crawls_under_load_stay_within_cap(
    ctxleak_async_browser: Browser, site: str
) -> None:
    pool = AsyncContextPool(ctxleak_async_browser, max_contexts=CAP, acquire_timeout=60)
    limit = asyncio.Semaphore(CONCURRENCY)
    browser_counts: list[int] = []
    done = asyncio.Event()

    async def watch_browser() -> None:
        # What Chromium itself holds, which must respect the cap too: a context
        # still closing counts until its close has finished.
        while not done.is_set():
            browser_counts.append(len(ctxleak_async_browser.contexts))
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch_browser())
    titles: list[str] = []

    async def crawl(number: int) -> None:
        viewport = {"width": 800 + number % SIGNATURES, "height": 600}
        async with limit, pool.acquire(viewport=viewport) as lease:
            page = await lease.new_page()
            await page.goto(f"{site}/item-{number}")
            titles.append(await page.title())

    results = await asyncio.gather(
        *(crawl(number) for number in range(CRAWLS)), return_exceptions=True
    )
    done.set()
    await watcher
    errors = [result for result in results if isinstance(result, BaseException)]
    peak = pool.ledger.occupied_peak
    entries = pool.ledger.entries()
    await pool.close()

    # Any error fails here, "Target closed" from a context closed under a crawl
    # among them.
    assert errors == []
    assert sorted(titles) == sorted(f"item-{number}" for number in range(CRAWLS))
    assert peak <= CAP
    assert max(browser_counts) <= CAP
    assert all(entry.refcount == 0 for entry in entries)
    assert pool.ledger.outstanding() == []
    assert not any(
        "Target" in str(error) and "closed" in str(error) for error in errors
    )
