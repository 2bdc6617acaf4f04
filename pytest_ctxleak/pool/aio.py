"""AsyncContextPool: the refcounted, capped pool over Playwright's async API.

Every rule (the cap, sharing, LRU eviction, fair waiting) is the ledger's;
this module only awaits what the ledger decides. Between any two awaits the ledger is
changed by plain method calls, which asyncio never interrupts, so each ledger step is
atomic. At every await a comment states what may have changed while it waited.

Cancellation and timeouts: an acquire that is cancelled or times out withdraws its
ticket; a context it was creating is closed when the creation finishes; a victim it
was closing is still closed. Work that must finish for the bookkeeping to complete
(resets and closes after a release) runs in tasks of the pool, which a cancelled
caller cannot interrupt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page

from pytest_ctxleak.errors import LeaseError, PoolClosedError
from pytest_ctxleak.ledger import (
    Entry,
    EntryState,
    Holder,
    LeaseRecord,
    Release,
    ReleaseAction,
    Ticket,
    TicketState,
)
from pytest_ctxleak.pool import ops
from pytest_ctxleak.pool.base import (
    DEFAULT_ACQUIRE_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_CONTEXTS,
    creating_for_pool,
    current_holder,
    describe_error,
    logger,
    register_pool,
    unregister_pool,
)
from pytest_ctxleak.pool.slot import (
    ContextSlot,
    LeaseBase,
    PoolCore,
    reject_disconnected,
    require_browser,
)
from pytest_ctxleak.signature import Signature, make_signature
from pytest_ctxleak.sites import Site, capture_site


class AsyncLease(LeaseBase[BrowserContext]):
    """One holder's use of a pooled context. ``await lease.release()`` once."""

    __slots__ = ("_pool",)

    def __init__(
        self,
        pool: AsyncContextPool,
        record: LeaseRecord,
        slot: ContextSlot[BrowserContext],
    ) -> None:
        super().__init__(record, slot)
        self._pool = pool

    async def new_page(self) -> Page:
        """Open a page in the context. It is closed when this lease is released."""
        __tracebackhide__ = True
        page = await self.context.new_page()
        self._own_page(page)
        return page

    def release(self) -> Coroutine[Any, Any, None]:
        """Return the context to the pool. A second call raises LeaseError.

        Use ``await lease.release()``. The site is captured at the call, because a
        coroutine run as a task (``asyncio.gather``, ``create_task``) has none of
        the caller's frames on its stack when it starts.
        """
        __tracebackhide__ = True
        return self._pool._release(self._record, capture_site())

    async def __aenter__(self) -> AsyncLease:
        __tracebackhide__ = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True
        if not self._record.released:
            await self._pool._release(self._record, capture_site())


class PendingAcquire:
    """The result of ``pool.acquire(...)``: await it, or use it in ``async with``.

    Options are validated and the acquisition site is captured when ``acquire`` is
    called, so a bad option raises at the call and the site is the caller's line.
    """

    __slots__ = ("_holder", "_lease", "_pool", "_signature", "_site")

    def __init__(
        self, pool: AsyncContextPool, signature: Signature, holder: Holder, site: Site
    ) -> None:
        self._pool = pool
        self._signature = signature
        self._holder = holder
        self._site = site
        self._lease: AsyncLease | None = None

    def __await__(self) -> Generator[Any, None, AsyncLease]:
        __tracebackhide__ = True
        return self._pool._acquire(
            self._signature, self._holder, self._site
        ).__await__()

    async def __aenter__(self) -> AsyncLease:
        self._lease = await self._pool._acquire(
            self._signature, self._holder, self._site
        )
        return self._lease

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease = self._lease
        if lease is not None and not lease.released:
            await self._pool._release(lease._record, capture_site())


class AsyncContextPool(PoolCore[BrowserContext]):
    """A refcounted pool of browser contexts with a hard cap, over the async API.

    Leases of equal options share one context, and concurrent acquires of one new
    kind of context create it once. When a new kind needs room and the pool is full,
    the least recently used idle context is closed; when every context is in use,
    acquires wait in a queue up to ``acquire_timeout`` and then raise
    PoolExhaustedError naming every holder. While anyone waits, one context in use
    takes no new leases, so later acquires sharing it cannot starve the waiters.
    A pool belongs to the event loop it was made in.
    """

    def __init__(
        self,
        browser: Browser,
        *,
        max_contexts: int = DEFAULT_MAX_CONTEXTS,
        acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        __tracebackhide__ = True
        require_browser(browser, Browser, "AsyncContextPool", "ContextPool")
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "AsyncContextPool must be created inside a running event loop, "
                "the one its browser runs in"
            ) from None
        super().__init__(browser, max_contexts, acquire_timeout, close_timeout)
        self.browser: Browser = browser
        # Futures of waiting tickets, completed when the ledger changes their state.
        self._wakeups: dict[int, asyncio.Future[None]] = {}
        # Resets, closes and abandoned creations; close() waits for them.
        self._tasks: set[asyncio.Task[None]] = set()
        # The one close task of each CLOSING entry. Every close goes through it, so
        # a context is closed once and its slot is freed only after the close.
        self._closing: dict[int, asyncio.Task[None]] = {}
        register_pool(self)

    # -- acquire ------------------------------------------------------------------

    def acquire(self, **options: Any) -> PendingAcquire:
        """Lease a context made with ``options``, the arguments of new_context.

        Use ``lease = await pool.acquire(...)`` or ``async with pool.acquire(...)
        as lease``. Raises TypeError at once for an unknown option; the await raises
        PoolExhaustedError after ``acquire_timeout`` and PoolClosedError after
        ``close()``.
        """
        __tracebackhide__ = True
        signature = make_signature(options)
        return PendingAcquire(self, signature, current_holder(), capture_site())

    async def _acquire(
        self, signature: Signature, holder: Holder, site: Site
    ) -> AsyncLease:
        __tracebackhide__ = True
        self._check_loop("acquire")
        self._notify(self._drop_dead())
        reject_disconnected(self.browser, "AsyncContextPool")
        ticket = self.ledger.request(
            signature.key, signature.label, holder, site, reusable=signature.reusable
        )
        deadline = self._loop.time() + self.acquire_timeout
        try:
            while ticket.state is not TicketState.GRANTED:
                if ticket.state is TicketState.FAILED:
                    assert ticket.error is not None
                    raise ticket.error
                if ticket.state is TicketState.CREATING:
                    # While creating, other acquires may join this ticket's entry.
                    await self._create(ticket, signature, deadline)
                elif ticket.state is TicketState.EVICTING:
                    assert ticket.victim is not None
                    # While the victim closes, others may join the pending entry
                    # or queue up; the ledger keeps the slot for this ticket.
                    await asyncio.shield(self._close_task(ticket.victim))
                else:
                    # Queued or joining: releases, creations and closes elsewhere
                    # move this ticket on and complete its wakeup future.
                    await self._wait(ticket, deadline)
        except BaseException:
            self._abandon(ticket)
            raise
        assert ticket.lease is not None and ticket.entry is not None
        return AsyncLease(self, ticket.lease, self._slots[ticket.entry.entry_id])

    async def _wait(self, ticket: Ticket, deadline: float) -> None:
        __tracebackhide__ = True
        wakeup = self._wakeups.get(ticket.ticket_id)
        if wakeup is None or wakeup.done():
            wakeup = self._loop.create_future()
            self._wakeups[ticket.ticket_id] = wakeup
        remaining = deadline - self._loop.time()
        try:
            # The ledger may grant, fail or move this ticket to CREATING or
            # EVICTING meanwhile; the loop in _acquire reads the new state.
            await asyncio.wait_for(asyncio.shield(wakeup), max(remaining, 0))
        except (asyncio.TimeoutError, TimeoutError):
            if ticket.state in (TicketState.QUEUED, TicketState.JOINING):
                self._notify(self.ledger.expire(ticket, self.acquire_timeout))
        finally:
            self._wakeups.pop(ticket.ticket_id, None)

    async def _create(
        self, ticket: Ticket, signature: Signature, deadline: float
    ) -> None:
        __tracebackhide__ = True
        entry = ticket.entry
        assert entry is not None
        with creating_for_pool():
            # The task copies the marker, so the watch counts the context as ours.
            creation = asyncio.ensure_future(
                self.browser.new_context(**signature.options)
            )
        try:
            # The creation runs as its own task, so a cancelled or timed-out
            # acquire never leaves a half-made context: _finish_abandoned closes it.
            remaining = max(deadline - self._loop.time(), 0)
            context = await asyncio.wait_for(asyncio.shield(creation), remaining)
        except (asyncio.TimeoutError, TimeoutError):
            self._spawn(self._finish_abandoned(ticket, creation))
            raise TimeoutError(
                f"creating a context ({signature.label}) did not finish within "
                f"acquire_timeout={self.acquire_timeout:g} s"
            ) from None
        except asyncio.CancelledError:
            self._spawn(self._finish_abandoned(ticket, creation))
            raise
        except BaseException as error:
            # A failed creation leaves the pool as it was; joiners fail with it.
            if ticket.state is TicketState.CREATING:
                self._notify(self.ledger.create_failed(ticket, error))
            raise
        if self.ledger.is_closed:
            # close() ran while the context was being made: nothing may keep it.
            # The ledger is shut down, so no acquire can join meanwhile.
            await self._close_orphan(context, signature.label)
            raise PoolClosedError("the pool was closed while this acquire waited")
        self._slots[entry.entry_id] = ContextSlot(entry, signature, context)
        self._notify(self.ledger.created(ticket))
        logger.debug("created context #%d (%s)", entry.entry_id, signature.label)

    async def _finish_abandoned(
        self, ticket: Ticket, creation: asyncio.Future[BrowserContext]
    ) -> None:
        """Close a context whose acquire gave up, then free its slot."""
        try:
            # The creation may still succeed; the slot stays taken until then.
            context = await creation
        except BaseException as error:
            if ticket.state is TicketState.CREATING:
                self._notify(self.ledger.create_failed(ticket, error))
            return
        # Joiners stay waiting until the half-made context is gone.
        await self._close_orphan(context, ticket.label)
        if ticket.state is TicketState.CREATING:
            self._notify(self.ledger.create_failed(ticket, None))

    async def _close_orphan(self, context: BrowserContext, label: str) -> None:
        """Close a context that never entered the pool."""
        try:
            # The context is in no slot, so nothing else can reach it meanwhile.
            await asyncio.wait_for(ops.close(ops.impl(context)), self.close_timeout)
        except Exception as error:
            self._report_close(f"abandoned context ({label})", error)

    def _abandon(self, ticket: Ticket) -> None:
        """Leave no reference behind for an acquire that raised or was cancelled."""
        if ticket.state in (
            TicketState.QUEUED,
            TicketState.JOINING,
            TicketState.EVICTING,
        ):
            self._notify(self.ledger.cancel(ticket))
        elif ticket.state is TicketState.GRANTED and ticket.lease is not None:
            # Granted after the caller stopped waiting: the lease was never handed
            # out, so give it back at once.
            release = self.ledger.release(ticket.lease, by="a cancelled acquire")
            self._spawn(self._after_release(release, ticket.lease))
        # _finish_abandoned ends a CREATING ticket, and a FAILED one has nothing.

    # -- release ------------------------------------------------------------------

    def release(self, lease: AsyncLease) -> Coroutine[Any, Any, None]:
        """Return a lease's context to this pool: ``await pool.release(lease)``.

        The same as ``lease.release()``, and the site is captured at the call too.
        """
        __tracebackhide__ = True
        if not isinstance(lease, AsyncLease):
            raise TypeError(
                f"release() takes an AsyncLease, got {type(lease).__qualname__}"
            )
        return self._release(lease._record, capture_site())

    async def _release(
        self, record: LeaseRecord, site: Site, by: str | None = None
    ) -> None:
        __tracebackhide__ = True
        self._check_loop(f"release of lease #{record.lease_id}")
        release = self.ledger.release(record, site, by)
        # The reset or close runs as a task of the pool, so cancelling this release
        # cannot leave the context stuck in RESETTING with acquires waiting on it.
        await asyncio.shield(self._spawn(self._after_release(release, record)))

    def reclaim(self, record: LeaseRecord, by: str) -> str:
        """Release a lease for its holder from outside the loop.

        The bookkeeping is done at once. The reset or close of the context runs on
        the pool's loop: to completion now when the loop is idle, as between two
        tests, or as a task the next time the loop runs.
        """
        release = self.ledger.release(record, record.site, by)
        if self._loop.is_closed():
            return "released; the pool's event loop is closed"
        task = self._spawn(self._after_release(release, record))
        if not self._loop.is_running():
            self._loop.run_until_complete(task)
            entry_id = release.entry.entry_id
            state = "reset" if entry_id in self._slots else "closed"
            return f"released; context #{entry_id} {state}"
        action = {
            ReleaseAction.NONE: "its pages will be closed",
            ReleaseAction.RESET: f"context #{release.entry.entry_id} will be reset",
            ReleaseAction.CLOSE: f"context #{release.entry.entry_id} will be closed",
        }[release.action]
        return f"released; {action}"

    async def _after_release(self, release: Release, record: LeaseRecord) -> None:
        slot = self._slots.get(release.entry.entry_id)
        if slot is None:
            return
        if slot.is_dead():
            # Nothing to reset or close: only the bookkeeping is left to do.
            entry = slot.entry
            if release.action is ReleaseAction.RESET:
                self._notify(self.ledger.reset_done(entry, False))
            if release.action is not ReleaseAction.NONE:
                self._slots.pop(entry.entry_id, None)
                self._notify(self.ledger.closed(entry))
                logger.info("%s died; the pool dropped it", slot.describe())
            return
        if release.action is ReleaseAction.NONE:
            pages = slot.pages_of(record.lease_id)
            # Other leases keep using the context while these pages close.
            await asyncio.gather(*(self._close_page(slot, page) for page in pages))
        elif release.action is ReleaseAction.RESET:
            # Acquires of this signature join the entry and wait for the reset.
            reusable = await self._reset(slot)
            self._notify(self.ledger.reset_done(slot.entry, reusable))
            if (
                slot.entry.state is EntryState.CLOSING
            ):  # not reusable, evicted, shut down
                # The entry is CLOSING: no acquire can reach it meanwhile.
                await self._close_task(slot.entry)
        else:
            # The entry is CLOSING: no acquire can reach it meanwhile.
            await self._close_task(slot.entry)

    async def _reset(self, slot: ContextSlot[BrowserContext]) -> bool:
        plan = slot.plan_reset()
        if plan is None:
            return False
        context = slot.context
        pages = [ops.impl(page) for page in context.pages]
        try:
            # Nothing else uses the context: its refcount is zero and the ledger
            # keeps it in RESETTING.
            await asyncio.wait_for(
                ops.reset_context(ops.impl(context), pages, plan), self.close_timeout
            )
        except Exception as error:
            self._report_reset(slot, error)
            return False
        slot.mark_reset()
        return True

    async def _close_page(self, slot: ContextSlot[BrowserContext], page: Page) -> None:
        try:
            # Other holders of the context may open pages meanwhile; this page is
            # only ours.
            await asyncio.wait_for(ops.close(ops.impl(page)), self.close_timeout)
        except Exception as error:
            self._report_close(f"page of {slot.describe()}", error)
            # A page that does not close means a hung browser: a reset would hang
            # too, so the context is closed at its last release instead.
            slot.hung = True
        slot.page_owners.pop(page, None)

    def _close_task(self, entry: Entry) -> asyncio.Task[None]:
        """Return the task closing ``entry``, starting it on the first call."""
        task = self._closing.get(entry.entry_id)
        if task is None:
            task = self._spawn(self._close_entry(entry))
            self._closing[entry.entry_id] = task
            task.add_done_callback(lambda _: self._closing.pop(entry.entry_id, None))
        return task

    async def _close_entry(self, entry: Entry) -> None:
        """Close an entry's context with a timeout; the bookkeeping completes anyway."""
        slot = self._slots.pop(entry.entry_id, None)
        try:
            if slot is not None and not slot.is_dead():
                # The entry is CLOSING: no acquire can reach it any more.
                await asyncio.wait_for(
                    ops.close(ops.impl(slot.context)), self.close_timeout
                )
                logger.debug("closed %s", slot.describe())
        except Exception as error:
            self._report_close(f"context #{entry.entry_id} ({entry.label})", error)
        finally:
            self._notify(self.ledger.closed(entry))

    # -- plumbing -----------------------------------------------------------------

    def _notify(self, changed: list[Ticket]) -> None:
        """Wake the acquires whose tickets the ledger just moved on.

        A ticket that now evicts a victim gets the victim's close started at once,
        so the slot is freed even if that acquire is cancelled before it runs.
        """
        for ticket in changed:
            if ticket.state is TicketState.EVICTING and ticket.victim is not None:
                self._close_task(ticket.victim)
            wakeup = self._wakeups.get(ticket.ticket_id)
            if wakeup is not None and not wakeup.done():
                wakeup.set_result(None)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("pool task failed: %s", describe_error(task.exception()))  # type: ignore[arg-type]

    def _check_loop(self, what: str) -> None:
        __tracebackhide__ = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:
            raise LeaseError(
                f"{what} outside the event loop this AsyncContextPool was created "
                "in; Playwright's async objects belong to one loop"
            )

    async def close(self) -> None:
        """Close every context. Outstanding leases are released for their holders,
        and waiting acquires fail with PoolClosedError."""
        if self.ledger.is_closed:
            return
        self._check_loop("close()")
        to_close, failed = self.ledger.shutdown(capture_site())
        self._notify(failed)
        # Resets that were running finish first; their entries then close too.
        while self._tasks:
            # Running tasks may spawn more (a failed reset closes its context).
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for entry in self.ledger.entries():
            if entry.state is EntryState.CLOSING and entry not in to_close:
                to_close.append(entry)
        # The ledger is shut down: no acquire can add entries meanwhile.
        await asyncio.gather(*(self._close_task(entry) for entry in to_close))
        unregister_pool(self)

    async def __aenter__(self) -> AsyncContextPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
