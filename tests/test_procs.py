"""Browser processes, memory limits, soak mode and the end-of-session report, driven
through real pytest runs with pytester against real Chromium.

Inner runs that need a browser run in a subprocess: Playwright's sync API allows one
instance per thread, and the outer run may already have one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import psutil
import pytest

pytest_plugins = ["pytester"]

# Writes each test's figures to figures.json in the inner run's folder.
FIGURES_CONFTEST = """
import json
import pathlib

import pytest

from pytest_ctxleak.figures import figures_of

FIGURES = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "teardown":
        FIGURES[item.name] = dict(figures_of(item))
        pathlib.Path("figures.json").write_text(json.dumps(FIGURES))
    return report
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", "-p", "no:playwright", *args)


def figures(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    text = (pytester.path / "figures.json").read_text(encoding="utf-8")
    loaded: dict[str, dict[str, object]] = json.loads(text)
    return loaded


def test_ten_leaked_pages_fail_renderer_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pages="""
        import pytest

        @pytest.mark.ctxleak(max_renderers=3)
        def test_ten_pages(ctxleak_browser):
            context = ctxleak_browser.new_context()
            pages = [context.new_page() for _ in range(10)]
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=1, errors=1)
    found = re.search(
        r"ctxleak: the browsers had (\d+) renderer processes at the end of the test, "
        r"above the limit of 3 \(max_renderers\)",
        result.stdout.str(),
    )
    assert found is not None, result.stdout.str()
    assert int(found.group(1)) >= 10
    result.stdout.fnmatch_lines(["*processes by type: 1 browser, * renderer, *"])


def test_renderer_limit_passes_below_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_one_page="""
        import pytest

        @pytest.mark.ctxleak(max_renderers=8)
        def test_one_page(ctxleak_browser):
            context = ctxleak_browser.new_context()
            context.new_page()
            context.close()
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    assert "max_renderers" not in result.stdout.str()


def test_marker_limit_overrides_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_order="""
        import pytest

        @pytest.fixture(scope="module")
        def context(ctxleak_browser):
            context = ctxleak_browser.new_context()
            yield context
            context.close()

        @pytest.mark.ctxleak(max_renderers=50)
        def test_marker_wins(context):
            page = context.new_page()
            page.close()

        def test_command_line_applies(context):
            page = context.new_page()
            page.close()
        """
    )
    result = run(pytester, "--ctxleak-max-renderers=0")
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_command_line_applies*",
            "ctxleak: the browsers had * renderer processes at the end of the test, "
            "above the limit of 0 (max_renderers)",
        ]
    )
    assert "ERROR at teardown of test_marker_wins" not in result.stdout.str()


def test_max_memory_fails_with_sizes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_memory="""
        import pytest

        @pytest.mark.ctxleak(max_memory="1 MB")
        def test_small_budget(ctxleak_browser):
            context = ctxleak_browser.new_context()
            context.new_page()
            context.close()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: the browsers used * MiB (summed PSS) at the end of the test, "
            "above the limit of 976.6 KiB (max_memory)",
        ]
    )


def test_ini_memory_growth_limit_fails(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        ctxleak_max_memory_growth = 1 MiB
        """
    )
    pytester.makepyfile(
        test_growth="""
        import pytest

        @pytest.fixture(scope="module")
        def context(ctxleak_browser):
            context = ctxleak_browser.new_context()
            yield context
            context.close()

        @pytest.mark.ctxleak(allow=["test_growth:open_pages"])
        def test_grows(context):
            open_pages(context)

        def open_pages(context):
            for _ in range(5):
                context.new_page().goto("about:blank")
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "ctxleak: the browsers' memory grew by * MiB (summed PSS, from * to *) "
            "during the test, above the limit of 1.0 MiB (max_memory_growth)",
        ]
    )


def test_figures_count_processes_by_default(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FIGURES_CONFTEST)
    pytester.makepyfile(
        test_figures="""
        def test_first(ctxleak_browser):
            context = ctxleak_browser.new_context()
            context.new_page()
            context.close()

        def test_second(ctxleak_browser):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 0
    recorded = figures(pytester)
    second = recorded["test_second"]
    assert second["processes_before"]["browser"] == 1  # type: ignore[index]
    assert second["processes_after"]["browser"] == 1  # type: ignore[index]
    assert set(second["processes_after"]) == {  # type: ignore[arg-type]
        "browser",
        "renderer",
        "gpu",
        "utility",
        "other",
    }
    assert "pss_before" not in second
    # The browser was launched during the first test's setup: its baseline is
    # taken right after the launch.
    assert recorded["test_first"]["processes_before"]["browser"] == 1  # type: ignore[index]


def test_persistent_context_tree_found(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FIGURES_CONFTEST)
    pytester.makepyfile(
        test_persistent="""
        import pytest

        @pytest.fixture(scope="module")
        def persistent(ctxleak_playwright, ctxleak_launch_options, tmp_path_factory):
            folder = tmp_path_factory.mktemp("profile")
            context = ctxleak_playwright.chromium.launch_persistent_context(
                str(folder), **ctxleak_launch_options
            )
            yield context
            context.close()

        def test_first(persistent):
            persistent.pages[0].goto("about:blank")

        def test_second(persistent):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 0, result.stdout.str()
    second = figures(pytester)["test_second"]
    assert second["processes_before"]["browser"] == 1  # type: ignore[index]
    assert second["processes_after"]["browser"] == 1  # type: ignore[index]
    assert second["processes_after"]["renderer"] >= 1  # type: ignore[index]


def test_figures_sum_pss_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FIGURES_CONFTEST)
    pytester.makepyfile(
        test_figures="""
        def test_page(ctxleak_browser):
            context = ctxleak_browser.new_context()
            context.new_page()
            context.close()
        """
    )
    result = run(pytester, "--ctxleak-measure=memory")
    assert result.ret == 0
    page = figures(pytester)["test_page"]
    assert isinstance(page["pss_before"], int)
    assert isinstance(page["pss_after"], int)
    assert page["pss_before"] > 10 * 1024**2
    assert page["pss_after"] > 10 * 1024**2


def test_measure_off_records_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FIGURES_CONFTEST)
    pytester.makepyfile(
        test_figures="""
        def test_page(ctxleak_browser):
            ctxleak_browser.new_page().close()
        """
    )
    result = run(pytester, "--ctxleak-measure=off")
    assert result.ret == 0
    assert "processes_after" not in figures(pytester)["test_page"]


def test_soak_leaking_page_fails_with_slope(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_soak="""
        import pytest

        @pytest.fixture(scope="module")
        def context(ctxleak_browser):
            context = ctxleak_browser.new_context()
            yield context
            context.close()

        @pytest.mark.ctxleak(repeat=9)
        def test_leaks_a_page(context):
            context.new_page()
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(passed=1, errors=1)
    text = result.stdout.str()
    found = re.search(
        r"ctxleak: soak: open pages grew by ([\d.]+) per repetition over repetitions "
        r"4 to 9, above the limit of 0.50.*; warm-up level (\d+) after 3 repetitions",
        text,
    )
    assert found is not None, text
    assert float(found.group(1)) > 0.5
    assert found.group(2) == "3"
    # The soak finding comes first; the per-test check still reports the pages.
    first = text.index("ctxleak: soak:")
    assert first < text.index("ctxleak: 9 pages were left open")


def test_soak_context_list_leak_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_contexts="""
        import pytest

        KEPT = []

        @pytest.fixture(scope="module")
        def kept():
            yield KEPT
            for context in KEPT:
                context.close()

        @pytest.mark.ctxleak(repeat=6, soak_warmup=1, allow=["test_contexts:keep"])
        def test_keeps_contexts(ctxleak_browser, kept):
            keep(ctxleak_browser, kept)

        def keep(browser, kept):
            kept.append(browser.new_context())
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "ctxleak: soak: open contexts grew by 1.00 per repetition over "
            "repetitions 2 to 6, above the limit of 0.50*; warm-up level 1 after 1 "
            "repetition",
        ]
    )


def test_soak_cache_warmed_once_passes(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FIGURES_CONFTEST)
    pytester.makepyfile(
        test_cache="""
        import pytest

        CACHE = []

        def cached_context(browser):
            if not CACHE:
                CACHE.append(browser.new_context())
            return CACHE[0]

        @pytest.fixture(scope="module")
        def cache():
            yield CACHE
            for context in CACHE:
                context.close()

        @pytest.mark.ctxleak(repeat=12, allow=["test_cache:cached_context"])
        def test_reuses_context(ctxleak_browser, cache):
            page = cached_context(ctxleak_browser).new_page()
            page.goto("about:blank")
            page.close()
        """
    )
    result = run(pytester)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    soak = figures(pytester)["test_reuses_context"]["soak"]
    assert soak["done"] == 12  # type: ignore[index]
    assert soak["series"]["contexts"][-1] == 1  # type: ignore[index]
    assert soak["slopes"]["contexts"] == 0.0  # type: ignore[index]


def test_repeat_option_runs_function_n_times(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_count="""
        import pytest

        CALLS = []
        SETUPS = []

        @pytest.fixture
        def counted():
            SETUPS.append(1)
            return CALLS

        def test_counted(counted):
            counted.append(1)

        def test_totals():
            assert (len(CALLS), len(SETUPS)) == (5, 1)
        """
    )
    result = run(pytester, "--ctxleak-repeat=5")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)


def test_async_soak_leaking_pages_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_async_soak="""
        import pytest

        @pytest.mark.asyncio(loop_scope="session")
        @pytest.mark.ctxleak(repeat=6, soak_warmup=1)
        async def test_leaks_page(ctxleak_async_browser):
            await ctxleak_async_browser.new_page()
        """
    )
    result = run(pytester, "-p", "asyncio")
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=1, errors=1)
    # Browser.new_page makes a context for each page, so both series grow.
    result.stdout.fnmatch_lines(
        [
            "ctxleak: soak: open contexts grew by 1.00 per repetition over "
            "repetitions 2 to 6, above the limit of 0.50*",
            "  open pages: 1.00 per repetition*",
        ]
    )


def test_soak_failing_repetition_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_third="""
        import pytest

        CALLS = []

        @pytest.mark.ctxleak(repeat=6)
        def test_fails_third_time():
            CALLS.append(1)
            assert len(CALLS) < 3
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*soak repetition 3 of 6 raised*"])
    assert "ctxleak: soak:" not in result.stdout.str()


def test_browser_left_running_reported(pytester: pytest.Pytester) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs a chromium executable on PATH")
    profile = pytester.path / "profile"
    pytester.makepyfile(
        test_left=f"""
        import pathlib
        import subprocess

        def test_starts_browser():
            process = subprocess.Popen(
                [
                    {chromium!r},
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--user-data-dir={profile}",
                    "--proxy-server=http://scraper:hunter2@127.0.0.1:9",
                    "about:blank?token=s3cr3t",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            pathlib.Path("browser.pid").write_text(str(process.pid))
        """
    )
    result = run(pytester)
    pid = int((pytester.path / "browser.pid").read_text())
    try:
        assert result.ret == 0
        result.stdout.fnmatch_lines(
            [
                "*ctxleak: 1 browser still running at the end of the session*",
                f"pid {pid} (running): *--proxy-server=http://***@127.0.0.1:9*",
            ]
        )
        text = result.stdout.str()
        assert "hunter2" not in text
        assert "s3cr3t" not in text
    finally:
        _stop_own_browser(pid, profile)


def _stop_own_browser(pid: int, profile: Path) -> None:
    """Kill the browser this test started, found by its pid and profile folder."""
    try:
        process = psutil.Process(pid)
        if f"--user-data-dir={profile}" in process.cmdline():
            process.kill()
            process.wait(10)
    except psutil.NoSuchProcess:
        pass


def test_defunct_child_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_zombie="""
        import subprocess
        import time

        KEPT = []

        def test_never_waits():
            process = subprocess.Popen(["true", "--password=hunter2"])
            KEPT.append(process)  # never waited for, so it stays defunct
            time.sleep(0.5)
        """
    )
    result = run(pytester)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*ctxleak: 1 defunct child process at the end of the session*",
            "pid * (defunct): [[]true[]]",
        ]
    )


def test_clean_session_reports_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_clean="""
        def test_page(ctxleak_browser):
            ctxleak_browser.new_page().close()
        """
    )
    result = run(pytester)
    assert result.ret == 0
    assert "at the end of the session" not in result.stdout.str()


def test_remote_browser_not_measured(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FIGURES_CONFTEST)
    pytester.makepyfile(
        test_remote="""
        import socket

        import pytest

        def free_port():
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                return probe.getsockname()[1]

        @pytest.fixture(scope="module")
        def remote(ctxleak_playwright, ctxleak_launch_options):
            port = free_port()
            options = dict(ctxleak_launch_options)
            options["args"] = [
                *options["args"],
                f"--remote-debugging-port={port}",
                "--remote-debugging-address=127.0.0.1",
            ]
            local = ctxleak_playwright.chromium.launch(**options)
            remote = ctxleak_playwright.chromium.connect_over_cdp(
                f"http://127.0.0.1:{port}"
            )
            yield remote
            remote.close()
            local.close()

        def test_uses_remote(remote):
            assert remote.is_connected()
        """
    )
    result = run(pytester, "--log-level=INFO", "-rA")
    assert result.ret == 0, result.stdout.str()
    recorded = figures(pytester)["test_uses_remote"]
    assert recorded["unmeasured_browsers"] == 1
    assert recorded["processes_after"]["browser"] == 1  # type: ignore[index]
    result.stdout.fnmatch_lines(
        ["*the browser reached through connect_over_cdp runs elsewhere*"]
    )


def test_remote_only_browser_still_counted(pytester: pytest.Pytester) -> None:
    """A first test whose only browser runs outside Playwright gets the figure too."""
    pytester.makeconftest(FIGURES_CONFTEST)
    pytester.makepyfile(
        test_remote_only="""
        import socket
        import subprocess
        import time

        import pytest

        def free_port():
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                return probe.getsockname()[1]

        @pytest.fixture
        def remote(ctxleak_playwright, ctxleak_launch_options, tmp_path):
            port = free_port()
            executable = ctxleak_launch_options.get("executable_path")
            executable = executable or ctxleak_playwright.chromium.executable_path
            command = [
                executable,
                "--headless",
                "--no-sandbox",  # Playwright adds it too: the tests may run as root
                f"--remote-debugging-port={port}",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={tmp_path}",
                *ctxleak_launch_options["args"],
                "about:blank",
            ]
            process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the browser never listened"
                    time.sleep(0.2)
            browser = ctxleak_playwright.chromium.connect_over_cdp(
                f"http://127.0.0.1:{port}"
            )
            yield browser
            browser.close()
            process.terminate()
            process.wait(30)

        def test_uses_remote_only(remote):
            assert remote.is_connected()
        """
    )
    result = run(pytester, "-rA")
    assert result.ret == 0, result.stdout.str()
    recorded = figures(pytester)["test_uses_remote_only"]
    assert recorded["unmeasured_browsers"] == 1


@pytest.mark.parametrize(
    ("args", "ini", "marker", "expected"),
    [
        (
            (),
            "ctxleak_max_memory = lots",
            "",
            "ERROR: invalid max_memory 'lots' from ini setting ctxleak_max_memory in "
            "*: expected a size such as '300 MB', '512MiB', '1.5GiB' or '300M' *",
        ),
        (
            ("--ctxleak-max-memory-growth=12 XB",),
            "",
            "",
            "ERROR: invalid max_memory_growth '12 XB' from command line option "
            "--ctxleak-max-memory-growth: expected a size such as *",
        ),
        (
            (),
            "",
            "max_renderers='3'",
            "ERROR: invalid max_renderers '3' from @pytest.mark.ctxleak on "
            "test_bad.py::test_x: expected an int",
        ),
        (
            (),
            "",
            "max_memory=-5",
            "ERROR: invalid max_memory -5 from @pytest.mark.ctxleak on "
            "test_bad.py::test_x: expected a size such as *",
        ),
        (
            ("--ctxleak-repeat=0",),
            "",
            "",
            "ERROR: invalid repeat '0' from command line option --ctxleak-repeat: "
            "expected a whole number of at least 1",
        ),
        (
            (),
            "",
            "repeat=4, soak_warmup=2",
            "ERROR: invalid soak from @pytest.mark.ctxleak on test_bad.py::test_x: "
            "repeat=4 with soak_warmup=2 leaves 2 repetitions to fit a slope on; *",
        ),
        (
            ("--ctxleak-soak-warmup=4",),
            "",
            "repeat=6",
            "ERROR: invalid soak from @pytest.mark.ctxleak on test_bad.py::test_x: "
            "repeat=6 with soak_warmup=4 leaves 2 repetitions to fit a slope on; *",
        ),
        (
            ("--ctxleak-measure=everything",),
            "",
            "",
            "ERROR: invalid measure 'everything' from command line option "
            "--ctxleak-measure: expected one of off, processes, memory",
        ),
        (
            (),
            "ctxleak_soak_max_slope = -1",
            "",
            "ERROR: invalid soak_max_slope '-1' from ini setting "
            "ctxleak_soak_max_slope in *: expected a number of at least 0",
        ),
    ],
)
def test_bad_limit_is_usage_error(
    pytester: pytest.Pytester,
    args: tuple[str, ...],
    ini: str,
    marker: str,
    expected: str,
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    decorator = f"@pytest.mark.ctxleak({marker})" if marker else ""
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        {decorator}
        def test_x():
            pass
        """
    )
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()
