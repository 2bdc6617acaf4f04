"""AsyncContextPool against real headless Chromium, under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Error

from pytest_ctxleak import (
    AsyncContextPool,
    ContextPool,
    LeaseError,
    PoolClosedError,
    PoolExhaustedError,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def pool(ctxleak_async_browser: Browser) -> AsyncIterator[AsyncContextPool]:
    """A pool of at most two contexts."""
    async with AsyncContextPool(
        ctxleak_async_browser, max_contexts=2, acquire_timeout=30.0, close_timeout=5.0
    ) as pool:
        yield pool


async def settle(pool: AsyncContextPool) -> None:
    """Wait until the pool's background resets and closes have finished."""
    while pool._tasks:
        await asyncio.gather(*list(pool._tasks), return_exceptions=True)


async def test_concurrent_acquires_create_one_context(pool: AsyncContextPool) -> None:
    leases = await asyncio.gather(*(pool.acquire(locale="de-DE") for _ in range(20)))
    contexts = {id(lease.context) for lease in leases}
    assert len(contexts) == 1
    assert pool.open_contexts == 1
    assert pool.ledger.occupied_peak == 1
    for lease in leases:
        await lease.release()


async def test_async_with_releases(pool: AsyncContextPool) -> None:
    async with pool.acquire() as lease:
        assert not lease.released
    assert lease.released
    assert pool.ledger.outstanding() == []


async def test_waiter_served_after_release(pool: AsyncContextPool) -> None:
    first = await pool.acquire(locale="de-DE")
    second = await pool.acquire(locale="fr-FR")
    waiting = asyncio.ensure_future(pool.acquire(locale="it-IT"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await first.release()
    third = await asyncio.wait_for(waiting, 5)
    assert pool.open_contexts == 2
    await second.release()
    await third.release()


async def test_waiters_served_first_come_first_served(pool: AsyncContextPool) -> None:
    held = [await pool.acquire(locale=name) for name in ("a", "b")]
    served: list[str] = []

    async def take(name: str) -> None:
        async with pool.acquire(locale=name):
            served.append(name)

    tasks = []
    for name in ("c", "d", "e"):
        tasks.append(asyncio.ensure_future(take(name)))
        await asyncio.sleep(0.01)  # queue them in a known order
    for lease in held:
        await lease.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert served == ["c", "d", "e"]


async def wait_for_queue(
    pool: AsyncContextPool, length: int, unless: asyncio.Future[Any] | None = None
) -> None:
    """Let other tasks run until ``length`` acquires wait in the pool's queue.

    Returns early once ``unless`` is done, so that an acquire that should have
    queued but was served fails the test instead of hanging it.
    """
    while len(pool.ledger.waiting()) < length:
        if unless is not None and unless.done():
            return
        await asyncio.sleep(0.01)


async def test_queued_waiter_not_starved_by_sharing(
    ctxleak_async_browser: Browser,
) -> None:
    async with AsyncContextPool(ctxleak_async_browser, max_contexts=1) as pool:
        held = await pool.acquire(locale="en-US")
        queued = asyncio.ensure_future(pool.acquire(locale="de-DE"))
        await wait_for_queue(pool, 1)
        # Steady load: the next en-US lease is requested before the last one ends.
        # Sharing the busy context would keep it busy and starve the de-DE acquire.
        later = asyncio.ensure_future(pool.acquire(locale="en-US"))
        await wait_for_queue(pool, 2, unless=later)
        assert not later.done()

        await held.release()
        german = await asyncio.wait_for(queued, 30)

        assert await german.context.new_page() is not None
        assert not later.done()
        await german.release()
        english = await asyncio.wait_for(later, 30)
        await english.release()


async def test_waiter_drains_one_context_and_shares_others(
    pool: AsyncContextPool,
) -> None:
    english = await pool.acquire(locale="en-US")
    french = [await pool.acquire(locale="fr-FR") for _ in range(2)]
    queued = asyncio.ensure_future(pool.acquire(locale="de-DE"))
    await wait_for_queue(pool, 1)

    # The en-US context has fewer leases, so it drains for the queued acquire and
    # fr-FR can still be shared at once.
    shared = await asyncio.wait_for(pool.acquire(locale="fr-FR"), 30)
    later = asyncio.ensure_future(pool.acquire(locale="en-US"))
    await wait_for_queue(pool, 2, unless=later)
    assert shared.context is french[0].context
    assert not later.done()

    await english.release()
    german = await asyncio.wait_for(queued, 30)
    for lease in [german, shared, *french]:
        await lease.release()
    await (await asyncio.wait_for(later, 30)).release()


async def test_in_flight_creations_count_toward_cap(pool: AsyncContextPool) -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            seen.append(pool.open_contexts)
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())

    async def crawl(name: str) -> None:
        async with pool.acquire(locale=name) as lease:
            await lease.new_page()

    locales = ("de-DE", "fr-FR", "it-IT", "es-ES", "nl-NL")
    await asyncio.gather(*(crawl(name) for name in locales))
    done.set()
    await watcher
    assert max(seen) <= 2
    assert pool.ledger.occupied_peak <= 2


async def test_acquire_timeout_names_holders(pool: AsyncContextPool) -> None:
    pool.acquire_timeout = 1.0
    async with pool.acquire(locale="de-DE"), pool.acquire(locale="fr-FR"):
        with pytest.raises(PoolExhaustedError) as caught:
            await pool.acquire(locale="it-IT")
    message = str(caught.value)
    assert "none was released within 1 s" in message
    assert "(locale=de-DE)" in message
    assert "tests/aio/test_pool_async.py:" in message
    assert pool.ledger.waiting() == []


async def test_cancel_while_queued_leaves_nothing(pool: AsyncContextPool) -> None:
    held = [await pool.acquire(locale=name) for name in ("a", "b")]
    waiting = asyncio.ensure_future(pool.acquire(locale="c"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.ledger.waiting() == []
    for lease in held:
        await lease.release()
    pool.ledger.check_invariants()


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 5, 8, 13])
async def test_cancel_during_creation_leaves_no_context(
    pool: AsyncContextPool, ctxleak_async_browser: Browser, steps: int
) -> None:
    before = len(ctxleak_async_browser.contexts)
    task = asyncio.ensure_future(pool.acquire(locale=f"cancel-{steps}"))
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    try:
        lease = await task
    except asyncio.CancelledError:
        pass
    else:  # the acquire finished before the cancel reached it
        await lease.release()
    await settle(pool)
    pool.ledger.check_invariants()
    assert pool.ledger.outstanding() == []
    assert len(ctxleak_async_browser.contexts) == before + pool.open_contexts


@pytest.mark.parametrize("steps", [0, 1, 2, 4])
async def test_cancel_while_evicting_frees_slot(
    pool: AsyncContextPool, ctxleak_async_browser: Browser, steps: int
) -> None:
    before = len(ctxleak_async_browser.contexts)
    for name in ("a", "b"):
        async with pool.acquire(locale=name):
            pass
    task = asyncio.ensure_future(pool.acquire(locale="c"))
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    try:
        lease = await task
    except asyncio.CancelledError:
        pass
    else:  # the acquire finished before the cancel reached it
        await lease.release()
    await settle(pool)
    pool.ledger.check_invariants()
    assert pool.ledger.waiting() == []
    assert len(ctxleak_async_browser.contexts) == before + pool.open_contexts
    async with pool.acquire(locale="d"):
        assert pool.open_contexts <= 2


async def test_failed_creation_leaves_pool_usable(pool: AsyncContextPool) -> None:
    broken_state = {"cookies": [{"name": "no-domain"}], "origins": []}
    with pytest.raises(Error):
        await pool.acquire(storage_state=broken_state)
    assert pool.open_contexts == 0
    assert pool.ledger.outstanding() == []
    async with pool.acquire():
        assert pool.open_contexts == 1


async def test_failed_new_page_leaves_pool_balanced(pool: AsyncContextPool) -> None:
    # Chromium accepts the context but rejects the locale when a page applies it.
    async with pool.acquire(locale="not a locale") as lease:
        with pytest.raises(Error, match="Invalid locale"):
            await lease.new_page()
    await settle(pool)
    pool.ledger.check_invariants()
    assert pool.ledger.outstanding() == []
    assert all(entry.refcount == 0 for entry in pool.ledger.entries())
    async with pool.acquire(locale="de-DE") as lease:
        page = await lease.new_page()
        assert not page.is_closed()


async def test_joiners_fail_with_creation_error(pool: AsyncContextPool) -> None:
    broken_state = {"cookies": [{"name": "no-domain"}], "origins": []}
    results = await asyncio.gather(
        *(pool.acquire(storage_state=broken_state) for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(result, Error) for result in results)
    assert pool.open_contexts == 0


async def test_closing_release_does_not_block_waiters(pool: AsyncContextPool) -> None:
    first = await pool.acquire(locale="a")
    await first.context.add_init_script("window.marked = 1")  # forces a close
    second = await pool.acquire(locale="b")
    waiting = asyncio.ensure_future(pool.acquire(locale="c"))
    await asyncio.sleep(0.05)
    await first.release()
    third = await asyncio.wait_for(waiting, 5)
    assert third.label == "locale=c"
    await second.release()
    await third.release()


async def test_cookie_gone_under_next_lease(pool: AsyncContextPool, site: str) -> None:
    async with pool.acquire() as lease:
        page = await lease.new_page()
        await page.goto(site)
        await page.evaluate("document.cookie = 'session=abc'; localStorage.x = '1'")
        context = lease.context
    async with pool.acquire() as lease:
        assert lease.context is context
        page = await lease.new_page()
        await page.goto(site)
        assert await lease.context.cookies() == []
        assert await page.evaluate("localStorage.getItem('x')") is None


async def test_double_release_raises(pool: AsyncContextPool) -> None:
    lease = await pool.acquire()
    await lease.release()
    with pytest.raises(LeaseError, match="was released already"):
        await lease.release()


async def test_concurrent_double_release_names_first_site(
    pool: AsyncContextPool,
) -> None:
    lease = await pool.acquire()

    results = await asyncio.gather(
        lease.release(), pool.release(lease), return_exceptions=True
    )

    assert results[0] is None
    error = results[1]
    assert isinstance(error, LeaseError)
    # Both calls are on the gather line: the first release ran as a task, whose
    # stack starts in the event loop, yet its site is the caller's.
    assert "was released already at tests/aio/test_pool_async.py:" in str(error)
    assert "in test_concurrent_double_release_names_first_site" in str(error)
    assert "<unknown site>" not in str(error)


async def test_release_in_task_records_caller_site(pool: AsyncContextPool) -> None:
    lease = await pool.acquire()

    await asyncio.ensure_future(lease.release())

    site = lease._record.release_site
    assert site.top is not None
    assert site.top.function == "test_release_in_task_records_caller_site"


# The leases are left to close() on purpose, which the leak check would report.
@pytest.mark.ctxleak(check=False)
async def test_close_fails_waiters(pool: AsyncContextPool) -> None:
    held = [await pool.acquire(locale=name) for name in ("a", "b")]
    waiting = asyncio.ensure_future(pool.acquire(locale="c"))
    await asyncio.sleep(0.05)
    await pool.close()
    with pytest.raises(PoolClosedError):
        await waiting
    assert all(lease.released for lease in held)


async def test_unknown_option_raises_at_call(pool: AsyncContextPool) -> None:
    with pytest.raises(TypeError, match="unknown context option 'local'"):
        pool.acquire(local="de-DE")


async def test_sync_pool_in_event_loop_names_async_fixture(
    ctxleak_async_browser: Browser,
) -> None:
    with pytest.raises(TypeError, match="use AsyncContextPool"):
        ContextPool(ctxleak_async_browser)  # type: ignore[arg-type]


async def test_sync_browser_rejected_by_async_pool() -> None:
    with pytest.raises(
        TypeError, match=r"AsyncContextPool needs a playwright\.async_api\.Browser"
    ):
        AsyncContextPool(object())  # type: ignore[arg-type]
