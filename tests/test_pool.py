"""ContextPool against real headless Chromium, with pages served on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import psutil
import pytest
from playwright.sync_api import Browser, Error, Playwright

from pytest_ctxleak import (
    ContextPool,
    LeaseError,
    PoolClosedError,
    PoolExhaustedError,
)
from pytest_ctxleak.launch import launch_chromium


def test_concurrent_leases_share_one_context(pool: ContextPool) -> None:
    with pool.acquire(locale="de-DE") as first, pool.acquire(locale="de-DE") as second:
        assert first.context is second.context
        assert pool.open_contexts == 1
        assert first.lease_id != second.lease_id


def test_released_context_is_reused(pool: ContextPool) -> None:
    with pool.acquire(locale="de-DE") as lease:
        context = lease.context
    with pool.acquire(locale="de-DE") as lease:
        assert lease.context is context


def test_cookie_gone_under_next_lease(pool: ContextPool, site: str) -> None:
    with pool.acquire() as lease:
        page = lease.new_page()
        page.goto(site)
        page.evaluate("document.cookie = 'session=abc'")
        context = lease.context
        assert context.cookies() != []
    with pool.acquire() as lease:
        assert lease.context is context
        assert lease.context.cookies() == []


def test_local_storage_gone_under_next_lease(pool: ContextPool, site: str) -> None:
    with pool.acquire() as lease:
        page = lease.new_page()
        page.goto(site)
        page.evaluate("localStorage.setItem('token', 'abc')")
        context = lease.context
    with pool.acquire() as lease:
        assert lease.context is context
        page = lease.new_page()
        page.goto(site)
        assert page.evaluate("localStorage.getItem('token')") is None


def test_indexed_db_gone_under_next_lease(pool: ContextPool, site: str) -> None:
    create = """new Promise(done => {
        const request = indexedDB.open('cache');
        request.onupgradeneeded = () => request.result.createObjectStore('items');
        request.onsuccess = () => { request.result.close(); done(true); };
    })"""
    with pool.acquire() as lease:
        page = lease.new_page()
        page.goto(site)
        page.evaluate(create)
    with pool.acquire() as lease:
        page = lease.new_page()
        page.goto(site)
        names = page.evaluate("indexedDB.databases().then(d => d.map(x => x.name))")
        assert names == []


def test_storage_without_open_page_recycles_context(
    pool: ContextPool, site: str
) -> None:
    with pool.acquire() as lease:
        page = lease.new_page()
        page.goto(site)
        page.evaluate("localStorage.setItem('token', 'abc')")
        page.close()
        context = lease.context
    with pool.acquire() as lease:
        assert lease.context is not context
        page = lease.new_page()
        page.goto(site)
        assert page.evaluate("localStorage.getItem('token')") is None


def test_reset_keeps_other_contexts_storage(
    pool: ContextPool, ctxleak_browser: Browser, site: str
) -> None:
    bystander = ctxleak_browser.new_context()
    try:
        bystander_page = bystander.new_page()
        bystander_page.goto(site)
        bystander_page.evaluate("localStorage.setItem('keep', 'me')")
        with pool.acquire() as lease:
            page = lease.new_page()
            page.goto(site)
            page.evaluate("localStorage.setItem('token', 'abc')")
        bystander_page.reload()
        assert bystander_page.evaluate("localStorage.getItem('keep')") == "me"
    finally:
        bystander.close()


def test_release_closes_only_own_pages_when_shared(pool: ContextPool) -> None:
    with pool.acquire() as keeper:
        with pool.acquire() as visitor:
            own = visitor.new_page()
            kept = keeper.new_page()
        assert own.is_closed()
        assert not kept.is_closed()


def test_last_release_closes_every_page(pool: ContextPool) -> None:
    with pool.acquire() as lease:
        stray = lease.context.new_page()
    assert stray.is_closed()


def test_changed_settings_restored_for_next_lease(pool: ContextPool, site: str) -> None:
    with pool.acquire() as lease:
        lease.context.set_offline(True)
        lease.context.set_extra_http_headers({"X-Debug": "1"})
        context = lease.context
    with pool.acquire() as lease:
        assert lease.context is context
        page = lease.new_page()
        response = page.goto(site)
        assert response is not None
        assert response.ok
        assert "x-debug" not in response.request.all_headers()


def test_init_script_forces_recycle(pool: ContextPool) -> None:
    with pool.acquire() as lease:
        lease.context.add_init_script("window.injected = 1")
        context = lease.context
    with pool.acquire() as lease:
        assert lease.context is not context


def test_least_recently_used_idle_context_evicted(pool: ContextPool) -> None:
    with pool.acquire(locale="de-DE") as lease:
        german = lease.context
    with pool.acquire(locale="fr-FR") as lease:
        french = lease.context
    with pool.acquire(locale="de-DE"):
        pass  # German is now the most recently used
    with pool.acquire(locale="it-IT"):
        assert pool.open_contexts == 2
    assert french not in pool.browser.contexts
    assert german in pool.browser.contexts


def test_in_use_context_never_evicted(pool: ContextPool) -> None:
    with pool.acquire(locale="de-DE") as first, pool.acquire(locale="fr-FR") as second:
        with pytest.raises(PoolExhaustedError):
            pool.acquire(locale="it-IT")
        assert first.context in pool.browser.contexts
        assert second.context in pool.browser.contexts


def test_exhausted_error_names_holders_and_sites(pool: ContextPool) -> None:
    with (
        pool.acquire(locale="de-DE"),
        pool.acquire(locale="fr-FR"),
        pytest.raises(PoolExhaustedError) as caught,
    ):
        pool.acquire(locale="it-IT")
    message = str(caught.value)
    assert message.startswith("pool exhausted: all 2 contexts are in use")
    assert "(locale=de-DE)" in message
    assert "(locale=fr-FR)" in message
    assert "tests/test_pool.py:" in message


def test_exhausted_acquire_leaves_pool_usable(pool: ContextPool) -> None:
    with (
        pool.acquire(locale="de-DE"),
        pool.acquire(locale="fr-FR"),
        pytest.raises(PoolExhaustedError),
    ):
        pool.acquire(locale="it-IT")
    with pool.acquire(locale="it-IT"):
        assert pool.open_contexts == 2
    pool.ledger.check_invariants()


def test_double_release_raises_lease_error(pool: ContextPool) -> None:
    lease = pool.acquire()
    lease.release()
    with pytest.raises(LeaseError, match=r"was released already at .*test_pool\.py"):
        lease.release()


def test_release_to_other_pool_raises(
    pool: ContextPool, ctxleak_browser: Browser
) -> None:
    with ContextPool(ctxleak_browser, max_contexts=1) as other:
        lease = other.acquire()
        with pytest.raises(LeaseError, match="belongs to another pool"):
            pool.release(lease)
        lease.release()


def test_context_after_release_raises(pool: ContextPool) -> None:
    lease = pool.acquire()
    lease.release()
    with pytest.raises(LeaseError, match="acquire a new lease"):
        _ = lease.context


def test_release_from_other_thread_raises(pool: ContextPool) -> None:
    lease = pool.acquire()
    errors: list[BaseException] = []

    def release() -> None:
        try:
            lease.release()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=release, name="worker")
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert isinstance(errors[0], LeaseError)
    assert "cannot cross threads" in str(errors[0])
    lease.release()


def test_failed_new_context_leaves_pool_usable(pool: ContextPool) -> None:
    broken_state = {"cookies": [{"name": "no-domain"}], "origins": []}
    with pytest.raises(Error):
        pool.acquire(storage_state=broken_state)
    assert pool.open_contexts == 0
    assert pool.ledger.outstanding() == []
    with pool.acquire():
        assert pool.open_contexts == 1


def test_unknown_option_leaves_pool_untouched(pool: ContextPool) -> None:
    with pytest.raises(TypeError, match="unknown context option 'local'"):
        pool.acquire(local="de-DE")
    assert pool.open_contexts == 0


def test_lease_records_caller_site(pool: ContextPool) -> None:
    lease = pool.acquire()
    expected_line = test_lease_records_caller_site.__code__.co_firstlineno + 1
    top = lease.site.top
    lease.release()
    assert top is not None
    assert top.filename == __file__
    assert top.lineno == expected_line
    assert top.function == "test_lease_records_caller_site"


def test_acquire_after_close_raises(ctxleak_browser: Browser) -> None:
    pool = ContextPool(ctxleak_browser)
    pool.close()
    with pytest.raises(PoolClosedError, match="the pool is closed"):
        pool.acquire()


# The lease is left to close() on purpose, which the leak check would report.
@pytest.mark.ctxleak(check=False)
def test_close_releases_outstanding_leases(ctxleak_browser: Browser) -> None:
    pool = ContextPool(ctxleak_browser)
    lease = pool.acquire()
    context = lease.context
    pool.close()
    assert lease.released
    assert context not in ctxleak_browser.contexts
    with pytest.raises(LeaseError, match="released by the pool's close"):
        lease.release()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"max_contexts": 0}, ValueError, "max_contexts must be at least 1, got 0"),
        ({"max_contexts": "8"}, TypeError, "max_contexts must be an int, got '8'"),
        ({"acquire_timeout": -1}, ValueError, "acquire_timeout must be a positive"),
        (
            {"close_timeout": "5"},
            TypeError,
            "close_timeout must be a number of seconds",
        ),
    ],
)
def test_invalid_pool_argument_names_value(
    ctxleak_browser: Browser,
    arguments: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        ContextPool(ctxleak_browser, **arguments)  # type: ignore[arg-type]


def test_non_browser_rejected() -> None:
    with pytest.raises(TypeError, match=r"needs a playwright\.sync_api\.Browser"):
        ContextPool(object())  # type: ignore[arg-type]


def _browser_processes(before: set[int]) -> list[psutil.Process]:
    children = psutil.Process().children(recursive=True)
    return [
        process
        for process in children
        if process.pid not in before and "chrom" in process.name().lower()
    ]


@pytest.fixture
def private_browser(
    ctxleak_playwright: Playwright,
) -> Iterator[tuple[Browser, list[psutil.Process]]]:
    """A browser of the test's own, with its processes, for fault injection."""
    before = {process.pid for process in psutil.Process().children(recursive=True)}
    browser = launch_chromium(ctxleak_playwright)
    yield browser, _browser_processes(before)
    browser.close()


@pytest.mark.filterwarnings(
    "ignore:2 closes or resets failed:pytest_ctxleak.plugin.CtxleakWarning"
)
def test_hung_close_reported_and_bookkeeping_completes(
    private_browser: tuple[Browser, list[psutil.Process]], site: str
) -> None:
    browser, processes = private_browser
    pool = ContextPool(browser, max_contexts=1, close_timeout=1.0)
    lease = pool.acquire()
    lease.new_page().goto(site)
    for process in processes:
        os.kill(process.pid, signal.SIGSTOP)
    try:
        lease.release()
    finally:
        for process in processes:
            os.kill(process.pid, signal.SIGCONT)
    assert pool.open_contexts == 0
    assert pool.ledger.outstanding() == []
    problems = [problem.error for problem in pool.close_problems]
    assert "close did not finish within 1 s" in problems
    pool.close()


def test_release_after_close_names_close_site(ctxleak_browser: Browser) -> None:
    pool = ContextPool(ctxleak_browser)
    lease = pool.acquire()
    pool.close()
    close_line = test_release_after_close_names_close_site.__code__.co_firstlineno + 3
    with pytest.raises(LeaseError, match=rf"test_pool\.py:{close_line} in"):
        lease.release()


test_release_after_close_names_close_site = pytest.mark.ctxleak(check=False)(
    test_release_after_close_names_close_site
)


def test_sync_exhausted_says_pool_cannot_wait(pool: ContextPool) -> None:
    with (
        pool.acquire(locale="de-DE"),
        pool.acquire(locale="fr-FR"),
        pytest.raises(PoolExhaustedError, match="a sync ContextPool cannot wait"),
    ):
        pool.acquire(locale="it-IT")
