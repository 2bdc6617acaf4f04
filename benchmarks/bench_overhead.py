"""The plugin's per-test cost on trivial tests that use no browser.

    .venv/bin/python benchmarks/bench_overhead.py [--tests N] [--rounds N] [--json PATH]

It writes a suite of trivial tests (each asserts one comparison) to a temporary
folder and runs it as a fresh pytest process, alternating ``-p ctxleak`` (plugin on)
with ``-p no:ctxleak`` (plugin off). The order flips from round to round, so a slow
spell of the shared machine falls on both sides alike.

A third side, ``hooks``, loads in place of the plugin an empty one with the same
per-test hooks, each doing nothing. It shows how much of the overhead is pytest's
price for calling the hooks at all, and how much is the check's own work.

It reports two figures per side. The first is the median time of one test's whole
run protocol (setup, call, teardown and the hooks around them) over every test of
every round. A small plugin times it, because JUnit XML keeps only whole
milliseconds. The second is the median wall time of a whole run, which adds
start-up and collection. The target is a
per-test overhead of at most 3%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    describe_machine,
    load_average,
    median_ms,
    percent_over,
    run_pytest,
    write_json,
    write_timing_plugin,
)

SUITE = """
import pytest


@pytest.mark.parametrize("number", range(COUNT))
def test_trivial(number):
    assert number >= 0
"""

TARGET_PERCENT = 3.0

# The per-test hooks that the plugin implements, each doing nothing. A test checks
# that this list matches the plugin's.
EMPTY_HOOKS = """
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    pass


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef, request):
    return (yield)


def pytest_fixture_post_finalizer(fixturedef, request):
    pass


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    return (yield)


def pytest_runtest_logreport(report):
    pass
"""
EMPTY_HOOKS_MODULE = "ctxleak_bench_empty_hooks"

SIDES = {
    "on": ["-p", "ctxleak"],
    "off": ["-p", "no:ctxleak"],
    "hooks": ["-p", "no:ctxleak", "-p", EMPTY_HOOKS_MODULE],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    load_before = load_average()
    walls: dict[str, list[float]] = {side: [] for side in SIDES}
    per_test: dict[str, list[float]] = {side: [] for side in SIDES}
    round_medians: dict[str, list[float]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="ctxleak-overhead-") as scratch:
        folder = Path(scratch)
        source = SUITE.replace("COUNT", str(args.tests))
        (folder / "test_trivial.py").write_text(source, encoding="utf-8")
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        write_timing_plugin(folder)
        empty_hooks = folder / f"{EMPTY_HOOKS_MODULE}.py"
        empty_hooks.write_text(EMPTY_HOOKS, encoding="utf-8")
        for round_number in range(args.rounds):
            order = tuple(SIDES) if round_number % 2 == 0 else tuple(SIDES)[::-1]
            for side in order:
                result = run_pytest(folder, SIDES[side], side)
                if len(result.test_seconds) != args.tests:
                    raise SystemExit(
                        f"expected {args.tests} tests, timed "
                        f"{len(result.test_seconds)} ({side})"
                    )
                walls[side].append(result.wall_seconds)
                per_test[side].extend(result.test_seconds)
                round_medians[side].append(median_ms(result.test_seconds))
                print(
                    f"round {round_number + 1} {side:>3}: "
                    f"{result.wall_seconds:.2f} s, "
                    f"median test {median_ms(result.test_seconds) * 1000:.1f} us",
                    flush=True,
                )
    test_on = median_ms(per_test["on"])
    test_off = median_ms(per_test["off"])
    test_hooks = median_ms(per_test["hooks"])
    wall_on = statistics.median(walls["on"])
    wall_off = statistics.median(walls["off"])
    test_overhead = percent_over(test_on, test_off)
    wall_overhead = percent_over(wall_on, wall_off)
    per_round = [
        percent_over(on, off)
        for on, off in zip(round_medians["on"], round_medians["off"], strict=True)
    ]
    met = test_overhead <= TARGET_PERCENT
    print(f"{args.tests} trivial tests, {args.rounds} runs per side:")
    print(f"  median test, plugin on:  {test_on * 1000:.1f} us")
    print(f"  median test, plugin off: {test_off * 1000:.1f} us")
    print(
        f"  per-test overhead: {test_overhead:+.1f}% "
        f"({(test_on - test_off) * 1000:+.1f} us per test); target at most "
        f"{TARGET_PERCENT:g}%: {'met' if met else 'missed'}"
    )
    print(
        f"  median test, empty hooks: {test_hooks * 1000:.1f} us "
        f"({(test_hooks - test_off) * 1000:+.1f} us over plugin off)"
    )
    print(f"  median run, plugin on:  {wall_on:.2f} s")
    print(f"  median run, plugin off: {wall_off:.2f} s")
    print(f"  whole-run overhead: {wall_overhead:+.1f}%")
    report: dict[str, Any] = {
        "benchmark": "overhead",
        "tests": args.tests,
        "rounds": args.rounds,
        "target_percent": TARGET_PERCENT,
        "target_met": met,
        "median_test_ms": {"on": test_on, "off": test_off, "hooks": test_hooks},
        "test_overhead_percent": test_overhead,
        "round_test_overhead_percent": per_round,
        "run_seconds": walls,
        "median_run_seconds": {"on": wall_on, "off": wall_off},
        "run_overhead_percent": wall_overhead,
        "round_median_test_ms": round_medians,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": describe_machine(),
    }
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
