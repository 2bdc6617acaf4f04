"""A page suite on ``pooled_page`` against the same on pytest-playwright's ``page``.

    .venv/bin/python benchmarks/bench_suite.py [--tests 30] [--rounds 5] [--json PATH]

It writes one suite of page tests in two versions to a temporary folder:

- pooled: each test takes ``pooled_page``, run with ``-p ctxleak`` (the check on);
- playwright: each test takes pytest-playwright's ``page`` (a new context and page
  per test), run with ``-p no:ctxleak``, as a project without this plugin runs it.

Every test loads a page from a server on 127.0.0.1, asserts that no cookie and no
localStorage item from an earlier test is visible, then sets its own cookie and
localStorage item. So the run passes only when isolation holds. Both versions run
Chromium with the options of ``pytest_ctxleak.launch``. The versions alternate in
each round, each a fresh pytest process that launches its own browser.

Two figures per version: the median time of one test's whole run protocol over
every test of every round, and the median wall time of a whole run, which adds
start-up, the browser's launch and collection. The target is a per-test time at
least 2 times lower on the pooled side.
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
    run_pytest,
    write_json,
    write_timing_plugin,
)

TARGET_RATIO = 2.0

CONFTEST = """
import http.server
import threading

import pytest

from pytest_ctxleak.launch import launch_options


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html><head><title>shop</title></head><body>shop</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


# pytest-playwright launches its own Chromium: point it at the one the plugin
# uses, with the same flags.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, playwright):
    return {
        **browser_type_launch_args,
        **launch_options(playwright.chromium.executable_path),
    }


def visit_and_mark(page, site, number):
    page.goto(site)
    assert page.title() == "shop"
    # Nothing from an earlier test may be visible.
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("localStorage.length") == 0
    page.evaluate(
        "n => { document.cookie = 'test=' + n; localStorage.setItem('test', n); }",
        number,
    )
    assert page.evaluate("document.cookie") == f"test={number}"
"""

TESTS = {
    "pooled": """
import pytest

from conftest import visit_and_mark


@pytest.mark.parametrize("number", range(COUNT))
def test_page(pooled_page, site, number):
    visit_and_mark(pooled_page, site, number)
""",
    "playwright": """
import pytest

from conftest import visit_and_mark


@pytest.mark.parametrize("number", range(COUNT))
def test_page(page, site, number):
    visit_and_mark(page, site, number)
""",
}

ARGUMENTS = {
    "pooled": ["-p", "ctxleak", "-p", "no:playwright"],
    "playwright": ["-p", "no:ctxleak", "-p", "playwright"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    load_before = load_average()
    walls: dict[str, list[float]] = {side: [] for side in TESTS}
    per_test: dict[str, list[float]] = {side: [] for side in TESTS}
    with tempfile.TemporaryDirectory(prefix="ctxleak-suite-") as scratch:
        folder = Path(scratch)
        (folder / "conftest.py").write_text(CONFTEST, encoding="utf-8")
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        for side, source in TESTS.items():
            path = folder / f"test_{side}.py"
            path.write_text(source.replace("COUNT", str(args.tests)), encoding="utf-8")
        write_timing_plugin(folder)
        for round_number in range(args.rounds):
            order = ("pooled", "playwright")
            if round_number % 2:
                order = ("playwright", "pooled")
            for side in order:
                arguments = [*ARGUMENTS[side], f"test_{side}.py"]
                result = run_pytest(folder, arguments, side)
                if len(result.test_seconds) != args.tests:
                    raise SystemExit(
                        f"expected {args.tests} tests, timed "
                        f"{len(result.test_seconds)} ({side})"
                    )
                walls[side].append(result.wall_seconds)
                per_test[side].extend(result.test_seconds)
                print(
                    f"round {round_number + 1} {side:>10}: "
                    f"{result.wall_seconds:.2f} s, "
                    f"median test {median_ms(result.test_seconds):.1f} ms",
                    flush=True,
                )
    test_ms = {side: median_ms(times) for side, times in per_test.items()}
    wall = {side: statistics.median(times) for side, times in walls.items()}
    ratio = test_ms["playwright"] / test_ms["pooled"]
    wall_ratio = wall["playwright"] / wall["pooled"]
    met = ratio >= TARGET_RATIO
    print(f"{args.tests} page tests, {args.rounds} runs per version:")
    for side in TESTS:
        print(
            f"  {side:>10}: median test {test_ms[side]:.1f} ms, "
            f"median run {wall[side]:.2f} s"
        )
    print(
        f"  per-test ratio playwright/pooled: {ratio:.2f}x; target at least "
        f"{TARGET_RATIO:g}x: {'met' if met else 'missed'}"
    )
    print(f"  whole-run ratio playwright/pooled: {wall_ratio:.2f}x")
    report: dict[str, Any] = {
        "benchmark": "suite",
        "tests": args.tests,
        "rounds": args.rounds,
        "target_ratio": TARGET_RATIO,
        "target_met": met,
        "median_test_ms": test_ms,
        "median_run_seconds": wall,
        "test_ratio": ratio,
        "run_ratio": wall_ratio,
        "run_seconds": walls,
        "per_test_seconds": per_test,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": describe_machine(),
    }
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
