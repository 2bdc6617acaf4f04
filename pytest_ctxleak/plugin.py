"""The pytest plugin: after every test, prove that every lease it took came back and
every browser, context and page it opened was closed.

The hooks here decide when and whom to judge; ``verdict`` decides what counts. Each
test is judged over its window, from before its setup to after its last
function-scoped finalizer. A baseline is taken at the start, so a test is blamed only
for what it took or opened. A lease taken inside a session-, package-,
module- or class-scoped fixture belongs to that fixture and is judged when the fixture
is finalized. A leak turns the test's teardown report into a failure whose first line
names the lease and its acquisition site; then the plugin releases the lease for its
holder, so the next test starts clean.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Generator

import pytest

from pytest_ctxleak import fixtures, limits, recovery
from pytest_ctxleak.holders_async import is_async, with_holder
from pytest_ctxleak.ledger import Holder
from pytest_ctxleak.pool import open_pools
from pytest_ctxleak.pool.base import (
    add_pool_listener,
    remove_pool_listener,
    reset_holder,
    set_holder,
)
from pytest_ctxleak.report import (
    LeakedLease,
    LeakRepr,
    format_leaks,
)
from pytest_ctxleak.reports import (
    ERROR,
    LEAKED,
    PASSED,
    UNCHECKED,
    WARNED,
    add_report_options,
    attach_record,
    register_reports,
)
from pytest_ctxleak.settings import (
    MARKER_HELP,
    SETTINGS_KEY,
    TEST_SETTINGS_KEY,
    add_options,
    resolve_settings,
    resolve_test_settings,
    settings_for,
)
from pytest_ctxleak.sites import UNKNOWN_SITE, Site
from pytest_ctxleak.verdict import (
    RunState,
    Window,
    allowed,
    close_problems,
    fixture_findings,
    in_pool,
    judge,
    leaked_objects,
    lease_key,
    note_fixture_finalized,
    note_fixture_set_up,
    note_lease_on_entry,
    note_object_on_entry,
    pool_contexts,
    pools_to_judge,
    reclaim_lease,
)

logger = logging.getLogger("pytest_ctxleak")


class CtxleakWarning(pytest.PytestWarning):
    """A leak found in warn mode, a lease left over from an earlier test, or a hung
    close."""


STATE_KEY = pytest.StashKey[RunState]()
# The failed setup or call report of the running test, if any.
FAILED_REPORT_KEY = pytest.StashKey[pytest.TestReport]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    add_report_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    settings = resolve_settings(config)
    config.stash[SETTINGS_KEY] = settings
    state = RunState(settings)
    config.stash[STATE_KEY] = state
    register_reports(config, state)
    add_pool_listener(state.on_new_pool)
    # Installed in every mode: a marker can turn the check on for one test, and the
    # wrappers only record.
    state.watch.install()
    limits.configure(config, state.watch)
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "ctxleak-fixtures")
    # The async fixtures go to pytest-asyncio when it is active, else to anyio:
    # one runner must own the session loop that the browser and pool live in.
    manager = config.pluginmanager
    name = "ctxleak-async-fixtures"
    if manager.get_plugin(name) is None:
        from pytest_ctxleak import fixtures_async

        if manager.has_plugin("asyncio"):
            manager.register(fixtures_async.asyncio_fixtures(), name)
        elif manager.has_plugin("anyio"):
            manager.register(fixtures_async.anyio_fixtures(), name)


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
    if errors:
        raise pytest.UsageError("\n".join(errors))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    state = item.config.stash[STATE_KEY]
    watch = state.watch
    limits.open_window(item)
    state.window = _open_window(state, item)
    watch.reset_outside_peak()
    watch.reset_peaks()
    test_holder = Holder("test", item.nodeid)
    watch.fallback_holder = test_holder
    # An instance attribute hides the class's method, and pytest reads it at setup.
    item.teardown = _JudgeAtTeardown(item, item.teardown)  # type: ignore[method-assign]
    token = set_holder(test_holder)
    try:
        return (yield)
    finally:
        reset_holder(token)
        vars(item).pop("teardown", None)
        state.window = None
        watch.fallback_holder = None
        limits.end_window(item)


def _open_window(state: RunState, item: pytest.Item) -> Window:
    """Take the baseline of the test: what is open and outstanding as it starts."""
    settings = settings_for(item)
    watch = state.watch
    # Read first: an object that another thread records during the reads below is
    # then counted as new, never missed by both.
    recorded = watch.recorded
    pools = {id(pool): pool for pool in open_pools()}
    open_objects = watch.open_objects()
    if not pools and not open_objects:
        # Most tests start with nothing open, so this path walks nothing. The
        # count it keeps lets the verdict return at once if the test made nothing.
        return Window(
            item.nodeid,
            settings,
            set(),
            {},
            {},
            {},
            set(),
            watch.outside_open,
            quiet_from=recorded,
        )
    baseline = set()
    for pool in pools.values():
        pool.ledger.reset_peak()
        for record in pool.ledger.outstanding():
            baseline.add(lease_key(pool, record))
            if settings.mode != "off":
                note_lease_on_entry(state, item, pool, record)
    watch_baseline = set()
    # Finding the pools' contexts walks every pool, so it waits for an object.
    owned = pool_contexts(state) if open_objects else set()
    for watched in open_objects:
        watch_baseline.add(watched.watch_id)
        if settings.mode != "off" and not in_pool(watched, owned):
            note_object_on_entry(state, item, watched, settings.allow)
    return Window(
        item.nodeid,
        settings,
        baseline,
        pools,
        {key: len(getattr(pool, "close_problems", ())) for key, pool in pools.items()},
        {key: pool.ledger.in_use for key, pool in pools.items()},
        watch_baseline,
        watch.outside_open,
    )


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
    """Relaunch a dead session browser before any fixture is set up.

    Also fail a test whose fixtures cannot run in its kind of test, with a message
    that explains why.
    """
    recovery.before_setup(item)
    fixtures.reject_sync_fixtures(item)
    if ASYNC_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """Attribute leases taken during a fixture's setup to that fixture."""
    scope = fixturedef.scope
    if scope == "function":
        holder = Holder("fixture", fixturedef.argname, scope, request.node.nodeid)
    else:
        holder = Holder("fixture", fixturedef.argname, scope, id(fixturedef))
    original = fixturedef.func
    swapped = is_async(original) and "anyio_backend" in request.fixturenames
    if swapped:
        # anyio runs async fixtures in its runner task; see holders_async. pytest
        # types func as final, but swapping it for the setup is how anyio's own
        # plugin runs async fixtures too.
        setattr(fixturedef, "func", with_holder(original, holder))  # noqa: B010
    # A token, not holding(): this runs for every fixture of every test, and a
    # generator-based context manager costs more.
    token = set_holder(holder)
    try:
        result = yield
    finally:
        reset_holder(token)
        if swapped:
            setattr(fixturedef, "func", original)  # noqa: B010
    # Finalizers run last-in first-out, so this one runs before the fixture's own
    # teardown: leases taken there belong to the fixture too. The holder is reset
    # in pytest_fixture_post_finalizer, which runs after the teardown.
    state = request.config.stash.get(STATE_KEY, None)
    if state is not None:
        if scope != "function":
            note_fixture_set_up(state, fixturedef, holder)
        fixturedef.addfinalizer(
            lambda: state.teardown_holders.setdefault(
                id(fixturedef), set_holder(holder)
            )
        )
    return result


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Run an async test function under the test's holder, in whatever task runs
    it, and repeat a soak test's function."""
    original = pyfuncitem.obj
    function = original
    if is_async(original):
        # A sync test runs in pytest's own context, under the holder already.
        function = with_holder(original, Holder("test", pyfuncitem.nodeid))
    function = limits.soak_function(pyfuncitem, function) or function
    if function is original:
        return (yield)
    pyfuncitem.obj = function
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original
        limits.end_soak(pyfuncitem)


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
    note_fixture_finalized(state, fixturedef)
    if fixturedef.scope == "function" or state.settings.mode == "off":
        return
    for pool in pools_to_judge(state):
        for record in pool.ledger.outstanding():
            holder = record.holder
            if holder.kind == "fixture" and holder.key == id(fixturedef):
                reclaimed = reclaim_lease(
                    pool, record, f"fixture '{fixturedef.argname}'"
                )
                state.fixture_leaks.append(LeakedLease(record, reclaimed))
    state.fixture_objects += leaked_objects(
        state,
        lambda watched: (
            watched.holder.kind == "fixture"
            and watched.holder.key == id(fixturedef)
            and not allowed(watched, state.settings.allow)
        ),
    )


class _JudgeAtTeardown:
    """A stand-in for the item's ``teardown`` method while the test runs.

    pytest puts ``item.teardown`` first on the item's finalizer list when it sets
    the item up, and runs that list last-in first-out. So this runs after every
    function-scoped fixture of the test is torn down, and before fixtures of wider
    scope are: they may close the browser or the pool the test leaked from, which
    would hide the leak. A fixture in the same place did the same job, but pytest's
    fixture machinery cost more per test than the rest of the check together.
    """

    __slots__ = ("item", "teardown")

    def __init__(self, item: pytest.Item, teardown: Callable[[], None]) -> None:
        self.item = item
        self.teardown = teardown

    def __call__(self) -> None:
        try:
            self.teardown()
        finally:
            _judge_window(self.item)


def _judge_window(item: pytest.Item) -> None:
    limits.close_window(item)
    state = item.config.stash.get(STATE_KEY, None)
    window = state.window if state is not None else None
    if state is None or window is None or window.nodeid != item.nodeid:
        return
    if window.settings.mode == "off":
        return
    try:
        window.judged = judge(state, window)
    except Exception:  # the check must never crash the run
        logger.exception("ctxleak could not check %s", item.nodeid)


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
        # A leak found at teardown of a test whose setup or call failed goes into
        # that report as a section, after the test's own failure. The leak then
        # never replaces the failure or is printed before it.
        if call.when == "setup" and FAILED_REPORT_KEY in item.stash:
            del item.stash[FAILED_REPORT_KEY]  # left from an earlier attempt
        if report.failed:
            if call.when == "call":
                recovery.explain_failure(item, report)
            item.stash[FAILED_REPORT_KEY] = report
        return report
    state = item.config.stash[STATE_KEY]
    window = state.window
    if window is None or window.nodeid != item.nodeid:
        return report
    mode = window.settings.mode
    if mode == "off":
        fixture_findings(state)
        attach_record(item, report, UNCHECKED)
        return report
    try:
        own = window.judged if window.judged is not None else judge(state, window)
        leaks = limits.findings(item) + own + fixture_findings(state)
        problems = close_problems(window)
    except Exception as error:  # the check must never crash the run
        logger.exception("ctxleak could not check %s", item.nodeid)
        problem = f"ctxleak could not check this test: {error!r}"
        _warn(item, report, problem, UNKNOWN_SITE)
        attach_record(item, report, ERROR, problems=[problem])
        return report
    for problem in problems:
        _warn(item, report, problem, UNKNOWN_SITE)
    if not leaks:
        attach_record(item, report, PASSED, problems=problems)
        return report
    text = format_leaks(leaks, item.config.get_verbosity())
    if mode == "warn":
        _warn(item, report, text, leaks[0].site)
    else:
        _fail(item.stash.get(FAILED_REPORT_KEY, report), text, leaks[0].site)
    attach_record(item, report, WARNED if mode == "warn" else LEAKED, leaks, problems)
    return report
