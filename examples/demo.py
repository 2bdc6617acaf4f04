"""Run the bookshop example's tests under -p ctxleak, first leaky and then fixed.

The leaky scraper skips a malformed book page without releasing its lease. The
ctxleak check should fail exactly that one test and name the line that acquired
the lease, and the fixed scraper should pass every test. Run it from anywhere:

    .venv/bin/python examples/demo.py

Exits 0 when both runs end as expected and 1 otherwise.
"""

from __future__ import annotations

import linecache
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

REPOSITORY = Path(__file__).resolve().parent.parent
LEAKY_SCRAPER = "examples/bookshop/bookshop_scraper/leaky_scraper.py"
# examples/bookshop/pytest.ini makes examples/bookshop the rootdir, so the
# repository's own pytest settings in pyproject.toml do not apply to these runs.
PYTEST_ARGUMENTS = (
    "-m",
    "pytest",
    "-p",
    "ctxleak",
    "examples/bookshop/tests",
    "-p",
    "no:cacheprovider",
    # The suite is sync. pytest-asyncio, installed with the test extra, would
    # warn about its own unset loop scope setting in every run.
    "-p",
    "no:asyncio",
    "-q",
)
# Seconds per run. A run launches one Chromium and loads a dozen local pages, so
# this leaves a wide margin for slow CI machines.
RUN_TIMEOUT = 240

# The first line of a leak report, e.g. "ctxleak: lease #17 of context #2 (default
# options) was never released; acquired at path/to/file.py:26 in scrape_catalogue".
LEAK_PATTERN = re.compile(
    r"^ctxleak: lease #(?P<lease>\d+) of context #\d+ .* was never released; "
    r"acquired at (?P<path>\S+):(?P<line>\d+) in \S+$",
    re.MULTILINE,
)
# Terminal colour codes, present when PY_COLORS=1 or FORCE_COLOR is set.
COLOUR_PATTERN = re.compile(r"\x1b\[[0-9;]*m")
# Counts in pytest's final summary line, e.g. "5 passed, 1 error in 5.65s".
COUNT_PATTERN = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


class Run(NamedTuple):
    """One pytest run of the example suite."""

    command: list[str]
    exit_code: int  # -1 when the run timed out
    output: str  # stdout, then stderr, without colour codes


def run_suite(scraper: str) -> Run:
    """Run the example suite with --scraper=SCRAPER, printing its output."""
    command = [sys.executable, *PYTEST_ARGUMENTS, f"--scraper={scraper}"]
    printable_command = " ".join(["python", *command[1:]])
    print(f"--- {scraper} scraper: {printable_command}", flush=True)
    try:
        completed = subprocess.run(
            command,
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = _decode(error.stdout) + _decode(error.stderr)
        print(output, end="")
        print(f"--- timed out after {RUN_TIMEOUT} s\n", flush=True)
        return Run(command, -1, COLOUR_PATTERN.sub("", output))
    output = completed.stdout + completed.stderr
    print(output, end="" if output.endswith("\n") else "\n")
    print(f"--- exit code {completed.returncode}\n", flush=True)
    return Run(command, completed.returncode, COLOUR_PATTERN.sub("", output))


def _decode(stream: bytes | str | None) -> str:
    if isinstance(stream, bytes):
        return stream.decode(errors="replace")
    return stream or ""


def count_outcomes(output: str) -> dict[str, int]:
    """Return the counts of pytest's last summary line, with 'errors' as 'error'."""
    lines = [line for line in output.splitlines() if COUNT_PATTERN.search(line)]
    if not lines:
        return {}
    counts = {}
    for number, outcome in COUNT_PATTERN.findall(lines[-1]):
        if outcome == "errors":
            outcome = "error"
        counts[outcome] = int(number)
    return counts


def check_leaky_run(run: Run) -> tuple[list[str], str]:
    """Return the problems with the leaky run, and the leaked lease's location."""
    problems = []
    counts = count_outcomes(run.output)
    if run.exit_code != 1:
        problems.append(f"the leaky run exited {run.exit_code}, expected 1")
    if counts.get("failed", 0) != 0:
        problems.append(
            f"{counts['failed']} test(s) of the leaky run failed their own asserts, "
            "expected none"
        )
    if counts.get("error", 0) != 1:
        problems.append(
            f"the leaky run reported {counts.get('error', 0)} error(s), expected "
            "1 from the leak check"
        )
    leaks = list(LEAK_PATTERN.finditer(run.output))
    lease_ids = {leak["lease"] for leak in leaks}
    if len(lease_ids) != 1:
        problems.append(
            f"the leaky run reported {len(lease_ids)} leaked lease(s), expected 1"
        )
    locations = {f"{leak['path']}:{leak['line']}" for leak in leaks}
    location = ", ".join(sorted(locations)) or "<no location reported>"
    if not all(leak["path"] == LEAKY_SCRAPER for leak in leaks):
        problems.append(
            f"the leak was reported at {location}, expected a line of {LEAKY_SCRAPER}"
        )
    return problems, location


def check_fixed_run(run: Run) -> list[str]:
    """Return the problems with the fixed run: anything but all tests passing."""
    problems = []
    counts = count_outcomes(run.output)
    if run.exit_code != 0:
        problems.append(f"the fixed run exited {run.exit_code}, expected 0")
    if counts.get("passed", 0) == 0 or set(counts) != {"passed"}:
        problems.append(
            f"the fixed run's outcomes were {counts or 'not reported'}, "
            "expected only passed tests"
        )
    if LEAK_PATTERN.search(run.output):
        problems.append("the fixed run reported a leak, expected none")
    return problems


def main() -> int:
    leaky = run_suite("leaky")
    fixed = run_suite("fixed")
    problems, location = check_leaky_run(leaky)
    problems += check_fixed_run(fixed)
    if problems:
        print("Demo failed; the pytest output above shows why:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    passed = count_outcomes(fixed.output)["passed"]
    path, line = location.rsplit(":", 1)
    source = linecache.getline(str(REPOSITORY / path), int(line)).strip()
    print(
        f"leaky scraper: ctxleak caught 1 leaked lease, acquired at {location} "
        f"({source})"
    )
    print(f"fixed scraper: all {passed} tests passed with no leaks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
