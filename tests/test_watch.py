"""The watch: browsers, contexts and pages made outside any pool, on real Chromium."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", *args)


def test_direct_context_left_open(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_direct="""
        def helper(browser):
            context = browser.new_context()
            return context.pages

        def test_leaks(ctxleak_browser):
            helper(ctxleak_browser)

        def test_next(ctxleak_browser):
            assert len(ctxleak_browser.contexts) == 0
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a context was left open; created at test_direct.py:2 in helper",
            "*held by test test_direct.py::test_leaks",
            "*reclaimed: closed",
        ]
    )


def test_page_left_open_in_long_lived_context(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_page="""
        import pytest

        @pytest.fixture(scope="module")
        def context(ctxleak_browser):
            context = ctxleak_browser.new_context()
            yield context
            context.close()

        def test_leaks_page(context):
            context.new_page()

        def test_next(context):
            assert context.pages == []
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["ctxleak: a page was left open; opened at test_page.py:10 in test_leaks_page"]
    )


def test_popup_left_open(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_popup="""
        import pytest

        @pytest.fixture(scope="module")
        def shared_context(ctxleak_browser):
            context = ctxleak_browser.new_context()
            yield context
            context.close()

        def test_opens_popup(shared_context):
            page = shared_context.new_page()
            with page.expect_popup():
                page.evaluate("window.open('about:blank')")
            page.close()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a page was left open; opened by the page in the context created at test_popup.py:5 in shared_context",
            "*held by test test_popup.py::test_opens_popup",
        ]
    )


def test_launched_browser_left_open(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_launch="""
        def test_launches(ctxleak_playwright, ctxleak_launch_options):
            browser = ctxleak_playwright.chromium.launch(**ctxleak_launch_options)
            browser.new_context()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a browser * was left open; launched at test_launch.py:2 in test_launches"
        ]
    )
    assert "a context was left open" not in result.stdout.str()


def test_closed_objects_not_flagged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_clean="""
        def test_closes(ctxleak_browser):
            context = ctxleak_browser.new_context()
            page = context.new_page()
            page.close()
            context.close()

        def test_closes_with_context(ctxleak_browser):
            context = ctxleak_browser.new_context()
            context.new_page()
            context.close()

        def test_pooled_pages_are_the_pool_s(pooled_page):
            pooled_page.context.new_page()
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=3)


def test_session_fixture_context_not_flagged(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def shared(ctxleak_browser):
            context = ctxleak_browser.new_context()
            yield context
            context.close()
        """
    )
    pytester.makepyfile(
        test_a="def test_a(shared): pass",
        test_b="def test_b(shared): pass",
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)


def test_module_fixture_context_leak_judged_at_finalization(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_fixture_context="""
        import pytest

        @pytest.fixture(scope="module")
        def context(ctxleak_browser):
            return ctxleak_browser.new_context()

        def test_first(context):
            pass

        def test_last(context):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_last*",
            "ctxleak: a context was left open by module-scoped fixture 'context'; "
            "created at test_fixture_context.py:5 in context",
        ]
    )


def test_dirty_on_entry_reported_apart(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_dirty="""
        import pytest

        @pytest.mark.ctxleak(check=False)
        def test_leaks_on_purpose(ctxleak_browser):
            ctxleak_browser.new_context()

        def test_innocent(ctxleak_browser):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*ctxleak: left open by earlier tests*",
            "a context created at test_dirty.py:5 in test_leaks_on_purpose by test "
            "test_dirty.py::test_leaks_on_purpose was still open when "
            "test_dirty.py::test_innocent started*",
        ]
    )


def test_async_direct_context_left_open(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_async_direct="""
        import pytest

        @pytest.mark.asyncio(loop_scope="session")
        async def test_leaks(ctxleak_async_browser):
            await ctxleak_async_browser.new_context()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a context was left open; created at test_async_direct.py:5 in test_leaks",
            "*reclaimed: closed",
        ]
    )


# pytest-playwright launches its own Chromium; point it at the one the plugin found.
PYTEST_PLAYWRIGHT_CONFTEST = """
import pytest
from pytest_ctxleak.launch import launch_options

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, playwright):
    found = launch_options(playwright.chromium.executable_path)
    return {**browser_type_launch_args, **found}
"""


def test_pytest_playwright_fixtures_not_flagged(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PYTEST_PLAYWRIGHT_CONFTEST)
    pytester.makepyfile(
        test_pw="""
        def test_page(page):
            page.goto("about:blank")

        def test_context(context):
            context.new_page()

        def test_browser(browser):
            assert browser.is_connected()
        """
    )
    result = run(pytester, "-p", "playwright")
    assert result.ret == 0
    result.assert_outcomes(passed=3)
    assert "ctxleak:" not in result.stdout.str()


def test_pytest_playwright_leak_in_test_flagged(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PYTEST_PLAYWRIGHT_CONFTEST)
    pytester.makepyfile(
        test_pw_leak="""
        def test_extra_context(browser):
            browser.new_context()
        """
    )
    result = run(pytester, "-p", "playwright")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a context was left open; created at test_pw_leak.py:2 in test_extra_context"
        ]
    )


ALLOW_HELPERS = """
def keep_open(browser):
    return browser.new_context()

def forget(browser):
    return browser.new_context()
"""


def test_allow_rule_by_function_in_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(crawler_helpers=ALLOW_HELPERS)
    pytester.makeini(
        "[pytest]\npythonpath = .\nctxleak_allow = crawler_helpers:keep_open\n"
    )
    pytester.makepyfile(
        test_allow="""
        import crawler_helpers

        def test_kept(ctxleak_browser):
            crawler_helpers.keep_open(ctxleak_browser)

        def test_forgotten(ctxleak_browser):
            crawler_helpers.forget(ctxleak_browser)
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_forgotten*"])
    assert "ERROR at teardown of test_kept" not in result.stdout.str()


def test_allow_rule_by_module_in_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(crawler_helpers=ALLOW_HELPERS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    pytester.makepyfile(
        test_marker_allow="""
        import pytest
        import crawler_helpers

        @pytest.mark.ctxleak(allow=["crawler_helpers"])
        def test_allowed(ctxleak_browser):
            crawler_helpers.forget(ctxleak_browser)
        """
    )
    result = run(pytester)
    assert result.ret == 0


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "crawler_helper:keep_open",
            "no module named 'crawler_helper' can be imported; check the spelling, "
            "or add its directory to the pythonpath ini setting",
        ),
        (
            "crawler_helpers:keep_opn",
            "module 'crawler_helpers' has no 'keep_opn'; "
            "did you mean 'crawler_helpers:keep_open'?",
        ),
        ("crawler helpers", "expected 'module' or 'module:name', *"),
    ],
)
def test_allow_rule_typo_is_usage_error(
    pytester: pytest.Pytester, rule: str, message: str
) -> None:
    pytester.makepyfile(crawler_helpers=ALLOW_HELPERS)
    pytester.makeini(f"[pytest]\npythonpath = .\nctxleak_allow = {rule}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: invalid allow rule '{rule}' from ini setting ctxleak_allow in *: {message}"
        ]
    )


def test_allow_rule_typo_in_marker_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker_typo="""
        import pytest

        @pytest.mark.ctxleak(allow=["no_such_module_here"])
        def test_marked():
            pass
        """
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid allow rule 'no_such_module_here' from @pytest.mark.ctxleak on test_marker_typo.py::test_marked: no module named*"
        ]
    )


SETTLE_TEST = """
import asyncio
import pytest

@pytest.mark.asyncio(loop_scope="session")
async def test_close_in_flight(ctxleak_async_browser):
    context = await ctxleak_async_browser.new_context()
    asyncio.ensure_future(context.close())
"""


def test_settle_waits_for_close_in_flight(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_settle=SETTLE_TEST)
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=1)


def test_settle_disabled_reports_close_in_flight(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_settle=SETTLE_TEST)
    result = run(pytester, "--ctxleak-settle-attempts=0")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a context was left open; created at test_settle.py:6 in test_close_in_flight"
        ]
    )


def test_invalid_settle_attempts_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess(
        "-p", "ctxleak", "--ctxleak-settle-attempts=-1"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid settle_attempts '-1' from command line option --ctxleak-settle-attempts: expected a whole number of at least 0"
        ]
    )


# -- regressions from trying the watch as a new user --------------------------------


def test_stopped_playwright_ends_its_objects(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stopped="""
        from playwright.sync_api import sync_playwright
        from pytest_ctxleak.launch import launch_options

        def test_with_block():
            with sync_playwright() as playwright:
                options = launch_options(playwright.chromium.executable_path)
                browser = playwright.chromium.launch(**options)
                browser.new_page().goto("about:blank")

        def test_after():
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)
    assert "ctxleak:" not in result.stdout.str()


def test_idle_pool_context_not_listed_on_entry(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_idle="""
        def test_release_lease(context_pool):
            with context_pool.acquire() as lease:
                lease.new_page().goto("about:blank")

        def test_second(context_pool):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 0
    assert "ctxleak:" not in result.stdout.str()


def test_other_thread_object_left_to_its_thread(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_thread="""
        import threading
        import pytest
        from playwright.sync_api import sync_playwright

        WORKER = {}

        @pytest.fixture(scope="module")
        def module_context(ctxleak_browser):
            yield ctxleak_browser.new_context()

        def test_first(module_context):
            pass

        def test_thread_keeps_browser(ctxleak_launch_options):
            started, finish = threading.Event(), threading.Event()

            def work():
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(**ctxleak_launch_options)
                    started.set()
                    finish.wait(20)
                    browser.close()

            thread = threading.Thread(target=work)
            thread.start()
            assert started.wait(20)
            WORKER.update(thread=thread, finish=finish)

        def test_last(module_context):
            WORKER["finish"].set()
            WORKER["thread"].join()
        """
    )
    result = run(pytester)
    result.stdout.fnmatch_lines(
        [
            "*reclaimed: not closed: it belongs to another thread, which must close it",
            "*reclaimed: closed",
        ]
    )
    assert "Event loop is closed" not in result.stdout.str()
    assert "never awaited" not in result.stdout.str()


def test_marker_fail_under_run_mode_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker_on="""
        import pytest

        @pytest.mark.ctxleak(mode="fail")
        def test_context_leak(ctxleak_browser):
            ctxleak_browser.new_context()

        @pytest.mark.ctxleak(mode="fail")
        def test_lease_leak(context_pool):
            context_pool.acquire()
        """
    )
    result = run(pytester, "--ctxleak-mode=off")
    result.assert_outcomes(passed=2, errors=2)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("os.path:sep", "os.path:sep is not a function or class"),
        ("os.path:", "expected 'module' or 'module:name'"),
    ],
)
def test_allow_rule_must_name_function(
    pytester: pytest.Pytester, rule: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\nctxleak_allow = {rule}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: invalid allow rule*{message}*"])


def test_allow_rule_import_error_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        broken_helpers="import no_such_dependency_here\n\ndef keep(): pass\n"
    )
    pytester.makeini("[pytest]\npythonpath = .\nctxleak_allow = broken_helpers:keep\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid allow rule 'broken_helpers:keep'*importing 'broken_helpers' failed: ModuleNotFoundError*"
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_allow_rule_matches_deep_stack(pytester: pytest.Pytester) -> None:
    levels = "\n".join(
        f"def level_{n}(browser):\n    return level_{n + 1}(browser)\n"
        for n in range(10)
    )
    pytester.makepyfile(
        deep_helpers=f"def keep_alive(browser):\n    return level_0(browser)\n\n{levels}\n"
        "def level_10(browser):\n    return browser.new_context()\n"
    )
    pytester.makeini(
        "[pytest]\npythonpath = .\nctxleak_allow = deep_helpers:keep_alive\n"
    )
    pytester.makepyfile(
        test_deep="""
        import deep_helpers

        def test_kept(ctxleak_browser):
            deep_helpers.keep_alive(ctxleak_browser)

        def test_after(ctxleak_browser):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 0
    assert "ctxleak:" not in result.stdout.str()


def test_async_leak_reported_once_with_user_frames(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_async_once="""
        import pytest

        pytestmark = pytest.mark.asyncio(loop_scope="session")

        async def test_leaks(ctxleak_async_browser):
            await ctxleak_async_browser.new_context()

        async def test_after(ctxleak_async_browser):
            assert ctxleak_async_browser.contexts == []
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    output = result.stdout.str()
    assert "ctxleak: 1 finding in 1 test" in output
    assert "pytest_asyncio" not in output
    assert "left open by earlier tests" not in output
    result.stdout.fnmatch_lines(["*reclaimed: closed"])


def test_cap_counts_contexts_outside_pool(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_outside_cap="""
        import pytest

        @pytest.mark.ctxleak(max_contexts=1)
        def test_two_direct(ctxleak_browser):
            first = ctxleak_browser.new_context()
            second = ctxleak_browser.new_context()
            first.close()
            second.close()

        @pytest.mark.ctxleak(max_contexts=1)
        def test_one_direct_and_pool(ctxleak_browser, context_pool):
            context = ctxleak_browser.new_context()
            context.close()
            with context_pool.acquire():
                pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_two_direct*",
            "ctxleak: the test held 2 contexts at once, above the cap of 1; the context "
            "creation that reached the peak was at test_outside_cap.py:6 in test_two_direct",
            "*counted in: contexts made outside any pool",
        ]
    )


def test_browser_new_page_counts_against_cap(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_new_page_cap="""
        import pytest

        @pytest.mark.ctxleak(max_contexts=2)
        def test_three_pages(ctxleak_browser):
            pages = []
            for _ in range(3):
                pages.append(ctxleak_browser.new_page())
            for page in pages:
                page.close()

        @pytest.mark.ctxleak(max_contexts=2)
        def test_two_pages_one_at_a_time(ctxleak_browser):
            for _ in range(3):
                ctxleak_browser.new_page().close()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_three_pages*",
            "ctxleak: the test held 3 contexts at once, above the cap of 2; the "
            "context creation that reached the peak was at "
            "test_new_page_cap.py:7 in test_three_pages",
        ]
    )


def test_browser_new_page_left_open_reported_as_page(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_new_page_leak="""
        def test_leaks(ctxleak_browser):
            ctxleak_browser.new_page()

        def test_next_starts_clean(ctxleak_browser):
            assert ctxleak_browser.contexts == []
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a page was left open; opened at test_new_page_leak.py:2 in "
            "test_leaks",
            "*reclaimed: closed",
        ]
    )
    assert "a context was left open" not in result.stdout.str()


def test_page_left_in_shared_pool_context_caught(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session", autouse=True)
        def session_lease(context_pool):
            with context_pool.acquire() as lease:
                yield lease
        """
    )
    pytester.makepyfile(
        test_shared="""
        def test_a_opens_page(pooled_context):
            page = pooled_context.new_page()
            page.set_content("<p>left by test_a</p>")

        def test_b_starts_without_pages(pooled_context):
            assert pooled_context.pages == []
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_a_opens_page*",
            "ctxleak: a page was left open; opened at test_shared.py:2 in "
            "test_a_opens_page",
            "*reclaimed: closed",
        ]
    )


def test_page_opened_after_release_caught(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_after_release="""
        def test_a_keeps_context(context_pool):
            with context_pool.acquire() as lease:
                context = lease.context
            context.new_page()

        def test_b_gets_context_without_pages(context_pool):
            with context_pool.acquire() as lease:
                assert lease.context.pages == []
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_a_keeps_context*",
            "ctxleak: a page was left open; opened at test_after_release.py:4 in "
            "test_a_keeps_context",
        ]
    )


# A test file whose first test starts a thread that launches a browser once the
# second test lets it. The last test stops the thread.
THREAD_STARTER = """
        import threading

        from playwright.sync_api import sync_playwright

        state = {"go": threading.Event(), "made": threading.Event(),
                 "stop": threading.Event(), "attempts": 0}

        def test_a_starts_thread(ctxleak_launch_options):
            def work():
                state["go"].wait(30)
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(**ctxleak_launch_options)
                    state["made"].set()
                    state["stop"].wait(30)
                    browser.close()

            state["thread"] = threading.Thread(target=work, daemon=True)
            state["thread"].start()
"""
THREAD_STOPPER = """
        def test_c_stops_thread():
            state["stop"].set()
            state["thread"].join(30)
"""


@pytest.mark.parametrize(
    "extra", [(), ("-p", "xdist", "-n", "1")], ids=["one process", "xdist"]
)
def test_thread_leak_blamed_on_starting_test(
    pytester: pytest.Pytester, extra: tuple[str, ...]
) -> None:
    """Under xdist too, the run fails: the controller reads the late leak's record."""
    pytester.makepyfile(
        test_thread=THREAD_STARTER
        + """
        def test_b_waits_only():
            state["go"].set()
            assert state["made"].wait(30)
        """
        + THREAD_STOPPER
    )
    result = run(pytester, "-rA", *extra)
    assert result.ret == 1
    result.assert_outcomes(passed=3)
    output = result.stdout.str()
    assert "ERROR at teardown" not in output
    assert "started; it is the previous holder's leak" not in output
    result.stdout.fnmatch_lines(
        ["the run fails: 1 object made for a test after it ended, listed above"]
    )
    result.stdout.fnmatch_lines(
        [
            "*a browser* created at test_thread.py:12 in work for test "
            "test_thread.py::test_a_starts_thread, after that test ended, was still "
            "open when test_thread.py::test_b_waits_only ended; it is the earlier "
            "test's leak*"
        ]
    )


def test_thread_leak_kept_across_rerun(pytester: pytest.Pytester) -> None:
    """A rerun of the test that found a late leak does not drop it: the run fails."""
    pytester.makepyfile(
        test_thread_rerun=THREAD_STARTER
        + """
        def test_b_fails_once():
            state["go"].set()
            assert state["made"].wait(30)
            state["attempts"] += 1
            assert state["attempts"] > 1
        """
        + THREAD_STOPPER
    )
    result = run(pytester, "-p", "rerunfailures", "--reruns=1", "-rA")
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3
    assert outcomes.get("rerun") == 1
    result.stdout.fnmatch_lines(
        ["the run fails: 1 object made for a test after it ended, listed above"]
    )


def test_task_leak_blamed_on_spawning_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = session\n")
    pytester.makepyfile(
        test_task="""
        import asyncio

        import pytest

        pytestmark = pytest.mark.asyncio(loop_scope="session")
        state = {}

        async def test_a_spawns_task(ctxleak_async_browser):
            async def later():
                await asyncio.sleep(0.2)
                state["context"] = await ctxleak_async_browser.new_context()

            state["task"] = asyncio.get_running_loop().create_task(later())

        async def test_b_waits_only():
            await state["task"]
        """
    )
    result = run(pytester, "-rA")
    assert result.ret == 1
    result.assert_outcomes(passed=2)
    assert "ERROR at teardown" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["the run fails: 1 object made for a test after it ended, listed above"]
    )
    result.stdout.fnmatch_lines(
        [
            "*a context created at test_task.py:11 in later for test "
            "test_task.py::test_a_spawns_task, after that test ended, was still open "
            "when test_task.py::test_b_waits_only ended; it is the earlier test's "
            "leak (reclaimed: closed)*"
        ]
    )
