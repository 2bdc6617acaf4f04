"""Recovery from a dead session browser: relaunch it before the next test.

A renderer crash costs one page, but a browser that crashed, was killed or lost its
connection takes every context and page with it. The session fixtures
``ctxleak_browser`` and ``context_pool`` would keep handing the dead objects to
every later test, and each of those would fail with the same secondary error. So
before each test's fixtures are set up, a disconnected ``ctxleak_browser`` is
finalized, together with every fixture that depends on it (``context_pool`` among
them), and pytest creates them again for the test that asks for them.

When such a test fails, its report gets a section that names the fault: the
session browser disconnected, or the renderer process of a pooled page crashed.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import pytest

from pytest_ctxleak.pool import open_pools

logger = logging.getLogger("pytest_ctxleak")

BROWSER_FIXTURE = "ctxleak_browser"

# The session browser seen by the running test, so the report can tell that it died
# during this test rather than before.
_BROWSER_AT_SETUP = pytest.StashKey[Any]()


def _cached_browser(item: pytest.Item) -> tuple[Any, Any] | None:
    """Return (fixture definition, browser) of a set-up ``ctxleak_browser``."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get(BROWSER_FIXTURE) if info else None
    if not definitions:
        return None
    # The last definition is the one this item uses; earlier ones are overridden.
    definition = definitions[-1]
    cached = definition.cached_result
    if cached is None or cached[2] is not None:
        return None
    browser = cached[0]
    if not callable(getattr(browser, "is_connected", None)):
        return None  # an overriding fixture that returns something else
    return definition, browser


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Finalize a disconnected session browser so the test gets a new one."""
    _take_crashes()  # crashes before this test are not its own
    found = _cached_browser(item)
    if found is None:
        return
    definition, browser = found
    if not browser.is_connected():
        logger.warning(
            "the session browser (%s) is disconnected; launching a new one for %s",
            BROWSER_FIXTURE,
            item.nodeid,
        )
        # NOTE: FixtureDef.finish() runs the fixture's finalizers, including those
        # of the fixtures that depend on it, and clears its cache; pytest then sets
        # it up again for this test. It is public on pytest.FixtureDef in pytest 8
        # and 9, but documented only as part of the fixture machinery.
        definition.finish(item._request)  # type: ignore[attr-defined]
        return
    item.stash[_BROWSER_AT_SETUP] = browser


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when != "call" or not report.failed:
        return report
    for page in _take_crashes():
        report.sections.append(
            (
                "ctxleak",
                f"the renderer process of {page} crashed during this test; the "
                "pool closes that context instead of reusing it",
            )
        )
    browser = item.stash.get(_BROWSER_AT_SETUP, None)
    if browser is None:
        found = _cached_browser(item)
        browser = found[1] if found else None
    if browser is not None and not browser.is_connected():
        report.sections.append(
            (
                "ctxleak",
                f"the session browser ({BROWSER_FIXTURE}) disconnected during this "
                "test: it crashed, was killed or was closed. Its contexts are gone, "
                "and the next test that needs it gets a new browser.",
            )
        )
    return report


def _take_crashes() -> list[str]:
    crashes: list[str] = []
    for pool in open_pools():
        take = getattr(pool, "take_crashes", None)
        if take is not None:
            crashes += take()
    return crashes
