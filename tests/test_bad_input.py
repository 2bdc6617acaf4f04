"""Bad input: each invalid use gets one clear error naming the value and the fix.

Two tables. Configuration errors (command line, ini, environment, marker) stop the
run with a usage error before any test runs; they need no browser and run
in-process. Misuses of the pool's API run as the tests of one inner run against
real Chromium; each must fail with its own message, and the traceback must stay in
the test's code, never in the plugin's.

More cases live next to the features they guard: tests/test_plugin.py (options,
ini, environment and marker values), tests/test_pool.py (pool arguments, double
release, foreign leases, threads) and tests/test_signature.py (option values).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# (arguments, ini lines, environment, expected first line of the usage error)
CONFIGURATION_CASES = {
    "settle attempts negative": (
        ["--ctxleak-settle-attempts=-1"],
        [],
        {},
        "ERROR: invalid settle_attempts '-1' from command line option "
        "--ctxleak-settle-attempts: expected a whole number of at least 0",
    ),
    "settle timeout zero": (
        ["--ctxleak-settle-timeout=0"],
        [],
        {},
        "ERROR: invalid settle_timeout '0' from command line option "
        "--ctxleak-settle-timeout: expected a positive number of seconds",
    ),
    "acquire timeout not a number": (
        ["--ctxleak-acquire-timeout=nan"],
        [],
        {},
        "ERROR: invalid acquire_timeout 'nan' from command line option "
        "--ctxleak-acquire-timeout: expected a positive number of seconds",
    ),
    "max contexts fraction": (
        ["--ctxleak-max-contexts=2.5"],
        [],
        {},
        "ERROR: invalid max_contexts '2.5' from command line option "
        "--ctxleak-max-contexts: expected a whole number of at least 1",
    ),
    "ini mode": (
        [],
        ["ctxleak_mode = strict"],
        {},
        "ERROR: invalid mode 'strict' from ini setting ctxleak_mode in *tox.ini: "
        "expected one of fail, warn, off",
    ),
    "ini close timeout": (
        [],
        ["ctxleak_close_timeout = soon"],
        {},
        "ERROR: invalid close_timeout 'soon' from ini setting ctxleak_close_timeout "
        "in *tox.ini: expected a positive number of seconds",
    ),
    "ini browser path": (
        [],
        ["ctxleak_browser_path = /nonexistent/chromium"],
        {},
        "ERROR: invalid browser path '/nonexistent/chromium' from ini setting "
        "ctxleak_browser_path in *tox.ini: no such file; point it at a Chromium "
        "executable such as /usr/bin/chromium",
    ),
    "ini allow rule syntax": (
        [],
        ["ctxleak_allow = not a module"],
        {},
        "ERROR: invalid allow rule 'not a module' from ini setting ctxleak_allow in "
        "*tox.ini: expected 'module' or 'module:name', where name is a function, "
        "class or Class.method defined in the module",
    ),
    "ini allow rule module missing": (
        [],
        ["ctxleak_allow = no_such_module_xyz"],
        {},
        "ERROR: invalid allow rule 'no_such_module_xyz' from ini setting "
        "ctxleak_allow in *tox.ini: no module named 'no_such_module_xyz' can be "
        "imported; check the spelling, or add its directory to the pythonpath ini "
        "setting",
    ),
    "ini allow rule function missing": (
        [],
        ["ctxleak_allow = os.path:no_such_function"],
        {},
        "ERROR: invalid allow rule 'os.path:no_such_function' from ini setting "
        # Python 3.12 adds a close match, os.path.isjunction, as a hint.
        "ctxleak_allow in *tox.ini: module 'os.path' has no 'no_such_function'*",
    ),
    "env browser path directory": (
        [],
        [],
        {"CTXLEAK_BROWSER_PATH": "/usr"},
        "ERROR: invalid browser path '/usr' from environment variable "
        "CTXLEAK_BROWSER_PATH: it is a directory; point it at the Chromium "
        "executable inside it",
    ),
    "env browser path not executable": (
        [],
        [],
        {"CTXLEAK_BROWSER_PATH": "{not_executable}"},
        "ERROR: invalid browser path '*not-executable' from environment variable "
        "CTXLEAK_BROWSER_PATH: the file is not executable",
    ),
}

# (marker, expected first line of the usage error)
MARKER_CASES = {
    "allow not a list": (
        "ctxleak(allow=5)",
        "ERROR: invalid allow 5 from @pytest.mark.ctxleak on "
        "test_marked.py::test_marked: expected a list of rules",
    ),
    "allow module missing": (
        "ctxleak(allow=['no_such_module_xyz'])",
        "ERROR: invalid allow rule 'no_such_module_xyz' from @pytest.mark.ctxleak on "
        "test_marked.py::test_marked: no module named 'no_such_module_xyz' can be "
        "imported; check the spelling, or add its directory to the pythonpath ini "
        "setting",
    ),
    "context options not a dict": (
        "ctxleak(context_options=['locale'])",
        "ERROR: invalid context_options ['locale'] from @pytest.mark.ctxleak on "
        "test_marked.py::test_marked: expected a dict of options",
    ),
    "context option wrong type": (
        "ctxleak(context_options={'viewport': [800, 600]})",
        "ERROR: invalid context_options from @pytest.mark.ctxleak on "
        "test_marked.py::test_marked: invalid context option viewport=[800, 600]: "
        'expected a dict {"width": int, "height": int}',
    ),
    "max contexts boolean": (
        "ctxleak(max_contexts=True)",
        "ERROR: invalid max_contexts True from @pytest.mark.ctxleak on "
        "test_marked.py::test_marked: expected a whole number of at least 1",
    ),
    "check not boolean": (
        "ctxleak(check=1)",
        "ERROR: invalid check 1 from @pytest.mark.ctxleak on "
        "test_marked.py::test_marked: expected True or False",
    ),
}


@pytest.mark.parametrize(
    ("args", "ini", "environment", "message"),
    list(CONFIGURATION_CASES.values()),
    ids=list(CONFIGURATION_CASES),
)
def test_bad_configuration_is_usage_error(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ini: list[str],
    environment: dict[str, str],
    message: str,
) -> None:
    not_executable = pytester.path / "not-executable"
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(0o644)
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(not_executable=not_executable))
    pytester.makefile(".ini", tox="\n".join(["[pytest]", *ini]))
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("-p", "ctxleak", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([literal_brackets(message)])
    assert "Traceback" not in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("marker", "message"), list(MARKER_CASES.values()), ids=list(MARKER_CASES)
)
def test_bad_marker_is_usage_error(
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
    result.stderr.fnmatch_lines([literal_brackets(message)])
    assert "Traceback" not in result.stderr.str()


# -- misuse of the API, in one inner run against real Chromium ----------------------

MISUSE = """
import asyncio
import threading

import pytest
from pytest_ctxleak import ContextPool


def test_acquire_after_close(ctxleak_browser):
    pool = ContextPool(ctxleak_browser)
    pool.close()
    pool.acquire()


def test_release_from_another_thread(context_pool):
    lease = context_pool.acquire()
    errors = []

    def release():
        try:
            lease.release()
        except Exception as error:
            errors.append(error)

    thread = threading.Thread(target=release, name="worker")
    thread.start()
    thread.join()
    lease.release()
    raise errors[0]


def test_double_release(context_pool):
    lease = context_pool.acquire()
    lease.release()
    lease.release()


def test_release_to_another_pool(ctxleak_browser, context_pool):
    with ContextPool(ctxleak_browser, max_contexts=1) as other:
        lease = other.acquire()
        try:
            context_pool.release(lease)
        finally:
            lease.release()


def test_release_of_a_non_lease(context_pool):
    context_pool.release("lease #1")


def test_context_after_release(context_pool):
    lease = context_pool.acquire()
    lease.release()
    lease.context.new_page()


def test_unknown_option(context_pool):
    context_pool.acquire(user_agnet="bot")


def test_option_of_wrong_type(context_pool):
    context_pool.acquire(locale=7)


def test_storage_state_file_missing(context_pool):
    context_pool.acquire(storage_state="missing-state.json")


def test_pool_on_a_non_browser():
    ContextPool("chromium")


def test_pool_cap_not_a_number(ctxleak_browser):
    ContextPool(ctxleak_browser, max_contexts="8")


def test_close_leased_context(pooled_context):
    pooled_context.close()


@pytest.mark.asyncio
async def test_sync_pool_in_async_test(context_pool):
    context_pool.acquire()
"""

# test name -> the failure message that JUnit XML records, as a glob pattern
MISUSE_CASES = {
    "test_acquire_after_close": (
        "pytest_ctxleak.errors.PoolClosedError: the pool is closed; create a new "
        "ContextPool to acquire contexts"
    ),
    "test_release_from_another_thread": (
        "pytest_ctxleak.errors.LeaseError: release of lease #1 from worker, but this "
        "ContextPool belongs to MainThread: Playwright's sync objects cannot cross "
        "threads. Create one browser and pool per thread, or use AsyncContextPool."
    ),
    "test_double_release": (
        "pytest_ctxleak.errors.LeaseError: lease #2 was released already at "
        "test_misuse.py:34 in test_double_release; a lease can be released once"
    ),
    "test_release_to_another_pool": (
        "pytest_ctxleak.errors.LeaseError: lease #1 belongs to another pool; release "
        "it through the pool it was acquired from"
    ),
    "test_release_of_a_non_lease": "TypeError: release() takes a Lease, got str",
    "test_context_after_release": (
        "pytest_ctxleak.errors.LeaseError: lease #3 was released at "
        "test_misuse.py:53 in test_context_after_release; acquire a new lease to use "
        "a context again"
    ),
    "test_unknown_option": (
        "TypeError: unknown context option 'user_agnet'; did you mean 'user_agent'? "
        "The pool accepts the keyword arguments of Playwright's Browser.new_context."
    ),
    "test_option_of_wrong_type": (
        "TypeError: invalid context option locale=7: expected a string"
    ),
    "test_storage_state_file_missing": (
        "ValueError: storage_state file not found: 'missing-state.json'; pass an "
        "existing file saved by context.storage_state(path=...), or a dict"
    ),
    "test_pool_on_a_non_browser": (
        "TypeError: ContextPool needs a playwright.sync_api.Browser, got str"
    ),
    "test_pool_cap_not_a_number": (
        "TypeError: max_contexts must be an int, got '8'; pass a whole number such as 8"
    ),
    "test_close_leased_context": (
        "pytest_ctxleak.errors.LeaseError: context #1 (default options) belongs to a "
        "pool and is held by lease #*; release the lease instead of closing its "
        "context, and the pool closes or reuses it"
    ),
    "test_sync_pool_in_async_test": (
        "*'context_pool' uses Playwright's sync API, which cannot run inside the "
        "event loop of the async test test_misuse.py::test_sync_pool_in_async_test; "
        "use 'async_context_pool' with @pytest.mark.asyncio(loop_scope=\"session\")*"
    ),
}


class Outcome:
    """What JUnit XML recorded for one test of the inner run."""

    def __init__(self, element: ElementTree.Element) -> None:
        problem = element.find("failure")
        if problem is None:
            problem = element.find("error")
        self.failed = problem is not None
        self.message = "" if problem is None else problem.get("message", "")
        self.text = "" if problem is None else problem.text or ""


@pytest.fixture(scope="module")
def misuse_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run every misuse once, in a pytest subprocess, and collect its outcomes."""
    directory: Path = tmp_path_factory.mktemp("misuse")
    (directory / "test_misuse.py").write_text(MISUSE)
    (directory / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    environment = {**os.environ, "PYTEST_ADDOPTS": "-p no:randomly"}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ctxleak", "--junitxml=report.xml"],
        cwd=directory,
        env=environment,
        capture_output=True,
        timeout=300,
        check=False,
    )
    tree = ElementTree.parse(directory / "report.xml")
    return {
        element.get("name", ""): Outcome(element) for element in tree.iter("testcase")
    }


@pytest.mark.parametrize(
    ("name", "message"), list(MISUSE_CASES.items()), ids=list(MISUSE_CASES)
)
def test_misuse_fails_with_own_message(
    misuse_outcomes: dict[str, Outcome], name: str, message: str
) -> None:
    outcome = misuse_outcomes[name]
    assert outcome.failed
    first_line = outcome.message.splitlines()[0] if outcome.message else ""
    assert fnmatchcase(first_line, literal_brackets(message)), first_line
    assert "pytest_ctxleak/" not in outcome.text
    assert "INTERNALERROR" not in outcome.text


def test_misuse_table_covers_every_test(misuse_outcomes: dict[str, Outcome]) -> None:
    assert sorted(misuse_outcomes) == sorted(MISUSE_CASES)


def literal_brackets(pattern: str) -> str:
    """Make square brackets in a glob pattern match themselves."""
    return pattern.replace("[", "[[]")
