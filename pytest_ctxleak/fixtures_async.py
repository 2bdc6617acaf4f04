"""Async twins of the fixtures, for async tests run by pytest-asyncio or anyio.

The browser and the pool live in one event loop for the whole session, because
Playwright's async objects belong to the loop they were made in. The bodies here are
shared; ``asyncio_fixtures`` and ``anyio_fixtures`` wrap them for each runner:

- pytest-asyncio: tests run in the session loop,
  ``@pytest.mark.asyncio(loop_scope="session")``.
- anyio: tests are marked ``@pytest.mark.anyio``, and ``anyio_backend`` must be a
  session-scoped fixture returning ``"asyncio"``, since Playwright runs on asyncio.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from pytest_ctxleak.fixtures import context_options_for
from pytest_ctxleak.launch import launch_errors_explained, launch_options
from pytest_ctxleak.pool import AsyncContextPool, AsyncLease
from pytest_ctxleak.settings import run_settings


async def browser_session(config: pytest.Config) -> AsyncIterator[Browser]:
    """Launch a headless Chromium for the whole session."""
    settings = run_settings(config)
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


async def pool_session(
    config: pytest.Config, browser: Browser
) -> AsyncIterator[AsyncContextPool]:
    """Create an AsyncContextPool on ``browser`` with the run's settings."""
    settings = run_settings(config)
    pool = AsyncContextPool(
        browser,
        max_contexts=settings.max_contexts,
        acquire_timeout=settings.acquire_timeout,
        close_timeout=settings.close_timeout,
    )
    yield pool
    await pool.close()


async def lease_for_test(
    request: pytest.FixtureRequest, pool: AsyncContextPool, options: object
) -> AsyncIterator[AsyncLease]:
    """Hold a lease with the test's context options until the test ends."""
    merged = context_options_for(request, options)
    async with pool.acquire(**merged) as lease:
        yield lease


def _fixtures(session: Callable[[Any], Any], function: Callable[[Any], Any]) -> Any:
    """Build the fixtures with the runner's decorators, as a module to register."""
    plugin = types.ModuleType("pytest_ctxleak.async_fixtures")

    async def ctxleak_async_browser(
        request: pytest.FixtureRequest, pytestconfig: pytest.Config
    ) -> AsyncIterator[Browser]:
        """A headless Chromium for the whole session, on the session loop."""
        if "anyio_backend" in request.fixturenames:
            _require_asyncio(request.getfixturevalue("anyio_backend"))
        async for browser in browser_session(pytestconfig):
            yield browser

    async def async_context_pool(
        pytestconfig: pytest.Config, ctxleak_async_browser: Browser
    ) -> AsyncIterator[AsyncContextPool]:
        """An AsyncContextPool on ``ctxleak_async_browser``."""
        async for pool in pool_session(pytestconfig, ctxleak_async_browser):
            yield pool

    async def async_pooled_lease(
        request: pytest.FixtureRequest,
        async_context_pool: AsyncContextPool,
        ctxleak_context_options: dict[str, Any],
    ) -> AsyncIterator[AsyncLease]:
        """A lease on a pooled context, released after the test."""
        pool, options = async_context_pool, ctxleak_context_options
        async for lease in lease_for_test(request, pool, options):
            yield lease

    async def async_pooled_context(async_pooled_lease: AsyncLease) -> BrowserContext:
        """A pooled browser context, returned clean to the pool after the test."""
        return async_pooled_lease.context

    async def async_pooled_page(async_pooled_lease: AsyncLease) -> Page:
        """A new page in a pooled context, closed after the test."""
        return await async_pooled_lease.new_page()

    session_fixtures: list[Callable[..., Any]] = [
        ctxleak_async_browser,
        async_context_pool,
    ]
    function_fixtures: list[Callable[..., Any]] = [
        async_pooled_lease,
        async_pooled_context,
        async_pooled_page,
    ]
    for fixture in session_fixtures:
        setattr(plugin, fixture.__name__, session(fixture))
    for fixture in function_fixtures:
        setattr(plugin, fixture.__name__, function(fixture))
    return plugin


def asyncio_fixtures() -> Any:
    """Return the fixtures for pytest-asyncio, in its session event loop."""
    import pytest_asyncio

    return _fixtures(
        pytest_asyncio.fixture(scope="session", loop_scope="session"),
        pytest_asyncio.fixture(loop_scope="session"),
    )


def anyio_fixtures() -> Any:
    """Return the fixtures for anyio's pytest plugin."""
    return _fixtures(pytest.fixture(scope="session"), pytest.fixture)


def _require_asyncio(backend: object) -> None:
    # NOTE: untested here, since trio is not installed; anyio itself may fail first
    # when the trio backend is missing.
    name = backend[0] if isinstance(backend, tuple) else backend
    if name != "asyncio":
        pytest.fail(
            f"ctxleak: the async fixtures need anyio's asyncio backend, got {name!r}; "
            "Playwright runs on asyncio. Define a session-scoped anyio_backend "
            "fixture that returns 'asyncio'.",
            pytrace=False,
        )
