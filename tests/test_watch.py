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
        def context(ctxleak_browser):
            context = ctxleak_browser.new_context()
            yield context
            context.close()

        def test_opens_popup(context):
            page = context.new_page()
            with page.expect_popup():
                page.evaluate("window.open('about:blank')")
            page.close()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a page was left open; opened by the page in the context created at test_popup.py:5 in context",
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
            "*ctxleak: leases outstanding when a test started*",
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
            "*reclaimed: close scheduled on its event loop",
        ]
    )
