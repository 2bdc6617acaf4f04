"""Run every benchmark in this folder, collect their results in one JSON file, and
write the figures into docs/benchmarks.md.

    .venv/bin/python benchmarks/run_all.py [--output PATH] [--only NAME ...]
    .venv/bin/python benchmarks/run_all.py --render-only

Each benchmark runs in its own process with its default settings and writes JSON
through its ``--json PATH`` option. With ``--only``, the named benchmarks run and
replace their entries in the existing results file; the others are kept. After a
run, or alone with ``--render-only``, the tables between the ``figures:NAME``
markers of docs/benchmarks.md are rewritten from the results file, so the page and
the figures cannot disagree. To add a benchmark, add its file name to BENCHMARKS,
and a renderer to RENDERERS if the page shows its figures.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent / "docs" / "benchmarks.md"

# Scripts in this folder, run in this order. Each one must accept --json PATH.
BENCHMARKS = [
    "bench_ledger.py",
    "bench_overhead.py",
    "bench_acquire.py",
    "bench_suite.py",
    "bench_load.py",
    "bench_watch.py",
    "bench_procs.py",
]

DEFAULT_OUTPUT = HERE / "results" / "latest.json"


def run_benchmark(script: str, scratch: Path) -> dict[str, Any]:
    """Run one benchmark script and return its JSON report with its exit status.

    A benchmark that exits non-zero is marked failed. Its report is kept when it
    wrote one.
    """
    json_path = scratch / (Path(script).stem + ".json")
    command = [sys.executable, str(HERE / script), "--json", str(json_path)]
    print(f"==> {script}", flush=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    completed = subprocess.run(command, check=False)
    seconds = round(time.perf_counter() - start, 1)
    report: dict[str, Any] = {}
    if json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    report["started_at"] = started
    report["exit_status"] = completed.returncode
    report["failed"] = completed.returncode != 0 or not json_path.exists()
    report["wall_seconds"] = seconds
    if report["failed"]:
        print(
            f"==> {script} failed with exit status {completed.returncode}",
            file=sys.stderr,
        )
    return report


# -- rendering ----------------------------------------------------------------------


def _load(report: dict[str, Any]) -> str:
    before = report.get("load_average_before") or ["?"]
    after = report.get("load_average_after") or ["?"]
    return f"{before[0]} before, {after[0]} after"


def _header(report: dict[str, Any]) -> list[str]:
    machine = report.get("machine", {})
    started = str(report.get("started_at", "?")).replace("T", " ")
    started = started.removesuffix("+00:00")
    return [
        f"Run started {started} UTC, "
        f"{report.get('wall_seconds', '?')} s of wall time, exit status "
        f"{report.get('exit_status', '?')}. Machine: {machine.get('cpu_model', '?')}, "
        f"{machine.get('usable_cpus', '?')} usable CPUs, "
        f"{machine.get('memory_total_gib', '?')} GiB, Python "
        f"{machine.get('python', '?')}. 1-minute load average: {_load(report)}.",
        "",
    ]


def render_overhead(report: dict[str, Any]) -> list[str]:
    test = report["median_test_ms"]
    run = report["median_run_seconds"]
    overheads = report["round_test_overhead_percent"]
    rounds = ", ".join(f"{value:+.1f}%" for value in overheads)
    status = "met" if report["target_met"] else "missed"
    return [
        *_header(report),
        f"{report['tests']} trivial tests, {report['rounds']} runs per side.",
        "",
        "| figure | plugin on | plugin off | overhead |",
        "|---|---:|---:|---:|",
        f"| median test (whole run protocol) | {test['on'] * 1000:.1f} µs "
        f"| {test['off'] * 1000:.1f} µs | {report['test_overhead_percent']:+.1f}% "
        f"({(test['on'] - test['off']) * 1000:+.1f} µs) |",
        f"| median run (wall time) | {run['on']:.2f} s | {run['off']:.2f} s "
        f"| {report['run_overhead_percent']:+.1f}% |",
        "",
        f"Per-round overhead of the median test: {rounds}. Target at most "
        f"{report['target_percent']:g}%: **{status}**.",
    ]


def render_suite(report: dict[str, Any]) -> list[str]:
    test = report["median_test_ms"]
    run = report["median_run_seconds"]
    status = "met" if report["target_met"] else "missed"
    return [
        *_header(report),
        f"{report['tests']} page tests, {report['rounds']} runs per version.",
        "",
        "| figure | `pooled_page` | pytest-playwright `page` | ratio |",
        "|---|---:|---:|---:|",
        f"| median test (whole run protocol) | {test['pooled']:.1f} ms "
        f"| {test['playwright']:.1f} ms | {report['test_ratio']:.2f}x |",
        f"| median run (wall time) | {run['pooled']:.2f} s "
        f"| {run['playwright']:.2f} s | {report['run_ratio']:.2f}x |",
        "",
        f"Target at least {report['target_ratio']:g}x per test: **{status}**. "
        "Every test of every run passed its isolation checks.",
    ]


def render_ledger(report: dict[str, Any]) -> list[str]:
    sizes = [str(size) for size in report["sizes"]]
    lines = [
        *_header(report),
        f"Median µs per cycle over {report['rounds']} rounds of {report['ops']} "
        "cycles. N held contexts plus N idle ones.",
        "",
        "| cycle | " + " | ".join(f"N = {size}" for size in sizes) + " | ratio |",
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    for name, by_size in report["cycles"].items():
        cells = " | ".join(f"{by_size[size]['median_us']:.2f}" for size in sizes)
        ratio = report["ratio_largest_over_smallest"][name]
        lines.append(f"| {name} | {cells} | {ratio:.2f}x |")
    flat = "yes" if report["flat"] else "no"
    lines += [
        "",
        f"Ratio: N = {sizes[-1]} over N = {sizes[0]}. Flat (every ratio at most "
        f"{report['flat_ratio_limit']:g}x): **{flat}**.",
    ]
    return lines


def _machine_line(report: dict[str, Any]) -> list[str]:
    """Describe the run of a benchmark that records less about its machine."""
    seconds = report.get("wall_seconds", "?")
    load = report.get("load_average") or report.get("load_average_before")
    load_text = f", 1-minute load average {load[0]:.1f} at the end" if load else ""
    return [
        f"{seconds} s of wall time, exit status {report.get('exit_status', '?')}"
        f"{load_text}.",
        "",
    ]


def render_watch(report: dict[str, Any]) -> list[str]:
    seconds = report["seconds"]
    cpu = report["cpu_seconds"]
    return [
        *_machine_line(report),
        f"{report['tests']} page tests, {report['rounds']} runs per mode.",
        "",
        "| figure | check on (`fail`) | check off (`off`) | overhead |",
        "|---|---:|---:|---:|",
        f"| median test (setup, call, teardown) | "
        f"{report['median_test_ms_on']:.1f} ms | {report['median_test_ms_off']:.1f} ms "
        f"| {report['test_overhead_percent']:+.1f}% |",
        f"| median CPU time of a run | {report['median_cpu_on']:.2f} s "
        f"| {report['median_cpu_off']:.2f} s "
        f"| {report['cpu_overhead_percent']:+.1f}% |",
        f"| median wall time of a run | {report['median_on']:.2f} s "
        f"| {report['median_off']:.2f} s | {report['overhead_percent']:+.1f}% |",
        "",
        "Runs, check on: "
        + ", ".join(
            f"{wall:.1f} s ({used:.1f} s CPU)"
            for wall, used in zip(seconds["fail"], cpu["fail"], strict=True)
        )
        + ". Check off: "
        + ", ".join(
            f"{wall:.1f} s ({used:.1f} s CPU)"
            for wall, used in zip(seconds["off"], cpu["off"], strict=True)
        )
        + ".",
    ]


def render_procs(report: dict[str, Any]) -> list[str]:
    calls = report["calls"]
    lines = [
        *_machine_line(report),
        f"Median of {calls['calls_per_point']} calls on one browser's tree with N "
        "pages open:",
        "",
        "| pages | renderers | count by type | p90 | count + sum PSS | p90 | PSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pages, point in calls["by_pages"].items():
        lines.append(
            f"| {pages} | {point['process_counts'].get('renderer', 0)} "
            f"| {point['processes_ms']:.2f} ms | {point['processes_p90_ms']:.2f} ms "
            f"| {point['memory_ms']:.1f} ms | {point['memory_p90_ms']:.1f} ms "
            f"| {point['pss_mib']:.0f} MiB |"
        )
    suite = report["suite"]
    lines += [
        "",
        f"A suite of {suite['tests']} page tests, {suite['rounds']} runs per mode:",
        "",
        "| `--ctxleak-measure` | median test | median run |",
        "|---|---:|---:|",
    ]
    for mode, median in suite["median_test_ms"].items():
        run = suite["median_run_seconds"][mode]
        lines.append(f"| `{mode}` | {median:.0f} ms | {run:.1f} s |")
    return lines


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "overhead": render_overhead,
    "suite": render_suite,
    "ledger": render_ledger,
    "watch": render_watch,
    "procs": render_procs,
}


def render_page(combined: dict[str, Any], page: Path = PAGE) -> list[str]:
    """Rewrite each ``figures:NAME`` block of the page from the results.

    Returns the names of the blocks rewritten. A block whose benchmark has no
    results, or failed, is left as it is.
    """
    text = page.read_text(encoding="utf-8")
    written = []
    for name, render in RENDERERS.items():
        report = combined["benchmarks"].get(f"bench_{name}")
        if not report or report.get("failed"):
            continue
        pattern = re.compile(
            rf"(<!-- figures:{name} -->\n).*?(<!-- /figures:{name} -->)", re.DOTALL
        )
        body = "\n".join(render(report)) + "\n"
        text, count = pattern.subn(lambda match, b=body: match[1] + b + match[2], text)
        if count:
            written.append(name)
    page.write_text(text, encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help=f"where to write the combined JSON (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=[Path(script).stem for script in BENCHMARKS],
        help="run only these benchmarks (such as bench_suite) and keep the others' "
        "results from the output file",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing; rewrite docs/benchmarks.md from the output file",
    )
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)

    if args.render_only:
        combined = json.loads(args.output.read_text(encoding="utf-8"))
        written = render_page(combined)
        print(f"==> rewrote {', '.join(written) or 'no'} tables in {PAGE}")
        return 0

    previous: dict[str, Any] = {}
    if args.only and args.output.exists():
        previous = json.loads(args.output.read_text(encoding="utf-8"))["benchmarks"]
    wanted = set(args.only or [])
    scripts = [
        script for script in BENCHMARKS if not wanted or Path(script).stem in wanted
    ]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ctxleak-bench-") as scratch:
        reports = {
            Path(script).stem: run_benchmark(script, Path(scratch))
            for script in scripts
        }
    combined = {
        "started_at": started,
        "command": " ".join(
            [Path(sys.executable).name, "benchmarks/run_all.py", *argv]
        ),
        "benchmarks": {**previous, **reports},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(combined, indent=2) + "\n", encoding="utf-8")
    print(f"==> results written to {args.output}")
    written = render_page(combined)
    print(f"==> rewrote {', '.join(written) or 'no'} tables in {PAGE}")
    failed = [name for name, report in reports.items() if report.get("failed")]
    if failed:
        print(f"==> failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
