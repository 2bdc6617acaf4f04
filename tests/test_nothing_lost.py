"""Nothing lost: the check never turns a failure green, never drops or empties a
report, and an interrupted run still closes its browsers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import psutil
import pytest

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", *args)


def test_failed_leaky_test_keeps_own_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails_and_leaks="""
        def test_fails_and_leaks(context_pool):
            context_pool.acquire(locale="de-DE")
            assert 1 + 1 == 3, "the test's own failure"

        def test_next_starts_clean(context_pool):
            assert context_pool.ledger.outstanding() == []
        """
    )
    result = run(pytester, "--junitxml=report.xml")
    assert result.ret == 1
    result.assert_outcomes(failed=1, passed=1)
    output = result.stdout.str()
    own = output.index("AssertionError: the test's own failure")
    section = output.index("- ctxleak -")
    leak = output.index("ctxleak: lease #1 of context #1 (locale=de-DE) was never")
    assert own < section < leak
    result.stdout.fnmatch_lines(
        [
            "*ctxleak: 1 finding in 1 test*",
            "test_fails_and_leaks.py::test_fails_and_leaks  lease  *",
        ]
    )
    case = ElementTree.parse(pytester.path / "report.xml").find(".//testcase")
    assert case is not None
    failures = [child for child in case if child.tag in ("failure", "error")]
    assert [child.tag for child in failures] == ["failure"]
    assert "the test's own failure" in failures[0].get("message", "")


def test_leak_in_warn_mode_keeps_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_warn_fails="""
        def test_fails_and_leaks(context_pool):
            context_pool.acquire()
            assert False, "the test's own failure"
        """
    )
    result = run(pytester, "--ctxleak-mode=warn")
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: the test's own failure*"])


MIXED_RUN = """
import pytest


@pytest.fixture
def broken_fixture():
    raise RuntimeError("fixture broke")


def test_passes(pooled_page):
    pass


def test_fails(pooled_page):
    assert False, "plain failure"


def test_leaks(context_pool):
    context_pool.acquire()


def test_fails_and_leaks(context_pool):
    context_pool.acquire(locale="fr-FR")
    raise ValueError("own error")


def test_setup_error(broken_fixture, context_pool):
    pass


def test_leaks_outside_pool(ctxleak_browser):
    ctxleak_browser.new_context().new_page()


@pytest.mark.skip(reason="skipped on purpose")
def test_skipped(context_pool):
    pass


@pytest.mark.xfail(reason="fails on purpose", strict=True)
def test_xfails_and_leaks(context_pool):
    context_pool.acquire(locale="it-IT")
    assert False


@pytest.mark.ctxleak(mode="warn")
def test_warns(context_pool):
    context_pool.acquire(locale="es-ES")


@pytest.mark.ctxleak(max_contexts=1)
def test_over_cap(context_pool):
    with context_pool.acquire(locale="de-DE"), context_pool.acquire(locale="nl-NL"):
        pass
"""


def test_junit_keeps_every_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED_RUN)
    result = run(pytester, "--junitxml=report.xml", "-o", "junit_family=xunit2")
    assert result.ret == 1
    tree = ElementTree.parse(pytester.path / "report.xml")  # valid XML, or raises

    cases: dict[str, list[ElementTree.Element]] = {}
    for case in tree.iter("testcase"):
        cases.setdefault(case.get("name", ""), []).append(case)
    expected = [
        "test_passes",
        "test_fails",
        "test_leaks",
        "test_fails_and_leaks",
        "test_setup_error",
        "test_leaks_outside_pool",
        "test_skipped",
        "test_xfails_and_leaks",
        "test_warns",
        "test_over_cap",
    ]
    assert sorted(cases) == sorted(expected)

    # Every failure, error and skip carries a message.
    problems = {
        name: [child for case in found for child in case]
        for name, found in cases.items()
    }
    for name, children in problems.items():
        for child in children:
            if child.tag in ("failure", "error", "skipped"):
                assert child.get("message"), (name, child.tag)

    tags = {
        name: sorted({child.tag for child in children})
        for name, children in problems.items()
    }
    assert "failure" not in tags["test_passes"]
    assert "error" not in tags["test_passes"]
    assert "failure" in tags["test_fails"]
    assert "error" in tags["test_leaks"]
    # The leak of a failed test is a section of its failure, which keeps its own
    # message. is a section of its failure, which keeps its own message.
    assert "failure" in tags["test_fails_and_leaks"]
    assert "error" in tags["test_setup_error"]
    assert "error" in tags["test_leaks_outside_pool"]
    assert "skipped" in tags["test_skipped"]
    # An expected failure that leaks still reports the leak.
    assert "error" in tags["test_xfails_and_leaks"]
    assert "error" not in tags["test_warns"]
    assert "error" in tags["test_over_cap"]


# -- Ctrl-C --------------------------------------------------------------------------

INTERRUPTED = """
import pathlib
import time

def test_waits_for_interrupt(pooled_page, ctxleak_browser):
    pooled_page.goto("about:blank")
    pathlib.Path("started").write_text("")
    time.sleep(120)
"""


def _chromium_tree(root: psutil.Process) -> list[psutil.Process]:
    found = []
    for process in root.children(recursive=True):
        try:
            if "chrom" in process.name():
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def test_interrupt_closes_browsers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_interrupted=INTERRUPTED)
    environment = {**os.environ, "PYTEST_ADDOPTS": "-p no:randomly"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "ctxleak", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        marker = Path(pytester.path, "started")
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the inner test never started"
        browsers = _chromium_tree(psutil.Process(process.pid))
        assert browsers, "no Chromium found under the inner pytest"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "KeyboardInterrupt" in text
    assert "INTERNALERROR" not in text
    _, alive = psutil.wait_procs(browsers, timeout=30)
    assert alive == [], f"Chromium processes left running: {alive}"
