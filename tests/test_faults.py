"""Faults in the browser, survived: each inner run breaks something mid-test, then
proves with the tests that follow that the pool and the browser recovered.

Every fault is real: processes of the Chromium that the inner run launched are
killed or stopped, found through psutil among the inner pytest's own descendants.
Each inner run ends with a test that checks the ledger's invariants.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# The inner runs' conftest: a loopback site, and the Chromium processes of this
# inner pytest, which are all descendants of it.
CONFTEST = """
import http.server
import os
import signal
import threading

import psutil
import pytest


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><title>page</title><h1>page</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def chromium_processes(kind=None):
    # kind None: the browser process itself; else a --type= such as renderer.
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            command = process.cmdline()
        except psutil.Error:
            continue
        if not command or "chrom" not in os.path.basename(command[0]):
            continue
        types = [arg for arg in command if arg.startswith("--type=")]
        if (kind is None and not types) or f"--type={kind}" in types:
            found.append(process)
    return found


@pytest.fixture
def frozen():
    # Processes a test stopped with SIGSTOP; resumed once the pool has given up
    # on them, so the next test finds a working browser.
    stopped = []
    yield stopped
    for process in stopped:
        os.kill(process.pid, signal.SIGCONT)
"""

# Tests that follow every fault: the pool and the browser work, and the ledger
# is consistent.
AFTER = """

def test_next_page_works(pooled_page, site):
    assert pooled_page.goto(site).ok


def test_browser_and_pool_recovered(ctxleak_browser, context_pool):
    assert ctxleak_browser.is_connected()
    with context_pool.acquire(locale="de-DE") as lease:
        assert lease.new_page().evaluate("navigator.language") == "de-DE"
    context_pool.ledger.check_invariants()
    assert context_pool.ledger.outstanding() == []
    for context in context_pool.contexts():
        assert context in ctxleak_browser.contexts
"""


def run(pytester: pytest.Pytester, test_file: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_fault=test_file + AFTER)
    return pytester.runpytest_subprocess(
        "-p", "ctxleak", "-p", "no:cacheprovider", "-rA", *args
    )


def assert_no_cascade(result: pytest.RunResult) -> None:
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "ERROR at teardown" not in output
    assert "ERROR at setup" not in output
    assert "was left open" not in output


def test_renderer_killed_mid_test(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
from conftest import chromium_processes

def test_renderer_dies(pooled_page, site):
    pooled_page.goto(site)
    for process in chromium_processes("renderer"):
        process.kill()
    pooled_page.evaluate("1 + 1")

def test_crashed_context_not_reused(context_pool):
    assert [entry.entry_id for entry in context_pool.ledger.entries()] == []
""",
    )
    result.assert_outcomes(failed=1, passed=3)
    assert_no_cascade(result)
    result.stdout.fnmatch_lines(
        [
            "*Page.evaluate: Target crashed",
            "*- ctxleak -*",
            "the renderer process of a page (http://127.0.0.1:*) of context #1 "
            "(default options) crashed during this test; the pool closes that "
            "context instead of reusing it",
        ]
    )


def test_browser_killed_mid_test(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
from conftest import chromium_processes

def test_browser_dies(pooled_page, site):
    pooled_page.goto(site)
    for process in chromium_processes():
        process.kill()
    pooled_page.goto(site + "/again")
""",
    )
    result.assert_outcomes(failed=1, passed=2)
    assert_no_cascade(result)
    result.stdout.fnmatch_lines(
        [
            "*TargetClosedError: Page.goto: Target page, context or browser has "
            "been closed",
            "*- ctxleak -*",
            "the session browser (ctxleak_browser) disconnected during this test: "
            "it crashed, was killed or was closed.*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*WARNING*the session browser (ctxleak_browser) is disconnected; "
            "launching a new one for test_fault.py::test_next_page_works"
        ]
    )
    assert result.stdout.str().count("Warning") == 0


def test_browser_disconnected_by_close(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_closes_session_browser(pooled_page, ctxleak_browser, site):
    pooled_page.goto(site)
    ctxleak_browser.close()
    assert not ctxleak_browser.is_connected()
""",
    )
    # The browser closed its own contexts, so nothing is left open; the pool
    # drops the dead context quietly.
    result.assert_outcomes(passed=3)
    assert_no_cascade(result)
    assert "Warning" not in result.stdout.str()


def test_leased_context_close_rejected(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_closes_leased_context(pooled_lease):
    pooled_lease.context.close()
""",
    )
    result.assert_outcomes(failed=1, passed=2)
    assert_no_cascade(result)
    result.stdout.fnmatch_lines(
        [
            "E*LeaseError: context #1 (default options) belongs to a pool and is "
            "held by lease #1; release the lease instead of closing its context, "
            "and the pool closes or reuses it",
        ]
    )


def test_context_closed_behind_pool(pytester: pytest.Pytester) -> None:
    # Closing through the class bypasses the guard on the instance: the pool
    # finds the context dead at release and drops it without a second close.
    result = run(
        pytester,
        """
from playwright.sync_api import BrowserContext

def test_closes_through_class(pooled_lease, context_pool):
    BrowserContext.close(pooled_lease.context)

def test_dead_context_dropped(context_pool):
    assert context_pool.ledger.entries() == []
""",
    )
    result.assert_outcomes(passed=4)
    assert_no_cascade(result)
    assert "Warning" not in result.stdout.str()


def test_page_close_never_returns(pytester: pytest.Pytester) -> None:
    # Stopping every process of the browser makes each close wait forever; the
    # pool gives up after the close timeout, and the frozen fixture resumes the
    # browser after the lease is released.
    result = run(
        pytester,
        """
import os
import signal

import psutil

def test_close_hangs(frozen, pooled_lease, context_pool, site):
    with context_pool.acquire() as own:
        own.new_page().goto(site)
        for process in psutil.Process().children(recursive=True):
            if "chrom" in process.name():
                os.kill(process.pid, signal.SIGSTOP)
                frozen.append(process)
""",
        "--ctxleak-close-timeout=2",
    )
    result.assert_outcomes(passed=3)
    assert_no_cascade(result)
    result.stdout.fnmatch_lines(
        [
            "*CtxleakWarning: 2 closes or resets failed or hung during this test:",
            "*- closing page of context #1 (default options) failed: close did not "
            "finish within 2 s",
            "*- closing context #1 (default options) failed: close did not finish "
            "within 2 s",
        ]
    )
    assert result.stdout.str().count("CtxleakWarning") == 1


def test_reset_that_hangs_recycles_context(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import os
import signal

from conftest import chromium_processes

def test_renderer_frozen(frozen, pooled_page, site):
    pooled_page.goto(site)
    for process in chromium_processes("renderer"):
        os.kill(process.pid, signal.SIGSTOP)
        frozen.append(process)
""",
        "--ctxleak-close-timeout=2",
    )
    result.assert_outcomes(passed=3)
    assert_no_cascade(result)
    result.stdout.fnmatch_lines(
        [
            "*CtxleakWarning: resetting context #1 (default options) failed: did not "
            "finish within 2 s; the context was closed instead of reused",
        ]
    )
    assert result.stdout.str().count("CtxleakWarning") == 1


def test_acquire_on_dead_browser_names_fault(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import pytest
from pytest_ctxleak import BrowserDisconnectedError, ContextPool

def test_own_pool_after_browser_closed(ctxleak_playwright, ctxleak_launch_options):
    browser = ctxleak_playwright.chromium.launch(**ctxleak_launch_options)
    pool = ContextPool(browser)
    with pool.acquire() as lease:
        lease.new_page()
    browser.close()
    with pytest.raises(BrowserDisconnectedError, match="is disconnected"):
        pool.acquire()
    pool.ledger.check_invariants()
    assert pool.ledger.entries() == []
    pool.close()
""",
    )
    result.assert_outcomes(passed=3)
    assert_no_cascade(result)


def test_async_browser_killed_mid_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_async_fault="""
import pytest
from conftest import chromium_processes

pytestmark = pytest.mark.asyncio(loop_scope="session")

async def test_browser_dies(async_pooled_page, site):
    await async_pooled_page.goto(site)
    for process in chromium_processes():
        process.kill()
    await async_pooled_page.goto(site + "/again")

async def test_next_page_works(async_pooled_page, site):
    assert (await async_pooled_page.goto(site)).ok

async def test_pool_recovered(ctxleak_async_browser, async_context_pool):
    assert ctxleak_async_browser.is_connected()
    async with async_context_pool.acquire(locale="de-DE") as lease:
        page = await lease.new_page()
        assert await page.evaluate("navigator.language") == "de-DE"
    async_context_pool.ledger.check_invariants()
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "ctxleak", "-p", "no:cacheprovider", "-rA"
    )
    result.assert_outcomes(failed=1, passed=2)
    assert_no_cascade(result)
    result.stdout.fnmatch_lines(
        [
            "*- ctxleak -*",
            "the session browser (ctxleak_async_browser) disconnected during this "
            "test*",
        ]
    )
