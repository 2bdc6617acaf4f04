"""The state both pools keep beside the ledger: context slots, leases, close problems.

Nothing here calls Playwright. It only observes contexts and pages through their
events and the methods a holder calls, so the sync and async pools share it.
"""

from __future__ import annotations

import functools
from typing import Any, Generic, NamedTuple, TypeVar

from pytest_ctxleak.errors import BrowserDisconnectedError, LeaseError
from pytest_ctxleak.ledger import (
    Entry,
    EntryState,
    Holder,
    LeaseRecord,
    Ledger,
    Ticket,
)
from pytest_ctxleak.pool import ops
from pytest_ctxleak.pool.base import (
    describe_error,
    logger,
    origin_of,
    validate_timeout,
)
from pytest_ctxleak.signature import Signature
from pytest_ctxleak.sites import Site

ContextT = TypeVar("ContextT")


class CloseProblem(NamedTuple):
    """A close or reset that failed or timed out. The bookkeeping went ahead
    regardless."""

    what: str  # "context #3 (locale=de-DE)" or "page of context #3 (...)"
    error: str
    action: str = "closing"  # or "resetting"

    def describe(self) -> str:
        return f"{self.action} {self.what} failed: {self.error}"


class ContextSlot(Generic[ContextT]):
    """The Playwright side of one ledger entry: the context and what it went through."""

    # No __slots__: Playwright stores its wrapper of an event handler on the
    # handler's object, so the bound methods given to on() need an instance dict.

    def __init__(self, entry: Entry, signature: Signature, context: ContextT) -> None:
        self.entry = entry
        self.signature = signature
        self.context = context
        # Origins that any frame of the context navigated to since the last reset:
        # the only places where localStorage, IndexedDB and the like can be.
        self.origins: set[str] = set()
        # Page -> id of the lease that opened it, or None when several leases
        # shared the context at the time, so the opener is unknown.
        self.page_owners: dict[Any, int | None] = {}
        # What holders changed since the last reset: values of ops.RESTORABLE, or
        # names of ops.UNRESTORABLE methods.
        self.touched: set[str] = set()
        # Set when the context closed without the pool closing it: its browser
        # crashed, disconnected or was closed. A dead context is never handed out
        # again, and no reset or close is sent to it.
        self.dead = False
        # Pages whose renderer process crashed since the last reset, as
        # descriptions for the report.
        self.crashed: list[str] = []
        # Set when closing one of its pages failed or hung: the context is then
        # closed instead of reset, so one hang does not cost a second timeout.
        self.hung = False
        for name in ops.TRACKED_METHODS:
            self._track(name)
        clock = getattr(context, "clock", None)  # Playwright 1.45 and newer
        for name in ops.CLOCK_METHODS if clock is not None else ():
            self._track(name, clock, ops.CLOCK)
        self._guard_close()
        context.on("page", self._on_page)  # type: ignore[attr-defined]
        context.on("close", self._on_context_close)  # type: ignore[attr-defined]
        # The context's event listeners now: the pool's and the watch's. A reset
        # removes every listener a holder added, so none hears the next lease.
        self._own_listeners = listeners_of(ops.impl(context))

    def _track(self, name: str, owner: Any = None, mark: str | None = None) -> None:
        """Shadow one method of the context, or of ``owner`` such as its clock, to
        note in ``touched`` that it was called.

        The wrapper returns whatever the method returns, so it serves the sync API
        and the async API's coroutines alike.
        """
        # NOTE: a call through the class (BrowserContext.set_offline(context, ...))
        # bypasses the instance attribute and goes unnoticed.
        owner = self.context if owner is None else owner
        original = getattr(owner, name, None)
        if original is None:
            return  # a method this Playwright version does not have
        mark = mark or ops.RESTORABLE.get(name, name)

        @functools.wraps(original)
        def tracked(*args: Any, **kwargs: Any) -> Any:
            self.touched.add(mark)
            return original(*args, **kwargs)

        setattr(owner, name, tracked)

    def _guard_close(self) -> None:
        """Make ``context.close()`` on a leased context raise LeaseError.

        Other leases may share the context, and the pool would hand a closed
        context to the next lease. Releasing the lease is the way to give it up.
        The pool closes contexts through the implementation object, which the
        guard does not wrap.
        """
        # NOTE: BrowserContext.close(context) through the class bypasses the
        # guard; the pool then finds the context dead and drops it.
        original = self.context.close  # type: ignore[attr-defined]
        entry = self.entry

        @functools.wraps(original)
        def guarded_close(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            if entry.leases:
                held = ", ".join(f"#{lease_id}" for lease_id in entry.leases)
                raise LeaseError(
                    f"context #{entry.entry_id} ({entry.label}) belongs to a pool "
                    f"and is held by lease {held}; release the lease instead of "
                    "closing its context, and the pool closes or reuses it"
                )
            return original(*args, **kwargs)

        setattr(self.context, "close", guarded_close)  # noqa: B010

    def _on_context_close(self, _context: Any) -> None:
        self.dead = True

    def is_dead(self) -> bool:
        """Tell whether the context closed or its browser went away."""
        if self.dead:
            return True
        browser = self.context.browser  # type: ignore[attr-defined]
        if browser is not None and not browser.is_connected():
            self.dead = True
        # The close event covers the rest; is_closed() also sees a close whose
        # event was not delivered yet. Older Playwright versions lack it.
        is_closed = getattr(ops.impl(self.context), "is_closed", None)
        if is_closed is not None and is_closed():
            self.dead = True
        return self.dead

    def _on_page(self, page: Any) -> None:
        leases = list(self.entry.leases)
        self.page_owners[page] = leases[0] if len(leases) == 1 else None
        page.on("framenavigated", self._on_navigated)
        page.on("close", self._on_close)
        page.on("crash", self._on_crash)

    def _on_crash(self, page: Any) -> None:
        # A crashed page cannot open a DevTools session for the storage reset, so
        # the context is closed instead of reused (see ops.plan_reset).
        self.touched.add(ops.CRASHED)
        url = origin_of(getattr(page, "url", "")) or "about:blank"
        what = f"a page ({url}) of {self.describe()}"
        logger.warning("the renderer process of %s crashed", what)
        self.crashed.append(what)

    def _on_navigated(self, frame: Any) -> None:
        origin = origin_of(frame.url)
        if origin is not None:
            self.origins.add(origin)

    def _on_close(self, page: Any) -> None:
        self.page_owners.pop(page, None)

    def pages_of(self, lease_id: int) -> list[Any]:
        """Return the open pages that the lease ``lease_id`` opened."""
        return [page for page, owner in self.page_owners.items() if owner == lease_id]

    def plan_reset(self) -> ops.ResetPlan | None:
        if self.hung:
            return None
        pages = self.context.pages  # type: ignore[attr-defined]
        return ops.plan_reset(
            self.signature.options, self.touched, self.origins, bool(pages)
        )

    def mark_reset(self) -> None:
        remove_listeners_except(ops.impl(self.context), self._own_listeners)
        self.touched.clear()
        self.origins.clear()
        self.page_owners.clear()

    def describe(self) -> str:
        return f"context #{self.entry.entry_id} ({self.signature.label})"


def listeners_of(emitter: Any) -> dict[Any, list[Any]]:
    """Return an event emitter's listeners by event."""
    return {event: list(emitter.listeners(event)) for event in emitter.event_names()}


def remove_listeners_except(emitter: Any, kept: dict[Any, list[Any]]) -> None:
    """Remove every listener of ``emitter`` that is not in ``kept``."""
    for event, listeners in listeners_of(emitter).items():
        for listener in listeners:
            if listener not in kept.get(event, ()):
                emitter.remove_listener(event, listener)


class LeaseBase(Generic[ContextT]):
    """The parts of a lease that the sync and async APIs share: identity, holder,
    site and the context."""

    __slots__ = ("_record", "_slot")

    def __init__(self, record: LeaseRecord, slot: ContextSlot[ContextT]) -> None:
        self._record = record
        self._slot = slot

    @property
    def context(self) -> ContextT:
        """The leased browser context. Raises LeaseError after release."""
        __tracebackhide__ = True
        if self._record.released:
            raise LeaseError(
                f"lease #{self._record.lease_id} was released at "
                f"{self._record.release_site.location()}; acquire a new lease "
                "to use a context again"
            )
        return self._slot.context

    @property
    def lease_id(self) -> int:
        """The lease's number in its pool, as leak reports and errors print it."""
        return self._record.lease_id

    @property
    def released(self) -> bool:
        """Whether the lease was released, by its holder or for it."""
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

    def _own_page(self, page: Any) -> None:
        self._slot.page_owners[page] = self._record.lease_id

    def __repr__(self) -> str:
        state = "released" if self._record.released else "held"
        return f"<{type(self).__name__} {self._record.describe()}, {state}>"


def require_browser(browser: object, expected: type, pool: str, twin: str) -> None:
    """Raise TypeError unless ``browser`` is a Browser of the pool's Playwright API.

    A browser of the other API gets a hint naming ``twin``, the pool for that API.
    """
    __tracebackhide__ = True
    if isinstance(browser, expected):
        return
    is_sync = expected.__module__.startswith("playwright.sync_api")
    api, other_api = ("sync_api", "async_api") if is_sync else ("async_api", "sync_api")
    hint = (
        f"; for playwright.{other_api} objects use {twin}"
        if type(browser).__module__.startswith(f"playwright.{other_api}")
        else ""
    )
    raise TypeError(
        f"{pool} needs a playwright.{api}.Browser, got "
        f"{type(browser).__qualname__}{hint}"
    )


def reject_disconnected(browser: Any, pool: str) -> None:
    """Raise BrowserDisconnectedError if the pool's browser is gone."""
    __tracebackhide__ = True
    if browser.is_connected():
        return
    raise BrowserDisconnectedError(
        f"the browser of this {pool} is disconnected: it crashed, was killed or was "
        "closed. Launch a new browser and create a new pool on it; the "
        "context_pool fixture does this by itself for the next test."
    )


class PoolCore(Generic[ContextT]):
    """The state both pools keep beside the ledger: settings, slots, close problems.

    Subclasses check the browser's type and their thread or loop, carry out the
    ledger's decisions with their API, and register themselves with register_pool.
    """

    def __init__(
        self,
        browser: Any,
        max_contexts: int,
        acquire_timeout: float,
        close_timeout: float,
    ) -> None:
        __tracebackhide__ = True
        self.ledger = Ledger(max_contexts)
        self.browser = browser
        self.acquire_timeout = validate_timeout("acquire_timeout", acquire_timeout)
        self.close_timeout = validate_timeout("close_timeout", close_timeout)
        # Closes that failed or timed out; the leak check reports new ones.
        self.close_problems: list[CloseProblem] = []
        self._slots: dict[int, ContextSlot[ContextT]] = {}

    @property
    def max_contexts(self) -> int:
        """The cap: the most contexts the pool keeps open at once."""
        return self.ledger.max_contexts

    @property
    def open_contexts(self) -> int:
        """Contexts counted against the cap right now."""
        return self.ledger.occupied

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called; a closed pool rejects every acquire."""
        return self.ledger.is_closed

    def contexts(self) -> list[ContextT]:
        """Return the pool's open contexts, in use or idle."""
        return [slot.context for slot in self._slots.values()]

    def take_crashes(self) -> list[str]:
        """Return and forget the pages whose renderer crashed since the last call."""
        found: list[str] = []
        for slot in self._slots.values():
            found += slot.crashed
            slot.crashed = []
        return found

    def _drop_dead(self) -> list[Ticket]:
        """Forget the open contexts that died: closed under the pool, or gone with
        their browser. Returns the tickets whose state changed.

        No close is sent, since there is nothing left to close. The slot is freed
        at once; leases on a dead context stay outstanding until their holders
        release them, so the leak check still judges them.
        """
        changed: list[Ticket] = []
        for slot in list(self._slots.values()):
            entry = slot.entry
            if entry.state is not EntryState.OPEN or not slot.is_dead():
                continue  # creating, resetting and closing contexts finish first
            logger.info("%s died; the pool dropped it", slot.describe())
            del self._slots[entry.entry_id]
            self.ledger.discard(entry)
            changed += self.ledger.closed(entry)
        return changed

    def _explain(self, error: BaseException) -> str:
        if ops.is_timeout(error):
            return f"did not finish within {self.close_timeout:g} s"
        return describe_error(error)

    def _report_close(self, what: str, error: BaseException) -> None:
        text = self._explain(error)
        if ops.is_timeout(error):
            text = f"close {text}"
        logger.warning("closing %s failed: %s", what, text)
        self.close_problems.append(CloseProblem(what, text))

    def _report_reset(self, slot: ContextSlot[ContextT], error: BaseException) -> None:
        """Record a reset that failed or hung; the caller closes the context."""
        text = f"{self._explain(error)}; the context was closed instead of reused"
        logger.warning("resetting %s failed: %s", slot.describe(), text)
        self.close_problems.append(CloseProblem(slot.describe(), text, "resetting"))

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<{type(self).__name__} {state}: {self.open_contexts}/{self.max_contexts} "
            f"contexts, {len(self.ledger.outstanding())} leases>"
        )
