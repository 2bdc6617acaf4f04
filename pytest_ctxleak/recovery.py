"""Recovery from a dead session browser: relaunch it before the next test.

A renderer crash costs one page, but a browser that crashed, was killed or lost its
connection takes every context and page with it. The session fixtures
``ctxleak_browser`` and ``context_pool`` (or their async twins) would keep handing
the dead objects to every later test, and each of those would fail with the same
secondary error. So before each test's fixtures are set up, a disconnected session
browser is finalized, together with every fixture that depends on it, and pytest
creates them again for the test that requests them.

When such a test fails, its report gets a section that names the fault: the
session browser disconnected, or the renderer process of a pooled page crashed.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pytest_ctxleak.pool import open_pools

logger = logging.getLogger("pytest_ctxleak")

# The session browsers of the sync and the async fixtures.
BROWSER_FIXTURES = ("ctxleak_browser", "ctxleak_async_browser")

# The session browsers seen by the running test, by fixture name, so the report can
# tell that one died during this test rather than before.
_BROWSERS_AT_SETUP = pytest.StashKey[dict[str, Any]]()


def _cached_browser(item: pytest.Item, name: str) -> tuple[Any, Any] | None:
    """Return (fixture definition, browser) of a set-up session browser fixture."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get(name) if info else None
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


def before_setup(item: pytest.Item) -> None:
    """Finalize a disconnected session browser so the test gets a new one.

    The plugin calls it first in the test's setup, before any fixture.
    """
    _take_crashes()  # crashes before this test are not its own
    names = getattr(item, "fixturenames", ())
    if not any(name in names for name in BROWSER_FIXTURES):
        return  # the usual case for a test without a browser: nothing to look up
    seen: dict[str, Any] = {}
    for name in BROWSER_FIXTURES:
        found = _cached_browser(item, name)
        if found is None:
            continue
        definition, browser = found
        if browser.is_connected():
            seen[name] = browser
            continue
        logger.warning(
            "the session browser (%s) is disconnected; launching a new one for %s",
            name,
            item.nodeid,
        )
        # NOTE: FixtureDef.finish() runs the fixture's finalizers, including those
        # of the fixtures that depend on it, and clears its cache; pytest then sets
        # it up again for this test. It is public on pytest.FixtureDef in pytest 8
        # and 9, but documented only as part of the fixture machinery.
        definition.finish(item._request)  # type: ignore[attr-defined]
    item.stash[_BROWSERS_AT_SETUP] = seen


def explain_failure(item: pytest.Item, report: pytest.TestReport) -> None:
    """Name a crash or a lost browser in the report of a test call that failed."""
    for page in _take_crashes():
        report.sections.append(
            (
                "ctxleak",
                f"the renderer process of {page} crashed during this test; the "
                "pool closes that context instead of reusing it",
            )
        )
    at_setup = item.stash.get(_BROWSERS_AT_SETUP, None) or {}
    browsers = dict(at_setup)
    for name in BROWSER_FIXTURES:
        found = _cached_browser(item, name)
        if found is not None:
            browsers.setdefault(name, found[1])
    for name, browser in browsers.items():
        if not browser.is_connected():
            report.sections.append(
                (
                    "ctxleak",
                    f"the session browser ({name}) disconnected during this test: "
                    "it crashed, was killed or was closed. Its contexts are gone, "
                    "and the next test that needs it gets a new browser.",
                )
            )


def _take_crashes() -> list[str]:
    crashes: list[str] = []
    for pool in open_pools():  # usually none, for a test without a browser
        take = getattr(pool, "take_crashes", None)
        if take is not None:
            crashes += take()
    return crashes
