"""A hypothesis state machine that plays the pool against one Ledger.

The machine does what a pool would do with the ledger's return values: it creates
the contexts of CREATING tickets, resets and closes the entries the ledger returns,
and releases the leases it was granted. It keeps its own account of that owed work
and of the outstanding leases, and after every step compares it with the ledger.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pytest_ctxleak.errors import LeaseError, PoolClosedError, PoolExhaustedError
from pytest_ctxleak.ledger import (
    WAITING_STATES,
    Entry,
    EntryState,
    Holder,
    LeaseRecord,
    Ledger,
    ReleaseAction,
    Ticket,
    TicketState,
)
from pytest_ctxleak.sites import Frame, Site

SIGNATURES = st.sampled_from(["a", "b", "c", "d", "e"])

# States in which the pool must act on a ticket (create, close the victim) or wake
# its waiter (granted, failed), so every call must report a ticket entering them.
REPORTED_STATES = frozenset(
    {
        TicketState.CREATING,
        TicketState.EVICTING,
        TicketState.GRANTED,
        TicketState.FAILED,
    }
)
DONE_STATES = frozenset(
    {TicketState.GRANTED, TicketState.FAILED, TicketState.CANCELLED}
)
CLOSE_REASON = "the pool's close()"
# Each drain round does the work owed at its start. A ledger that still returns work
# after this many rounds is taken to be looping.
MAX_DRAIN_ROUNDS = 200
# The draining context's leases are released in the first churn round, or in the
# second when they were granted during the first (by a creation or a reset that was
# owed). Its slot then reaches the head, which is created in the same round.
MAX_CHURN_ROUNDS = 3


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(1)
        self.tickets: list[Ticket] = []
        # Leases granted to the machine and not yet released, oldest first.
        self.leases: list[LeaseRecord] = []
        self.released: list[LeaseRecord] = []
        self.collected: set[int] = set()
        # Entries the ledger returned for the machine to reset or to close.
        self.to_reset: list[Entry] = []
        self.to_close: list[Entry] = []
        self.closed_entries: list[Entry] = []
        self.discarded: set[int] = set()
        # The maximum number of contexts in use after any ledger call since the last
        # reset_peak.
        self.max_in_use = 0

    @initialize(cap=st.integers(1, 4))
    def make_ledger(self, cap: int) -> None:
        self.ledger = Ledger(cap)

    # -- the pool's side ----------------------------------------------------------

    def _call(
        self, call: Callable[[], list[Ticket]], subject: Ticket | None = None
    ) -> list[Ticket]:
        """Run a ledger call and check that it reports every ticket the pool must see.

        ``subject`` is the ticket passed to the call, which the caller already
        watches, so it need not be in the returned list.
        """
        before = {ticket.ticket_id: ticket.state for ticket in self.tickets}
        changed = call()
        reported = {ticket.ticket_id for ticket in changed}
        for ticket in self.tickets:
            if ticket is subject or ticket.state is before[ticket.ticket_id]:
                continue
            if ticket.state in REPORTED_STATES:
                assert ticket.ticket_id in reported, (
                    f"ticket #{ticket.ticket_id} went from "
                    f"{before[ticket.ticket_id].value} to {ticket.state.value} "
                    f"but the call returned {sorted(reported)}"
                )
        self._collect()
        return changed

    def _collect(self) -> None:
        """Take the leases of granted tickets and the victims of evictions.

        Also update the maximum of contexts in use, because the ledger's peak counts
        every call and a drain makes many calls in one step.
        """
        for ticket in self.tickets:
            if ticket.state is TicketState.GRANTED:
                if ticket.ticket_id not in self.collected:
                    self.collected.add(ticket.ticket_id)
                    assert ticket.lease is not None
                    self.leases.append(ticket.lease)
            elif ticket.state is TicketState.EVICTING:
                victim = ticket.victim
                assert victim is not None
                if not any(entry is victim for entry in self.to_close):
                    self.to_close.append(victim)
        self.max_in_use = max(self.max_in_use, self._in_use())

    def _owe_close_if_closing(self, entry: Entry) -> None:
        # An entry may already be owed because it was evicted during the same call.
        if entry.state is EntryState.CLOSING and not any(
            owed is entry for owed in self.to_close
        ):
            self.to_close.append(entry)

    def _in_use(self) -> int:
        """Count contexts being created or held by a lease, from the machine's records."""
        creating = self._tickets_in(TicketState.CREATING)
        held_entries = {
            record.entry.entry_id
            for record in self.leases
            if not any(record.entry is gone for gone in self.closed_entries)
        }
        return len(creating) + len(held_entries)

    def _tickets_in(self, *states: TicketState) -> list[Ticket]:
        return [ticket for ticket in self.tickets if ticket.state in states]

    def _release(self, record: LeaseRecord) -> None:
        self.leases.remove(record)
        self.released.append(record)
        release = self.ledger.release(record)
        self._collect()
        assert release.entry is record.entry
        assert record.released
        if release.action is ReleaseAction.RESET:
            assert release.entry.state is EntryState.RESETTING
            self.to_reset.append(release.entry)
        elif release.action is ReleaseAction.CLOSE:
            assert release.entry.state is EntryState.CLOSING
            self.to_close.append(release.entry)

    def _reset_done(self, entry: Entry, ok: bool) -> None:
        self.to_reset.remove(entry)
        self._call(lambda: self.ledger.reset_done(entry, ok))
        self._owe_close_if_closing(entry)

    def _closed(self, entry: Entry) -> None:
        assert entry.refcount == 0 or entry.entry_id in self.discarded, (
            f"the ledger asked to close context #{entry.entry_id}, "
            f"which holds {entry.refcount} leases"
        )
        self.to_close.remove(entry)
        self.closed_entries.append(entry)
        self._call(lambda: self.ledger.closed(entry))

    def _request(self, signature: str, reusable: bool) -> None:
        number = len(self.tickets) + 1
        holder = Holder("test", f"tests/test_x.py::test_{number}")
        site = Site((Frame("tests/test_x.py", number, f"test_{number}"),))
        before = [(ticket, ticket.state) for ticket in self.tickets]
        queue_before = self.ledger.waiting()

        ticket = self.ledger.request(
            signature, f"chromium {signature}", holder, site, reusable=reusable
        )

        # A request decides its own ticket's first step and changes no other ticket.
        for other, state in before:
            assert other.state is state
        assert ticket.state not in {TicketState.FAILED, TicketState.CANCELLED}
        # Fairness: behind a queue, a request may only share or join a live entry
        # that does not drain for the queue; otherwise it queues last.
        if queue_before:
            if ticket.state is TicketState.QUEUED:
                assert self.ledger.waiting() == [*queue_before, ticket]
            else:
                draining = self.ledger.draining
                assert ticket.state in {TicketState.GRANTED, TicketState.JOINING}
                assert draining is not None
                assert ticket.entry is not draining, (
                    f"ticket #{ticket.ticket_id} shared draining context "
                    f"#{draining.entry_id} ahead of #{queue_before[0].ticket_id}"
                )
        self.tickets.append(ticket)
        self._collect()

    # -- rules --------------------------------------------------------------------

    # Copies in one step model tests that acquire the same context at once, an
    # interleaving that separate random requests rarely produce.
    @precondition(lambda self: not self.ledger.is_closed)
    @rule(signature=SIGNATURES, reusable=st.booleans(), copies=st.integers(1, 3))
    def request(self, signature: str, reusable: bool, copies: int) -> None:
        for _ in range(copies):
            self._request(signature, reusable)

    @precondition(lambda self: self.ledger.is_closed)
    @rule(signature=SIGNATURES)
    def request_after_shutdown(self, signature: str) -> None:
        try:
            self.ledger.request(signature, f"chromium {signature}")
        except PoolClosedError:
            return
        raise AssertionError("request on a closed ledger did not raise")

    @precondition(
        lambda self: any(t.state is TicketState.CREATING for t in self.tickets)
    )
    @rule(data=st.data())
    def created(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(self._tickets_in(TicketState.CREATING)))
        entry = ticket.entry
        assert entry is not None
        joiners = list(entry.joiners)

        self._call(lambda: self.ledger.created(ticket), subject=ticket)

        assert ticket.state is TicketState.GRANTED
        assert entry.state is EntryState.OPEN
        for joiner in joiners:
            assert joiner.state is TicketState.GRANTED
            assert joiner.entry is entry

    @precondition(
        lambda self: any(t.state is TicketState.CREATING for t in self.tickets)
    )
    @rule(data=st.data(), fail=st.booleans())
    def create_failed(self, data: st.DataObject, fail: bool) -> None:
        ticket = data.draw(st.sampled_from(self._tickets_in(TicketState.CREATING)))
        entry = ticket.entry
        assert entry is not None
        joiners = list(entry.joiners)
        error = RuntimeError("browser.new_context() failed") if fail else None

        self._call(lambda: self.ledger.create_failed(ticket, error), subject=ticket)

        assert not any(known is entry for known in self.ledger.entries())
        if error is None:
            assert ticket.state is TicketState.CANCELLED
            for joiner in joiners:
                assert joiner.state is not TicketState.FAILED
        else:
            assert ticket.state is TicketState.FAILED
            assert ticket.error is error
            for joiner in joiners:
                assert joiner.state is TicketState.FAILED
                assert joiner.error is error

    @precondition(lambda self: bool(self.leases))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.leases))
        self._release(record)

    @precondition(lambda self: bool(self.released))
    @rule(data=st.data())
    def release_again(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.released))
        refcount = record.entry.refcount
        try:
            self.ledger.release(record)
        except LeaseError:
            assert record.entry.refcount == refcount
            return
        raise AssertionError(f"second release of lease #{record.lease_id} passed")

    @precondition(lambda self: bool(self.to_reset))
    @rule(data=st.data(), ok=st.booleans())
    def reset_done(self, data: st.DataObject, ok: bool) -> None:
        entry = data.draw(st.sampled_from(self.to_reset))
        joiners = list(entry.joiners)

        self._reset_done(entry, ok)

        if ok and not self.ledger.is_closed:
            # An idle entry may be evicted at once by a queued ticket.
            evicted = any(t.victim is entry for t in self.tickets)
            assert entry.state is EntryState.OPEN or evicted
            for joiner in joiners:
                assert joiner.state is TicketState.GRANTED
        else:
            assert entry.state is EntryState.CLOSING
            for joiner in joiners:
                assert joiner.entry is not entry

    @precondition(lambda self: bool(self.to_close))
    @rule(data=st.data())
    def closed(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(self.to_close))
        self._closed(entry)

    @precondition(lambda self: any(t.state in WAITING_STATES for t in self.tickets))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(self._tickets_in(*WAITING_STATES)))

        self._call(lambda: self.ledger.cancel(ticket), subject=ticket)

        assert ticket.state is TicketState.CANCELLED
        assert ticket not in self.ledger.waiting()

    @precondition(lambda self: any(t.state in WAITING_STATES for t in self.tickets))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(self._tickets_in(*WAITING_STATES)))
        holders = list(self.leases)

        self._call(lambda: self.ledger.expire(ticket, 30.0), subject=ticket)

        assert ticket.state is TicketState.FAILED
        assert isinstance(ticket.error, PoolExhaustedError)
        message = str(ticket.error)
        for record in holders:
            assert f"lease #{record.lease_id} of context" in message
            assert record.holder.describe() in message
            assert f"acquired at {record.site.location()}" in message

    @precondition(
        lambda self: any(e.state is EntryState.OPEN for e in self.ledger.entries())
    )
    @rule(data=st.data())
    def discard(self, data: st.DataObject) -> None:
        open_entries = [
            entry for entry in self.ledger.entries() if entry.state is EntryState.OPEN
        ]
        entry = data.draw(st.sampled_from(open_entries))
        refcount = entry.refcount

        self.ledger.discard(entry)
        self.discarded.add(entry.entry_id)

        assert entry.state is EntryState.CLOSING
        assert entry.refcount == refcount
        self.to_close.append(entry)

    # Most runs should not end early, so only one draw in ten shuts the ledger down.
    @precondition(lambda self: not self.ledger.is_closed)
    @rule(roll=st.integers(0, 9))
    def shutdown(self, roll: int) -> None:
        if roll != 0:
            return
        waiting = self._tickets_in(*WAITING_STATES)
        before = {ticket.ticket_id: ticket.state for ticket in self.tickets}

        to_close, failed = self.ledger.shutdown()

        assert {t.ticket_id for t in failed} == {t.ticket_id for t in waiting}
        for ticket in self.tickets:
            if ticket.state is not before[ticket.ticket_id]:
                assert any(ticket is t for t in failed)
        for ticket in waiting:
            assert ticket.state is TicketState.FAILED
            assert isinstance(ticket.error, PoolClosedError)
        for record in self.leases:
            assert record.released
            assert record.released_by == CLOSE_REASON
        self.released += self.leases
        self.leases = []
        for entry in to_close:
            assert entry.state is EntryState.CLOSING
            if not any(owed is entry for owed in self.to_close):
                self.to_close.append(entry)
        self._collect()

    @rule()
    def reset_peak(self) -> None:
        self.ledger.reset_peak()
        self.max_in_use = self._in_use()

        assert self.ledger.peak == self.max_in_use

    def _do_owed_work(self) -> None:
        """Create, reset and close what the ledger asked for, until nothing is owed."""
        for _ in range(MAX_DRAIN_ROUNDS):
            creating = self._tickets_in(TicketState.CREATING)
            if not (creating or self.to_reset or self.to_close):
                return
            for ticket in creating:
                self._call(lambda t=ticket: self.ledger.created(t), subject=ticket)
            for entry in list(self.to_reset):
                self._reset_done(entry, ok=True)
            for entry in list(self.to_close):
                self._closed(entry)
        raise AssertionError(
            f"the ledger still returns work after {MAX_DRAIN_ROUNDS} rounds"
        )

    def _live_signatures(self) -> list[str]:
        pending = [
            ticket.entry
            for ticket in self._tickets_in(TicketState.EVICTING)
            if ticket.entry is not None
        ]
        return sorted(
            {
                entry.signature
                for entry in self.ledger.entries() + pending
                if entry.state is not EntryState.CLOSING
            }
        )

    @rule()
    def drain(self) -> None:
        """Do all owed work and release every lease, then expect no ticket waiting."""
        for _ in range(MAX_DRAIN_ROUNDS):
            creating = self._tickets_in(TicketState.CREATING)
            if not (creating or self.to_reset or self.to_close or self.leases):
                break
            for ticket in creating:
                self._call(lambda t=ticket: self.ledger.created(t), subject=ticket)
            for entry in list(self.to_reset):
                self._reset_done(entry, ok=True)
            for entry in list(self.to_close):
                self._closed(entry)
            for record in list(self.leases):
                self._release(record)
        else:
            raise AssertionError(
                f"the ledger still returns work after {MAX_DRAIN_ROUNDS} rounds"
            )

        stuck = [
            f"#{ticket.ticket_id} {ticket.state.value}"
            for ticket in self.tickets
            if ticket.state not in DONE_STATES
        ]
        assert not stuck, f"tickets left waiting after a full drain: {stuck}"
        assert self.ledger.waiting() == []

    @precondition(
        lambda self: not self.ledger.is_closed and bool(self.ledger.waiting())
    )
    @rule()
    def churn(self) -> None:
        """Try to starve the oldest queued ticket, and expect it served anyway.

        Each round takes a new lease on every live context before releasing the
        leases held at the start of the round, so some lease always holds each
        context that lets requests share it. This is steady load with overlapping
        leases. Every other step (creating, resetting, closing) is done as owed.
        """
        head = self.ledger.waiting()[0]
        for _ in range(MAX_CHURN_ROUNDS):
            held = list(self.leases)
            for signature in self._live_signatures():
                self._request(signature, reusable=True)
            self._do_owed_work()
            for record in held:
                if any(record is lease for lease in self.leases):
                    self._release(record)
            self._do_owed_work()
            if head.state is TicketState.GRANTED:
                return
        raise AssertionError(
            f"ticket #{head.ticket_id} is still {head.state.value} after "
            f"{MAX_CHURN_ROUNDS} rounds of overlapping leases"
        )

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def ledger_invariants_hold(self) -> None:
        self.ledger.check_invariants()

    @invariant()
    def occupied_within_cap(self) -> None:
        assert self.ledger.occupied <= self.ledger.max_contexts
        assert self.ledger.occupied == len(self.ledger.entries())

    @invariant()
    def peak_matches_max_in_use(self) -> None:
        in_use = self._in_use()
        assert self.ledger.in_use == in_use
        assert self.ledger.peak == self.max_in_use

    @invariant()
    def refcounts_match_machine_leases(self) -> None:
        leases_per_entry = Counter(record.entry.entry_id for record in self.leases)
        entries = {entry.entry_id: entry for entry in self.ledger.entries()}
        for record in self.leases:
            entries.setdefault(record.entry.entry_id, record.entry)
        for entry in entries.values():
            assert entry.refcount >= 0
            assert entry.refcount == leases_per_entry[entry.entry_id], (
                f"context #{entry.entry_id} has refcount {entry.refcount}, "
                f"but the machine holds {leases_per_entry[entry.entry_id]} leases on it"
            )
        assert {id(record) for record in self.ledger.outstanding()} == {
            id(record) for record in self.leases
        }

    @invariant()
    def closed_entries_stay_unused(self) -> None:
        for entry in self.closed_entries:
            assert not any(entry is known for known in self.ledger.entries())
            if entry.entry_id not in self.discarded:
                assert entry.refcount == 0, (
                    f"closed context #{entry.entry_id} holds {entry.refcount} leases"
                )

    @invariant()
    def owed_work_matches_ledger(self) -> None:
        entries = self.ledger.entries()
        closing = {id(e) for e in entries if e.state is EntryState.CLOSING}
        resetting = {id(e) for e in entries if e.state is EntryState.RESETTING}
        creating = {id(e) for e in entries if e.state is EntryState.CREATING}
        assert closing == {id(e) for e in self.to_close}
        assert resetting == {id(e) for e in self.to_reset}
        assert creating == {id(t.entry) for t in self._tickets_in(TicketState.CREATING)}

    @invariant()
    def ticket_states_match_ledger(self) -> None:
        queue = self.ledger.waiting()
        queued = self._tickets_in(TicketState.QUEUED)
        assert {id(t) for t in queue} == {id(t) for t in queued}
        for ticket in self._tickets_in(TicketState.JOINING):
            assert ticket.entry is not None
            assert ticket.entry.state in {
                EntryState.PENDING,
                EntryState.CREATING,
                EntryState.RESETTING,
            }
            assert any(ticket is joiner for joiner in ticket.entry.joiners)
        for ticket in self._tickets_in(TicketState.EVICTING):
            assert ticket.victim is not None
            assert ticket.victim.state is EntryState.CLOSING
            assert ticket.victim.successor is ticket
            assert ticket.entry is not None
            assert ticket.entry.state is EntryState.PENDING

    @invariant()
    def queue_head_waits_only_when_blocked(self) -> None:
        queue = self.ledger.waiting()
        if not queue:
            return
        head = queue[0]
        # The entries an evicting ticket will create are live too, though the ledger
        # does not count them yet.
        pending = [
            ticket.entry
            for ticket in self._tickets_in(TicketState.EVICTING)
            if ticket.entry is not None
        ]
        live = [
            entry
            for entry in self.ledger.entries() + pending
            if entry.signature == head.signature
            and entry.state is not EntryState.CLOSING
        ]
        assert live == [], f"ticket #{head.ticket_id} waits beside a live context"
        assert self.ledger.occupied == self.ledger.max_contexts
        assert self.ledger.idle_entries() == []

    @invariant()
    def draining_entry_is_live_while_queued(self) -> None:
        draining = self.ledger.draining
        if draining is None:
            return
        assert self.ledger.waiting() != []
        assert draining.state is not EntryState.CLOSING
        assert draining.signature in self._live_signatures()


# No deadline: one example makes up to 60 ledger calls plus drains, and its wall time
# depends on the machine's load rather than on the ledger.
LedgerMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None
)
test_ledger_machine = LedgerMachine.TestCase
