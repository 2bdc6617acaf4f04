"""Bookkeeping of a context pool: leases, refcounts, LRU order, the cap and waiters.

The ledger is pure: no Playwright, no I/O, no clock and no threads. A pool gets each
decision from it (grant, create, evict, wait, reset, close), carries that out on real
browser contexts, and reports the outcome back. Every rule of the pool lives here,
so it can be checked in microseconds by unit and property tests.

An acquire is a ``Ticket`` that moves through these states::

    QUEUED --(slot free)--> CREATING --created()--> GRANTED
    QUEUED --(idle LRU)---> EVICTING --closed(victim)--> CREATING
    JOINING --(entry open)--> GRANTED
    any waiting state --cancel()/expire()/shutdown()--> CANCELLED or FAILED

A context is an ``Entry`` that moves through CREATING -> OPEN -> RESETTING -> OPEN ...
and finally CLOSING, after which ``closed()`` removes it. An entry made by an evicting
ticket starts as PENDING until its victim is closed, so that requests for the same
options join it instead of evicting a second context.

Fairness: a ticket queued for a slot is never starved by later requests that share a
context in use. While the queue is non-empty, one live entry drains: a request for it
queues behind the waiters instead of sharing it, so its holders run out and its slot
frees. Requests for other live entries still share them at once. See
``Ledger._draining``.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

from pytest_ctxleak.errors import LeaseError, PoolClosedError, PoolExhaustedError
from pytest_ctxleak.sites import UNKNOWN_SITE, Site

# The names pytest gives the fixtures that run xunit-style setup and teardown
# functions, such as _xunit_setup_method_fixture_TestPages.
_XUNIT_FIXTURE = re.compile(
    r"_xunit_(?P<hook>setup)_(?P<kind>method|class|module|function)_fixture_"
    r"(?P<owner>.+)"
)


class Holder(NamedTuple):
    """The taker of a lease: a test, a fixture, or code running outside any test."""

    kind: str  # "test", "fixture" or "code"
    name: str  # test node id, fixture name, or a free-form label
    scope: str = "function"  # the fixture's scope; "function" for tests
    key: object = None  # identifies one fixture instance; None for tests and code

    def describe(self) -> str:
        """Return the holder as a phrase for messages."""
        xunit = _XUNIT_FIXTURE.fullmatch(self.name)
        if self.kind == "fixture" and xunit is not None:
            # pytest runs setup_method and its kin through fixtures of these names.
            return f"{xunit['hook']}_{xunit['kind']} of {xunit['owner']}"
        if self.kind == "fixture":
            return f"{self.scope}-scoped fixture '{self.name}'"
        if self.kind == "test":
            return f"test {self.name}"
        return self.name


NO_HOLDER = Holder("code", "code outside any test")


class EntryState(enum.Enum):
    PENDING = "pending"  # waits for the slot of an evicted entry; not yet counted
    CREATING = "creating"
    OPEN = "open"
    RESETTING = "resetting"
    CLOSING = "closing"


class TicketState(enum.Enum):
    QUEUED = "queued"  # waits for a slot, first come first served
    JOINING = (
        "joining"  # waits for its signature's entry to finish creating or resetting
    )
    EVICTING = "evicting"  # the caller must close `victim`; the slot then passes to it
    CREATING = "creating"  # the caller must create the context of `entry`
    GRANTED = "granted"  # `lease` is the caller's
    FAILED = "failed"  # `error` is the reason
    CANCELLED = "cancelled"


WAITING_STATES = frozenset(
    {TicketState.QUEUED, TicketState.JOINING, TicketState.EVICTING}
)


@dataclass(eq=False)
class Entry:
    """One pooled context slot. Counts toward the cap in every state."""

    entry_id: int
    signature: str
    label: str
    state: EntryState
    reusable: bool
    # Invariant: refcount == len(leases), and every record in `leases` is unreleased.
    leases: dict[int, LeaseRecord] = field(default_factory=dict)
    # Tickets of the same signature that wait for this entry to finish creating or
    # resetting. They are granted together when it opens.
    joiners: list[Ticket] = field(default_factory=list)
    # The ticket that evicted this entry and inherits its slot once it is closed.
    successor: Ticket | None = None
    last_used: int = 0
    # Set by discard(): the context died or was closed under its holders, so it may
    # be CLOSING while leases remain outstanding.
    dead: bool = False
    # Set by closed() when the context is gone but leases remain: the slot is free,
    # and the leases wait for their holders to release them.
    forgotten: bool = False

    @property
    def refcount(self) -> int:
        return len(self.leases)


@dataclass(eq=False)
class LeaseRecord:
    """The ledger's record of one lease."""

    lease_id: int
    entry: Entry
    holder: Holder
    site: Site
    ledger: Ledger
    released: bool = False
    release_site: Site = UNKNOWN_SITE
    # Set when the lease was released for its holder: by the leak check after it
    # reported the lease, or by the pool's close(). A later release names this.
    released_by: str | None = None

    def describe(self) -> str:
        """Return one line naming the lease, its context, holder and site."""
        return (
            f"lease #{self.lease_id} of context #{self.entry.entry_id} "
            f"({self.entry.label}) held by {self.holder.describe()}, "
            f"acquired at {self.site.location()}"
        )


@dataclass(eq=False)
class Ticket:
    """One acquire in progress."""

    ticket_id: int
    signature: str
    label: str
    holder: Holder
    site: Site
    reusable: bool
    state: TicketState
    entry: Entry | None = None
    victim: Entry | None = None
    lease: LeaseRecord | None = None
    error: BaseException | None = None
    # The ledger's count of releases when the ticket was opened, so a timeout message
    # can report how many leases were released while the ticket waited.
    releases_before: int = 0


class ReleaseAction(enum.Enum):
    NONE = "none"  # other leases still hold the context
    RESET = "reset"  # the caller must reset the context, then call reset_done()
    CLOSE = "close"  # the caller must close the context, then call closed()


class Release(NamedTuple):
    """The caller's next step for an entry after a release."""

    entry: Entry
    action: ReleaseAction


class Ledger:
    """Leases, refcounts, LRU order, the cap and the waiters of one pool.

    Invariants, checked by ``check_invariants``:

    1. Every entry's refcount equals its number of unreleased leases.
    2. Entries in any state, including CREATING and CLOSING, never exceed the cap.
    3. An entry with refcount > 0 is never CLOSING and never in the idle LRU.
    4. The idle LRU contains exactly the OPEN entries with refcount 0.
    5. At most one CREATING, OPEN or RESETTING entry exists per signature.
    6. The queue is non-empty only while its head is blocked: its signature has no
       live entry, every slot is taken and no context is idle.
    7. While the queue is non-empty, a request never shares or joins the draining
       entry, but queues behind the waiters instead. This one is about a step, not
       a state, so the hypothesis state machine checks it after each request.
    """

    def __init__(self, max_contexts: int) -> None:
        __tracebackhide__ = True
        if isinstance(max_contexts, bool) or not isinstance(max_contexts, int):
            raise TypeError(
                f"max_contexts must be an int, got {max_contexts!r}; "
                "pass a whole number such as 8"
            )
        if max_contexts < 1:
            raise ValueError(
                f"max_contexts must be at least 1, got {max_contexts}; "
                "a pool needs room for one context"
            )
        self.max_contexts = max_contexts
        self.is_closed = False
        self._ticket_ids = itertools.count(1)
        self._entry_ids = itertools.count(1)
        self._lease_ids = itertools.count(1)
        self._clock = itertools.count(1)
        self._entries: dict[int, Entry] = {}
        # Live (CREATING, OPEN or RESETTING) entry per signature.
        self._by_signature: dict[str, Entry] = {}
        # Idle OPEN entries, least recently used first.
        self._idle: OrderedDict[int, Entry] = OrderedDict()
        self._leases: dict[int, LeaseRecord] = {}
        # Leases still outstanding when the ledger was shut down. Their holders never
        # released them, so the leak check still reports them.
        self.abandoned: list[LeaseRecord] = []
        # Tickets waiting for a slot, oldest first.
        self._queue: deque[Ticket] = deque()
        # The live entry that drains for the queue. While the queue is non-empty, a
        # request for its signature queues instead of sharing or joining it, as does
        # a request for any signature without a live entry. Its leases therefore only
        # run out, and once its holders have released them its slot goes to the head
        # of the queue. So every waiter is served once the holders that the draining
        # entry had when it was chosen are done, however many later requests share
        # the other contexts meanwhile.
        #
        # The choice sticks until the entry stops being live (closed, evicted or
        # failed) or the queue empties. A draining entry that moved to whichever
        # entry looked closer to free would give no bound: a steady stream of
        # requests could keep each entry busy in turn.
        #
        # Draining one entry is less restrictive than strict first come first
        # served, under which a request for a context in use would wait behind the
        # whole queue. The price: strict order would give the head whichever
        # context frees first, but here only the draining entry is sure to free,
        # because the others keep taking leases. When its holders are slow, the
        # head waits longer than strict order would make it wait.
        # NOTE: the choice is a guess (see _drain_cost). A lease held far longer
        # than its holder's kind suggests makes the head wait that long.
        #
        # None while the queue is empty. Chosen when a request first needs it.
        self._draining: Entry | None = None
        # Leases released so far, for the message of an acquire that timed out.
        self._releases = 0
        # Contexts in use: being created, or held by at least one lease. Idle,
        # resetting and closing contexts are the pool's own and do not count.
        self._creating = 0
        self._held = 0
        self._peak = 0
        self._peak_site: Site = UNKNOWN_SITE
        self._occupied_peak = 0

    # -- queries ------------------------------------------------------------------

    @property
    def occupied(self) -> int:
        """Contexts that count toward the cap: open, being created, reset or closed."""
        return len(self._entries)

    @property
    def in_use(self) -> int:
        """Contexts being created or held by a lease right now."""
        return self._creating + self._held

    @property
    def peak(self) -> int:
        """The most contexts in use at once since the last ``reset_peak``."""
        return self._peak

    @property
    def occupied_peak(self) -> int:
        """The maximum of contexts counted against the cap at once, ever."""
        return self._occupied_peak

    @property
    def peak_site(self) -> Site:
        """The acquire site that first reached the current peak."""
        return self._peak_site

    def reset_peak(self) -> None:
        """Start a new peak measurement from the contexts in use now."""
        self._peak = self.in_use
        self._peak_site = UNKNOWN_SITE

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def idle_entries(self) -> list[Entry]:
        """Idle entries, least recently used first."""
        return list(self._idle.values())

    def outstanding(self) -> list[LeaseRecord]:
        """Unreleased leases, oldest first."""
        return list(self._leases.values())

    def waiting(self) -> list[Ticket]:
        """Tickets queued for a slot, oldest first."""
        return list(self._queue)

    @property
    def draining(self) -> Entry | None:
        """The entry that new requests may not share while tickets are queued.

        None while the queue is empty, and before the first request since the queue
        formed or since the previous draining entry stopped being live.
        """
        entry = self._draining
        if not self._queue or entry is None or not self._is_live(entry):
            return None
        return entry

    # -- acquire ------------------------------------------------------------------

    def request(
        self,
        signature: str,
        label: str,
        holder: Holder = NO_HOLDER,
        site: Site = UNKNOWN_SITE,
        *,
        reusable: bool = True,
    ) -> Ticket:
        """Open a ticket for a context of ``signature`` and decide its first step."""
        __tracebackhide__ = True
        if self.is_closed:
            raise PoolClosedError(
                "the pool is closed; create a new ContextPool to acquire contexts"
            )
        ticket = Ticket(
            next(self._ticket_ids),
            signature,
            label,
            holder,
            site,
            reusable,
            TicketState.QUEUED,
            releases_before=self._releases,
        )
        live = self._by_signature.get(signature)
        if live is not None and self._queue and live is self._drain_target():
            # Sharing the draining entry would let this request overtake the
            # waiters and keep that entry busy for as long as requests arrive.
            live = None
        if live is not None and live.state is EntryState.OPEN:
            self._grant(ticket, live)
        elif live is not None:
            ticket.state = TicketState.JOINING
            ticket.entry = live
            live.joiners.append(ticket)
        else:
            self._queue.append(ticket)
            self._serve()
        return ticket

    def created(self, ticket: Ticket) -> list[Ticket]:
        """Record that the context of a CREATING ticket now exists.

        Grants the ticket and every joiner. Returns the joiners, whose state changed.
        """
        entry = self._expect(ticket, TicketState.CREATING)
        assert entry is not None
        entry.state = EntryState.OPEN
        self._creating -= 1
        self._grant(ticket, entry)
        return self._grant_joiners(entry)

    def create_failed(
        self, ticket: Ticket, error: BaseException | None = None
    ) -> list[Ticket]:
        """Forget the entry of a CREATING ticket whose context could not be made.

        With an ``error``, the creation failed and the joiners fail with it, since
        they asked for the same options. Without one, the creator was cancelled and
        the joiners go back to the head of the queue to try again. The caller must
        already have closed any half-made context. Returns the changed tickets.
        """
        entry = self._expect(ticket, TicketState.CREATING)
        assert entry is not None
        ticket.entry = None
        if error is None:
            ticket.state = TicketState.CANCELLED
        else:
            ticket.state = TicketState.FAILED
            ticket.error = error
        joiners = entry.joiners
        entry.joiners = []
        self._creating -= 1
        self._forget(entry)
        changed: list[Ticket] = []
        for joiner in joiners:
            joiner.entry = None
            if error is None:
                joiner.state = TicketState.QUEUED
            else:
                joiner.state = TicketState.FAILED
                joiner.error = error
                changed.append(joiner)
        if error is None:
            self._queue.extendleft(reversed(joiners))
        return changed + self._serve()

    def cancel(self, ticket: Ticket) -> list[Ticket]:
        """Withdraw a waiting ticket. Returns the other tickets whose state changed.

        A GRANTED ticket must be released instead, and a CREATING one must be ended
        with ``create_failed`` once the half-made context is closed.
        """
        return self._withdraw(ticket, TicketState.CANCELLED, None)

    def expire(self, ticket: Ticket, timeout: float | None) -> list[Ticket]:
        """Fail a waiting ticket whose acquire timed out, with a PoolExhaustedError."""
        error = self.exhausted_error(ticket, timeout)
        return self._withdraw(ticket, TicketState.FAILED, error)

    def exhausted_error(
        self, ticket: Ticket, timeout: float | None
    ) -> PoolExhaustedError:
        """Build the error for a ticket that found every context in use.

        A ``timeout`` of None means the caller cannot wait at all (a sync pool).
        """
        released = self._releases - ticket.releases_before
        if timeout is None:
            why = (
                "and a sync ContextPool cannot wait for one: only its own thread "
                "could release them, and that thread is in this acquire"
            )
        elif released == 0:
            why = f"and none was released within {timeout:g} s"
        else:
            leases = "lease was" if released == 1 else "leases were"
            why = (
                f"and none became free within {timeout:g} s: {released} {leases} "
                "released meanwhile, but other leases still held those contexts or "
                "earlier waiters took them"
            )
        lines = [
            f"pool exhausted: all {self.max_contexts} contexts are in use {why}, "
            f"so the acquire of ({ticket.label}) at {ticket.site.location()} gave up.",
            "Holders:",
        ]
        lines += [f"  - {record.describe()}" for record in self._leases.values()]
        lines.append(
            "Release leases sooner (use 'with pool.acquire(...)'), "
            "or raise max_contexts."
        )
        return PoolExhaustedError("\n".join(lines))

    # -- release ------------------------------------------------------------------

    def release(
        self, record: LeaseRecord, site: Site = UNKNOWN_SITE, by: str | None = None
    ) -> Release:
        """Release a lease. Raises LeaseError on a second release or a foreign lease."""
        __tracebackhide__ = True
        if record.ledger is not self:
            raise LeaseError(
                f"lease #{record.lease_id} belongs to another pool; release it "
                "through the pool it was acquired from"
            )
        if record.released:
            how = f"by {record.released_by}" if record.released_by else "already"
            raise LeaseError(
                f"lease #{record.lease_id} was released {how} at "
                f"{record.release_site.location()}; a lease can be released once"
            )
        record.released = True
        record.release_site = site
        record.released_by = by
        self._releases += 1
        del self._leases[record.lease_id]
        entry = record.entry
        del entry.leases[record.lease_id]
        if not entry.leases and not entry.forgotten:
            self._held -= 1
        entry.last_used = next(self._clock)
        if entry.leases or entry.forgotten or entry.state is not EntryState.OPEN:
            # Still shared, or the context is already on its way out (shutdown,
            # discard): nothing more to do for this entry.
            return Release(entry, ReleaseAction.NONE)
        if entry.reusable and not self.is_closed:
            entry.state = EntryState.RESETTING
            return Release(entry, ReleaseAction.RESET)
        self._begin_close(entry)
        return Release(entry, ReleaseAction.CLOSE)

    def reset_done(self, entry: Entry, ok: bool) -> list[Ticket]:
        """Record the outcome of a reset. Returns the tickets whose state changed.

        A context that could not be reset goes to CLOSING; the caller must close it
        and call ``closed``.
        """
        if entry.state is not EntryState.RESETTING:
            raise ValueError(f"context #{entry.entry_id} is {entry.state.value}")
        if not ok or self.is_closed:
            joiners = entry.joiners
            entry.joiners = []
            for joiner in joiners:
                joiner.state = TicketState.QUEUED
                joiner.entry = None
            self._queue.extendleft(reversed(joiners))
            self._begin_close(entry)
            return self._serve()
        entry.state = EntryState.OPEN
        if entry.joiners:
            return self._grant_joiners(entry)
        self._idle[entry.entry_id] = entry
        return self._serve()

    def discard(self, entry: Entry) -> None:
        """Start closing an entry whose context died or must go.

        Its leases stay outstanding until their holders release them, so the leak
        check still finds them. The caller must close the context and call ``closed``.
        """
        entry.dead = True
        if entry.state is EntryState.CLOSING:
            return
        self._idle.pop(entry.entry_id, None)
        self._begin_close(entry)

    def closed(self, entry: Entry) -> list[Ticket]:
        """Forget a CLOSING entry whose context is now closed, and hand on its slot."""
        if entry.state is not EntryState.CLOSING:
            raise ValueError(f"context #{entry.entry_id} is {entry.state.value}")
        if entry.entry_id not in self._entries:
            # A second close would free the slot twice and let the pool exceed
            # its cap while the first close is still running.
            raise ValueError(f"context #{entry.entry_id} is already closed")
        self._forget(entry)
        if entry.leases:
            entry.forgotten = True
            self._held -= 1
        successor = entry.successor
        entry.successor = None
        changed: list[Ticket] = []
        if successor is not None and successor.state is TicketState.EVICTING:
            assert successor.entry is not None
            successor.victim = None
            self._start_creating(successor, successor.entry)
            changed.append(successor)
        return changed + self._serve()

    def shutdown(self, site: Site = UNKNOWN_SITE) -> tuple[list[Entry], list[Ticket]]:
        """Close the ledger: fail every waiter and mark every lease released.

        Returns the entries the caller must close (then call ``closed`` on each) and
        the tickets that failed.
        """
        self.is_closed = True
        failed: list[Ticket] = []
        error = PoolClosedError("the pool was closed while this acquire waited")
        waiting = list(self._queue)
        self._queue.clear()
        self._draining = None
        for entry in self._entries.values():
            waiting += entry.joiners
            entry.joiners = []
            successor = entry.successor
            if successor is not None:
                waiting.append(successor)
                entry.successor = None
                if successor.entry is not None:
                    waiting += successor.entry.joiners
                    successor.entry.joiners = []
                    self._by_signature.pop(successor.signature, None)
        for ticket in waiting:
            ticket.state = TicketState.FAILED
            ticket.error = error
            ticket.entry = ticket.victim = None
            failed.append(ticket)
        for record in list(self._leases.values()):
            self.abandoned.append(record)
            self.release(record, site, by="the pool's close()")
        to_close = []
        for entry in list(self._entries.values()):
            if entry.state is EntryState.OPEN:
                self._idle.pop(entry.entry_id, None)
                self._begin_close(entry)
            if entry.state is EntryState.CLOSING:
                to_close.append(entry)
        return to_close, failed

    # -- internals ----------------------------------------------------------------

    def _expect(self, ticket: Ticket, state: TicketState) -> Entry | None:
        if ticket.state is not state:
            raise ValueError(
                f"ticket #{ticket.ticket_id} is {ticket.state.value}, "
                f"expected {state.value}"
            )
        return ticket.entry

    def _grant(self, ticket: Ticket, entry: Entry) -> None:
        record = LeaseRecord(
            next(self._lease_ids), entry, ticket.holder, ticket.site, self
        )
        if not entry.leases:
            self._held += 1
            self._note_peak(ticket.site)
        entry.leases[record.lease_id] = record
        entry.last_used = next(self._clock)
        self._idle.pop(entry.entry_id, None)
        self._leases[record.lease_id] = record
        ticket.state = TicketState.GRANTED
        ticket.entry = entry
        ticket.lease = record

    def _grant_joiners(self, entry: Entry) -> list[Ticket]:
        joiners = entry.joiners
        entry.joiners = []
        for joiner in joiners:
            self._grant(joiner, entry)
        return joiners

    def _withdraw(
        self, ticket: Ticket, state: TicketState, error: BaseException | None
    ) -> list[Ticket]:
        if ticket.state is TicketState.QUEUED:
            self._queue.remove(ticket)
        elif ticket.state is TicketState.JOINING:
            assert ticket.entry is not None
            ticket.entry.joiners.remove(ticket)
        elif ticket.state is TicketState.EVICTING:
            # The victim keeps closing; its slot goes to the queue once it is closed.
            # Tickets that joined the pending entry go back to the head of the queue.
            assert ticket.victim is not None and ticket.entry is not None
            ticket.victim.successor = None
            pending = ticket.entry
            if self._by_signature.get(pending.signature) is pending:
                del self._by_signature[pending.signature]
            for joiner in pending.joiners:
                joiner.state = TicketState.QUEUED
                joiner.entry = None
            self._queue.extendleft(reversed(pending.joiners))
            pending.joiners = []
        else:
            raise ValueError(
                f"ticket #{ticket.ticket_id} is {ticket.state.value}; only a waiting "
                "ticket can be withdrawn"
            )
        ticket.state = state
        ticket.error = error
        ticket.entry = ticket.victim = None
        return self._serve()

    def _serve(self) -> list[Ticket]:
        """Move queued tickets forward, oldest first, while slots allow."""
        changed: list[Ticket] = []
        while self._queue:
            head = self._queue[0]
            live = self._by_signature.get(head.signature)
            if live is not None:
                self._queue.popleft()
                if live.state is EntryState.OPEN:
                    self._grant(head, live)
                else:
                    head.state = TicketState.JOINING
                    head.entry = live
                    live.joiners.append(head)
            elif self.occupied < self.max_contexts:
                self._queue.popleft()
                self._start_creating(head, self._new_entry(head, EntryState.CREATING))
            elif self._idle:
                self._queue.popleft()
                _, victim = self._idle.popitem(last=False)
                self._begin_close(victim)
                victim.successor = head
                head.state = TicketState.EVICTING
                head.victim = victim
                head.entry = self._new_entry(head, EntryState.PENDING)
                self._by_signature[head.signature] = head.entry
            else:
                break
            changed.append(head)
        if not self._queue:
            self._draining = None
        return changed

    def _is_live(self, entry: Entry) -> bool:
        return self._by_signature.get(entry.signature) is entry

    def _drain_target(self) -> Entry | None:
        """Return the draining entry, choosing one if none is live.

        Called only while the queue is non-empty. The choice favours the entry likely
        to free first: no holder that outlives a test (a fixture of a wider scope),
        then the fewest leases to wait for, then the least recently used.
        """
        if self._draining is not None and self._is_live(self._draining):
            return self._draining
        candidates = list(self._by_signature.values())
        self._draining = min(candidates, key=_drain_cost) if candidates else None
        return self._draining

    def _new_entry(self, ticket: Ticket, state: EntryState) -> Entry:
        return Entry(
            next(self._entry_ids),
            ticket.signature,
            ticket.label,
            state,
            ticket.reusable,
        )

    def _start_creating(self, ticket: Ticket, entry: Entry) -> None:
        """Give ``entry`` a slot and make ``ticket`` its creator."""
        entry.state = EntryState.CREATING
        self._entries[entry.entry_id] = entry
        self._by_signature[entry.signature] = entry
        ticket.state = TicketState.CREATING
        ticket.entry = entry
        self._creating += 1
        self._occupied_peak = max(self._occupied_peak, self.occupied)
        self._note_peak(ticket.site)

    def _note_peak(self, site: Site) -> None:
        if self.in_use > self._peak:
            self._peak = self.in_use
            self._peak_site = site

    def _begin_close(self, entry: Entry) -> None:
        entry.state = EntryState.CLOSING
        self._idle.pop(entry.entry_id, None)
        if self._by_signature.get(entry.signature) is entry:
            del self._by_signature[entry.signature]

    def _forget(self, entry: Entry) -> None:
        self._entries.pop(entry.entry_id, None)
        self._idle.pop(entry.entry_id, None)
        if self._by_signature.get(entry.signature) is entry:
            del self._by_signature[entry.signature]

    def check_invariants(self) -> None:
        """Raise AssertionError if any invariant of the class docstring is broken."""
        assert self.occupied <= self.max_contexts, "more contexts than the cap"
        live_signatures: set[str] = set()
        for signature, live in self._by_signature.items():
            assert live.signature == signature
            assert live.state is not EntryState.CLOSING, "closing entry is live"
            in_entries = live.entry_id in self._entries
            assert in_entries == (live.state is not EntryState.PENDING)
        for entry in self._entries.values():
            assert entry.refcount == len(entry.leases)
            for record in entry.leases.values():
                assert not record.released, "released lease still counted"
                assert self._leases.get(record.lease_id) is record
            if entry.refcount > 0:
                assert entry.state is not EntryState.CLOSING or entry.dead, (
                    "context in use is closing"
                )
                assert entry.entry_id not in self._idle, "context in use is idle"
            is_idle = entry.state is EntryState.OPEN and entry.refcount == 0
            assert is_idle == (entry.entry_id in self._idle), "idle LRU out of sync"
            if entry.state is not EntryState.CLOSING:
                assert entry.signature not in live_signatures, "duplicate signature"
                live_signatures.add(entry.signature)
        counted = sum(e.refcount for e in self._entries.values())
        orphans = [r for r in self._leases.values() if r.entry.forgotten]
        assert counted + len(orphans) == len(self._leases), "lease count out of sync"
        creating = [e for e in self._entries.values() if e.state is EntryState.CREATING]
        assert self._creating == len(creating), "creating count out of sync"
        held = [e for e in self._entries.values() if e.refcount > 0]
        assert self._held == len(held), "held count out of sync"
        assert self._peak >= self.in_use, "peak below the current use"
        if self._queue:
            head = self._queue[0]
            assert head.signature not in self._by_signature, "head beside live entry"
            assert self.occupied == self.max_contexts, "head waits beside a free slot"
            assert not self._idle, "head waits beside an idle context"
        else:
            assert self._draining is None, "draining entry without waiters"


def _drain_cost(entry: Entry) -> tuple[bool, int, int]:
    """Order entries by how soon they are likely to free their slot, soonest first."""
    outlives_test = any(
        record.holder.kind == "fixture" and record.holder.scope != "function"
        for record in entry.leases.values()
    )
    # A creating or pending entry's own ticket takes a lease once the context exists.
    creator = 1 if entry.state in (EntryState.CREATING, EntryState.PENDING) else 0
    return (
        outlives_test,
        len(entry.leases) + len(entry.joiners) + creator,
        entry.last_used,
    )
