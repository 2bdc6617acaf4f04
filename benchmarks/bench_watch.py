"""The cost of the leak check on a suite of page tests: check on against check off.

    .venv/bin/python benchmarks/bench_watch.py [--tests 200] [--rounds 3] [--json PATH]

It writes a suite of page tests to a temporary folder, each opening a context and a
page on the session browser, loading a small page served on 127.0.0.1 and closing
both. Then it runs that suite with pytest in alternating rounds, once with
``--ctxleak-mode=fail`` (the watch and the per-test check on) and once with
``--ctxleak-mode=off`` (the watch not installed), and reports the medians of the
whole pytest run and their ratio. Each run is a fresh pytest process with its own
browser, as in CI.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def run_suite(folder: Path, mode: str) -> float:
    """Run the suite once and return its wall time in seconds."""
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
        str(folder),
    ]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"the suite failed under mode {mode}:\n{completed.stdout}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = SUITE.replace("COUNT", str(args.tests))
        (folder / "test_pages.py").write_text(source, encoding="utf-8")
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        times: dict[str, list[float]] = {"fail": [], "off": []}
        for round_number in range(args.rounds):
            # Alternate the order, so a slow spell hits both modes alike.
            order = ("fail", "off") if round_number % 2 == 0 else ("off", "fail")
            for mode in order:
                times[mode].append(run_suite(folder, mode))
                print(f"round {round_number + 1} {mode}: {times[mode][-1]:.2f} s")
    on = statistics.median(times["fail"])
    off = statistics.median(times["off"])
    overhead = (on - off) / off * 100
    print(f"{args.tests} page tests, median of {args.rounds} runs:")
    print(f"  check on  (--ctxleak-mode=fail): {on:.2f} s")
    print(f"  check off (--ctxleak-mode=off):  {off:.2f} s")
    per_test_ms = (on - off) / args.tests * 1000
    print(f"  overhead: {overhead:+.1f}% ({per_test_ms:+.2f} ms per test)")
    report: dict[str, Any] = {
        "benchmark": "watch",
        "tests": args.tests,
        "rounds": args.rounds,
        "seconds": times,
        "median_on": on,
        "median_off": off,
        "overhead_percent": overhead,
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
