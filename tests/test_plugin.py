"""The per-test check, driven through real pytest runs with pytester.

Inner runs that need a browser run in a subprocess: Playwright's sync API allows one
instance per thread, and the outer run may already have one.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree

import pytest

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", *args)


def test_unreleased_lease_fails_with_site(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leak="""
        def test_leaks(context_pool):
            lease = context_pool.acquire(locale="de-DE")

        def test_next_starts_clean(context_pool):
            assert context_pool.ledger.outstanding() == []
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "ctxleak: lease #* of context #* (locale=de-DE) was never released; "
            "acquired at test_leak.py:2 in test_leaks",
            '*lease = context_pool.acquire(locale="de-DE")',
            "*held by test test_leak.py::test_leaks",
            "*reclaimed: released; context #* reset",
        ]
    )


def test_release_skipped_by_exception_caught(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_skip="""
        import pytest

        def scrape(pool):
            lease = pool.acquire()
            raise ValueError("price missing")
            lease.release()

        def test_scrape_error_handled(context_pool):
            with pytest.raises(ValueError):
                scrape(context_pool)
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: lease #* was never released; acquired at test_skip.py:4 in scrape",
            "*test_skip.py:10 in test_scrape_error_handled",
        ]
    )


def test_over_cap_peak_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cap="""
        import pytest

        @pytest.mark.ctxleak(max_contexts=1)
        def test_two_at_once(context_pool):
            with context_pool.acquire(locale="de-DE"):
                with context_pool.acquire(locale="fr-FR"):
                    pass
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: the test held 2 contexts at once, above the cap of 1; the "
            "acquire that reached the peak was at test_cap.py:6 in test_two_at_once",
        ]
    )


def test_double_release_fails_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_double="""
        def test_twice(context_pool):
            lease = context_pool.acquire()
            lease.release()
            lease.release()
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*LeaseError: lease #* was released already at test_double.py:3 in "
            "test_twice; a lease can be released once",
        ]
    )


def test_exhausted_pool_names_holder(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_full="""
        def test_full(context_pool):
            with context_pool.acquire(locale="de-DE"):
                context_pool.acquire(locale="fr-FR")
        """
    )
    result = run(pytester, "--ctxleak-max-contexts=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*PoolExhaustedError: pool exhausted: all 1 contexts are in use*",
            "E*lease #* of context #* (locale=de-DE) held by test test_full.py::"
            "test_full, acquired at test_full.py:2 in test_full",
        ]
    )


def test_module_fixture_lease_not_flagged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_module="""
        import pytest

        @pytest.fixture(scope="module")
        def shared(context_pool):
            with context_pool.acquire(locale="de-DE") as lease:
                yield lease

        def test_first(shared):
            assert shared.context

        def test_second(shared):
            assert shared.context
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)
    assert "ctxleak:" not in result.stdout.str()


def test_session_fixture_lease_not_flagged(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def shared(context_pool):
            lease = context_pool.acquire()
            yield lease
            lease.release()
        """
    )
    pytester.makepyfile(
        test_a="def test_a(shared): pass",
        test_b="def test_b(shared): pass",
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)


def test_module_fixture_leak_judged_at_finalization(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixture_leak="""
        import pytest

        @pytest.fixture(scope="module")
        def held(context_pool):
            return context_pool.acquire(locale="de-DE")

        def test_first(held):
            pass

        def test_last(held):
            pass
        """
    )
    result = run(pytester, "-rE")
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_last*",
            "ctxleak: lease #* (locale=de-DE) was never released by module-scoped "
            "fixture 'held'; acquired at test_fixture_leak.py:5 in held",
            "*held by module-scoped fixture 'held'",
        ]
    )
    assert "ERROR at teardown of test_first" not in result.stdout.str()


def test_function_fixture_leak_blamed_on_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_function_fixture="""
        import pytest

        @pytest.fixture
        def leaky(context_pool):
            return context_pool.acquire()

        def test_uses(leaky):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_uses*",
            "*held by function-scoped fixture 'leaky'",
        ]
    )


def test_failed_test_that_released_not_flagged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_failing="""
        def test_fails(context_pool):
            with context_pool.acquire():
                assert False, "scraped the wrong price"
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "ctxleak:" not in result.stdout.str()


def test_failed_test_that_leaked_still_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_failing_leak="""
        def test_fails(context_pool):
            context_pool.acquire()
            assert False, "scraped the wrong price"
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*scraped the wrong price*",
            "*- ctxleak -*",
            "ctxleak: lease #* was never released*",
        ]
    )


def test_exitfirst_stops_after_leak(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stop="""
        def test_leaks(context_pool):
            context_pool.acquire()

        def test_never_runs():
            pass
        """
    )
    result = run(pytester, "-x")
    assert result.ret == 1
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_maxfail_counts_leaks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_maxfail="""
        def test_one(context_pool):
            context_pool.acquire()

        def test_two(context_pool):
            context_pool.acquire()

        def test_three():
            pass
        """
    )
    result = run(pytester, "--maxfail=2")
    result.assert_outcomes(passed=2, errors=2)
    assert "test_three" not in result.stdout.str()


def test_junit_records_leak_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_junit="""
        def test_leaks(context_pool):
            context_pool.acquire(locale="de-DE")
        """
    )
    result = run(pytester, "--junitxml=report.xml")
    assert result.ret == 1
    tree = ElementTree.parse(pytester.path / "report.xml")
    errors = tree.findall(".//testcase/error")
    assert len(errors) == 1
    message = errors[0].get("message", "")
    assert message.startswith('failed on teardown with "ctxleak: lease #')
    assert "acquired at test_junit.py:2 in test_leaks" in message
    assert "reclaimed" in (errors[0].text or "")


def test_warn_mode_warns_without_failing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_warn="""
        def test_leaks(context_pool):
            context_pool.acquire()
        """
    )
    result = run(pytester, "--ctxleak-mode=warn")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*CtxleakWarning: ctxleak: lease #* was never released*"]
    )


def test_off_mode_skips_check(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nctxleak_mode = off\n")
    pytester.makepyfile(
        test_off="""
        def test_leaks(context_pool):
            context_pool.acquire()
        """
    )
    result = run(pytester)
    assert result.ret == 0
    assert "ctxleak:" not in result.stdout.str()


def test_marker_check_false_skips_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker_off="""
        import pytest

        @pytest.mark.ctxleak(check=False)
        def test_leaks_on_purpose(context_pool):
            context_pool.acquire()

        def test_after(context_pool):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*ctxleak: left open by earlier tests*",
            "lease #* held by test test_marker_off.py::test_leaks_on_purpose, acquired "
            "at test_marker_off.py:5 in test_leaks_on_purpose was already outstanding "
            "when test_marker_off.py::test_after started*",
        ]
    )


def test_warning_as_error_fails_test_not_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_strict_warn="""
        def test_leaks(context_pool):
            context_pool.acquire()
        """
    )
    result = run(
        pytester,
        "--ctxleak-mode=warn",
        "-W",
        "error::pytest_ctxleak.plugin.CtxleakWarning",
    )
    assert result.ret == 1
    result.assert_outcomes(passed=1, errors=1)
    assert "INTERNALERROR" not in result.stdout.str()


def test_pooled_page_uses_marker_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_page="""
        import pytest

        @pytest.mark.ctxleak(context_options={"locale": "de-DE"})
        def test_locale(pooled_page):
            assert pooled_page.evaluate("navigator.language") == "de-DE"

        def test_page_closed_after_test(context_pool):
            for entry in context_pool.ledger.entries():
                assert entry.refcount == 0
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)


def test_context_options_fixture_overridable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_override="""
        import pytest

        @pytest.fixture
        def ctxleak_context_options():
            return {"locale": "fr-FR"}

        def test_locale(pooled_page):
            assert pooled_page.evaluate("navigator.language") == "fr-FR"
        """
    )
    result = run(pytester)
    assert result.ret == 0


def test_user_pool_over_configured_cap_flagged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user_pool="""
        from pytest_ctxleak import ContextPool

        def test_wide_pool(ctxleak_browser):
            with ContextPool(ctxleak_browser, max_contexts=5) as pool:
                leases = [pool.acquire(locale=name) for name in ("de", "fr", "it")]
                for lease in leases:
                    lease.release()
        """
    )
    result = run(pytester, "--ctxleak-max-contexts=2")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["ctxleak: the test held 3 contexts at once, above the cap of 2*"]
    )


# -- configuration errors: no browser needed, so these run in-process -------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ctxleak-mode=loud"],
            "ERROR: invalid mode 'loud' from command line option --ctxleak-mode: "
            "expected one of fail, warn, off",
        ),
        (
            ["--ctxleak-max-contexts=0"],
            "ERROR: invalid max_contexts '0' from command line option "
            "--ctxleak-max-contexts: expected a whole number of at least 1",
        ),
        (
            ["--ctxleak-max-contexts=many"],
            "ERROR: invalid max_contexts 'many' from command line option "
            "--ctxleak-max-contexts: expected a whole number of at least 1",
        ),
        (
            ["--ctxleak-acquire-timeout=-1"],
            "ERROR: invalid acquire_timeout '-1' from command line option "
            "--ctxleak-acquire-timeout: expected a positive number of seconds",
        ),
        (
            ["--ctxleak-close-timeout=inf"],
            "ERROR: invalid close_timeout 'inf' from command line option "
            "--ctxleak-close-timeout: expected a positive number of seconds",
        ),
        (
            ["--ctxleak-browser-path=/nonexistent/chrome"],
            "ERROR: invalid browser path '/nonexistent/chrome' from command line "
            "option --ctxleak-browser-path: no such file*",
        ),
    ],
)
def test_invalid_option_is_usage_error(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("-p", "ctxleak", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_invalid_ini_names_file(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\nctxleak_max_contexts = lots\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("-p", "ctxleak")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: invalid max_contexts 'lots' from ini setting ctxleak_max_contexts in {ini}*"
        ]
    )


def test_invalid_headed_ini_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nctxleak_headed = sometimes\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("-p", "ctxleak")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: invalid headed 'sometimes' from ini*true or false"]
    )


def test_invalid_env_browser_path_names_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTXLEAK_BROWSER_PATH", "/nonexistent/chromium")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("-p", "ctxleak")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid browser path '/nonexistent/chromium' from environment "
            "variable CTXLEAK_BROWSER_PATH: no such file*"
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "ctxleak(max_context=2)",
            "ERROR: unknown argument 'max_context' from @pytest.mark.ctxleak on "
            "test_marked.py::test_marked: expected one of max_contexts, check, mode, "
            "context_options, allow, max_memory, max_memory_growth, max_renderers, "
            "repeat, soak_warmup, soak_max_slope, soak_max_memory_slope",
        ),
        (
            "ctxleak(2)",
            "ERROR: invalid arguments (2,) from @pytest.mark.ctxleak on "
            "test_marked.py::test_marked: the marker takes keyword arguments only*",
        ),
        (
            "ctxleak(max_contexts=0)",
            "ERROR: invalid max_contexts 0 from @pytest.mark.ctxleak on "
            "test_marked.py::test_marked: expected a whole number of at least 1",
        ),
        (
            "ctxleak(max_contexts='2')",
            "ERROR: invalid max_contexts '2' from @pytest.mark.ctxleak on "
            "test_marked.py::test_marked: expected an int",
        ),
        (
            "ctxleak(check='no')",
            "ERROR: invalid check 'no' from @pytest.mark.ctxleak on "
            "test_marked.py::test_marked: expected True or False",
        ),
        (
            "ctxleak(mode='strict')",
            "ERROR: invalid mode 'strict' from @pytest.mark.ctxleak on "
            "test_marked.py::test_marked: expected one of fail, warn, off",
        ),
        (
            "ctxleak(context_options={'local': 'de-DE'})",
            "ERROR: invalid context_options from @pytest.mark.ctxleak on "
            "test_marked.py::test_marked: unknown context option 'local'; did you "
            "mean 'locale'?*",
        ),
    ],
)
def test_invalid_marker_is_usage_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        test_marked=f"""
        import pytest

        @pytest.mark.{marker}
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "ctxleak")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_disabled_with_no_ctxleak(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_uses_pool(context_pool): pass")
    result = pytester.runpytest_inprocess("-p", "no:ctxleak")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'context_pool' not found*"])


def test_loads_with_autoload_disabled(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.run(
        sys.executable, "-m", "pytest", "-p", "ctxleak", "--ctxleak-mode=warn"
    )
    assert result.ret == 0


def test_not_loaded_without_p_when_autoload_disabled(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.run(sys.executable, "-m", "pytest", "--ctxleak-mode=warn")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_help_lists_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("-p", "ctxleak", "--help")
    result.stdout.fnmatch_lines(
        [
            "*--ctxleak-max-contexts=*",
            "*--ctxleak-mode=*",
            "*--ctxleak-browser-path=*",
            "*ctxleak_max_contexts (string):*",
        ]
    )


# -- async tests -------------------------------------------------------------------


def test_async_fixtures_serve_async_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_async_ok="""
        import pytest

        pytestmark = pytest.mark.asyncio(loop_scope="session")

        @pytest.mark.ctxleak(context_options={"locale": "de-DE"})
        async def test_page(async_pooled_page):
            assert await async_pooled_page.evaluate("navigator.language") == "de-DE"

        async def test_pool(async_context_pool):
            async with async_context_pool.acquire() as lease:
                assert lease.context
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)


def test_async_leak_caught_and_reclaimed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_async_leak="""
        import pytest

        pytestmark = pytest.mark.asyncio(loop_scope="session")

        async def test_leaks(async_context_pool):
            await async_context_pool.acquire(locale="de-DE")

        async def test_next_starts_clean(async_context_pool):
            async with async_context_pool.acquire(locale="de-DE"):
                assert len(async_context_pool.ledger.outstanding()) == 1
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "ctxleak: lease #* of context #* (locale=de-DE) was never released; "
            "acquired at test_async_leak.py:6 in test_leaks",
            "*reclaimed: released; context #* reset",
        ]
    )


def test_sync_fixture_in_async_test_names_async_twin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mixed="""
        import pytest

        @pytest.mark.asyncio
        async def test_mixed(pooled_page):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*'pooled_lease' uses Playwright's sync API*use 'async_pooled_lease'*"]
    )


def test_sync_then_async_fixtures_explained(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_both="""
        import pytest

        def test_sync(pooled_page):
            pass

        @pytest.mark.asyncio(loop_scope="session")
        async def test_async(async_pooled_page):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ctxleak: the async fixtures cannot run in this process*separate pytest*"]
    )


# -- regressions from trying the product as a new user ------------------------------


def test_secrets_never_printed_for_invalid_options(pytester: pytest.Pytester) -> None:
    # The secret comes from a file, as in real suites, so no source line that pytest
    # prints contains it; only a leak through the plugin's messages could.
    pytester.path.joinpath("secret.txt").write_text("hunter2-SECRET")
    pytester.makepyfile(
        test_secret="""
        import pathlib

        SECRET = pathlib.Path(__file__).with_name("secret.txt").read_text()

        def test_bad_headers(context_pool):
            context_pool.acquire(
                extra_http_headers={"Authorization": "Bearer " + SECRET, "X": 1}
            )

        def test_bad_proxy(context_pool):
            context_pool.acquire(proxy="http://bob:" + SECRET + "@127.0.0.1:9")

        def test_bad_credentials(context_pool):
            context_pool.acquire(http_credentials="bob:" + SECRET)
        """
    )
    result = run(pytester, "--junitxml=report.xml", "-vv")
    result.assert_outcomes(failed=3)
    assert "hunter2" not in result.stdout.str()
    assert "hunter2" not in (pytester.path / "report.xml").read_text()


def test_cap_ignores_contexts_held_before_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cap_baseline="""
        import pytest

        @pytest.fixture(scope="module")
        def background(context_pool):
            with context_pool.acquire(locale="de-DE") as lease:
                yield lease

        def test_starts_background(background):
            pass

        @pytest.mark.ctxleak(max_contexts=1)
        def test_holds_one(context_pool):
            with context_pool.acquire(locale="fr-FR"):
                pass
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=2)


def test_marker_options_override_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_precedence="""
        import pytest

        @pytest.fixture
        def ctxleak_context_options():
            return {"locale": "fr-FR", "timezone_id": "Europe/Paris"}

        @pytest.mark.ctxleak(context_options={"locale": "de-DE"})
        def test_marker_wins(pooled_page):
            assert pooled_page.evaluate("navigator.language") == "de-DE"
            zone = pooled_page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
            assert zone == "Europe/Paris"
        """
    )
    result = run(pytester)
    assert result.ret == 0


def test_context_options_fixture_type_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_options_type="""
        import pytest

        @pytest.fixture
        def ctxleak_context_options():
            return "locale=de-DE"

        def test_page(pooled_page):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ctxleak: the ctxleak_context_options fixture returned str; it must return a dict*"
        ]
    )
    assert "pytest_ctxleak/" not in result.stdout.str()


def test_summary_lists_every_finding(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def session_leak(context_pool):
            return context_pool.acquire(locale="de-DE")
        """
    )
    pytester.makepyfile(
        test_summary="""
        import pytest

        @pytest.fixture(scope="module")
        def module_leak(context_pool):
            return context_pool.acquire(locale="fr-FR")

        def test_uses(session_leak, module_leak):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ctxleak: 2 findings in 1 test*",
            "test * leaked * at * reclaimed",
            "test_summary.py::test_uses * lease * test_summary.py:5 in module_leak "
            "* released; context #* reset",
            " * lease * conftest.py:5 in session_leak * released; context #* reset",
        ]
    )


def test_outstanding_lease_listed_once(pytester: pytest.Pytester) -> None:
    tests = "\n".join(f"def test_after_{n}(context_pool): pass" for n in range(5))
    pytester.makepyfile(
        test_once=f"""
import pytest

@pytest.mark.ctxleak(check=False)
def test_leaks_on_purpose(context_pool):
    context_pool.acquire()

{tests}
"""
    )
    result = run(pytester)
    assert result.ret == 0
    assert result.stdout.str().count("was already outstanding when") == 1


def test_fixture_teardown_lease_blamed_on_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_teardown_acquire="""
        import pytest

        @pytest.fixture(scope="module")
        def logout_on_teardown(context_pool):
            yield
            context_pool.acquire(locale="de-DE")

        def test_first(logout_on_teardown):
            pass

        def test_last(logout_on_teardown):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*held by module-scoped fixture 'logout_on_teardown'"])
    assert "held by test" not in result.stdout.str()


def test_many_leaks_from_one_line_grouped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_many="""
        def test_loop(context_pool):
            for _ in range(300):
                context_pool.acquire()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: 300 leases (#1, #2, #3, #4, #5, #6, #7, #8 and 292 more) were never released; acquired at test_many.py:3 in test_loop"
        ]
    )
    assert len(result.stdout.lines) < 60


def test_browser_path_directory_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess(
        "-p", "ctxleak", f"--ctxleak-browser-path={pytester.path}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*it is a directory; point it at the Chromium executable*"]
    )


def test_non_browser_executable_explained(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_page(pooled_page): pass")
    result = run(pytester, "--ctxleak-browser-path=/bin/true")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ctxleak: launching /bin/true failed: *. /bin/true exists and is "
            "executable but did not start as Chromium. Check that it is a Chromium "
            "or Chrome executable, for example by running '/bin/true --version'.*"
        ]
    )
    assert "pytest_ctxleak/" not in result.stdout.str()
    assert "playwright install" not in result.stdout.str()
    (message,) = [
        line
        for line in result.stdout.lines
        if line.startswith("ctxleak: launching /bin/true failed")
    ]
    assert ".." not in message


ANYIO_CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"
"""


def test_anyio_fixtures_serve_anyio_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ANYIO_CONFTEST)
    pytester.makepyfile(
        test_anyio_ok="""
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.mark.ctxleak(context_options={"locale": "de-DE"})
        async def test_page(async_pooled_page):
            assert await async_pooled_page.evaluate("navigator.language") == "de-DE"

        async def test_pool_reused(async_context_pool):
            async with async_context_pool.acquire(locale="de-DE") as lease:
                assert lease.context
            assert async_context_pool.open_contexts == 1
        """
    )
    result = run(pytester, "-p", "no:asyncio")
    assert result.ret == 0
    result.assert_outcomes(passed=2)


def test_anyio_leak_caught_and_reclaimed(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ANYIO_CONFTEST)
    pytester.makepyfile(
        test_anyio_leak="""
        import pytest

        pytestmark = pytest.mark.anyio

        async def test_leaks(async_context_pool):
            await async_context_pool.acquire(locale="de-DE")

        async def test_direct_leak(ctxleak_async_browser):
            await ctxleak_async_browser.new_context()

        async def test_next_starts_clean(async_context_pool):
            assert async_context_pool.ledger.outstanding() == []
        """
    )
    result = run(pytester, "-p", "no:asyncio")
    assert result.ret == 1
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "ctxleak: lease #* of context #* (locale=de-DE) was never released; "
            "acquired at test_anyio_leak.py:6 in test_leaks",
            "*held by test test_anyio_leak.py::test_leaks",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a context was left open; created at test_anyio_leak.py:9 in "
            "test_direct_leak",
        ]
    )


def test_anyio_module_fixture_lease_judged_at_finalization(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(ANYIO_CONFTEST)
    pytester.makepyfile(
        test_anyio_fixture="""
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.fixture(scope="module")
        async def shared(async_context_pool):
            async with async_context_pool.acquire(locale="de-DE") as lease:
                yield lease

        async def test_first(shared):
            assert shared.context

        async def test_second(shared):
            assert shared.context
        """
    )
    result = run(pytester, "-p", "no:asyncio")
    assert result.ret == 0
    result.assert_outcomes(passed=2)
