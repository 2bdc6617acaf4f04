"""Compare an AsyncContextPool under continuous load with never-closed contexts.

Both patterns run the same crawls against small HTML pages served on 127.0.0.1. A
crawl gets a context for one of 20 signatures (context options that differ only in
viewport width), opens a page, navigates it to one of the pages, and reads its title.

- pool: ``async with pool.acquire(...) as lease`` on an AsyncContextPool with a
  cap of ``--max-contexts`` contexts (default 4). The pool closes the page at
  release.
- naive: ``browser.new_context(...)``, a page and a navigation, and the context is
  never closed, as when a test omits ``context.close()``.

Each pattern gets its own Chromium launch, so their processes and memory do not mix.
The two run one after the other in one process, and their order flips from one round
to the next. For each run the script records crawls per second and the peak number
of open contexts. It also samples the memory of the browser's processes, as the sum
of their PSS (USS where the kernel reports no PSS) and the sum of their USS, and
counts the renderers among them. The samples are taken before the first crawl, after
every ``--sample-every`` crawls, and once more a second after the last crawl. The
script prints the medians over the rounds and the per-round ratios, and the JSON
keeps every figure.

    .venv/bin/python benchmarks/bench_load.py [--rounds N] [--json PATH] [--svg PATH]
    .venv/bin/python benchmarks/bench_load.py --from-json PATH [--svg PATH]

The second form runs nothing: it reads a report written by ``--json`` (or the
combined file of run_all.py), prints its table and draws the SVG plot. See --help for
the other options.

The pages navigate only to the script's own HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import bench_acquire  # in this folder, which Python puts on sys.path for its scripts
import psutil
from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from pytest_ctxleak.launch import find_chromium, launch_options
from pytest_ctxleak.pool import AsyncContextPool
from pytest_ctxleak.settings import BROWSER_PATH_ENV

PATTERNS = ("pool", "naive")

# Context options of the 20 signatures. Only the viewport width differs, so every
# signature is a different kind of context to the pool and all cost about the same.
SIGNATURES: list[dict[str, Any]] = [
    {"viewport": {"width": 800 + 40 * index, "height": 600}} for index in range(20)
]

# Path -> title of the pages the HTTP server returns.
PAGES = {f"/page-{number}.html": f"Load page {number}" for number in range(1, 6)}

# Pause in seconds before the start sample and before the end sample of a run, so
# that Chromium has finished starting up, and has finished tearing down the pages and
# contexts closed by the last crawls.
SETTLE_SECONDS = 1.0

# How long to wait for the processes of a closed browser to exit before the next
# launch, in seconds.
EXIT_TIMEOUT = 10.0

MIB = 1024 * 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="number of rounds, each running both patterns in alternating order "
        "(default: 3)",
    )
    parser.add_argument(
        "--crawls",
        type=positive_int,
        default=100,
        help="crawls per pattern in each round (default: 100)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=8,
        help="crawls in flight at once (default: 8)",
    )
    parser.add_argument(
        "--max-contexts",
        type=positive_int,
        default=4,
        help="max_contexts of the pool, its cap on open contexts (default: 4)",
    )
    parser.add_argument(
        "--sample-every",
        type=positive_int,
        default=10,
        help="measure memory after every N completed crawls (default: 10)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write every figure and the machine description to PATH as JSON",
    )
    parser.add_argument(
        "--svg",
        type=Path,
        metavar="PATH",
        help="also draw the memory of both patterns over the crawls to PATH as SVG",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="run nothing: read the report in PATH, written by --json or by "
        "run_all.py, print its table and write --svg if given",
    )
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# -- the HTTP server --------------------------------------------------------------


def page_html(title: str) -> bytes:
    links = "".join(f'<li><a href="{path}">{path}</a></li>' for path in PAGES)
    text = "<p>A small static page for the load benchmark of pytest-ctxleak.</p>" * 5
    # The empty data: icon stops Chromium from requesting /favicon.ico.
    head = (
        f"<meta charset='utf-8'><title>{title}</title><link rel='icon' href='data:,'>"
    )
    return (
        f"<!doctype html><html><head>{head}</head>"
        f"<body><h1>{title}</h1>{text}<ul>{links}</ul></body></html>"
    ).encode()


class PageHandler(BaseHTTPRequestHandler):
    """Returns the pages in PAGES and 404 for any other path."""

    def do_GET(self) -> None:
        title = PAGES.get(self.path)
        if title is None:
            self.send_error(404)
            return
        body = page_html(title)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request would bury the benchmark's own output.
        pass


class PageServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that counts clients that disconnect mid-response.

    Closing a page can abort a request whose response is still being sent, which is
    expected here. Other errors are printed with their traceback, as usual.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PageHandler)
        self.disconnects = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            with self._lock:
                self.disconnects += 1
            return
        super().handle_error(request, client_address)


@contextmanager
def serve_pages() -> Iterator[PageServer]:
    """Serve PAGES on 127.0.0.1 on a free port, in a thread, until the block ends."""
    server = PageServer()
    thread = threading.Thread(target=server.serve_forever, name="pages", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- memory of the browser's processes ----------------------------------------------


@dataclass
class MemorySample:
    """The memory of one browser's processes at one moment, in MiB."""

    crawls: int
    # PSS, or USS for a process whose PSS the kernel does not report.
    pss_mib: float
    # USS: pages that only one process maps. Unlike PSS, it includes no share of the
    # Chromium binary and libraries, which other Chromiums on the machine also map.
    uss_mib: float
    processes: int
    renderers: int
    # "pss", or "pss+uss" when USS stood in for some process's PSS.
    measure: str


class BrowserProcesses:
    """The Chromium processes of one launch.

    They are the Chromium processes among this process's descendants whose pid was not
    among them before the launch. Chromium starts renderers later, so the set is
    listed again at every sample. A Chromium process that leaves this tree, because
    its parent exited and the kernel reparented it to init, is missed.
    """

    def __init__(self, pids_before_launch: set[int]) -> None:
        self.pids_before_launch = pids_before_launch

    def processes(self) -> list[psutil.Process]:
        found = []
        for process in psutil.Process().children(recursive=True):
            if process.pid in self.pids_before_launch:
                continue
            try:
                name = process.name().lower()
            except psutil.NoSuchProcess:
                continue
            if "chrom" in name or "headless_shell" in name:
                found.append(process)
        return found

    def sample(self, crawls: int) -> MemorySample:
        """Sum the memory of the processes and count the renderers among them.

        A process that exits while it is read is left out.
        """
        pss_total = 0
        uss_total = 0
        processes = 0
        renderers = 0
        measure = "pss"
        for process in self.processes():
            try:
                info = process.memory_full_info()
                cmdline = process.cmdline()
            except psutil.NoSuchProcess:
                continue
            pss = getattr(info, "pss", None)
            if pss is None:
                measure = "pss+uss"
                pss = info.uss
            pss_total += pss
            uss_total += info.uss
            processes += 1
            if "--type=renderer" in cmdline:
                renderers += 1
        return MemorySample(
            crawls,
            round(pss_total / MIB, 2),
            round(uss_total / MIB, 2),
            processes,
            renderers,
            measure,
        )


def child_pids() -> set[int]:
    return {process.pid for process in psutil.Process().children(recursive=True)}


# -- one run of one pattern ---------------------------------------------------------


@dataclass
class Run:
    """Figures of one run of one pattern."""

    pattern: str
    round: int
    crawls: int
    # Wall time of the whole run, from the launch until the browser's processes exited.
    wall_seconds: float = 0.0
    # Wall time of the crawls without the time spent taking memory samples.
    crawl_seconds: float = 0.0
    sampling_seconds: float = 0.0
    crawls_per_second: float = 0.0
    # The pool's occupied_peak, or the max of len(browser.contexts) for the naive
    # pattern.
    peak_contexts: int = 0
    # Max of len(browser.contexts), read after each crawl got its context.
    browser_contexts_peak: int = 0
    # Distinct BrowserContext objects the crawls used.
    contexts_created: int = 0
    start: MemorySample | None = None
    end: MemorySample | None = None
    # Memory before the first crawl, after every --sample-every crawls and right
    # after the last crawl.
    series: list[MemorySample] = field(default_factory=list)
    # Contexts the browser still lists after pool.close(), in pool runs only.
    contexts_after_pool_close: int | None = None
    pool_close_problems: list[dict[str, str]] = field(default_factory=list)
    processes_left_after_browser_close: int = 0


# A crawl takes its index, fetches one page and returns the title it read.
Crawl = Callable[[int], Awaitable[str]]


def crawl_options(index: int) -> dict[str, Any]:
    return SIGNATURES[index % len(SIGNATURES)]


def crawl_path(index: int) -> str:
    return list(PAGES)[index % len(PAGES)]


async def run_crawls(
    crawl: Crawl, run: Run, processes: BrowserProcesses, concurrency: int, every: int
) -> None:
    """Run ``run.crawls`` crawls, ``concurrency`` at a time, sampling memory.

    Raises the first error of any crawl, after cancelling the others, and
    RuntimeError when a crawl reads the wrong title.
    """
    indexes = iter(range(run.crawls))
    completed = 0

    async def worker() -> None:
        nonlocal completed
        # The workers share one iterator, so each index is crawled exactly once.
        for index in indexes:
            title = await crawl(index)
            expected = PAGES[crawl_path(index)]
            if title != expected:
                raise RuntimeError(
                    f"crawl {index} of the {run.pattern} run read the title "
                    f"{title!r}, expected {expected!r}"
                )
            completed += 1
            if completed % every == 0 or completed == run.crawls:
                # The sample blocks the event loop, so no crawl advances on the
                # Python side while it runs, and its time is left out of the
                # crawl time. Chromium keeps working meanwhile.
                started = time.perf_counter()
                run.series.append(processes.sample(completed))
                run.sampling_seconds += time.perf_counter() - started

    started = time.perf_counter()
    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    run.crawl_seconds = time.perf_counter() - started - run.sampling_seconds
    run.crawls_per_second = run.crawls / run.crawl_seconds


async def run_pool(
    browser: Browser,
    base_url: str,
    run: Run,
    processes: BrowserProcesses,
    args: argparse.Namespace,
) -> None:
    pool = AsyncContextPool(browser, max_contexts=args.max_contexts)
    contexts: set[BrowserContext] = set()

    async def crawl(index: int) -> str:
        async with pool.acquire(**crawl_options(index)) as lease:
            contexts.add(lease.context)
            run.browser_contexts_peak = max(
                run.browser_contexts_peak, len(browser.contexts)
            )
            page = await lease.new_page()
            await page.goto(base_url + crawl_path(index))
            return await page.title()

    try:
        await run_crawls(crawl, run, processes, args.concurrency, args.sample_every)
        await asyncio.sleep(SETTLE_SECONDS)
        run.end = processes.sample(run.crawls)
    finally:
        await pool.close()
    run.peak_contexts = pool.ledger.occupied_peak
    run.contexts_created = len(contexts)
    run.contexts_after_pool_close = len(browser.contexts)
    run.pool_close_problems = [problem._asdict() for problem in pool.close_problems]


async def run_naive(
    browser: Browser,
    base_url: str,
    run: Run,
    processes: BrowserProcesses,
    args: argparse.Namespace,
) -> None:
    async def crawl(index: int) -> str:
        # The context is never closed, which is the leak that the pool prevents.
        # browser.close() at the end of the run closes it.
        context = await browser.new_context(**crawl_options(index))
        run.browser_contexts_peak = max(
            run.browser_contexts_peak, len(browser.contexts)
        )
        page = await context.new_page()
        await page.goto(base_url + crawl_path(index))
        return await page.title()

    await run_crawls(crawl, run, processes, args.concurrency, args.sample_every)
    await asyncio.sleep(SETTLE_SECONDS)
    run.end = processes.sample(run.crawls)
    run.peak_contexts = run.browser_contexts_peak
    run.contexts_created = run.crawls


async def run_pattern(
    playwright: Playwright,
    options: dict[str, Any],
    pattern: str,
    round_number: int,
    base_url: str,
    args: argparse.Namespace,
) -> tuple[Run, str]:
    """Launch a browser, run one pattern on it, close it, and return the run and
    the browser version."""
    run = Run(pattern, round_number, args.crawls)
    started = time.perf_counter()
    pids_before = child_pids()
    browser = await playwright.chromium.launch(**options)
    processes = BrowserProcesses(pids_before)
    try:
        version = browser.version
        await asyncio.sleep(SETTLE_SECONDS)
        run.start = processes.sample(0)
        run.series.append(run.start)
        if pattern == "pool":
            await run_pool(browser, base_url, run, processes, args)
        else:
            await run_naive(browser, base_url, run, processes, args)
    finally:
        # Listed before the close, because once Chromium's main process exits, the
        # kernel reparents its remaining children to init, outside this tree.
        running = processes.processes()
        await browser.close()
        _, alive = psutil.wait_procs(running, timeout=EXIT_TIMEOUT)
    run.processes_left_after_browser_close = len(alive)
    run.wall_seconds = time.perf_counter() - started
    return run, version


async def run_rounds(
    args: argparse.Namespace,
) -> tuple[list[Run], dict[str, Any], int]:
    """Run every round and return the runs, the machine description and the count
    of HTTP clients that disconnected mid-response."""
    runs: list[Run] = []
    async with async_playwright() as playwright:
        explicit = os.environ.get(BROWSER_PATH_ENV) or None
        bundled = playwright.chromium.executable_path
        browser_source = find_chromium(bundled, explicit).how
        options = launch_options(bundled, explicit)
        version = ""
        with serve_pages() as server:
            for index in range(args.rounds):
                order = PATTERNS if index % 2 == 0 else PATTERNS[::-1]
                for pattern in order:
                    run, version = await run_pattern(
                        playwright, options, pattern, index + 1, server.base_url, args
                    )
                    runs.append(run)
                    assert run.end is not None
                    print(
                        f"  round {index + 1}/{args.rounds} {pattern}: "
                        f"{run.crawls_per_second:.2f} crawls/s, end PSS "
                        f"{run.end.pss_mib:.0f} MiB, {run.wall_seconds:.0f} s in all",
                        file=sys.stderr,
                        flush=True,
                    )
    machine = describe_machine(version, browser_source)
    return runs, machine, server.disconnects


# -- checks, statistics and output --------------------------------------------------


def find_problems(runs: list[Run], max_contexts: int) -> list[str]:
    """Return one sentence per failed check: the pool's cap, the pool's close, and
    the exit of Chromium's processes."""
    problems = []
    for run in runs:
        where = f"round {run.round} {run.pattern}"
        if run.pattern == "pool":
            if run.peak_contexts > max_contexts:
                problems.append(
                    f"{where}: occupied_peak {run.peak_contexts} is above the cap "
                    f"of {max_contexts}"
                )
            if run.browser_contexts_peak > max_contexts:
                problems.append(
                    f"{where}: the browser listed {run.browser_contexts_peak} "
                    f"contexts at once, above the cap of {max_contexts}"
                )
            if run.contexts_after_pool_close:
                problems.append(
                    f"{where}: {run.contexts_after_pool_close} contexts still open "
                    "after pool.close()"
                )
            if run.pool_close_problems:
                problems.append(
                    f"{where}: the pool reported close problems: "
                    f"{run.pool_close_problems}"
                )
        if run.processes_left_after_browser_close:
            problems.append(
                f"{where}: {run.processes_left_after_browser_close} Chromium "
                f"processes still running {EXIT_TIMEOUT:g} s after browser.close()"
            )
    return problems


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def summarize_pattern(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the medians over the runs of one pattern, and the median series."""

    def median_of(read: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(read(run) for run in runs)

    # Every run samples at the same crawl counts, so the series align point by point.
    points = zip(*(run["series"] for run in runs), strict=True)
    return {
        "crawls_per_second": median_of(lambda run: run["crawls_per_second"]),
        "peak_contexts": median_of(lambda run: run["peak_contexts"]),
        "browser_contexts_peak_max": max(run["browser_contexts_peak"] for run in runs),
        "contexts_created": median_of(lambda run: run["contexts_created"]),
        "start_pss_mib": median_of(lambda run: run["start"]["pss_mib"]),
        "end_pss_mib": median_of(lambda run: run["end"]["pss_mib"]),
        "growth_pss_mib": median_of(
            lambda run: run["end"]["pss_mib"] - run["start"]["pss_mib"]
        ),
        "start_uss_mib": median_of(lambda run: run["start"]["uss_mib"]),
        "end_uss_mib": median_of(lambda run: run["end"]["uss_mib"]),
        "start_renderers": median_of(lambda run: run["start"]["renderers"]),
        "end_renderers": median_of(lambda run: run["end"]["renderers"]),
        "series": [
            {
                "crawls": point[0]["crawls"],
                "pss_mib": statistics.median(sample["pss_mib"] for sample in point),
                "uss_mib": statistics.median(sample["uss_mib"] for sample in point),
                "renderers": statistics.median(sample["renderers"] for sample in point),
            }
            for point in points
        ],
    }


def compute_ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return per-round ratios naive/pool of end PSS and pool/naive of crawls/s."""
    pool = {run["round"]: run for run in runs if run["pattern"] == "pool"}
    naive = {run["round"]: run for run in runs if run["pattern"] == "naive"}
    rounds = sorted(pool.keys() & naive.keys())
    end_pss = [naive[r]["end"]["pss_mib"] / pool[r]["end"]["pss_mib"] for r in rounds]
    speed = [
        pool[r]["crawls_per_second"] / naive[r]["crawls_per_second"] for r in rounds
    ]
    return {
        "end_pss_naive_over_pool": summarize(end_pss),
        "crawls_per_second_pool_over_naive": summarize(speed),
    }


def describe_machine(chromium_version: str, browser_source: str) -> dict[str, Any]:
    return {
        "cpu_model": bench_acquire.cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_total_gib": bench_acquire.memory_total_gib(),
        "os": bench_acquire.os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "playwright": importlib.metadata.version("playwright"),
        "psutil": psutil.__version__,
        "chromium": chromium_version,
        "chromium_source": browser_source,
    }


def print_report(report: dict[str, Any]) -> None:
    print_summary(report["summary"], report["ratios"], report["settings"])
    print()
    print_series(report["summary"])
    print()
    print_machine(report["machine"])
    for problem in report["problems"]:
        print(f"problem: {problem}")


def print_summary(
    summary: dict[str, Any], ratios: dict[str, Any], settings: dict[str, Any]
) -> None:
    print(
        f"medians over {settings['rounds']} rounds of {settings['crawls']} crawls, "
        f"concurrency {settings['concurrency']}, pool cap {settings['max_contexts']}, "
        "memory in MiB"
    )
    header = (
        f"{'pattern':<8} {'crawls/s':>9} {'peak ctx':>9} {'browser max':>12} "
        f"{'created':>8} {'PSS start':>10} {'PSS end':>9} {'growth':>8} {'USS end':>8} "
        f"{'rend. start':>12} {'rend. end':>10}"
    )
    print(header)
    print("-" * len(header))
    for pattern in PATTERNS:
        row = summary[pattern]
        print(
            f"{pattern:<8} {row['crawls_per_second']:>9.2f} "
            f"{row['peak_contexts']:>9g} {row['browser_contexts_peak_max']:>12g} "
            f"{row['contexts_created']:>8g} "
            f"{row['start_pss_mib']:>10.0f} {row['end_pss_mib']:>9.0f} "
            f"{row['growth_pss_mib']:>8.0f} {row['end_uss_mib']:>8.0f} "
            f"{row['start_renderers']:>12g} {row['end_renderers']:>10g}"
        )

    for name, label in (
        ("end_pss_naive_over_pool", "end PSS naive/pool"),
        ("crawls_per_second_pool_over_naive", "crawls/s pool/naive"),
    ):
        ratio = ratios[name]
        print(
            f"  ratio {label}: median {ratio['median']:.2f}x "
            f"(min {ratio['min']:.2f}x, max {ratio['max']:.2f}x)"
        )


def print_series(summary: dict[str, Any]) -> None:
    print("memory in MiB by completed crawls, median over rounds")
    counts = [point["crawls"] for point in summary["pool"]["series"]]
    print(f"{'crawls':<12}" + "".join(f"{count:>7}" for count in counts))
    for pattern in PATTERNS:
        for measure in ("pss", "uss"):
            values = [point[f"{measure}_mib"] for point in summary[pattern]["series"]]
            label = f"{pattern} {measure.upper()}"
            print(f"{label:<12}" + "".join(f"{value:>7.0f}" for value in values))


def print_machine(machine: dict[str, Any]) -> None:
    print(
        f"machine: {machine['cpu_model']}, {machine['cpu_count']} CPUs "
        f"({machine['usable_cpus']} usable), {machine['memory_total_gib']} GiB, "
        f"{machine['os']}, load average {machine['load_average_before']} before "
        f"and {machine['load_average_after']} after"
    )
    print(
        f"python {machine['python']}, playwright {machine['playwright']}, "
        f"chromium {machine['chromium']} ({machine['chromium_source']})"
    )


# -- the SVG plot -----------------------------------------------------------------

COLORS = {"pool": "#1f77b4", "naive": "#d62728"}


def render_svg(report: dict[str, Any]) -> str:
    """Draw PSS over completed crawls: each run as a thin line, each pattern's
    median as a thick one."""
    width, height = 640, 380
    left, right, top, bottom = 64, 110, 36, 48
    runs = report["runs"]
    x_max = max(sample["crawls"] for run in runs for sample in run["series"])
    highest = max(sample["pss_mib"] for run in runs for sample in run["series"])
    y_step = nice_step(highest / 5)
    y_max = y_step * math.ceil(highest / y_step)

    def x(crawls: float) -> float:
        return left + (width - left - right) * crawls / x_max

    def y(mib: float) -> float:
        return height - bottom - (height - top - bottom) * mib / y_max

    def polyline(series: list[dict[str, Any]], color: str, stroke: float) -> str:
        points = " ".join(f"{x(s['crawls']):.1f},{y(s['pss_mib']):.1f}" for s in series)
        return (
            f'<polyline points="{points}" fill="none" stroke="{color}" '
            f'stroke-width="{stroke}" stroke-opacity="{0.35 if stroke < 2 else 1}"/>'
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14">Chromium PSS over completed crawls '
        f"(thin: each round, thick: median)</text>",
    ]
    tick = 0.0
    while tick <= y_max:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{tick:g}</text>"
        )
        tick += y_step
    for crawls in range(0, x_max + 1, nice_step(x_max / 5)):
        parts.append(
            f'<text x="{x(crawls):.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{crawls}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 10}" '
        f'text-anchor="middle">completed crawls</text>'
        f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + height - bottom) / 2})">PSS, MiB</text>'
    )
    for pattern in PATTERNS:
        color = COLORS[pattern]
        for run in runs:
            if run["pattern"] == pattern:
                parts.append(polyline(run["series"], color, 1))
        median = report["summary"][pattern]["series"]
        parts.append(polyline(median, color, 2.5))
        label_y = y(median[-1]["pss_mib"]) + 4
        parts.append(
            f'<text x="{x(x_max) + 8:.1f}" y="{label_y:.1f}" fill="{color}">'
            f"{escape(pattern)} {median[-1]['pss_mib']:.0f} MiB</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def nice_step(rough: float) -> int:
    """Return the smallest 1, 2 or 5 times a power of ten that is >= ``rough``."""
    magnitude = 10 ** max(0, math.floor(math.log10(max(rough, 1))))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= rough:
            return factor * magnitude
    return 10 * magnitude


# -- main -------------------------------------------------------------------------


def load_report(path: Path) -> dict[str, Any]:
    """Read a report written by --json, or this benchmark's part of run_all.py's."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if "benchmarks" in data:
        if "bench_load" not in data["benchmarks"]:
            raise SystemExit(
                f"{path} contains no bench_load results; pass a file that "
                "run_all.py wrote after running bench_load.py"
            )
        data = data["benchmarks"]["bench_load"]
    if "summary" not in data:
        raise SystemExit(
            f"{path} is not a bench_load report because it has no summary; pass a "
            "file written by bench_load.py --json or by run_all.py"
        )
    return data


def build_report(
    args: argparse.Namespace,
    runs: list[Run],
    machine: dict[str, Any],
    http_disconnects: int,
) -> dict[str, Any]:
    run_dicts = [asdict(run) for run in runs]
    return {
        "benchmark": "bench_load",
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "rounds": args.rounds,
            "crawls": args.crawls,
            "concurrency": args.concurrency,
            "max_contexts": args.max_contexts,
            "sample_every": args.sample_every,
            "settle_seconds": SETTLE_SECONDS,
            "signatures": SIGNATURES,
            "pages": list(PAGES),
        },
        "machine": machine,
        "summary": {
            pattern: summarize_pattern(
                [run for run in run_dicts if run["pattern"] == pattern]
            )
            for pattern in PATTERNS
        },
        "ratios": compute_ratios(run_dicts),
        "runs": run_dicts,
        "http_client_disconnects": http_disconnects,
        "problems": find_problems(runs, args.max_contexts),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        report = load_report(args.from_json)
    else:
        load_before = bench_acquire.load_average()
        runs, machine, disconnects = asyncio.run(run_rounds(args))
        machine["load_average_before"] = load_before
        machine["load_average_after"] = bench_acquire.load_average()
        report = build_report(args, runs, machine, disconnects)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    if args.svg is not None:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        args.svg.write_text(render_svg(report), encoding="utf-8")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
