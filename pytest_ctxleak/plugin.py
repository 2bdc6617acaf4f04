"""The pytest plugin: after every test, prove that every lease it took came back.

The check judges each test over its window, from before its setup to after its last
function-scoped finalizer. A baseline of outstanding leases is taken at the start, so a
test is blamed only for leases it took. A lease taken inside a session-, package-,
module- or class-scoped fixture belongs to that fixture and is judged when the fixture
is finalized. A leak turns the test's teardown report into a failure whose first line
names the lease and its acquisition site; then the plugin releases the lease for its
holder, so the next test starts clean.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from contextvars import Token
from dataclasses import dataclass, field

import pytest

from pytest_ctxleak import fixtures
from pytest_ctxleak.ledger import Holder, LeaseRecord
from pytest_ctxleak.pool import PoolLike, holding, open_pools
from pytest_ctxleak.pool.base import (
    add_pool_listener,
    describe_error,
    remove_pool_listener,
    reset_holder,
    set_holder,
)
from pytest_ctxleak.report import (
    Leak,
    LeakedLease,
    LeakedObject,
    LeakRepr,
    format_leaks,
    lease_leaks,
    object_leaks,
    over_cap_leak,
)
from pytest_ctxleak.settings import (
    MARKER_HELP,
    SETTINGS_KEY,
    TEST_SETTINGS_KEY,
    AllowRule,
    Settings,
    TestSettings,
    add_options,
    resolve_settings,
    resolve_test_settings,
    settings_for,
)
from pytest_ctxleak.sites import UNKNOWN_SITE, Site
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


class CtxleakWarning(pytest.PytestWarning):
    """A leak found in warn mode, a lease left over from an earlier test, or a hung
    close."""


@dataclass
class Window:
    """What the check knows about the test that is running."""

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
    # The test's own findings, judged after its last function-scoped finalizer by
    # the window fixture; None until then.
    judged: list[Leak] | None = None


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
    # (node id, first line) of every finding, for the terminal summary.
    findings: list[tuple[str, str]] = field(default_factory=list)
    # Leases found outstanding when a test started, each described once.
    dirty_on_entry: dict[tuple[int, int], str] = field(default_factory=dict)
    # Holder tokens of fixtures whose teardown is running, by id(fixturedef).
    teardown_holders: dict[int, Token[Holder]] = field(default_factory=dict)

    def on_new_pool(self, pool: PoolLike) -> None:
        if self.window is not None:
            self.window.pools[id(pool)] = pool


STATE_KEY = pytest.StashKey[RunState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    settings = resolve_settings(config)
    config.stash[SETTINGS_KEY] = settings
    state = RunState(settings)
    config.stash[STATE_KEY] = state
    add_pool_listener(state.on_new_pool)
    # Installed in every mode: a marker can turn the check on for one test, and the
    # wrappers only record.
    state.watch.install()
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "ctxleak-fixtures")
    if config.pluginmanager.has_plugin("asyncio"):
        from pytest_ctxleak import fixtures_async

        if not config.pluginmanager.is_registered(fixtures_async):
            config.pluginmanager.register(fixtures_async, "ctxleak-async-fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        remove_pool_listener(state.on_new_pool)
        state.watch.uninstall()


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Validate every ctxleak marker before any test runs."""
    settings = config.stash[STATE_KEY].settings
    errors = []
    for item in items:
        try:
            item.stash[TEST_SETTINGS_KEY] = resolve_test_settings(item, settings)
        except pytest.UsageError as error:
            errors.append(str(error))
        names = getattr(item, "fixturenames", None)
        if isinstance(names, list) and WINDOW_FIXTURE not in names:
            # First in the list, so it is set up first and torn down after every
            # other function-scoped fixture, but before wider scopes are.
            names.insert(0, WINDOW_FIXTURE)
    if errors:
        raise pytest.UsageError("\n".join(errors))


def _lease_key(pool: PoolLike, record: LeaseRecord) -> tuple[int, int]:
    return (id(pool), record.lease_id)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    state = item.config.stash[STATE_KEY]
    settings = settings_for(item)
    pools = {id(pool): pool for pool in open_pools()}
    baseline = set()
    for pool in pools.values():
        pool.ledger.reset_peak()
        for record in pool.ledger.outstanding():
            baseline.add(_lease_key(pool, record))
            if settings.mode != "off":
                _note_dirty_on_entry(state, item, pool, record)
    watch_baseline = set()
    owned = _pool_contexts(state)
    for watched in state.watch.open_objects():
        watch_baseline.add(watched.watch_id)
        if settings.mode != "off" and not _in_pool(watched, owned):
            _note_object_on_entry(state, item, watched, settings.allow)
    state.window = Window(
        item.nodeid,
        settings,
        baseline,
        pools,
        {key: len(getattr(pool, "close_problems", ())) for key, pool in pools.items()},
        {key: pool.ledger.in_use for key, pool in pools.items()},
        watch_baseline,
    )
    test_holder = Holder("test", item.nodeid)
    state.watch.fallback_holder = test_holder
    try:
        with holding(test_holder):
            return (yield)
    finally:
        state.window = None
        state.watch.fallback_holder = None


def _note_object_on_entry(
    state: RunState,
    item: pytest.Item,
    watched: Watched,
    allow: tuple[AllowRule, ...],
) -> None:
    """Record a browser, context or page that an earlier test left open."""
    if _wider_fixture(watched.holder) or watched.holder.kind == "code":
        return
    if watched.allowed or _allowed(watched, allow):
        return
    key = (-1, watched.watch_id)
    if key in state.dirty_on_entry:
        return
    text = (
        f"a {watched.describe()} created at {watched.site.location()} by "
        f"{watched.holder.describe()} was still open when {item.nodeid} started; "
        "it is the previous holder's leak, not this test's"
    )
    logger.warning("%s", text)
    state.dirty_on_entry[key] = text


def _note_dirty_on_entry(
    state: RunState, item: pytest.Item, pool: PoolLike, record: LeaseRecord
) -> None:
    """Record a lease that an earlier test or function fixture left behind.

    It is the previous holder's leak, so it is reported in the summary and the log,
    not as a failure or warning of the test that found it.
    """
    holder = record.holder
    if holder.kind == "fixture" and holder.scope != "function":
        return  # a wider-scoped fixture's lease is legitimately held across tests
    key = _lease_key(pool, record)
    if key in state.dirty_on_entry:
        return
    text = (
        f"{record.describe()} was already outstanding when {item.nodeid} started; "
        "it is the previous holder's leak, not this test's"
    )
    logger.warning("%s", text)
    state.dirty_on_entry[key] = text


ASYNC_FIXTURES = frozenset(
    {
        "ctxleak_async_browser",
        "async_context_pool",
        "async_pooled_lease",
        "async_pooled_context",
        "async_pooled_page",
    }
)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Explain the one way async fixtures cannot work, before pytest-asyncio fails."""
    if not ASYNC_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    pytest.fail(
        "ctxleak: the async fixtures cannot run in this process because an event "
        "loop is already running in this thread, most likely that of Playwright's "
        "sync API started by a sync fixture (ctxleak_browser, context_pool, "
        "pytest-playwright's browser). Run sync and async browser tests in "
        "separate pytest invocations.",
        pytrace=False,
    )


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """Attribute leases taken during a fixture's setup to that fixture."""
    if fixturedef.scope == "function":
        holder = Holder("fixture", fixturedef.argname, "function", request.node.nodeid)
    else:
        holder = Holder("fixture", fixturedef.argname, fixturedef.scope, id(fixturedef))
    with holding(holder):
        result = yield
    # Finalizers run last-in first-out, so this one runs before the fixture's own
    # teardown: leases taken there belong to the fixture too. The holder is reset
    # in pytest_fixture_post_finalizer, which runs after the teardown.
    state = request.config.stash.get(STATE_KEY, None)
    if state is not None:
        fixturedef.addfinalizer(
            lambda: state.teardown_holders.setdefault(
                id(fixturedef), set_holder(holder)
            )
        )
    return result


def pytest_fixture_post_finalizer(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> None:
    """Judge a wider-scoped fixture's leases once its finalizers have run."""
    state = request.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    token = state.teardown_holders.pop(id(fixturedef), None)
    if token is not None:
        reset_holder(token)
    if fixturedef.scope == "function" or state.settings.mode == "off":
        return
    for pool in _pools_to_judge(state):
        for record in pool.ledger.outstanding():
            holder = record.holder
            if holder.kind == "fixture" and holder.key == id(fixturedef):
                reclaimed = _reclaim(pool, record, f"fixture '{fixturedef.argname}'")
                state.fixture_leaks.append(LeakedLease(record, reclaimed))
    state.fixture_objects += _leaked_objects(
        state,
        lambda watched: (
            watched.holder.kind == "fixture"
            and watched.holder.key == id(fixturedef)
            and not _allowed(watched, state.settings.allow)
        ),
    )


def _pools_to_judge(state: RunState) -> Iterator[PoolLike]:
    pools = {id(pool): pool for pool in open_pools()}
    if state.window is not None:
        pools.update(state.window.pools)
    return iter(list(pools.values()))


def _reclaim(pool: PoolLike, record: LeaseRecord, who: str) -> str:
    """Release a leaked lease for its holder; never raise into pytest."""
    try:
        return pool.reclaim(record, by=f"ctxleak, after {who} leaked it")
    except Exception as error:
        logger.warning("reclaiming lease #%d failed: %s", record.lease_id, error)
        return f"failed ({describe_error(error)})"


WINDOW_FIXTURE = "_ctxleak_window"


@pytest.fixture(name=WINDOW_FIXTURE)
def ctxleak_window(request: pytest.FixtureRequest) -> Iterator[None]:
    """Judge the test once its function-scoped fixtures are torn down.

    Fixtures of wider scope are torn down later in the same teardown and may close
    the browser or the pool the test leaked from, which would hide the leak.
    """
    yield
    state = request.config.stash.get(STATE_KEY, None)
    window = state.window if state is not None else None
    if state is None or window is None or window.nodeid != request.node.nodeid:
        return
    if window.settings.mode == "off":
        return
    try:
        window.judged = _judge(state, window)
    except Exception:  # the check must never crash the run
        logger.exception("ctxleak could not check %s", request.node.nodeid)


def _judge(state: RunState, window: Window) -> list[Leak]:
    """Find this window's leaks and reclaim them."""
    leaked: list[LeakedLease] = []
    over_cap: list[Leak] = []
    cap = window.settings.max_contexts
    for pool in _pools_to_judge(state):
        key = id(pool)
        window.pools[key] = pool
        ledger = pool.ledger
        for record in ledger.outstanding():
            if _belongs_to_window(window, pool, record):
                reclaimed = _reclaim(pool, record, window.nodeid)
                leaked.append(LeakedLease(record, reclaimed))
        # A pool closed during the window (a session pool at the last test, or the
        # test's own pool) released its outstanding leases; their holders still
        # leaked them.
        for record in ledger.abandoned:
            if _belongs_to_window(window, pool, record):
                leaked.append(LeakedLease(record, "released when the pool was closed"))
        start = window.in_use_at_start.get(key, 0)
        if ledger.peak - start > cap:
            over_cap.append(
                over_cap_leak(
                    ledger.peak - start, start, cap, ledger.peak_site, repr(pool)
                )
            )
    objects = _leaked_objects(
        state,
        lambda watched: (
            watched.watch_id not in window.watch_baseline
            and not _wider_fixture(watched.holder)
            and not _allowed(watched, window.settings.allow)
        ),
    )
    return lease_leaks(leaked) + object_leaks(objects) + over_cap


def _fixture_findings(state: RunState) -> list[Leak]:
    """Return and forget what wider-scoped fixtures leaked, found at finalization."""
    findings = lease_leaks(state.fixture_leaks) + object_leaks(state.fixture_objects)
    state.fixture_leaks.clear()
    state.fixture_objects.clear()
    return findings


def _allowed(watched: Watched, rules: tuple[AllowRule, ...]) -> bool:
    """Tell whether an allow rule matches; a matched object stays allowed."""
    if any(rule.matches(watched.site) for rule in rules):
        watched.allowed = True
    return watched.allowed


def _pool_contexts(state: RunState) -> set[int]:
    """Return the ids of every open pool's contexts, in use or idle."""
    owned: set[int] = set()
    for pool in _pools_to_judge(state):
        owned.update(id(context) for context in pool.contexts())
    return owned


def _wider_fixture(holder: Holder) -> bool:
    return holder.kind == "fixture" and holder.scope != "function"


def _leaked_objects(
    state: RunState, blamed: Callable[[Watched], bool]
) -> list[LeakedObject]:
    """Find open browsers, contexts and pages that ``blamed`` selects, and close them.

    Contexts of a pool, and their pages, are the pool's to manage and are judged
    through leases. An object inside another leaked object is closed with it and not
    reported on its own.
    """
    owned = _pool_contexts(state)
    candidates = [
        watched
        for watched in state.watch.open_objects()
        if blamed(watched) and not _in_pool(watched, owned)
    ]
    if candidates:
        candidates = _settle(state.settings, candidates)
    chosen = {watched.watch_id for watched in candidates}
    leaked = []
    for watched in candidates:
        if _has_ancestor_in(watched, chosen):
            continue
        reclaimed = close_watched(watched, state.settings.close_timeout)
        leaked.append(LeakedObject(watched, reclaimed))
    return leaked


def _settle(settings: Settings, candidates: list[Watched]) -> list[Watched]:
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


def _in_pool(watched: Watched, owned: set[int]) -> bool:
    node: Watched | None = watched
    while node is not None:
        if node.kind == CONTEXT and id(node.obj) in owned:
            return True
        node = node.parent
    if watched.kind == PAGE and watched.parent is None:
        context = getattr(watched.obj, "context", None)
        return id(context) in owned
    return False


def _has_ancestor_in(watched: Watched, chosen: set[int]) -> bool:
    parent = watched.parent
    while parent is not None:
        if parent.watch_id in chosen:
            return True
        parent = parent.parent
    return False


def _belongs_to_window(window: Window, pool: PoolLike, record: LeaseRecord) -> bool:
    """Tell whether the test of ``window`` is to blame for ``record``."""
    if _lease_key(pool, record) in window.baseline:
        return False
    holder = record.holder
    return not (holder.kind == "fixture" and holder.scope != "function")


def _close_problems(window: Window) -> list[str]:
    """Describe the closes that failed or hung during the window."""
    found = []
    for key, pool in window.pools.items():
        problems = getattr(pool, "close_problems", [])
        for problem in problems[window.close_problems_seen.get(key, 0) :]:
            found.append(f"closing {problem.what} failed: {problem.error}")
    return found


def _warn(item: pytest.Item, report: pytest.TestReport, text: str, site: Site) -> None:
    """Emit a CtxleakWarning at ``site``; under -W error, fail the report instead.

    A warning turned into an error inside a report hook would otherwise escape as
    an INTERNALERROR and end the run. Without a site, the warning points at the test.
    """
    top = site.top
    if top is not None:
        filename, lineno = top.filename, top.lineno
    else:
        path, line, _ = item.location
        filename, lineno = path, (line or 0) + 1
    try:
        warnings.warn_explicit(CtxleakWarning(text), CtxleakWarning, filename, lineno)
    except Warning:
        _fail(report, text, site)


def _fail(report: pytest.TestReport, text: str, site: Site) -> None:
    if report.failed:
        report.sections.append(("ctxleak", text))
    else:
        report.outcome = "failed"
        report.longrepr = LeakRepr(text, site)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when != "teardown":
        return report
    state = item.config.stash[STATE_KEY]
    window = state.window
    if window is None or window.nodeid != item.nodeid:
        return report
    mode = window.settings.mode
    if mode == "off":
        _fixture_findings(state)
        return report
    try:
        own = window.judged if window.judged is not None else _judge(state, window)
        leaks = own + _fixture_findings(state)
        problems = _close_problems(window)
    except Exception as error:  # the check must never crash the run
        logger.exception("ctxleak could not check %s", item.nodeid)
        _warn(
            item, report, f"ctxleak could not check this test: {error!r}", UNKNOWN_SITE
        )
        return report
    for problem in problems:
        _warn(item, report, problem, UNKNOWN_SITE)
    if not leaks:
        return report
    text = format_leaks(leaks, item.config.get_verbosity())
    state.findings += [(item.nodeid, leak.headline) for leak in leaks]
    if mode == "warn":
        _warn(item, report, text, leaks[0].site)
    else:
        _fail(report, text, leaks[0].site)
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    if state.findings:
        count = len(state.findings)
        tests = len({nodeid for nodeid, _ in state.findings})
        terminalreporter.section(
            f"ctxleak: {count} finding{'s' if count != 1 else ''} in "
            f"{tests} test{'s' if tests != 1 else ''}"
        )
        for nodeid, headline in state.findings:
            terminalreporter.line(f"{nodeid}: {headline}")
    if state.dirty_on_entry:
        terminalreporter.section("ctxleak: left open when a test started")
        for text in state.dirty_on_entry.values():
            terminalreporter.line(text)
