"""The cost of measuring browser processes per test: a suite side by side, and one
measurement call on a browser with N open pages.

    .venv/bin/python benchmarks/bench_procs.py [--tests 100] [--rounds 3]
        [--pages 0,5,20] [--calls 20] [--json PATH]

Part one writes a suite of page tests to a temporary folder, each opening a context
and a page on the session browser, loading a small page served on 127.0.0.1 and
closing both, and runs it as a fresh pytest process under each of
``--ctxleak-measure=off``, ``processes`` (the default: count processes by type at
the start and end of each test) and ``memory`` (also sum PSS). The order of the
modes rotates from round to round. The figure is the median time of one test
(setup, call and teardown, from pytest's JUnit XML) over every test of every round.

Part two launches one Chromium in this process, opens N pages on about:blank for
each N of ``--pages``, and times ``--calls`` calls of one measurement of the
browser's tree: counting processes by type, and counting plus summing PSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from pytest_ctxleak.launch import launch_options
from pytest_ctxleak.procs import (
    BrowserTree,
    ProcessTracker,
    descendant_pids,
    find_launched_browser,
)

MODES = ("off", "processes", "memory")

SUITE = """
import http.server
import threading

import pytest


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html><head><title>item</title></head><body>item</body></html>"
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
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize("number", range(COUNT))
def test_page(ctxleak_browser, site, number):
    context = ctxleak_browser.new_context()
    page = context.new_page()
    page.goto(f"{site}/item-{number}")
    assert page.title() == "item"
    page.close()
    context.close()
"""


def run_suite(folder: Path, mode: str) -> tuple[float, list[float]]:
    """Run the suite once; return its wall time and each test's time, in seconds."""
    junit = folder / f"junit-{mode}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "ctxleak",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:playwright",
        f"--ctxleak-measure={mode}",
        f"--junitxml={junit}",
        str(folder),
    ]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"the suite failed under measure={mode}:\n{completed.stdout}")
    tests = [
        float(case.attrib["time"])
        for case in ElementTree.parse(junit).getroot().iter("testcase")
    ]
    return seconds, tests


def suite_part(tests: int, rounds: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    per_test: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = SUITE.replace("COUNT", str(tests))
        (folder / "test_pages.py").write_text(source, encoding="utf-8")
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        for round_number in range(rounds):
            # Rotate the order, so a slow spell of the machine hits every mode.
            shift = round_number % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                seconds, measured = run_suite(folder, mode)
                times[mode].append(seconds)
                per_test[mode].extend(measured)
                print(
                    f"round {round_number + 1} measure={mode}: {seconds:.2f} s, "
                    f"median test {statistics.median(measured) * 1000:.1f} ms",
                    flush=True,
                )
    medians = {mode: statistics.median(per_test[mode]) * 1000 for mode in MODES}
    off = medians["off"]
    print(f"{tests} page tests, {rounds} runs per mode, median test time:")
    for mode in MODES:
        extra = medians[mode] - off
        print(
            f"  measure={mode:<9}: {medians[mode]:.1f} ms "
            f"({extra:+.2f} ms, {extra / off * 100:+.1f}% against off)"
        )
    return {
        "tests": tests,
        "rounds": rounds,
        "run_seconds": times,
        "median_test_ms": medians,
        "median_run_seconds": {mode: statistics.median(times[mode]) for mode in MODES},
        "per_test_seconds": per_test,
    }


def call_part(page_counts: list[int], calls: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with sync_playwright() as playwright:
        before = descendant_pids()
        options = launch_options(
            playwright.chromium.executable_path,
            os.environ.get("CTXLEAK_BROWSER_PATH"),
        )
        browser = playwright.chromium.launch(**options)
        process = find_launched_browser(before, set(), None)
        if process is None:
            raise SystemExit("the launched browser's process was not found")
        tree = BrowserTree(1, process.pid, process.create_time(), "")
        tracker = ProcessTracker()
        context = browser.new_context()
        pages: list[Any] = []
        for count in page_counts:
            while len(pages) < count:
                pages.append(context.new_page())
            time.sleep(1.0)  # let new renderers finish starting
            row: dict[str, Any] = {}
            for memory in (False, True):
                seconds = []
                for _ in range(calls):
                    start = time.perf_counter()
                    sample = tracker.sample([tree], memory)
                    seconds.append(time.perf_counter() - start)
                name = "memory" if memory else "processes"
                row[f"{name}_ms"] = statistics.median(seconds) * 1000
                row[f"{name}_p90_ms"] = sorted(seconds)[int(0.9 * (calls - 1))] * 1000
                row["process_counts"] = sample.counts
                if memory:
                    row["pss_mib"] = (sample.pss or 0) / 1024**2
            results[str(count)] = row
            total = sum(row["process_counts"].values())
            print(
                f"{count:>3} pages, {total:>3} processes: count "
                f"{row['processes_ms']:.2f} ms, count + PSS {row['memory_ms']:.2f} ms "
                f"(median of {calls})",
                flush=True,
            )
        context.close()
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", default="0,5,20")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    page_counts = [int(part) for part in args.pages.split(",") if part.strip()]
    load_before = os.getloadavg()
    calls = call_part(page_counts, args.calls)
    suite = suite_part(args.tests, args.rounds)
    report: dict[str, Any] = {
        "benchmark": "procs",
        "suite": suite,
        "calls": {"calls_per_point": args.calls, "by_pages": calls},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
