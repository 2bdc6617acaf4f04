"""ContextPool: the refcounted, capped pool over Playwright's sync API."""

from __future__ import annotations

import functools
import threading
from types import TracebackType
from typing import Any, NamedTuple

from playwright.sync_api import Browser, BrowserContext, Frame, Page

from pytest_ctxleak.errors import LeaseError
from pytest_ctxleak.ledger import (
    Entry,
    Holder,
    LeaseRecord,
    Ledger,
    ReleaseAction,
    TicketState,
)
from pytest_ctxleak.pool import ops
from pytest_ctxleak.pool.base import (
    DEFAULT_ACQUIRE_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_CONTEXTS,
    current_holder,
    describe_error,
    logger,
    origin_of,
    register_pool,
    reject_other_thread,
    unregister_pool,
    validate_timeout,
)
from pytest_ctxleak.signature import Signature, make_signature
from pytest_ctxleak.sites import Site, capture_site


class CloseProblem(NamedTuple):
    """A close that failed or timed out. The bookkeeping went ahead regardless."""

    what: str  # "context #3 (locale=de-DE)" or "page of context #3 (...)"
    error: str


class _Slot:
    """The Playwright side of one ledger entry."""

    __slots__ = ("context", "entry", "origins", "page_owners", "signature", "touched")

    def __init__(self, entry: Entry, signature: Signature, context: BrowserContext):
        self.entry = entry
        self.signature = signature
        self.context = context
        # Origins that any frame of the context navigated to since the last reset:
        # the only places where localStorage, IndexedDB and the like can be.
        self.origins: set[str] = set()
        # Page -> id of the lease that opened it, or None when several leases
        # shared the context at the time and the opener cannot be told apart.
        self.page_owners: dict[Page, int | None] = {}
        # What holders changed since the last reset: values of ops.RESTORABLE, or
        # names of ops.UNRESTORABLE methods.
        self.touched: set[str] = set()
        for name in ops.TRACKED_METHODS:
            self._track(name)

    def _track(self, name: str) -> None:
        """Shadow one method on this context object to note that it was called."""
        # NOTE: a call through the class (BrowserContext.set_offline(context, ...))
        # bypasses the instance attribute and goes unnoticed.
        original = getattr(self.context, name)
        mark = ops.RESTORABLE.get(name, name)

        @functools.wraps(original)
        def tracked(*args: Any, **kwargs: Any) -> Any:
            self.touched.add(mark)
            return original(*args, **kwargs)

        setattr(self.context, name, tracked)


class Lease:
    """One holder's use of a pooled context. Release it once, or use ``with``."""

    __slots__ = ("_pool", "_record", "_slot")

    def __init__(self, pool: ContextPool, record: LeaseRecord, slot: _Slot) -> None:
        self._pool = pool
        self._record = record
        self._slot = slot

    @property
    def context(self) -> BrowserContext:
        """The leased browser context. Raises LeaseError after release."""
        if self._record.released:
            raise LeaseError(
                f"lease #{self._record.lease_id} was released at "
                f"{self._record.release_site.location()}; acquire a new lease "
                "to use a context again"
            )
        return self._slot.context

    @property
    def lease_id(self) -> int:
        return self._record.lease_id

    @property
    def released(self) -> bool:
        return self._record.released

    @property
    def holder(self) -> Holder:
        """The test or fixture that took the lease."""
        return self._record.holder

    @property
    def site(self) -> Site:
        """Where in the caller's code the lease was taken."""
        return self._record.site

    @property
    def label(self) -> str:
        """The context's options, with secrets hidden."""
        return self._record.entry.label

    def new_page(self) -> Page:
        """Open a page in the context. It is closed when this lease is released."""
        page = self.context.new_page()
        self._slot.page_owners[page] = self._record.lease_id
        return page

    def release(self) -> None:
        """Return the context to the pool. A second call raises LeaseError."""
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

    def __repr__(self) -> str:
        state = "released" if self._record.released else "held"
        return f"<Lease {self._record.describe()}, {state}>"


class ContextPool:
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
        if not isinstance(browser, Browser):
            hint = (
                "; for playwright.async_api objects use AsyncContextPool"
                if type(browser).__module__.startswith("playwright.async_api")
                else ""
            )
            raise TypeError(
                "ContextPool needs a playwright.sync_api.Browser, got "
                f"{type(browser).__qualname__}{hint}"
            )
        self.ledger = Ledger(max_contexts)
        self.browser = browser
        self.acquire_timeout = validate_timeout("acquire_timeout", acquire_timeout)
        self.close_timeout = validate_timeout("close_timeout", close_timeout)
        self.close_problems: list[CloseProblem] = []
        self._slots: dict[int, _Slot] = {}
        self._thread = threading.get_ident()
        register_pool(self)

    @property
    def max_contexts(self) -> int:
        return self.ledger.max_contexts

    @property
    def open_contexts(self) -> int:
        """Contexts counted against the cap right now."""
        return self.ledger.occupied

    @property
    def closed(self) -> bool:
        return self.ledger.is_closed

    def acquire(self, **options: Any) -> Lease:
        """Lease a context made with ``options``, the arguments of new_context.

        Raises TypeError for an unknown option, PoolExhaustedError when every
        context is in use, and PoolClosedError after ``close()``.
        """
        reject_other_thread(self._thread, "acquire() called")
        signature = make_signature(options)
        site = capture_site()
        ticket = self.ledger.request(
            signature.key,
            signature.label,
            current_holder(),
            site,
            reusable=signature.reusable,
        )
        while ticket.state is not TicketState.GRANTED:
            if ticket.state is TicketState.EVICTING:
                assert ticket.victim is not None
                self._close_entry(ticket.victim)
            elif ticket.state is TicketState.CREATING:
                self._create(ticket.entry, signature, ticket)
            elif ticket.state is TicketState.FAILED:
                assert ticket.error is not None
                raise ticket.error
            else:
                # Queued or joining: in one thread nobody can release meanwhile.
                self.ledger.expire(ticket, 0)
        assert ticket.lease is not None and ticket.entry is not None
        return Lease(self, ticket.lease, self._slots[ticket.entry.entry_id])

    def _create(self, entry: Entry | None, signature: Signature, ticket: Any) -> None:
        assert entry is not None
        try:
            context = self.browser.new_context(**signature.options)
        except BaseException as error:
            # The ledger forgets the slot, so a failed creation leaves the pool as
            # it was. The error goes to the caller unchanged.
            self.ledger.create_failed(ticket, error)
            raise
        slot = _Slot(entry, signature, context)
        self._slots[entry.entry_id] = slot
        context.on("page", lambda page: self._on_page(slot, page))
        self.ledger.created(ticket)
        logger.debug("created context #%d (%s)", entry.entry_id, signature.label)

    def _on_page(self, slot: _Slot, page: Page) -> None:
        leases = list(slot.entry.leases)
        slot.page_owners[page] = leases[0] if len(leases) == 1 else None

        def on_navigated(frame: Frame) -> None:
            origin = origin_of(frame.url)
            if origin is not None:
                slot.origins.add(origin)

        def on_close(closed: Page) -> None:
            slot.page_owners.pop(closed, None)

        page.on("framenavigated", on_navigated)
        page.on("close", on_close)

    def release(self, lease: Lease) -> None:
        """Return a lease's context to this pool; the same as ``lease.release()``.

        Raises LeaseError for a lease of another pool or one already released.
        """
        if not isinstance(lease, Lease):
            raise TypeError(f"release() takes a Lease, got {type(lease).__qualname__}")
        self._release(lease._record, capture_site())

    def _release(self, record: LeaseRecord, site: Site, by: str | None = None) -> None:
        reject_other_thread(self._thread, f"release of lease #{record.lease_id}")
        release = self.ledger.release(record, site, by)
        slot = self._slots.get(release.entry.entry_id)
        if slot is None:
            return
        if release.action is ReleaseAction.NONE:
            owned = [
                p for p, lease in slot.page_owners.items() if lease == record.lease_id
            ]
            for page in owned:
                self._close_page(slot, page)
        elif release.action is ReleaseAction.RESET:
            reusable = self._reset(slot)
            self.ledger.reset_done(slot.entry, reusable)
            if not reusable:
                self._close_entry(slot.entry)
        else:
            self._close_entry(slot.entry)

    def reclaim(self, record: LeaseRecord, by: str) -> str:
        """Release a lease for its holder, and say what happened to the context."""
        entry = record.entry
        self._release(record, record.site, by)
        if entry.entry_id in self._slots:
            return f"released lease #{record.lease_id}; context #{entry.entry_id} reset"
        return f"released lease #{record.lease_id}; context #{entry.entry_id} closed"

    def _reset(self, slot: _Slot) -> bool:
        """Make a context as good as new for the next lease. False means: close it.

        See ops.plan_reset for what a reset clears and when it gives up.
        """
        context = slot.context
        pages = list(context.pages)
        plan = ops.plan_reset(
            slot.signature.options, slot.touched, slot.origins, bool(pages)
        )
        if plan is None:
            return False
        coroutine = ops.reset_context(
            ops.impl(context), [ops.impl(page) for page in pages], plan
        )
        try:
            ops.run_sync(context, coroutine, self.close_timeout)
        except Exception as error:
            reason = (
                f"timed out after {self.close_timeout:g} s"
                if ops.is_timeout(error)
                else describe_error(error)
            )
            logger.info(
                "context #%d could not be reset (%s); closing it instead",
                slot.entry.entry_id,
                reason,
            )
            return False
        slot.touched.clear()
        slot.origins.clear()
        slot.page_owners.clear()
        return True

    def _close_page(self, slot: _Slot, page: Page) -> None:
        try:
            ops.run_sync(page, ops.close(ops.impl(page)), self.close_timeout)
        except Exception as error:
            self._report_close(
                f"page of context #{slot.entry.entry_id} ({slot.signature.label})",
                error,
            )
        slot.page_owners.pop(page, None)

    def _close_entry(self, entry: Entry) -> None:
        """Close an entry's context with a timeout; the bookkeeping completes anyway."""
        slot = self._slots.pop(entry.entry_id, None)
        try:
            if slot is not None:
                context = slot.context
                ops.run_sync(context, ops.close(ops.impl(context)), self.close_timeout)
                logger.debug("closed context #%d (%s)", entry.entry_id, entry.label)
        except Exception as error:
            self._report_close(f"context #{entry.entry_id} ({entry.label})", error)
        finally:
            self.ledger.closed(entry)

    def _report_close(self, what: str, error: BaseException) -> None:
        if ops.is_timeout(error):
            text = f"close did not finish within {self.close_timeout:g} s"
        else:
            text = describe_error(error)
        logger.warning("closing %s failed: %s", what, text)
        self.close_problems.append(CloseProblem(what, text))

    def close(self) -> None:
        """Close every context. Outstanding leases are released for their holders."""
        if self.ledger.is_closed:
            return
        reject_other_thread(self._thread, "close() called")
        to_close, _ = self.ledger.shutdown()
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

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<ContextPool {state}: {self.open_contexts}/{self.max_contexts} contexts, "
            f"{len(self.ledger.outstanding())} leases>"
        )
