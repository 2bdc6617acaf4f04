"""ContextPool: the refcounted, capped pool over Playwright's sync API."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from pytest_ctxleak.ledger import (
    Entry,
    EntryState,
    LeaseRecord,
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
    logger,
    register_pool,
    reject_other_thread,
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


class Lease(LeaseBase[BrowserContext]):
    """One holder's use of a pooled context. Release it once, or use ``with``."""

    __slots__ = ("_pool",)

    def __init__(
        self, pool: ContextPool, record: LeaseRecord, slot: ContextSlot[BrowserContext]
    ) -> None:
        super().__init__(record, slot)
        self._pool = pool

    def new_page(self) -> Page:
        """Open a page in the context. It is closed when this lease is released."""
        page = self.context.new_page()
        self._own_page(page)
        return page

    def release(self) -> None:
        """Return the context to the pool. A second call raises LeaseError."""
        __tracebackhide__ = True
        self._pool._release(self._record, capture_site())

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._record.released:
            self._pool._release(self._record, capture_site())


def reject_running_loop(browser: Browser) -> None:
    """Raise if called inside an event loop, where the sync API cannot work.

    Playwright's sync API runs its own loop in a greenlet of this thread, and that
    loop can show as running between calls; only a different loop is an error.
    """
    __tracebackhide__ = True
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if loop is getattr(browser, "_loop", None):
        return
    raise RuntimeError(
        "ContextPool.acquire() was called inside a running asyncio event loop, where "
        "Playwright's sync API cannot work; use AsyncContextPool, or the "
        "async_context_pool and async_pooled_page fixtures in async tests"
    )


class ContextPool(PoolCore[BrowserContext]):
    """A refcounted pool of browser contexts with a hard cap, over the sync API.

    Leases of equal options share one context. When a new kind of context needs room
    and the pool is full, the least recently used idle context is closed. A context
    in use is never closed by the pool.

    A sync pool belongs to the thread that made it, like every Playwright sync
    object. It cannot wait for a lease to come back, because only that thread could
    release it and the thread is busy in ``acquire``: when every context is in use,
    ``acquire`` raises PoolExhaustedError at once. ``AsyncContextPool`` waits.
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
        require_browser(browser, Browser, "ContextPool", "AsyncContextPool")
        # acquire_timeout is accepted so both pools take the same arguments, but a
        # sync acquire never waits for a slot (see the class docstring).
        super().__init__(browser, max_contexts, acquire_timeout, close_timeout)
        self.browser: Browser = browser
        self._thread = threading.get_ident()
        register_pool(self)

    def acquire(self, **options: Any) -> Lease:
        """Lease a context made with ``options``, the arguments of new_context.

        Raises TypeError for an unknown option, PoolExhaustedError when every
        context is in use, and PoolClosedError after ``close()``.
        """
        __tracebackhide__ = True
        reject_other_thread(self._thread, "acquire() called")
        reject_running_loop(self.browser)
        signature = make_signature(options)
        self._drop_dead()
        reject_disconnected(self.browser, "ContextPool")
        ticket = self.ledger.request(
            signature.key,
            signature.label,
            current_holder(),
            capture_site(),
            reusable=signature.reusable,
        )
        while ticket.state is not TicketState.GRANTED:
            if ticket.state is TicketState.EVICTING:
                assert ticket.victim is not None
                self._close_entry(ticket.victim)
            elif ticket.state is TicketState.CREATING:
                self._create(ticket, signature)
            elif ticket.state is TicketState.FAILED:
                assert ticket.error is not None
                raise ticket.error
            else:
                # Queued or joining: no other code in this thread can release meanwhile.
                self.ledger.expire(ticket, None)
        assert ticket.lease is not None and ticket.entry is not None
        return Lease(self, ticket.lease, self._slots[ticket.entry.entry_id])

    def _create(self, ticket: Ticket, signature: Signature) -> None:
        __tracebackhide__ = True
        entry = ticket.entry
        assert entry is not None
        try:
            with creating_for_pool():
                context = self.browser.new_context(**signature.options)
        except BaseException as error:
            # The ledger drops the slot, so a failed creation leaves the pool as
            # it was. The error goes to the caller unchanged.
            self.ledger.create_failed(ticket, error)
            raise
        self._slots[entry.entry_id] = ContextSlot(entry, signature, context)
        self.ledger.created(ticket)
        logger.debug("created context #%d (%s)", entry.entry_id, signature.label)

    def release(self, lease: Lease) -> None:
        """Return a lease's context to this pool; the same as ``lease.release()``.

        Raises LeaseError for a lease of another pool or one already released.
        """
        __tracebackhide__ = True
        if not isinstance(lease, Lease):
            raise TypeError(f"release() takes a Lease, got {type(lease).__qualname__}")
        self._release(lease._record, capture_site())

    def _release(self, record: LeaseRecord, site: Site, by: str | None = None) -> None:
        __tracebackhide__ = True
        reject_other_thread(self._thread, f"release of lease #{record.lease_id}")
        release = self.ledger.release(record, site, by)
        slot = self._slots.get(release.entry.entry_id)
        if slot is None:
            return
        if slot.is_dead():
            # Nothing to reset or close: only the bookkeeping is left to do.
            self._forget_dead(slot, release.action)
            return
        if release.action is ReleaseAction.NONE:
            for page in slot.pages_of(record.lease_id):
                self._close_page(slot, page)
        elif release.action is ReleaseAction.RESET:
            reusable = self._reset(slot)
            self.ledger.reset_done(slot.entry, reusable)
            if slot.entry.state is EntryState.CLOSING:  # not reusable, or shut down
                self._close_entry(slot.entry)
        else:
            self._close_entry(slot.entry)

    def reclaim(self, record: LeaseRecord, by: str) -> str:
        """Release a lease for its holder, and return what happened to the context."""
        entry = record.entry
        self._release(record, record.site, by)
        state = "reset" if entry.entry_id in self._slots else "closed"
        return f"released; context #{entry.entry_id} {state}"

    def _reset(self, slot: ContextSlot[BrowserContext]) -> bool:
        """Make a context as good as new for the next lease. False means: close it.

        See ops.plan_reset for what a reset clears and when it gives up.
        """
        plan = slot.plan_reset()
        if plan is None:
            return False
        context = slot.context
        pages = [ops.impl(page) for page in context.pages]
        coroutine = ops.reset_context(ops.impl(context), pages, plan)
        try:
            ops.run_sync(context, coroutine, self.close_timeout)
        except Exception as error:
            self._report_reset(slot, error)
            return False
        slot.mark_reset()
        return True

    def _close_page(self, slot: ContextSlot[BrowserContext], page: Page) -> None:
        try:
            ops.run_sync(page, ops.close(ops.impl(page)), self.close_timeout)
        except Exception as error:
            self._report_close(f"page of {slot.describe()}", error)
            # A page that does not close means a hung browser: a reset would hang
            # too, so the context is closed at its last release instead.
            slot.hung = True
        slot.page_owners.pop(page, None)

    def _forget_dead(
        self, slot: ContextSlot[BrowserContext], action: ReleaseAction
    ) -> None:
        """Complete the bookkeeping of a release whose context died."""
        entry = slot.entry
        if action is ReleaseAction.RESET:
            self.ledger.reset_done(entry, False)
        if action is not ReleaseAction.NONE:
            self._slots.pop(entry.entry_id, None)
            self.ledger.closed(entry)
            logger.info("%s died; the pool dropped it", slot.describe())

    def _close_entry(self, entry: Entry) -> None:
        """Close an entry's context with a timeout; the bookkeeping completes anyway."""
        slot = self._slots.pop(entry.entry_id, None)
        try:
            if slot is not None and not slot.is_dead():
                context = slot.context
                ops.run_sync(context, ops.close(ops.impl(context)), self.close_timeout)
                logger.debug("closed %s", slot.describe())
        except Exception as error:
            self._report_close(f"context #{entry.entry_id} ({entry.label})", error)
        finally:
            self.ledger.closed(entry)

    def close(self) -> None:
        """Close every context. Outstanding leases are released for their holders."""
        if self.ledger.is_closed:
            return
        reject_other_thread(self._thread, "close() called")
        to_close, _ = self.ledger.shutdown(capture_site())
        for entry in to_close:
            self._close_entry(entry)
        unregister_pool(self)

    def __enter__(self) -> ContextPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
