"""The state both pools keep beside the ledger: context slots, leases, close problems.

Nothing here calls Playwright. It only observes contexts and pages through their
events and the methods a holder calls, so the sync and async pools share it.
"""

from __future__ import annotations

import functools
from typing import Any, Generic, NamedTuple, TypeVar

from pytest_ctxleak.errors import LeaseError
from pytest_ctxleak.ledger import Entry, Holder, LeaseRecord, Ledger
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
    """A close that failed or timed out. The bookkeeping went ahead regardless."""

    what: str  # "context #3 (locale=de-DE)" or "page of context #3 (...)"
    error: str


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
        for name in ops.TRACKED_METHODS:
            self._track(name)
        context.on("page", self._on_page)  # type: ignore[attr-defined]

    def _track(self, name: str) -> None:
        """Shadow one method on this context object to note that it was called.

        The wrapper returns whatever the method returns, so it serves the sync API
        and the async API's coroutines alike.
        """
        # NOTE: a call through the class (BrowserContext.set_offline(context, ...))
        # bypasses the instance attribute and goes unnoticed.
        original = getattr(self.context, name)
        mark = ops.RESTORABLE.get(name, name)

        @functools.wraps(original)
        def tracked(*args: Any, **kwargs: Any) -> Any:
            self.touched.add(mark)
            return original(*args, **kwargs)

        setattr(self.context, name, tracked)

    def _on_page(self, page: Any) -> None:
        leases = list(self.entry.leases)
        self.page_owners[page] = leases[0] if len(leases) == 1 else None
        page.on("framenavigated", self._on_navigated)
        page.on("close", self._on_close)

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
        pages = self.context.pages  # type: ignore[attr-defined]
        return ops.plan_reset(
            self.signature.options, self.touched, self.origins, bool(pages)
        )

    def mark_reset(self) -> None:
        self.touched.clear()
        self.origins.clear()
        self.page_owners.clear()

    def describe(self) -> str:
        return f"context #{self.entry.entry_id} ({self.signature.label})"


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

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<{type(self).__name__} {state}: {self.open_contexts}/{self.max_contexts} "
            f"contexts, {len(self.ledger.outstanding())} leases>"
        )
