"""Unit tests of the pool's bookkeeping in pytest_ctxleak.ledger.

The ledger does no I/O, so each test plays the pool by hand: it calls ``created``,
``reset_done`` and ``closed`` where a real pool would create, reset or close a context.
"""

from __future__ import annotations

import pytest

from pytest_ctxleak.errors import LeaseError, PoolClosedError, PoolExhaustedError
from pytest_ctxleak.ledger import (
    Entry,
    EntryState,
    Holder,
    Ledger,
    ReleaseAction,
    Ticket,
    TicketState,
)
from pytest_ctxleak.sites import UNKNOWN_SITE, Frame, Site


def make_site(line: int, function: str = "test_a") -> Site:
    return Site((Frame("tests/test_x.py", line, function),))


def make_holder(test_name: str) -> Holder:
    return Holder("test", f"tests/test_x.py::{test_name}")


def grant(ledger: Ledger, signature: str, *, reusable: bool = True) -> Ticket:
    """Request a context of ``signature`` on a ledger with room, and create it."""
    ticket = ledger.request(signature, f"chromium {signature}", reusable=reusable)
    assert ticket.state is TicketState.CREATING
    ledger.created(ticket)
    return ticket


def make_idle(ledger: Ledger, signature: str) -> Entry:
    """Create a context of ``signature``, release it and reset it, leaving it idle."""
    ticket = grant(ledger, signature)
    assert ticket.lease is not None
    release = ledger.release(ticket.lease)
    assert release.action is ReleaseAction.RESET
    ledger.reset_done(release.entry, ok=True)
    return release.entry


# -- request and create -----------------------------------------------------------


def test_request_on_empty_ledger_creates():
    ledger = Ledger(2)

    ticket = ledger.request("a", "chromium a")

    assert ticket.state is TicketState.CREATING
    assert ticket.entry is not None
    assert ticket.entry.state is EntryState.CREATING
    assert ticket.entry.signature == "a"
    assert ticket.lease is None
    assert ledger.occupied == 1
    assert ledger.waiting() == []


def test_created_grants_lease():
    ledger = Ledger(2)
    holder = make_holder("test_a")
    site = make_site(12)
    ticket = ledger.request("a", "chromium a", holder, site)

    joiners = ledger.created(ticket)

    assert joiners == []
    assert ticket.state is TicketState.GRANTED
    assert ticket.entry is not None
    assert ticket.entry.state is EntryState.OPEN
    assert ticket.entry.refcount == 1
    assert ticket.lease is not None
    assert ticket.lease.entry is ticket.entry
    assert ticket.lease.holder == holder
    assert ticket.lease.site == site
    assert ledger.outstanding() == [ticket.lease]
    ledger.check_invariants()


def test_request_same_signature_shares_open_entry():
    ledger = Ledger(2)
    first = grant(ledger, "a")

    second = ledger.request("a", "chromium a")

    assert second.state is TicketState.GRANTED
    assert second.entry is first.entry
    assert first.entry is not None
    assert first.entry.refcount == 2
    assert second.lease is not first.lease
    assert ledger.occupied == 1
    ledger.check_invariants()


def test_request_while_creating_joins():
    ledger = Ledger(2)
    creator = ledger.request("a", "chromium a")

    joiner = ledger.request("a", "chromium a")

    assert joiner.state is TicketState.JOINING
    assert joiner.entry is creator.entry
    assert ledger.occupied == 1
    assert ledger.waiting() == []


def test_created_grants_joiners():
    ledger = Ledger(2)
    creator = ledger.request("a", "chromium a")
    joiner = ledger.request("a", "chromium a")

    changed = ledger.created(creator)

    assert changed == [joiner]
    assert joiner.state is TicketState.GRANTED
    assert joiner.entry is creator.entry
    assert creator.entry is not None
    assert creator.entry.refcount == 2
    ledger.check_invariants()


def test_create_failed_with_error_fails_joiners():
    ledger = Ledger(2)
    creator = ledger.request("a", "chromium a")
    joiner = ledger.request("a", "chromium a")
    error = RuntimeError("browser.new_context() failed")

    changed = ledger.create_failed(creator, error)

    assert changed == [joiner]
    assert creator.state is TicketState.FAILED
    assert creator.error is error
    assert joiner.state is TicketState.FAILED
    assert joiner.error is error
    assert joiner.entry is None
    assert ledger.entries() == []
    ledger.check_invariants()


def test_create_failed_frees_slot_for_queue():
    ledger = Ledger(1)
    creator = ledger.request("a", "chromium a")
    queued = ledger.request("b", "chromium b")
    assert queued.state is TicketState.QUEUED

    changed = ledger.create_failed(creator, RuntimeError("launch failed"))

    assert changed == [queued]
    assert queued.state is TicketState.CREATING
    assert ledger.occupied == 1
    ledger.check_invariants()


def test_create_failed_without_error_requeues_joiners_at_head():
    ledger = Ledger(1)
    creator = ledger.request("a", "chromium a")
    first_joiner = ledger.request("a", "chromium a")
    second_joiner = ledger.request("a", "chromium a")
    other = ledger.request("b", "chromium b")
    assert ledger.waiting() == [other]

    changed = ledger.create_failed(creator)

    assert creator.state is TicketState.CANCELLED
    assert creator.error is None
    # The first joiner goes ahead of the older ticket for "b" and creates the
    # context, and the second joiner joins it.
    assert changed == [first_joiner, second_joiner]
    assert first_joiner.state is TicketState.CREATING
    assert second_joiner.state is TicketState.JOINING
    assert second_joiner.entry is first_joiner.entry
    assert other.state is TicketState.QUEUED
    assert ledger.waiting() == [other]
    ledger.check_invariants()


# -- the cap and eviction ---------------------------------------------------------


def test_cap_counts_creating_entries():
    ledger = Ledger(2)
    ledger.request("a", "chromium a")
    ledger.request("b", "chromium b")

    third = ledger.request("c", "chromium c")

    assert third.state is TicketState.QUEUED
    assert ledger.occupied == 2
    assert ledger.waiting() == [third]


def test_cap_counts_closing_entries():
    ledger = Ledger(1)
    ticket = grant(ledger, "a", reusable=False)
    assert ticket.lease is not None
    release = ledger.release(ticket.lease)
    assert release.action is ReleaseAction.CLOSE
    assert release.entry.state is EntryState.CLOSING

    queued = ledger.request("b", "chromium b")

    assert queued.state is TicketState.QUEUED
    assert ledger.occupied == 1
    assert ledger.closed(release.entry) == [queued]
    assert queued.state is TicketState.CREATING
    ledger.check_invariants()


def test_eviction_picks_least_recently_used_idle():
    ledger = Ledger(3)
    a = make_idle(ledger, "a")
    b = make_idle(ledger, "b")
    c = make_idle(ledger, "c")
    # Using "a" again makes "b" the least recently used.
    reuse = ledger.request("a", "chromium a")
    assert reuse.entry is a
    assert reuse.lease is not None
    ledger.reset_done(ledger.release(reuse.lease).entry, ok=True)
    assert ledger.idle_entries() == [b, c, a]

    ticket = ledger.request("d", "chromium d")

    assert ticket.state is TicketState.EVICTING
    assert ticket.victim is b
    assert b.state is EntryState.CLOSING
    assert ledger.idle_entries() == [c, a]
    ledger.check_invariants()


def test_evicting_ticket_gets_slot_after_victim_closed():
    ledger = Ledger(1)
    victim = make_idle(ledger, "a")

    ticket = ledger.request("b", "chromium b")

    assert ticket.state is TicketState.EVICTING
    assert ticket.victim is victim
    assert ticket.entry is not None
    assert ticket.entry.state is EntryState.PENDING
    assert ledger.occupied == 1
    assert ledger.waiting() == []

    changed = ledger.closed(victim)

    assert changed == [ticket]
    assert ticket.state is TicketState.CREATING
    assert ticket.victim is None
    assert ticket.entry is not None
    assert ticket.entry.signature == "b"
    assert ledger.occupied == 1
    ledger.check_invariants()


def test_in_use_entry_is_never_evicted():
    ledger = Ledger(1)
    holding = grant(ledger, "a")

    ticket = ledger.request("b", "chromium b")

    assert ticket.state is TicketState.QUEUED
    assert ticket.victim is None
    assert holding.entry is not None
    assert holding.entry.state is EntryState.OPEN
    assert ledger.idle_entries() == []


def test_eviction_skips_entry_in_use():
    ledger = Ledger(2)
    holding = grant(ledger, "a")
    idle = make_idle(ledger, "b")

    ticket = ledger.request("c", "chromium c")

    assert ticket.state is TicketState.EVICTING
    assert ticket.victim is idle
    assert holding.entry is not None
    assert holding.entry.state is EntryState.OPEN


def test_cancel_evicting_ticket_passes_slot_to_queue():
    ledger = Ledger(1)
    victim = make_idle(ledger, "a")
    evicting = ledger.request("b", "chromium b")
    queued = ledger.request("c", "chromium c")
    assert evicting.state is TicketState.EVICTING
    assert queued.state is TicketState.QUEUED

    assert ledger.cancel(evicting) == []
    assert evicting.state is TicketState.CANCELLED
    assert victim.state is EntryState.CLOSING

    assert ledger.closed(victim) == [queued]
    assert queued.state is TicketState.CREATING
    ledger.check_invariants()


def test_waiters_served_first_come_first_served():
    ledger = Ledger(1)
    holding = grant(ledger, "a", reusable=False)
    first = ledger.request("b", "chromium b", reusable=False)
    second = ledger.request("c", "chromium c", reusable=False)
    assert ledger.waiting() == [first, second]
    assert holding.lease is not None

    release = ledger.release(holding.lease)
    assert release.action is ReleaseAction.CLOSE
    assert ledger.closed(release.entry) == [first]

    assert first.state is TicketState.CREATING
    assert second.state is TicketState.QUEUED

    ledger.created(first)
    assert first.lease is not None
    release = ledger.release(first.lease)
    assert ledger.closed(release.entry) == [second]

    assert second.state is TicketState.CREATING


def test_expire_names_every_holder_and_site():
    ledger = Ledger(2)
    by_test = ledger.request("a", "chromium a", make_holder("test_a"), make_site(12))
    ledger.created(by_test)
    fixture = Holder("fixture", "shared_ctx", "session", key=("shared_ctx", 1))
    by_fixture = ledger.request(
        "b",
        "chromium b",
        fixture,
        Site((Frame("tests/conftest.py", 30, "shared_ctx"),)),
    )
    ledger.created(by_fixture)
    waiter = ledger.request(
        "c", "chromium c", make_holder("test_c"), make_site(40, "test_c")
    )
    assert waiter.state is TicketState.QUEUED
    first = by_test.lease
    second = by_fixture.lease
    assert first is not None
    assert second is not None

    assert ledger.expire(waiter, 5.0) == []

    assert waiter.state is TicketState.FAILED
    assert isinstance(waiter.error, PoolExhaustedError)
    assert str(waiter.error) == (
        "pool exhausted: all 2 contexts are in use and none was released within "
        "5 s, so the acquire of (chromium c) at tests/test_x.py:40 in test_c "
        "gave up.\n"
        "Holders:\n"
        f"  - lease #{first.lease_id} of context #{first.entry.entry_id} "
        "(chromium a) held by test tests/test_x.py::test_a, "
        "acquired at tests/test_x.py:12 in test_a\n"
        f"  - lease #{second.lease_id} of context #{second.entry.entry_id} "
        "(chromium b) held by session-scoped fixture 'shared_ctx', "
        "acquired at tests/conftest.py:30 in shared_ctx\n"
        "Release leases sooner (use 'with pool.acquire(...)'), "
        "or raise max_contexts."
    )
    assert ledger.waiting() == []


# -- fairness ---------------------------------------------------------------------


def test_request_for_draining_entry_queues_behind_waiter():
    ledger = Ledger(1)
    holding = grant(ledger, "a")
    waiter = ledger.request("b", "chromium b")

    later = ledger.request("a", "chromium a")

    assert later.state is TicketState.QUEUED
    assert ledger.waiting() == [waiter, later]
    assert ledger.draining is holding.entry
    ledger.check_invariants()


def test_overlapping_leases_cannot_starve_waiter():
    ledger = Ledger(1)
    holding = grant(ledger, "a")
    waiter = ledger.request("b", "chromium b")
    # Steady load: the next lease of "a" is requested before the last one ends.
    later = ledger.request("a", "chromium a")
    assert holding.lease is not None

    release = ledger.release(holding.lease)
    assert release.action is ReleaseAction.RESET
    assert ledger.reset_done(release.entry, ok=True) == [waiter]

    assert waiter.state is TicketState.EVICTING
    assert waiter.victim is release.entry
    assert later.state is TicketState.QUEUED
    assert ledger.closed(release.entry) == [waiter]
    ledger.created(waiter)
    assert waiter.state is TicketState.GRANTED
    assert ledger.waiting() == [later]
    ledger.check_invariants()


def test_request_shares_entry_that_is_not_draining():
    ledger = Ledger(2)
    by_test = ledger.request("a", "chromium a", make_holder("test_a"))
    ledger.created(by_test)
    fixture = Holder("fixture", "shared_ctx", "session", key=("shared_ctx", 1))
    by_fixture = ledger.request("b", "chromium b", fixture)
    ledger.created(by_fixture)
    waiter = ledger.request("c", "chromium c")

    share_b = ledger.request("b", "chromium b")
    share_a = ledger.request("a", "chromium a")

    # The session-scoped fixture keeps "b" busy past any test, so "a" drains.
    assert ledger.draining is by_test.entry
    assert share_b.state is TicketState.GRANTED
    assert share_b.entry is by_fixture.entry
    assert share_a.state is TicketState.QUEUED
    assert ledger.waiting() == [waiter, share_a]
    ledger.check_invariants()


def test_draining_prefers_entry_with_fewest_leases():
    ledger = Ledger(2)
    grant(ledger, "a")
    ledger.request("a", "chromium a")
    quiet = grant(ledger, "b")
    ledger.request("c", "chromium c")

    share_a = ledger.request("a", "chromium a")
    share_b = ledger.request("b", "chromium b")

    assert ledger.draining is quiet.entry
    assert share_a.state is TicketState.GRANTED
    assert share_b.state is TicketState.QUEUED


def test_draining_entry_sticks_while_others_free_up():
    ledger = Ledger(2)
    first_a = grant(ledger, "a")
    ledger.request("a", "chromium a")
    grant(ledger, "b")
    extra_b = [ledger.request("b", "chromium b") for _ in range(2)]
    ledger.request("c", "chromium c")
    assert ledger.request("b", "chromium b").state is TicketState.GRANTED
    assert ledger.draining is first_a.entry

    # "b" now has fewer leases than "a", but "a" keeps draining, so "b" can be
    # shared and "a" cannot.
    for ticket in extra_b:
        assert ticket.lease is not None
        ledger.release(ticket.lease)
    share_b = ledger.request("b", "chromium b")
    share_a = ledger.request("a", "chromium a")

    assert ledger.draining is first_a.entry
    assert share_b.state is TicketState.GRANTED
    assert share_a.state is TicketState.QUEUED
    ledger.check_invariants()


def test_cancel_of_last_waiter_ends_draining():
    ledger = Ledger(1)
    holding = grant(ledger, "a")
    waiter = ledger.request("b", "chromium b")
    later = ledger.request("a", "chromium a")
    assert later.state is TicketState.QUEUED

    assert ledger.cancel(waiter) == [later]

    # With no one ahead of it, the queued request shares the open context.
    assert later.state is TicketState.GRANTED
    assert later.entry is holding.entry
    assert ledger.waiting() == []
    assert ledger.draining is None
    ledger.check_invariants()


def test_request_joins_creating_entry_that_is_not_draining():
    ledger = Ledger(2)
    resetting = grant(ledger, "a")
    assert resetting.lease is not None
    ledger.release(resetting.lease)
    creator = ledger.request("b", "chromium b")
    ledger.request("c", "chromium c")

    joiner = ledger.request("b", "chromium b")
    later_a = ledger.request("a", "chromium a")

    # The resetting context has no lease left, so it drains.
    assert ledger.draining is resetting.entry
    assert joiner.state is TicketState.JOINING
    assert joiner.entry is creator.entry
    assert later_a.state is TicketState.QUEUED
    ledger.check_invariants()


def test_expire_counts_leases_released_while_waiting():
    ledger = Ledger(2)
    grant(ledger, "a")
    fixture = Holder("fixture", "shared_ctx", "session", key=("shared_ctx", 1))
    ledger.created(ledger.request("b", "chromium b", fixture))
    before = ledger.request("b", "chromium b")
    assert before.lease is not None
    ledger.release(before.lease)
    waiter = ledger.request("c", "chromium c", site=make_site(40, "test_c"))
    # "b" is not draining, so these leases share it ahead of the waiter.
    shares = [ledger.request("b", "chromium b") for _ in range(2)]
    for share in shares:
        assert share.lease is not None
        ledger.release(share.lease)

    ledger.expire(waiter, 5.0)

    assert isinstance(waiter.error, PoolExhaustedError)
    first_line = str(waiter.error).splitlines()[0]
    assert first_line == (
        "pool exhausted: all 2 contexts are in use and none became free within 5 s: "
        "2 leases were released meanwhile, but other leases still held those "
        "contexts or earlier waiters took them, so the acquire of (chromium c) at "
        "tests/test_x.py:40 in test_c gave up."
    )


def test_expire_names_one_release_in_singular():
    ledger = Ledger(1)
    holding = grant(ledger, "a")
    waiter = ledger.request("b", "chromium b")
    assert holding.lease is not None
    release = ledger.release(holding.lease)
    # The context is resetting when the wait ends, so it is not free yet.
    assert release.action is ReleaseAction.RESET

    ledger.expire(waiter, 2.0)

    assert "none became free within 2 s: 1 lease was released" in str(waiter.error)


# -- release, reset and close -----------------------------------------------------


def test_release_twice_raises_lease_error():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    lease = ticket.lease
    assert lease is not None
    ledger.release(lease, make_site(50))

    with pytest.raises(LeaseError) as raised:
        ledger.release(lease, make_site(60))

    assert str(raised.value) == (
        f"lease #{lease.lease_id} was released already at "
        "tests/test_x.py:50 in test_a; a lease can be released once"
    )
    ledger.check_invariants()


def test_release_foreign_lease_raises_lease_error():
    ledger = Ledger(1)
    other = Ledger(1)
    ticket = grant(other, "a")
    lease = ticket.lease
    assert lease is not None

    with pytest.raises(LeaseError) as raised:
        ledger.release(lease)

    assert str(raised.value) == (
        f"lease #{lease.lease_id} belongs to another pool; release it "
        "through the pool it was acquired from"
    )
    assert not lease.released
    assert lease.entry.refcount == 1
    assert other.outstanding() == [lease]


def test_release_shared_lease_keeps_entry_open():
    ledger = Ledger(1)
    first = grant(ledger, "a")
    second = ledger.request("a", "chromium a")
    assert first.lease is not None

    release = ledger.release(first.lease)

    assert release.action is ReleaseAction.NONE
    assert release.entry.state is EntryState.OPEN
    assert release.entry.refcount == 1
    assert ledger.outstanding() == [second.lease]


def test_release_last_lease_resets_reusable_entry():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    assert ticket.lease is not None

    release = ledger.release(ticket.lease)

    assert release.action is ReleaseAction.RESET
    assert release.entry is ticket.entry
    assert release.entry.state is EntryState.RESETTING
    assert release.entry.refcount == 0
    assert ledger.idle_entries() == []
    ledger.check_invariants()


def test_release_last_lease_closes_non_reusable_entry():
    ledger = Ledger(1)
    ticket = grant(ledger, "a", reusable=False)
    assert ticket.lease is not None

    release = ledger.release(ticket.lease)

    assert release.action is ReleaseAction.CLOSE
    assert release.entry.state is EntryState.CLOSING
    assert ledger.occupied == 1
    ledger.check_invariants()


def test_reset_done_ok_makes_entry_idle():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    assert ticket.lease is not None
    release = ledger.release(ticket.lease)

    assert ledger.reset_done(release.entry, ok=True) == []

    assert release.entry.state is EntryState.OPEN
    assert ledger.idle_entries() == [release.entry]
    ledger.check_invariants()


def test_reset_done_ok_grants_joiners():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    assert ticket.lease is not None
    release = ledger.release(ticket.lease)
    joiner = ledger.request("a", "chromium a")
    assert joiner.state is TicketState.JOINING

    assert ledger.reset_done(release.entry, ok=True) == [joiner]

    assert joiner.state is TicketState.GRANTED
    assert joiner.entry is release.entry
    assert ledger.idle_entries() == []
    ledger.check_invariants()


def test_reset_failure_closes_and_requeues_joiners():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    assert ticket.lease is not None
    release = ledger.release(ticket.lease)
    joiner = ledger.request("a", "chromium a")
    later = ledger.request("b", "chromium b")
    assert joiner.state is TicketState.JOINING
    assert later.state is TicketState.QUEUED

    assert ledger.reset_done(release.entry, ok=False) == []

    assert release.entry.state is EntryState.CLOSING
    assert joiner.state is TicketState.QUEUED
    assert joiner.entry is None
    assert ledger.waiting() == [joiner, later]

    assert ledger.closed(release.entry) == [joiner]
    assert joiner.state is TicketState.CREATING
    assert later.state is TicketState.QUEUED
    ledger.check_invariants()


def test_reset_done_on_open_entry_raises():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    assert ticket.entry is not None

    with pytest.raises(ValueError) as raised:
        ledger.reset_done(ticket.entry, ok=True)

    assert str(raised.value) == f"context #{ticket.entry.entry_id} is open"


def test_closed_on_open_entry_raises():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    assert ticket.entry is not None

    with pytest.raises(ValueError) as raised:
        ledger.closed(ticket.entry)

    assert str(raised.value) == f"context #{ticket.entry.entry_id} is open"
    assert ledger.occupied == 1


def test_discard_idle_entry_leaves_lru():
    ledger = Ledger(2)
    entry = make_idle(ledger, "a")

    ledger.discard(entry)

    assert entry.state is EntryState.CLOSING
    assert entry.dead
    assert ledger.idle_entries() == []
    assert ledger.request("a", "chromium a").state is TicketState.CREATING
    ledger.check_invariants()


def test_discard_keeps_leases_outstanding():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    assert ticket.entry is not None
    assert ticket.lease is not None

    ledger.discard(ticket.entry)

    assert ticket.entry.state is EntryState.CLOSING
    assert ledger.outstanding() == [ticket.lease]
    assert ledger.release(ticket.lease).action is ReleaseAction.NONE
    ledger.check_invariants()


def test_closed_discarded_entry_keeps_leases():
    # discard() documents that the leases stay outstanding while the caller closes
    # the dead context, so closed() may come before the holders release.
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    entry = ticket.entry
    lease = ticket.lease
    assert entry is not None
    assert lease is not None
    ledger.discard(entry)

    ledger.closed(entry)

    assert ledger.outstanding() == [lease]
    ledger.check_invariants()


def test_request_joins_pending_entry():
    ledger = Ledger(2)
    a = make_idle(ledger, "a")
    b = make_idle(ledger, "b")
    first = ledger.request("c", "chromium c")
    assert first.state is TicketState.EVICTING
    assert first.victim is a

    second = ledger.request("c", "chromium c")

    # The second ticket waits for the context the first one will create, so the
    # idle context "b" is not evicted for a duplicate.
    assert second.state is TicketState.JOINING
    assert second.entry is first.entry
    assert b.state is EntryState.OPEN
    assert ledger.idle_entries() == [b]
    ledger.check_invariants()

    assert ledger.closed(a) == [first]
    assert first.state is TicketState.CREATING
    assert second.state is TicketState.JOINING
    assert ledger.created(first) == [second]
    assert second.state is TicketState.GRANTED
    assert second.entry is first.entry
    ledger.check_invariants()


def test_cancel_evicting_ticket_requeues_pending_joiners():
    ledger = Ledger(1)
    victim = make_idle(ledger, "a")
    evicting = ledger.request("b", "chromium b")
    joiner = ledger.request("b", "chromium b")
    later = ledger.request("c", "chromium c")
    assert joiner.state is TicketState.JOINING
    assert later.state is TicketState.QUEUED

    assert ledger.cancel(evicting) == []

    assert joiner.state is TicketState.QUEUED
    assert joiner.entry is None
    assert ledger.waiting() == [joiner, later]
    assert ledger.closed(victim) == [joiner]
    assert joiner.state is TicketState.CREATING
    assert later.state is TicketState.QUEUED
    ledger.check_invariants()


# -- shutdown ---------------------------------------------------------------------


def test_shutdown_fails_waiters_with_pool_closed_error():
    ledger = Ledger(2)
    grant(ledger, "a")
    ledger.request("c", "chromium c")
    joiner = ledger.request("c", "chromium c")
    queued = ledger.request("b", "chromium b")
    assert joiner.state is TicketState.JOINING
    assert queued.state is TicketState.QUEUED

    _, failed = ledger.shutdown()

    assert {ticket.ticket_id for ticket in failed} == {
        joiner.ticket_id,
        queued.ticket_id,
    }
    for ticket in (joiner, queued):
        assert ticket.state is TicketState.FAILED
        assert isinstance(ticket.error, PoolClosedError)
        assert str(ticket.error) == "the pool was closed while this acquire waited"
        assert ticket.entry is None
    assert ledger.waiting() == []


def test_shutdown_fails_evicting_ticket():
    ledger = Ledger(1)
    victim = make_idle(ledger, "a")
    evicting = ledger.request("b", "chromium b")
    assert evicting.state is TicketState.EVICTING

    to_close, failed = ledger.shutdown()

    assert failed == [evicting]
    assert evicting.state is TicketState.FAILED
    assert evicting.victim is None
    assert to_close == [victim]


def test_shutdown_fails_pending_joiners():
    ledger = Ledger(1)
    victim = make_idle(ledger, "a")
    evicting = ledger.request("b", "chromium b")
    joiner = ledger.request("b", "chromium b")
    assert joiner.state is TicketState.JOINING

    to_close, failed = ledger.shutdown()

    assert {ticket.ticket_id for ticket in failed} == {
        evicting.ticket_id,
        joiner.ticket_id,
    }
    assert joiner.state is TicketState.FAILED
    assert isinstance(joiner.error, PoolClosedError)
    assert joiner.entry is None
    assert to_close == [victim]
    assert ledger.closed(victim) == []
    ledger.check_invariants()


def test_shutdown_releases_leases_and_closes_entries():
    ledger = Ledger(2)
    holding = grant(ledger, "a")
    idle = make_idle(ledger, "b")
    lease = holding.lease
    assert lease is not None

    to_close, failed = ledger.shutdown()

    assert failed == []
    assert lease.released
    assert lease.released_by == "the pool's close()"
    assert ledger.outstanding() == []
    assert ledger.abandoned == [lease]
    assert to_close == [holding.entry, idle]
    for entry in to_close:
        assert entry.state is EntryState.CLOSING
    assert ledger.idle_entries() == []


def test_release_after_shutdown_names_pool_close():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")
    lease = ticket.lease
    assert lease is not None
    ledger.shutdown()

    with pytest.raises(LeaseError) as raised:
        ledger.release(lease)

    assert str(raised.value) == (
        f"lease #{lease.lease_id} was released by the pool's close() at "
        "<unknown site>; a lease can be released once"
    )


def test_request_after_shutdown_raises_pool_closed_error():
    ledger = Ledger(1)
    ledger.shutdown()

    with pytest.raises(PoolClosedError) as raised:
        ledger.request("a", "chromium a")

    assert str(raised.value) == (
        "the pool is closed; create a new ContextPool to acquire contexts"
    )


def test_created_after_shutdown_closes_on_release():
    ledger = Ledger(1)
    creator = ledger.request("a", "chromium a")
    to_close, _ = ledger.shutdown()
    assert to_close == []

    ledger.created(creator)
    assert creator.lease is not None
    release = ledger.release(creator.lease)

    assert release.action is ReleaseAction.CLOSE
    assert release.entry.state is EntryState.CLOSING


# -- construction, peak and cancel ------------------------------------------------


def test_ledger_rejects_zero_cap():
    with pytest.raises(ValueError) as raised:
        Ledger(0)

    assert str(raised.value) == (
        "max_contexts must be at least 1, got 0; a pool needs room for one context"
    )


def test_ledger_rejects_bool_cap():
    with pytest.raises(TypeError) as raised:
        Ledger(True)

    assert str(raised.value) == (
        "max_contexts must be an int, got True; pass a whole number such as 8"
    )


def test_ledger_rejects_string_cap():
    with pytest.raises(TypeError) as raised:
        Ledger("8")  # type: ignore[arg-type]

    assert str(raised.value) == (
        "max_contexts must be an int, got '8'; pass a whole number such as 8"
    )


def test_peak_records_max_in_use_and_site():
    ledger = Ledger(3)
    ledger.request("a", "chromium a", site=make_site(10))
    second = ledger.request("b", "chromium b", site=make_site(20), reusable=False)
    assert ledger.peak == 2
    assert ledger.peak_site == make_site(20)

    ledger.created(second)
    assert second.lease is not None
    ledger.closed(ledger.release(second.lease).entry)

    assert ledger.in_use == 1
    assert ledger.peak == 2
    assert ledger.peak_site == make_site(20)


def test_reset_peak_starts_from_in_use():
    ledger = Ledger(3)
    ledger.request("a", "chromium a", site=make_site(10))
    second = ledger.request("b", "chromium b", site=make_site(20), reusable=False)
    ledger.created(second)
    assert second.lease is not None
    ledger.closed(ledger.release(second.lease).entry)

    ledger.reset_peak()

    assert ledger.peak == 1
    assert ledger.peak_site == UNKNOWN_SITE
    ledger.request("c", "chromium c", site=make_site(30))
    assert ledger.peak == 2
    assert ledger.peak_site == make_site(30)


def test_peak_ignores_idle_contexts():
    ledger = Ledger(2)
    make_idle(ledger, "a")
    ledger.reset_peak()
    assert ledger.peak == 0

    ledger.request("b", "chromium b", site=make_site(20))

    assert ledger.occupied == 2
    assert ledger.in_use == 1
    assert ledger.peak == 1
    assert ledger.peak_site == make_site(20)


def test_cancel_granted_ticket_raises_value_error():
    ledger = Ledger(1)
    ticket = grant(ledger, "a")

    with pytest.raises(ValueError) as raised:
        ledger.cancel(ticket)

    assert str(raised.value) == (
        f"ticket #{ticket.ticket_id} is granted; only a waiting ticket can be withdrawn"
    )
    assert ticket.state is TicketState.GRANTED


def test_cancel_queued_ticket_leaves_queue():
    ledger = Ledger(1)
    grant(ledger, "a")
    first = ledger.request("b", "chromium b")
    second = ledger.request("c", "chromium c")

    assert ledger.cancel(first) == []

    assert first.state is TicketState.CANCELLED
    assert first.error is None
    assert ledger.waiting() == [second]


def test_cancel_joining_ticket_leaves_joiners():
    ledger = Ledger(1)
    creator = ledger.request("a", "chromium a")
    joiner = ledger.request("a", "chromium a")

    ledger.cancel(joiner)

    assert joiner.state is TicketState.CANCELLED
    assert joiner.entry is None
    assert ledger.created(creator) == []
    assert joiner.lease is None


def test_second_close_of_entry_raises():
    ledger = Ledger(1)
    victim = make_idle(ledger, "a")
    ticket = ledger.request("b", "chromium b")
    assert ticket.victim is victim
    ledger.closed(victim)
    with pytest.raises(ValueError, match="already closed"):
        ledger.closed(victim)
    assert ledger.occupied == 1


@pytest.mark.parametrize(
    ("name", "scope", "described"),
    [
        (
            "_xunit_setup_method_fixture_TestPages",
            "function",
            "setup_method of TestPages",
        ),
        ("_xunit_setup_class_fixture_TestPages", "class", "setup_class of TestPages"),
        (
            "_xunit_setup_module_fixture_test_shop",
            "module",
            "setup_module of test_shop",
        ),
        (
            "_xunit_setup_function_fixture_test_shop",
            "function",
            "setup_function of test_shop",
        ),
        ("pooled_page", "function", "function-scoped fixture 'pooled_page'"),
    ],
)
def test_holder_names_xunit_setup_as_written(
    name: str, scope: str, described: str
) -> None:
    assert Holder("fixture", name, scope).describe() == described
