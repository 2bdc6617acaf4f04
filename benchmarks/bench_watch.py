"""The cost of the leak check on a suite of page tests: check on against check off.

    .venv/bin/python benchmarks/bench_watch.py [--tests 200] [--rounds 3] [--json PATH]

It writes a suite of page tests to a temporary folder, each opening a context and a
page on the session browser, loading a small page served on 127.0.0.1 and closing
both. Then it runs that suite with pytest in alternating rounds, once with
``--ctxleak-mode=fail`` (the watch and the per-test check on) and once with
``--ctxleak-mode=off`` (the watch not installed). Each run is a fresh pytest process
with its own browser, as in CI.

It reports two figures per mode. The main one is the median time of one test
(setup, call and teardown, as pytest's JUnit XML records it) over every test of
every round: a pause of the shared machine slows a few tests, not the median. The
second is the CPU time of a whole run: user and system seconds of pytest and every
process it started, Chromium's included, as the kernel counts them for waited-for
children. CPU time does not grow while a process waits for the CPU, so other load
on a shared machine moves it far less than wall time. The third is the median wall
time of a whole run, which also contains start-up and collection.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, NamedTuple

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


class Run(NamedTuple):
    """One pytest run of the suite, in seconds."""

    wall: float
    cpu: float  # user + system time of pytest and its descendants
    tests: list[float]  # each test's setup, call and teardown


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(folder: Path, mode: str) -> Run:
    """Run the suite once in a new pytest process."""
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
        f"--ctxleak-mode={mode}",
        f"--junitxml={junit}",
        str(folder),
    ]
    cpu_start = cpu_of_children()
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    cpu = cpu_of_children() - cpu_start
    if completed.returncode != 0:
        raise SystemExit(f"the suite failed under mode {mode}:\n{completed.stdout}")
    tests = [
        float(case.attrib["time"])
        for case in ElementTree.parse(junit).getroot().iter("testcase")
    ]
    return Run(seconds, cpu, tests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = SUITE.replace("COUNT", str(args.tests))
        (folder / "test_pages.py").write_text(source, encoding="utf-8")
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        times: dict[str, list[float]] = {"fail": [], "off": []}
        per_test: dict[str, list[float]] = {"fail": [], "off": []}
        cpu: dict[str, list[float]] = {"fail": [], "off": []}
        for round_number in range(args.rounds):
            # Alternate the order, so a slow spell hits both modes alike.
            order = ("fail", "off") if round_number % 2 == 0 else ("off", "fail")
            for mode in order:
                run = run_suite(folder, mode)
                times[mode].append(run.wall)
                cpu[mode].append(run.cpu)
                per_test[mode].extend(run.tests)
                print(
                    f"round {round_number + 1} {mode}: {run.wall:.2f} s, "
                    f"CPU {run.cpu:.2f} s, "
                    f"median test {statistics.median(run.tests) * 1000:.1f} ms",
                    flush=True,
                )
    on = statistics.median(times["fail"])
    off = statistics.median(times["off"])
    overhead = (on - off) / off * 100
    test_on = statistics.median(per_test["fail"]) * 1000
    test_off = statistics.median(per_test["off"]) * 1000
    test_overhead = (test_on - test_off) / test_off * 100
    print(f"{args.tests} page tests, {args.rounds} runs per mode:")
    print(f"  median test, check on  (--ctxleak-mode=fail): {test_on:.1f} ms")
    print(f"  median test, check off (--ctxleak-mode=off):  {test_off:.1f} ms")
    print(
        f"  per-test overhead: {test_overhead:+.1f}% "
        f"({test_on - test_off:+.2f} ms per test)"
    )
    cpu_on = statistics.median(cpu["fail"])
    cpu_off = statistics.median(cpu["off"])
    cpu_overhead = (cpu_on - cpu_off) / cpu_off * 100
    print(f"  median CPU time of a run, check on:  {cpu_on:.2f} s")
    print(f"  median CPU time of a run, check off: {cpu_off:.2f} s")
    print(f"  CPU overhead: {cpu_overhead:+.1f}%")
    print(f"  median run, check on:  {on:.2f} s")
    print(f"  median run, check off: {off:.2f} s")
    print(f"  whole-run overhead: {overhead:+.1f}%")
    report: dict[str, Any] = {
        "benchmark": "watch",
        "tests": args.tests,
        "rounds": args.rounds,
        "seconds": times,
        "median_on": on,
        "median_off": off,
        "overhead_percent": overhead,
        "median_test_ms_on": test_on,
        "median_test_ms_off": test_off,
        "test_overhead_percent": test_overhead,
        "per_test_seconds": per_test,
        "cpu_seconds": cpu,
        "median_cpu_on": cpu_on,
        "median_cpu_off": cpu_off,
        "cpu_overhead_percent": cpu_overhead,
        "load_average": os.getloadavg(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
