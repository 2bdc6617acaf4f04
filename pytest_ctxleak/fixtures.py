"""The plugin's fixtures: a session browser, a session pool, and function leases."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    sync_playwright,
)

from pytest_ctxleak.holders_async import is_async
from pytest_ctxleak.launch import launch_errors_explained, launch_options
from pytest_ctxleak.pool import ContextPool, Lease
from pytest_ctxleak.settings import run_settings, settings_for
from pytest_ctxleak.signature import make_signature


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
def ctxleak_launch_options(
    pytestconfig: pytest.Config, ctxleak_playwright: Playwright
) -> dict[str, Any]:
    """Arguments for ``ctxleak_playwright.chromium.launch(**ctxleak_launch_options)``.

    They name the Chromium the plugin found (the configured path, Playwright's own,
    or one on PATH) and flags that work as root, in containers and offline.
    """
    settings = run_settings(pytestconfig)
    bundled = ctxleak_playwright.chromium.executable_path
    return launch_options(bundled, settings.browser_path, headed=settings.headed)


@pytest.fixture(scope="session")
def ctxleak_browser(
    ctxleak_playwright: Playwright, ctxleak_launch_options: dict[str, Any]
) -> Iterator[Browser]:
    """A headless Chromium for the whole session."""
    with launch_errors_explained(ctxleak_launch_options):
        browser = ctxleak_playwright.chromium.launch(**ctxleak_launch_options)
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
def ctxleak_context_options() -> dict[str, Any]:
    """new_context options for the pooled_* fixtures; none by default.

    Override this fixture to set options for a module or a whole suite. A test's
    ``@pytest.mark.ctxleak(context_options=...)`` is applied on top of it.
    """
    return {}


def context_options_for(
    request: pytest.FixtureRequest, fixture_options: object
) -> dict[str, Any]:
    """Merge the options fixture with the marker's, and validate the result."""
    if not isinstance(fixture_options, Mapping):
        pytest.fail(
            "ctxleak: the ctxleak_context_options fixture returned "
            f"{type(fixture_options).__name__}; it must return a dict of "
            "Browser.new_context options",
            pytrace=False,
        )
    options = {**fixture_options, **settings_for(request.node).context_options}
    try:
        make_signature(options)
    except (TypeError, ValueError) as error:
        pytest.fail(f"ctxleak: invalid ctxleak_context_options: {error}", pytrace=False)
    return options


def _reject_async_test(request: pytest.FixtureRequest, fixture: str) -> None:
    function = getattr(request.node, "function", None)
    if function is not None and inspect.iscoroutinefunction(function):
        raise RuntimeError(
            f"'{fixture}' uses Playwright's sync API, which cannot run inside the "
            f"event loop of the async test {request.node.nodeid}; use "
            f"'async_{fixture}' with @pytest.mark.asyncio(loop_scope=\"session\")"
        )


# The sync fixtures, each with its async twin, in the order a message names them:
# the most specific one a test uses first.
SYNC_FIXTURES = {
    "pooled_lease": "async_pooled_lease",
    "pooled_page": "async_pooled_page",
    "pooled_context": "async_pooled_context",
    "context_pool": "async_context_pool",
    "ctxleak_browser": "ctxleak_async_browser",
    "ctxleak_launch_options": "ctxleak_async_browser",
    "ctxleak_playwright": "ctxleak_async_browser",
}


def reject_sync_fixtures(item: pytest.Item) -> None:
    """Fail an async test that uses a sync fixture, naming the async twin.

    Without this, the sync fixture starts Playwright's sync API and the test fails
    later inside pytest-asyncio or anyio with an error about a running event loop.
    """
    function = getattr(item, "function", None)
    if function is None or not is_async(function):
        return
    names = getattr(item, "fixturenames", ())
    for fixture, twin in SYNC_FIXTURES.items():
        if fixture in names:
            pytest.fail(
                f"'{fixture}' uses Playwright's sync API, which cannot run inside "
                f"the event loop of the async test {item.nodeid}; use '{twin}' "
                'with @pytest.mark.asyncio(loop_scope="session")',
                pytrace=False,
            )


@pytest.fixture
def pooled_lease(
    request: pytest.FixtureRequest,
    context_pool: ContextPool,
    ctxleak_context_options: dict[str, Any],
) -> Iterator[Lease]:
    """A lease on a pooled context, released after the test."""
    _reject_async_test(request, request.fixturename or "pooled_lease")
    options = context_options_for(request, ctxleak_context_options)
    with context_pool.acquire(**options) as lease:
        yield lease


@pytest.fixture
def pooled_context(pooled_lease: Lease) -> BrowserContext:
    """A pooled browser context, returned clean to the pool after the test."""
    return pooled_lease.context


@pytest.fixture
def pooled_page(pooled_lease: Lease) -> Page:
    """A new page in a pooled context, closed after the test."""
    return pooled_lease.new_page()
