"""The plugin's fixtures: a session browser, a session pool, and function leases."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    sync_playwright,
)

from pytest_ctxleak.launch import launch_chromium
from pytest_ctxleak.pool import ContextPool, Lease
from pytest_ctxleak.settings import run_settings, settings_for


def _reject_running_loop(fixture: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"the '{fixture}' fixture uses Playwright's sync API, which cannot run inside "
        "an asyncio event loop; use a sync test, or an async browser and "
        "AsyncContextPool in async tests"
    )


@pytest.fixture(scope="session")
def ctxleak_playwright() -> Iterator[Playwright]:
    """Playwright's sync API for the session.

    Only one sync Playwright can run per thread, so launch further browsers from
    this object rather than from a second ``sync_playwright()``.
    """
    _reject_running_loop("ctxleak_playwright")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def ctxleak_browser(
    pytestconfig: pytest.Config, ctxleak_playwright: Playwright
) -> Iterator[Browser]:
    """A headless Chromium for the whole session."""
    settings = run_settings(pytestconfig)
    browser = launch_chromium(
        ctxleak_playwright, settings.browser_path, headed=settings.headed
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def context_pool(
    pytestconfig: pytest.Config, ctxleak_browser: Browser
) -> Iterator[ContextPool]:
    """A pool of contexts on ``ctxleak_browser``, capped at --ctxleak-max-contexts."""
    settings = run_settings(pytestconfig)
    pool = ContextPool(
        ctxleak_browser,
        max_contexts=settings.max_contexts,
        acquire_timeout=settings.acquire_timeout,
        close_timeout=settings.close_timeout,
    )
    yield pool
    pool.close()


@pytest.fixture
def ctxleak_context_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Options for the pooled_* fixtures: the marker's context_options by default.

    Override this fixture to set options for a module or a whole suite.
    """
    return dict(settings_for(request.node).context_options)


def _reject_async_test(request: pytest.FixtureRequest, fixture: str) -> None:
    function = getattr(request.node, "function", None)
    if function is not None and inspect.iscoroutinefunction(function):
        raise RuntimeError(
            f"'{fixture}' uses Playwright's sync API, which cannot run inside the "
            f"event loop of the async test {request.node.nodeid}; use "
            f"'async_{fixture}' with @pytest.mark.asyncio(loop_scope=\"session\")"
        )


@pytest.fixture
def pooled_lease(
    request: pytest.FixtureRequest,
    context_pool: ContextPool,
    ctxleak_context_options: dict[str, Any],
) -> Iterator[Lease]:
    """A lease on a pooled context, released after the test."""
    _reject_async_test(request, request.fixturename or "pooled_lease")
    with context_pool.acquire(**ctxleak_context_options) as lease:
        yield lease


@pytest.fixture
def pooled_context(pooled_lease: Lease) -> BrowserContext:
    """A pooled browser context, returned clean to the pool after the test."""
    return pooled_lease.context


@pytest.fixture
def pooled_page(pooled_lease: Lease) -> Page:
    """A new page in a pooled context, closed after the test."""
    return pooled_lease.new_page()
