"""Async twins of the fixtures, for async tests run by pytest-asyncio.

The browser and the pool live in pytest-asyncio's session event loop, because
Playwright's async objects belong to the loop they were made in. Async tests that use
these fixtures must run in that loop: ``@pytest.mark.asyncio(loop_scope="session")``,
or ``asyncio_default_test_loop_scope = session`` in the ini file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from pytest_ctxleak.fixtures import context_options_for
from pytest_ctxleak.launch import launch_errors_explained, launch_options
from pytest_ctxleak.pool import AsyncContextPool, AsyncLease
from pytest_ctxleak.settings import run_settings


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ctxleak_async_browser(pytestconfig: pytest.Config) -> AsyncIterator[Browser]:
    """A headless Chromium for the whole session, on the session event loop."""
    settings = run_settings(pytestconfig)
    async with async_playwright() as playwright:
        options = launch_options(
            playwright.chromium.executable_path,
            settings.browser_path,
            headed=settings.headed,
        )
        with launch_errors_explained(options):
            browser = await playwright.chromium.launch(**options)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def async_context_pool(
    pytestconfig: pytest.Config, ctxleak_async_browser: Browser
) -> AsyncIterator[AsyncContextPool]:
    """An AsyncContextPool on ``ctxleak_async_browser``."""
    settings = run_settings(pytestconfig)
    pool = AsyncContextPool(
        ctxleak_async_browser,
        max_contexts=settings.max_contexts,
        acquire_timeout=settings.acquire_timeout,
        close_timeout=settings.close_timeout,
    )
    yield pool
    await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def async_pooled_lease(
    request: pytest.FixtureRequest,
    async_context_pool: AsyncContextPool,
    ctxleak_context_options: dict[str, Any],
) -> AsyncIterator[AsyncLease]:
    """A lease on a pooled context, released after the test."""
    options = context_options_for(request, ctxleak_context_options)
    async with async_context_pool.acquire(**options) as lease:
        yield lease


@pytest_asyncio.fixture(loop_scope="session")
async def async_pooled_context(async_pooled_lease: AsyncLease) -> BrowserContext:
    """A pooled browser context, returned clean to the pool after the test."""
    return async_pooled_lease.context


@pytest_asyncio.fixture(loop_scope="session")
async def async_pooled_page(async_pooled_lease: AsyncLease) -> Page:
    """A new page in a pooled context, closed after the test."""
    return await async_pooled_lease.new_page()
