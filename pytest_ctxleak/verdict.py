"""The verdict on one test: what it leaked, found, reclaimed and described.

The plugin's hooks decide when to judge; this module decides what counts. A test is
blamed for leases it took that are still outstanding or were abandoned when their pool
closed, for browsers, contexts and pages it left open that no allow rule covers and no
pool owns, and for holding more contexts at once than its cap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextvars import Token
from dataclasses import dataclass, field
from typing import NamedTuple

import pytest

from pytest_ctxleak.allow import AllowRule
from pytest_ctxleak.ledger import Holder, LeaseRecord
from pytest_ctxleak.pool import PoolLike, open_pools
from pytest_ctxleak.pool.base import describe_error
from pytest_ctxleak.report import (
    Leak,
    LeakedLease,
    LeakedObject,
    lease_leaks,
    object_leaks,
    over_cap_leak,
)
from pytest_ctxleak.settings import Settings, TestSettings
from pytest_ctxleak.sites import LOCALS
from pytest_ctxleak.watch import (
    CONTEXT,
    PAGE,
    SETTLE_STEP,
    Watch,
    Watched,
    close_watched,
    is_closed,
    pump_events,
)

logger = logging.getLogger("pytest_ctxleak")


@dataclass
class Window:
    """The check's record of the test that is running."""

    nodeid: str
    settings: TestSettings
    # (id(pool), lease_id) of every lease outstanding when the window opened.
    baseline: set[tuple[int, int]]
    # Every pool open at the start or created during the window, kept alive until
    # the window closes so a pool made and dropped by the test is still judged.
    pools: dict[int, PoolLike]
    close_problems_seen: dict[int, int]
    # Contexts in use per pool when the window opened: held by earlier fixtures,
    # so they do not count against this test's cap.
    in_use_at_start: dict[int, int]
    # Watch ids of the browsers, contexts and pages open when the window opened.
    watch_baseline: set[int]
    # Contexts outside any pool open when the window opened; not the test's.
    outside_at_start: int = 0
    # The test's own findings, judged after its last function-scoped finalizer by
    # _judge_window in the plugin; None until then.
    judged: list[Leak] | None = None
    # Watch.recorded when the window opened if nothing was open then, else None.
    quiet_from: int | None = None


class FixtureCode(NamedTuple):
    """The module and name of a wider-scoped fixture, which its nested code shares."""

    module: str
    prefix: str  # the fixture function's qualified name + ".<locals>."
    holder: Holder


@dataclass
class RunState:
    """Run-wide state of the plugin, kept on ``config.stash``."""

    settings: Settings
    watch: Watch = field(default_factory=Watch)
    window: Window | None = None
    # Objects of wider-scoped fixtures left open, found like fixture_leaks.
    fixture_objects: list[LeakedObject] = field(default_factory=list)
    # Leases of wider-scoped fixtures, found when the fixture was finalized and
    # reported on the teardown of the test during which that happened.
    fixture_leaks: list[LeakedLease] = field(default_factory=list)
    # Leases found outstanding when a test started, each described once.
    dirty_on_entry: dict[tuple[int, int], str] = field(default_factory=dict)
    # Holder tokens of fixtures whose teardown is running, by id(fixturedef).
    teardown_holders: dict[int, Token[Holder]] = field(default_factory=dict)
    # Wider-scoped fixtures set up and not yet finalized, by id(fixturedef).
    fixture_code: dict[int, FixtureCode] = field(default_factory=dict)

    def on_new_pool(self, pool: PoolLike) -> None:
        if self.window is not None:
            self.window.pools[id(pool)] = pool


def lease_key(pool: PoolLike, record: LeaseRecord) -> tuple[int, int]:
    return (id(pool), record.lease_id)


def note_object_on_entry(
    state: RunState,
    item: pytest.Item,
    watched: Watched,
    allow: tuple[AllowRule, ...],
) -> None:
    """Record a browser, context or page that an earlier test left open."""
    adopt_nested(state, watched)
    if wider_fixture(watched.holder) or watched.holder.kind == "code":
        return
    if watched.page_owned:
        return  # its page is described instead
    if watched.allowed or allowed(watched, allow):
        return
    key = (-1, watched.watch_id)
    node: Watched | None = watched
    while node is not None:  # an object inside a late leak was described with it
        if (LATE_KEY, node.watch_id) in state.dirty_on_entry:
            return
        node = node.parent
    if key in state.dirty_on_entry:
        return
    text = (
        f"a {watched.describe()} created at {watched.site.location()} by "
        f"{watched.holder.describe()} was still open when {item.nodeid} started; "
        "it is the previous holder's leak, not this test's"
    )
    logger.warning("%s", text)
    state.dirty_on_entry[key] = text


def note_lease_on_entry(
    state: RunState, item: pytest.Item, pool: PoolLike, record: LeaseRecord
) -> None:
    """Record a lease that an earlier test or function fixture left behind.

    It is the previous holder's leak, so it is reported in the summary and the log,
    not as a failure or warning of the test that found it.
    """
    holder = record.holder
    if holder.kind == "fixture" and holder.scope != "function":
        return  # a wider-scoped fixture's lease is legitimately held across tests
    key = lease_key(pool, record)
    if key in state.dirty_on_entry:
        return
    text = (
        f"{record.describe()} was already outstanding when {item.nodeid} started; "
        "it is the previous holder's leak, not this test's"
    )
    logger.warning("%s", text)
    state.dirty_on_entry[key] = text


def pools_to_judge(state: RunState) -> Iterator[PoolLike]:
    pools = {id(pool): pool for pool in open_pools()}
    if state.window is not None:
        pools.update(state.window.pools)
    return iter(list(pools.values()))


def reclaim_lease(pool: PoolLike, record: LeaseRecord, who: str) -> str:
    """Release a leaked lease for its holder; never raise into pytest."""
    try:
        return pool.reclaim(record, by=f"ctxleak, after {who} leaked it")
    except Exception as error:
        logger.warning("reclaiming lease #%d failed: %s", record.lease_id, error)
        return f"failed ({describe_error(error)})"


def judge(state: RunState, window: Window) -> list[Leak]:
    """Find this window's leaks and reclaim them."""
    if window.quiet_from == state.watch.recorded and not window.pools:
        # Nothing was open at the start, and since then no object was recorded
        # and no pool made (on_new_pool adds each to window.pools): nothing leaked.
        return []
    leaked: list[LeakedLease] = []
    over_cap: list[Leak] = []
    cap = window.settings.max_contexts
    for pool in pools_to_judge(state):
        key = id(pool)
        window.pools[key] = pool
        ledger = pool.ledger
        for record in ledger.outstanding():
            if belongs_to_window(window, pool, record):
                reclaimed = reclaim_lease(pool, record, window.nodeid)
                leaked.append(LeakedLease(record, reclaimed))
        # A pool closed during the window (a session pool at the last test, or the
        # test's own pool) released its outstanding leases; their holders still
        # leaked them.
        for record in ledger.abandoned:
            if belongs_to_window(window, pool, record):
                leaked.append(LeakedLease(record, "released when the pool was closed"))
        start = window.in_use_at_start.get(key, 0)
        if ledger.peak - start > cap:
            over_cap.append(
                over_cap_leak(
                    ledger.peak - start, start, cap, ledger.peak_site, repr(pool)
                )
            )
    watch = state.watch
    outside = watch.outside_peak - window.outside_at_start
    if outside > cap:
        where = "contexts made outside any pool"
        site = watch.outside_peak_site
        over_cap.append(
            over_cap_leak(
                outside, window.outside_at_start, cap, site, where, "context creation"
            )
        )

    def opened_in_window(watched: Watched) -> bool:
        return (
            watched.watch_id not in window.watch_baseline
            and not wider_fixture(watched.holder)
            and not allowed(watched, window.settings.allow)
        )

    objects = leaked_objects(
        state,
        lambda watched: (
            opened_in_window(watched)
            and test_of(watched.holder) in (None, window.nodeid)
        ),
    )
    note_late_leaks(
        state,
        window.nodeid,
        leaked_objects(
            state,
            lambda watched: (
                opened_in_window(watched)
                and test_of(watched.holder) not in (None, window.nodeid)
            ),
        ),
    )
    return lease_leaks(leaked) + object_leaks(objects) + over_cap


# Part of the text of every object made for a test after it ended.
LATE_MARK = ", after that test ended"
# The first part of the dirty_on_entry key of such an object. The records count
# these keys, because such objects fail the run.
LATE_KEY = -2


def test_of(holder: Holder) -> str | None:
    """Return the node id of the test that ``holder`` belongs to, if it is one."""
    if holder.kind == "test":
        return holder.name
    if holder.kind == "fixture" and holder.scope == "function":
        return str(holder.key)
    return None


def note_late_leaks(state: RunState, nodeid: str, objects: list[LeakedObject]) -> None:
    """Record objects made for an earlier test after it ended, such as by its task.

    The test that was running did not make them, so they do not fail it. They are
    the earlier test's leak, which has been reported already, so they fail the run.
    """
    for leaked in objects:
        watched = leaked.watched
        text = (
            f"a {watched.describe()} created at {watched.site.location()} for "
            f"{watched.holder.describe()}{LATE_MARK}, was still open "
            f"when {nodeid} ended; it is the earlier test's leak "
            f"(reclaimed: {leaked.reclaimed})"
        )
        logger.warning("%s", text)
        state.dirty_on_entry[(LATE_KEY, watched.watch_id)] = text


def fixture_findings(state: RunState) -> list[Leak]:
    """Return and forget what wider-scoped fixtures leaked, found at finalization."""
    if not state.fixture_leaks and not state.fixture_objects:
        return []
    findings = lease_leaks(state.fixture_leaks) + object_leaks(state.fixture_objects)
    state.fixture_leaks.clear()
    state.fixture_objects.clear()
    return findings


def allowed(watched: Watched, rules: tuple[AllowRule, ...]) -> bool:
    """Tell whether an allow rule matches; a matched object stays allowed."""
    if any(rule.matches(watched.site) for rule in rules):
        watched.allowed = True
    return watched.allowed


# A wider-scoped fixture often hands tests a factory, a function nested in the
# fixture function that creates a context on first use and caches it for the
# module or session. The object is created while a test runs, but the fixture owns
# it and closes it in its teardown. So an object whose creation stack runs code
# nested in an active wider-scoped fixture's function belongs to that fixture, like
# a lease taken in its setup, and is judged when the fixture is finalized. Code
# nested in a function-scoped fixture stays the test's.


def note_fixture_set_up(
    state: RunState, fixturedef: pytest.FixtureDef[object], holder: Holder
) -> None:
    """Record a wider-scoped fixture whose nested functions' objects it owns."""
    if fixturedef.scope == "function":
        return
    module = getattr(fixturedef.func, "__module__", None)
    qualname = getattr(fixturedef.func, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        prefix = f"{qualname}.{LOCALS}."
        state.fixture_code[id(fixturedef)] = FixtureCode(module, prefix, holder)


def note_fixture_finalized(
    state: RunState, fixturedef: pytest.FixtureDef[object]
) -> None:
    """Give the fixture what its nested functions created, then forget the fixture."""
    if id(fixturedef) not in state.fixture_code:
        return
    for watched in state.watch.open_objects():
        adopt_nested(state, watched)
    del state.fixture_code[id(fixturedef)]


def adopt_nested(state: RunState, watched: Watched) -> None:
    """Hand ``watched`` to the active wider-scoped fixture whose nested code made it."""
    if not state.fixture_code or wider_fixture(watched.holder):
        return
    for frame in watched.site.frames:
        for code in state.fixture_code.values():
            if frame.module == code.module and frame.qualname.startswith(code.prefix):
                watched.holder = code.holder
                return


def pool_contexts(state: RunState) -> set[int]:
    """Return the ids of every open pool's contexts, in use or idle."""
    owned: set[int] = set()
    for pool in pools_to_judge(state):
        owned.update(id(context) for context in pool.contexts())
    return owned


def wider_fixture(holder: Holder) -> bool:
    return holder.kind == "fixture" and holder.scope != "function"


def leaked_objects(
    state: RunState, blamed: Callable[[Watched], bool]
) -> list[LeakedObject]:
    """Find open browsers, contexts and pages that ``blamed`` selects, and close them.

    Contexts of a pool are the pool's to manage and are judged through leases. A page
    in a pool's context is judged here too: a lease's release closes the pages it
    opened, so a page still open was opened past the lease, for example through a
    context that another holder keeps open, or through a reference kept after the
    release. An object inside another leaked object is closed with it and not
    reported on its own.
    """
    open_objects = state.watch.open_objects()
    if not open_objects:
        return []  # the usual case, which needs no walk over the pools' contexts
    for watched in open_objects:
        adopt_nested(state, watched)
    owned = pool_contexts(state)
    candidates = [
        watched
        for watched in open_objects
        if blamed(watched)
        and not watched.page_owned
        and (watched.kind == PAGE or not in_pool(watched, owned))
    ]
    if candidates:
        candidates = settle(state.settings, candidates)
    chosen = {watched.watch_id for watched in candidates}
    leaked = []
    for watched in candidates:
        if has_ancestor_in(watched, chosen):
            continue
        reclaimed = close_watched(watched, state.settings.close_timeout)
        leaked.append(LeakedObject(watched, reclaimed))
    return leaked


def settle(settings: Settings, candidates: list[Watched]) -> list[Watched]:
    """Let Playwright deliver pending close events, then return what is still open.

    Closing is asynchronous: a page closed by the test may not have reported its
    close yet. The wait is bounded by both attempts and seconds.
    """
    deadline = time.monotonic() + settings.settle_timeout
    for _ in range(settings.settle_attempts):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not candidates:
            break
        pump_events(candidates, min(SETTLE_STEP, remaining))
        candidates = [watched for watched in candidates if not is_closed(watched)]
    return candidates


def in_pool(watched: Watched, owned: set[int]) -> bool:
    node: Watched | None = watched
    while node is not None:
        # A pool's context stays the pool's after the pool let go of it: one whose
        # close hung is reported as a close problem, not as a leak of the test.
        if node.kind == CONTEXT and (node.pooled or id(node.obj) in owned):
            return True
        node = node.parent
    if watched.kind == PAGE and watched.parent is None:
        context = getattr(watched.obj, "context", None)
        return id(context) in owned
    return False


def has_ancestor_in(watched: Watched, chosen: set[int]) -> bool:
    parent = watched.parent
    while parent is not None:
        if parent.watch_id in chosen:
            return True
        parent = parent.parent
    return False


def belongs_to_window(window: Window, pool: PoolLike, record: LeaseRecord) -> bool:
    """Tell whether the test of ``window`` is to blame for ``record``."""
    if lease_key(pool, record) in window.baseline:
        return False
    holder = record.holder
    return not (holder.kind == "fixture" and holder.scope != "function")


def close_problems(window: Window) -> list[str]:
    """Describe the closes and resets that failed or hung during the window.

    One hung browser makes every later step time out too, so all of a test's
    problems go into one message rather than one warning each.
    """
    found = []
    for key, pool in window.pools.items():
        problems = getattr(pool, "close_problems", [])
        for problem in problems[window.close_problems_seen.get(key, 0) :]:
            found.append(problem.describe())
    if len(found) <= 1:
        return found
    lines = "\n".join(f"  - {text}" for text in found)
    return [f"{len(found)} closes or resets failed or hung during this test:\n{lines}"]
