"""The check alongside other pytest plugins: xdist, randomly, timeout, rerunfailures.

pytest-playwright, pytest-asyncio and anyio have their own tests in
tests/test_watch.py and tests/test_plugin.py. Each run here is a real pytest
subprocess with the other plugin active.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid

import psutil
import pytest

pytest_plugins = ["pytester"]

LEAKY_AND_CLEAN = """
def test_leaks_first(context_pool):
    context_pool.acquire(locale="de-DE")

def test_clean_one(context_pool):
    with context_pool.acquire(locale="de-DE"):
        pass

def test_leaks_second(context_pool):
    context_pool.acquire(locale="fr-FR")

def test_clean_two(pooled_page):
    assert pooled_page.evaluate("1 + 1") == 2

def test_clean_three(context_pool):
    assert context_pool.open_contexts <= context_pool.max_contexts
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", *args)


def blamed_tests(result: pytest.RunResult) -> set[str]:
    """Return the tests whose teardown reported a leak."""
    # Each teardown error's block: its header, then the text up to the next header.
    blocks = re.split(r"_+ ERROR at teardown of (\w+) _+", result.stdout.str())
    return {
        name
        for name, text in zip(blocks[1::2], blocks[2::2], strict=True)
        if "ctxleak: lease #" in text
    }


def test_xdist_workers_report_own_leaks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spread=LEAKY_AND_CLEAN)
    result = run(pytester, "-p", "xdist", "-n", "2", "-rE")
    assert result.ret == 1
    result.assert_outcomes(passed=5, errors=2)
    assert blamed_tests(result) == {"test_leaks_first", "test_leaks_second"}
    assert "INTERNALERROR" not in result.stdout.str()


def test_random_order_blames_right_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS")  # tests/conftest.py turns randomly off
    pytester.makepyfile(test_shuffled=LEAKY_AND_CLEAN)
    for seed in ("1", "2", "3"):
        result = run(pytester, "-p", "randomly", f"--randomly-seed={seed}", "-rE")
        assert f"Using --randomly-seed={seed}" in result.stdout.str()
        result.assert_outcomes(passed=5, errors=2)
        blamed = blamed_tests(result)
        assert blamed == {"test_leaks_first", "test_leaks_second"}, seed


def test_timeout_in_test_reports_no_leak(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_slow="""
        import time

        import pytest

        @pytest.mark.timeout(300)
        def test_launches_browser(pooled_page):
            pass

        def test_times_out(context_pool):
            with context_pool.acquire(locale="de-DE") as lease:
                lease.new_page()
                time.sleep(60)

        def test_page_times_out(pooled_page):
            time.sleep(60)

        def test_next_starts_clean(context_pool):
            assert context_pool.ledger.outstanding() == []
            context_pool.ledger.check_invariants()
        """
    )
    result = run(pytester, "-p", "timeout", "--timeout=5", "--timeout-method=signal")
    result.assert_outcomes(failed=2, passed=2)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>5.0s) from pytest-timeout*"])
    assert "ctxleak:" not in result.stdout.str()


def test_timeout_in_teardown_does_not_hang(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_slow_teardown="""
        import time

        import pytest

        @pytest.fixture
        def slow_cleanup(context_pool):
            lease = context_pool.acquire(locale="de-DE")
            yield lease
            time.sleep(60)
            lease.release()

        @pytest.mark.timeout(300)
        def test_launches_browser(pooled_page):
            pass

        def test_uses_slow_cleanup(slow_cleanup):
            pass

        def test_next_starts_clean(context_pool):
            assert context_pool.ledger.outstanding() == []
        """
    )
    result = run(pytester, "-p", "timeout", "--timeout=5", "--timeout-method=signal")
    assert result.ret == 1
    result.assert_outcomes(passed=3, errors=1)
    output = result.stdout.str()
    assert "Timeout (>5.0s) from pytest-timeout" in output
    # The fixture never reached its release, so the leak is real. It is reported
    # in the timeout's error, naming the fixture that took it.
    result.stdout.fnmatch_lines(
        [
            "*- ctxleak -*",
            "ctxleak: lease #* of context #* (locale=de-DE) was never released by "
            "function-scoped fixture 'slow_cleanup'*",
            "*held by function-scoped fixture 'slow_cleanup'",
        ]
    )


def browsers_with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


def test_thread_timeout_leaves_no_browser(pytester: pytest.Pytester) -> None:
    """pytest-timeout's thread method ends the process: nothing may outlive it."""
    marker = f"--ctxleak-compat-marker={uuid.uuid4().hex}"
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture(scope="session")
        def ctxleak_launch_options(ctxleak_launch_options):
            args = [*ctxleak_launch_options.get("args", []), "{marker}"]
            return {{**ctxleak_launch_options, "args": args}}
        """
    )
    pytester.makepyfile(
        test_hangs="""
        import time

        def test_hangs_with_page(pooled_page):
            pooled_page.set_content("<p>waiting</p>")
            time.sleep(120)
        """
    )
    command = [sys.executable, "-m", "pytest", "-p", "ctxleak", "-p", "timeout"]
    command += ["--timeout=10", "--timeout-method=thread"]
    process = pytester.popen(command, stdin=subprocess.DEVNULL)
    try:
        # The marker is seen on the running browser, so the check below can fail.
        deadline = time.monotonic() + 60
        while not browsers_with_marker(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert browsers_with_marker(marker), "the browser never started"
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    output = out.decode() + err.decode()
    assert "Timeout" in output
    assert "ctxleak:" not in output
    assert "INTERNALERROR" not in output
    # The browser must close once the pytest process is gone: Playwright's driver
    # exits with its parent and closes it. The loop allows it a moment.
    deadline = time.monotonic() + 15
    while browsers_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert browsers_with_marker(marker) == []


def test_rerun_reclaims_leak_of_failed_attempt(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_flaky="""
        import pathlib

        def test_flaky(context_pool):
            attempts = pathlib.Path("attempts")
            attempts.write_text(attempts.read_text() + "x" if attempts.exists() else "x")
            if len(attempts.read_text()) == 1:
                context_pool.acquire(locale="de-DE")
                assert False, "first attempt fails"
            assert context_pool.ledger.outstanding() == []
        """
    )
    result = run(pytester, "-p", "rerunfailures", "--reruns=1", "-rA")
    assert result.ret == 0
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1
    assert outcomes.get("rerun") == 1


def test_rerun_checks_every_attempt(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_always_leaks="""
        def test_leaks(context_pool):
            context_pool.acquire(locale="de-DE")
            assert len(context_pool.ledger.outstanding()) == 1
        """
    )
    result = run(pytester, "-p", "rerunfailures", "--reruns=2", "-rA")
    assert result.ret == 1
    # Every attempt leaks: two teardown errors trigger the reruns, and the third
    # is reported. Each attempt found only its own lease outstanding, so the
    # leaks of the earlier attempts were reclaimed before each rerun.
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1
    assert outcomes.get("rerun") == 2
    assert "assert 2 == 1" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*ctxleak: 3 findings in 1 test*"])
