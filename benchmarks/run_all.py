"""Run every benchmark, collect the results in one JSON file, and update the docs.

    .venv/bin/python benchmarks/run_all.py [--output PATH] [--only NAME ...]
    .venv/bin/python benchmarks/run_all.py --render-only

Each benchmark runs in its own process with its default settings and writes JSON
through its ``--json PATH`` option. With ``--only``, the named benchmarks run and
replace their entries in the existing results file; the others are kept. After a
run, or alone with ``--render-only``, the tables between the ``figures:NAME``
markers of docs/benchmarks.md are rewritten from the results file, and the memory
plot docs/load-memory.svg is drawn from it, so the page and the figures cannot
disagree. To add a benchmark, add its file name to BENCHMARKS, and a renderer to
RENDERERS if the page shows its figures.
"""

from __future__ import annotations

import argparse
import itertools
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
LOAD_PLOT = HERE.parent / "docs" / "load-memory.svg"

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
    # bench_acquire.py and bench_load.py keep the load averages in "machine".
    machine = report.get("machine", {})
    before = (
        report.get("load_average_before") or machine.get("load_average_before") or ["?"]
    )
    after = report.get("load_average_after") or machine.get("load_average_after")
    after = after or ["?"]
    return f"{before[0]} before, {after[0]} after"


def _utc(timestamp: str) -> str:
    return timestamp.replace("T", " ").removesuffix("+00:00")


def _header(report: dict[str, Any]) -> list[str]:
    machine = report.get("machine", {})
    if "started_at" in report:
        when = f"Run started {_utc(report['started_at'])} UTC"
    else:
        # Results recorded before run_all.py stored each start time.
        when = f"Run finished {_utc(report.get('finished_at', '?'))} UTC"
    return [
        f"{when}, "
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
        *_empty_hooks_lines(test),
        "",
        f"Per-round overhead of the median test: {rounds}. Target at most "
        f"{report['target_percent']:g}%: **{status}**.",
    ]


def _empty_hooks_lines(test: dict[str, float]) -> list[str]:
    """Return the row of the side that loads empty hooks, if the run had one."""
    hooks = test.get("hooks")
    if hooks is None:
        return []
    over = (hooks - test["off"]) / test["off"] * 100
    return [
        f"| median test, the same hooks empty in place of the plugin "
        f"| {hooks * 1000:.1f} µs | {test['off'] * 1000:.1f} µs | {over:+.1f}% "
        f"({(hooks - test['off']) * 1000:+.1f} µs) |",
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


# Target of the reuse benchmark, as docs/benchmarks.md states it. The median over
# rounds of the per-round ratio direct/pooled must be at least this, and
# bench_acquire.py records no target of its own.
ACQUIRE_TARGET_RATIO = 5.0


def _software_line(report: dict[str, Any]) -> list[str]:
    """Describe the system and browser of a benchmark that launches Chromium."""
    machine = report.get("machine", {})
    parts = [
        f"{machine.get('cpu_count', '?')} CPUs in all",
        str(machine.get("os", "?")),
        f"kernel {machine.get('kernel', '?')}",
        f"Playwright {machine.get('playwright', '?')}",
    ]
    if "psutil" in machine:
        parts.append(f"psutil {machine['psutil']}")
    parts.append(
        f"Chromium {machine.get('chromium', '?')} "
        f"({machine.get('chromium_source', '?')})"
    )
    return ["System: " + ", ".join(parts) + ".", ""]


def _join(items: list[str]) -> str:
    """Join items as a sentence does: "a", "a and b", "a, b and c"."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _span(values: list[float], spec: str, unit: str = "") -> str:
    """Format the range of values, or the one value when they are all equal."""
    low = format(min(values), spec) + unit
    high = format(max(values), spec) + unit
    return low if low == high else f"{low} to {high}"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def render_acquire(report: dict[str, Any]) -> list[str]:
    settings = report["settings"]
    primary = next(pair for pair in report["results"] if pair["primary"])
    reference = report["references"][0]
    return [
        *_header(report),
        *_software_line(report),
        *_acquire_status(primary, settings["rounds"]),
        "",
        f"{settings['rounds']} rounds, {settings['ops']} operations per variant per "
        f"round ({settings['page_ops']} for the variants that open a page), and "
        f"{settings['warmup']} warm-up operations per variant. Times are per "
        "operation, and the percentiles are taken across rounds.",
        "",
        *_acquire_tables(report),
        "",
        *_acquire_round_trips(primary, reference),
        "",
        *_acquire_rounds_below(primary, reference),
    ]


def _round_ratios(pair: dict[str, Any]) -> list[float]:
    """Return the ratio direct/pooled of each round, as bench_acquire.py takes it."""
    return [
        direct / pooled
        for pooled, direct in zip(
            pair["pooled"]["per_round_ms"], pair["direct"]["per_round_ms"], strict=True
        )
    ]


def _acquire_status(pair: dict[str, Any], rounds: int) -> list[str]:
    median = pair["ratio_direct_over_pooled"]["median"]
    below = [ratio for ratio in _round_ratios(pair) if ratio < ACQUIRE_TARGET_RATIO]
    if median < ACQUIRE_TARGET_RATIO:
        status = "missed"
    elif below:
        status = "met at the median, not in every round"
    else:
        status = "met in every round"
    line = (
        f"**Status: {status}.** The median ratio is {median:.1f}x, "
        f"{median / ACQUIRE_TARGET_RATIO:.1f} times the target of "
        f"{ACQUIRE_TARGET_RATIO:g}x."
    )
    if below:
        values = _join([f"{ratio:.1f}x" for ratio in below])
        line += (
            f" In {len(below)} of the {rounds} rounds the ratio fell below "
            f"{ACQUIRE_TARGET_RATIO:g}x ({values})."
        )
    return [line]


def _acquire_tables(report: dict[str, Any]) -> list[str]:
    """Return the tables of times per operation, ratios and step times."""
    lines = [
        "| operation | median ms | p10 ms | p90 ms |",
        "|---|---:|---:|---:|",
    ]
    variants = []
    for pair in report["results"]:
        role = "" if pair["primary"] else " (informative)"
        variants += [(pair["pooled"], role), (pair["direct"], role)]
    variants += [(row, ", one round trip") for row in report["references"]]
    for row, suffix in variants:
        # Code spans for calls such as clear_cookies() in the label.
        label = re.sub(r"(\w+\(\))", r"`\1`", row["label"]) + suffix
        digits = 2 if row["median_ms"] < 10 else 1
        cells = " | ".join(
            f"{row[key]:.{digits}f}" for key in ("median_ms", "p10_ms", "p90_ms")
        )
        lines.append(f"| {label} | {cells} |")
    lines += [
        "",
        "| ratio direct/pooled | median | p10 | p90 |",
        "|---|---:|---:|---:|",
    ]
    for pair in report["results"]:
        ratio = pair["ratio_direct_over_pooled"]
        role = " (the target)" if pair["primary"] else " (informative)"
        lines.append(
            f"| {pair['name']}{role} | {ratio['median']:.1f}x | {ratio['p10']:.1f}x "
            f"| {ratio['p90']:.1f}x |"
        )
    lines += [
        "",
        "Median time of each step, in ms:",
        "",
        "| operation | steps |",
        "|---|---|",
    ]
    for pair in report["results"]:
        for side in ("pooled", "direct"):
            row = pair[side]
            steps = ", ".join(
                f"{step} {_ms(ms)}" for step, ms in row["step_median_ms"].items()
            )
            lines.append(f"| {row['label']} | {steps} |")
    return lines


def _acquire_round_trips(pair: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """Express the step times of the target pair in round trips of the reference."""
    trip = reference["median_ms"]
    counts = ", ".join(
        f"{side} {step} {ms / trip:.1f}"
        for side in ("pooled", "direct")
        for step, ms in pair[side]["step_median_ms"].items()
    )
    return [
        f"Steps of the {pair['name']} pair in round trips (step median over the "
        f"median of `clear_cookies()` alone, {trip:.2f} ms): {counts}.",
    ]


def _acquire_rounds_below(pair: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """Describe each round whose ratio fell below the target, against the others."""
    ratios = _round_ratios(pair)
    below = [
        index for index, ratio in enumerate(ratios) if ratio < ACQUIRE_TARGET_RATIO
    ]
    lines = ["#### Rounds below the target", ""]
    if not below:
        return [
            *lines,
            f"None: the ratio was {_span(ratios, '.1f', 'x')} over the {len(ratios)} "
            "rounds.",
        ]

    lines += [
        "Time per operation of each batch, in ms:",
        "",
        "| rounds | ratio | pooled | direct | `clear_cookies()` alone |",
        "|---|---:|---:|---:|---:|",
        *_batch_rows(pair, reference, below),
    ]
    ops = pair["pooled"]["ops_per_round"]
    batch_ms = ops * pair["pooled"]["median_ms"]
    lines += [
        "",
        f"A pooled batch of {ops} operations lasts about {batch_ms:.0f} ms at the "
        "median, so a short pause in either process can raise a whole batch's mean. "
        "The benchmark does not show what slowed these batches. A larger `--ops` "
        "would spread such a pause over more operations.",
    ]
    return lines


def _batch_rows(
    pair: dict[str, Any], reference: dict[str, Any], below: list[int]
) -> list[str]:
    """Return a row for each round in ``below``, then rows of ranges over rounds."""
    ratios = _round_ratios(pair)
    pooled = pair["pooled"]["per_round_ms"]
    direct = pair["direct"]["per_round_ms"]
    trips = reference["per_round_ms"]
    rows = []
    for index in below:
        pooled_cell = f"{pooled[index]:.2f}"
        if pooled[index] == max(pooled):
            pooled_cell += ", the slowest of the run"
        direct_cell = f"{direct[index]:.2f}"
        if direct[index] == min(direct):
            direct_cell += ", the fastest of the run"
        rows.append(
            f"| {index + 1} | {ratios[index]:.1f}x | {pooled_cell} | {direct_cell} "
            f"| {trips[index]:.2f} |"
        )

    others = [index for index in range(len(ratios)) if index not in below]
    for label, indexes in (
        (f"the other {len(others)}", others),
        (f"all {len(ratios)}", list(range(len(ratios)))),
    ):
        if not indexes:
            continue
        rows.append(
            f"| {label} | {_span([ratios[i] for i in indexes], '.1f', 'x')} "
            f"| {_span([pooled[i] for i in indexes], '.2f')} "
            f"| {_span([direct[i] for i in indexes], '.2f')} "
            f"| {_span([trips[i] for i in indexes], '.2f')} |"
        )
    return rows


def render_load(report: dict[str, Any]) -> list[str]:
    settings = report["settings"]
    return [
        *_header(report),
        *_software_line(report),
        f"{settings['rounds']} rounds of {settings['crawls']} crawls per pattern, "
        f"{settings['concurrency']} at a time, pool cap {settings['max_contexts']}. "
        f"{_load_order(report['runs'])} Medians over the {settings['rounds']} "
        "rounds, memory in MiB:",
        "",
        *_load_medians(report["summary"]),
        "",
        "Every round:",
        "",
        *_load_rounds(report["runs"]),
        "",
        "The medians of the per-round ratios are "
        f"{report['ratios']['end_pss_naive_over_pool']['median']:.2f}x for end PSS "
        "(naive/pool) and "
        f"{report['ratios']['crawls_per_second_pool_over_naive']['median']:.2f}x "
        "for crawls per second (pool/naive).",
        "",
        *_load_series(report),
        "",
        *_load_findings(report),
    ]


def _runs_of(runs: list[dict[str, Any]], pattern: str) -> list[dict[str, Any]]:
    return sorted(
        (run for run in runs if run["pattern"] == pattern),
        key=lambda run: run["round"],
    )


def _first_patterns(runs: list[dict[str, Any]]) -> dict[int, str]:
    """Return round -> the pattern that ran first in it, from runs in run order."""
    first: dict[int, str] = {}
    for run in runs:
        first.setdefault(run["round"], run["pattern"])
    return first


def _load_order(runs: list[dict[str, Any]]) -> str:
    first = _first_patterns(runs)
    parts = []
    for pattern in ("pool", "naive"):
        rounds = [str(number) for number, name in first.items() if name == pattern]
        if rounds:
            noun = "round" if len(rounds) == 1 else "rounds"
            parts.append(f"{pattern} first in {noun} {_join(rounds)}")
    return f"Order of the patterns: {', '.join(parts)}."


def _load_medians(summary: dict[str, Any]) -> list[str]:
    lines = [
        "| pattern | crawls/s | peak open contexts | contexts created | PSS start "
        "| PSS end | PSS growth | USS end | renderers start | renderers end |",
        "|---|" + "---:|" * 9,
    ]
    for pattern in ("pool", "naive"):
        row = summary[pattern]
        peak = f"{row['peak_contexts']:g}"
        if pattern == "pool":
            # The naive pattern's peak is already the browser's own count.
            peak = (
                f"{peak} (ledger), {row['browser_contexts_peak_max']:g} (browser, max)"
            )
        lines.append(
            f"| {pattern} | {row['crawls_per_second']:.2f} | {peak} "
            f"| {row['contexts_created']:g} | {row['start_pss_mib']:.0f} "
            f"| {row['end_pss_mib']:.0f} | {row['growth_pss_mib']:.0f} "
            f"| {row['end_uss_mib']:.0f} | {row['start_renderers']:g} "
            f"| {row['end_renderers']:g} |"
        )
    return lines


def _load_rounds(runs: list[dict[str, Any]]) -> list[str]:
    first = _first_patterns(runs)
    lines = [
        "| round | pool crawls/s | naive crawls/s | pool/naive crawls/s | pool end PSS "
        "| naive end PSS | naive/pool end PSS |",
        "|---|" + "---:|" * 6,
    ]
    for pool, naive in zip(
        _runs_of(runs, "pool"), _runs_of(runs, "naive"), strict=True
    ):
        pool_rate = pool["crawls_per_second"]
        naive_rate = naive["crawls_per_second"]
        pool_end = pool["end"]["pss_mib"]
        naive_end = naive["end"]["pss_mib"]
        lines.append(
            f"| {pool['round']} ({first[pool['round']]} first) | {pool_rate:.2f} "
            f"| {naive_rate:.2f} | {pool_rate / naive_rate:.2f}x | {pool_end:.0f} "
            f"| {naive_end:.0f} | {naive_end / pool_end:.2f}x |"
        )
    return lines


def _load_series(report: dict[str, Any]) -> list[str]:
    summary = report["summary"]
    counts = [point["crawls"] for point in summary["pool"]["series"]]
    lines = [
        "Memory by completed crawls, median over the rounds, in MiB. The column at "
        f'{counts[-1]} is taken right after the last crawl, and the "end" column '
        f"above {report['settings']['settle_seconds']:g} s later.",
        "",
        "| crawls | " + " | ".join(str(count) for count in counts) + " |",
        "|---|" + "---:|" * len(counts),
    ]
    for pattern in ("pool", "naive"):
        series = summary[pattern]["series"]
        for key, label, spec in (
            ("pss_mib", "PSS", ".0f"),
            ("uss_mib", "USS", ".0f"),
            ("renderers", "renderers", "g"),
        ):
            cells = " | ".join(format(point[key], spec) for point in series)
            lines.append(f"| {pattern} {label} | {cells} |")
    return lines


def _spread(
    runs: list[dict[str, Any]], read: Callable[[dict[str, Any]], float], spec: str
) -> str:
    """Format the range of one figure over the runs."""
    return _span([read(run) for run in runs], spec)


def _in_rounds(count: int, total: int) -> str:
    if count == total:
        return "in every round"
    if count == 0:
        return "in no round"
    return f"in {count} of {total} rounds"


def _load_findings(report: dict[str, Any]) -> list[str]:
    """Return the figures that the page's explanations refer to, one per item."""
    runs = report["runs"]
    pool_runs = _runs_of(runs, "pool")
    naive_runs = _runs_of(runs, "naive")
    return [
        _naive_growth(report, naive_runs),
        _pool_band(report, pool_runs),
        _throughput(pool_runs, naive_runs),
        _cap_checks(report, pool_runs),
        _start_samples(runs, pool_runs, naive_runs),
        _time_spent(report, pool_runs, naive_runs),
    ]


def _naive_growth(report: dict[str, Any], naive_runs: list[dict[str, Any]]) -> str:
    settings = report["settings"]
    naive = report["summary"]["naive"]
    steps = [
        later["pss_mib"] - earlier["pss_mib"]
        for earlier, later in itertools.pairwise(naive["series"])
    ]
    uss_share = (naive["end_uss_mib"] - naive["start_uss_mib"]) / (
        naive["end_pss_mib"] - naive["start_pss_mib"]
    )
    per_context = naive["growth_pss_mib"] / naive["contexts_created"]
    end_pss = _spread(naive_runs, lambda run: run["end"]["pss_mib"], ".0f")
    return (
        f"- **Naive**: PSS went from {naive['start_pss_mib']:.0f} to "
        f"{naive['end_pss_mib']:.0f} MiB over {settings['crawls']} crawls (medians), "
        f"{per_context:.0f} MiB per context never closed, by {_span(steps, '.0f')} MiB "
        f"per {settings['sample_every']} crawls in the median series. USS went from "
        f"{naive['start_uss_mib']:.0f} to {naive['end_uss_mib']:.0f} MiB, "
        f"{uss_share:.0%} of the PSS growth. At the end the browser held "
        f"{naive['peak_contexts']:g} contexts, since none is closed, and "
        f"{naive['end_renderers']:g} renderer processes. End PSS across rounds: "
        f"{end_pss} MiB."
    )


def _pool_band(report: dict[str, Any], pool_runs: list[dict[str, Any]]) -> str:
    # Samples taken after the first crawl and before the last one.
    inner = [
        sample
        for run in pool_runs
        for sample in run["series"]
        if 0 < sample["crawls"] < run["crawls"]
    ]
    left = _spread(pool_runs, lambda run: run["end"]["renderers"], "g")
    noun = "renderer" if left == "1" else "renderers"
    end_pss = _spread(pool_runs, lambda run: run["end"]["pss_mib"], ".0f")
    return (
        f"- **Pool**: from crawl {min(s['crawls'] for s in inner)} to crawl "
        f"{max(s['crawls'] for s in inner)}, every sample of every round was between "
        f"{min(s['pss_mib'] for s in inner):.0f} and "
        f"{max(s['pss_mib'] for s in inner):.0f} MiB PSS, with "
        f"{_span([s['renderers'] for s in inner], 'g')} renderers. "
        f"{report['settings']['settle_seconds']:g} s after the last crawl, with "
        f"{left} {noun} left, PSS was {end_pss} MiB."
    )


def _throughput(
    pool_runs: list[dict[str, Any]], naive_runs: list[dict[str, Any]]
) -> str:
    ratios = [
        pool["crawls_per_second"] / naive["crawls_per_second"]
        for pool, naive in zip(pool_runs, naive_runs, strict=True)
    ]
    faster = _in_rounds(sum(ratio > 1 for ratio in ratios), len(ratios))
    pool_rate = _spread(pool_runs, lambda run: run["crawls_per_second"], ".2f")
    naive_rate = _spread(naive_runs, lambda run: run["crawls_per_second"], ".2f")
    return (
        f"- **Throughput**: the pool was faster {faster} (pool/naive "
        f"{_span(ratios, '.2f', 'x')}). Its rate was {pool_rate} crawls per second, "
        f"the naive pattern's {naive_rate}."
    )


def _cap_checks(report: dict[str, Any], pool_runs: list[dict[str, Any]]) -> str:
    browser_peaks = _join([str(run["browser_contexts_peak"]) for run in pool_runs])
    ledger_peaks = _join([str(run["peak_contexts"]) for run in pool_runs])
    problems = report["problems"]
    if problems:
        checks = "Failed checks: " + "; ".join(problems) + "."
    else:
        checks = (
            "Every check passed: no context remained after `pool.close()`, the pool "
            "reported no close problems, and every Chromium process exited after "
            "`browser.close()`."
        )
    return (
        f"- **Cap**: in the pool rounds the max of `len(browser.contexts)` was "
        f"{browser_peaks} against the cap of {report['settings']['max_contexts']}, "
        f"and the ledger's `occupied_peak` {ledger_peaks}. {checks}"
    )


def _start_samples(
    runs: list[dict[str, Any]],
    pool_runs: list[dict[str, Any]],
    naive_runs: list[dict[str, Any]],
) -> str:
    lower = sum(
        pool["start"]["pss_mib"] < naive["start"]["pss_mib"]
        for pool, naive in zip(pool_runs, naive_runs, strict=True)
    )

    def start(group: list[dict[str, Any]], key: str, spec: str = ".0f") -> str:
        return _spread(group, lambda run: run["start"][key], spec)

    return (
        f"- **Start samples**: the pool's browser started lower than the naive one "
        f"{_in_rounds(lower, len(pool_runs))}, at {start(pool_runs, 'pss_mib')} "
        f"against {start(naive_runs, 'pss_mib')} MiB PSS, and "
        f"{start(pool_runs, 'uss_mib')} against {start(naive_runs, 'uss_mib')} MiB "
        f"USS. Each side had {start(runs, 'processes', 'g')} processes and "
        f"{start(runs, 'renderers', 'g')} renderers then. Over all {len(runs)} runs "
        f"the start PSS was {start(runs, 'pss_mib')} MiB and the start USS "
        f"{start(runs, 'uss_mib')} MiB."
    )


def _time_spent(
    report: dict[str, Any],
    pool_runs: list[dict[str, Any]],
    naive_runs: list[dict[str, Any]],
) -> str:
    runs = report["runs"]
    crawling = sum(run["crawl_seconds"] for run in runs)
    sampling = sum(run["sampling_seconds"] for run in runs)
    processes = max(
        sample["processes"] for run in runs for sample in [*run["series"], run["end"]]
    )
    pool_sampling = _spread(pool_runs, lambda run: run["sampling_seconds"], ".1f")
    naive_sampling = _spread(naive_runs, lambda run: run["sampling_seconds"], ".0f")
    return (
        f"- **Time**: of {report.get('wall_seconds', '?')} s of wall time, "
        f"{crawling:.0f} s went to crawling and {sampling:.0f} s to memory samples. "
        "The rest went to launching, settling and closing the browsers. The samples "
        f"took {pool_sampling} s per pool run and {naive_sampling} s per naive run, "
        f"with up to {processes} processes to read."
    )


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "overhead": render_overhead,
    "suite": render_suite,
    "ledger": render_ledger,
    "watch": render_watch,
    "procs": render_procs,
    "acquire": render_acquire,
    "load": render_load,
}


# The continuous-load target: after the first 10 crawls have warmed the pool up,
# its browser's PSS stays within this factor of the sample at 10 crawls.
LOAD_FLAT_FACTOR = 1.5

TARGET_ROWS = (
    (
        "bench_overhead",
        "per-test overhead on 2,000 trivial tests, plugin on against `-p no:ctxleak`",
        "at most 3%",
        "[overhead](#per-test-overhead-without-a-browser)",
    ),
    (
        "bench_acquire",
        "pooled acquire + release against `new_context()` + `close()`",
        "at least 5x faster",
        "[reuse](#pooled-acquire-and-release-against-a-new-context)",
    ),
    (
        "bench_suite",
        "30 page tests on `pooled_page` against pytest-playwright's `page`",
        "at least 2x faster, isolation intact",
        "[page suite](#a-page-suite-pooled_page-against-pytest-playwrights-page)",
    ),
    (
        "bench_load",
        "continuous load: Chromium memory, pool against contexts never closed",
        f"the pool's PSS stays within {LOAD_FLAT_FACTOR:g}x of its value at 10 crawls",
        "[continuous load]"
        "(#continuous-load-the-pool-against-contexts-that-are-never-closed)",
    ),
    (
        "bench_ledger",
        "bookkeeping per acquire and release, 10 to 10,000 contexts held",
        "flat",
        "[bookkeeping](#bookkeeping-cost-as-the-pool-grows)",
    ),
)


def target_status(name: str, report: dict[str, Any]) -> str:
    """Return the status cell of one target: met or missed, with its figure."""
    if name == "bench_overhead":
        met = "met" if report["target_met"] else "missed"
        return f"{met} ({report['test_overhead_percent']:+.1f}%)"
    if name == "bench_acquire":
        primary = next(pair for pair in report["results"] if pair["primary"])
        median = primary["ratio_direct_over_pooled"]["median"]
        if median < ACQUIRE_TARGET_RATIO:
            return f"missed ({median:.1f}x)"
        below = [r for r in _round_ratios(primary) if r < ACQUIRE_TARGET_RATIO]
        where = "at the median" if below else "in every round"
        return f"met {where} ({median:.1f}x)"
    if name == "bench_suite":
        met = "met" if report["target_met"] else "missed"
        return f"{met} ({report['test_ratio']:.2f}x); isolation intact"
    if name == "bench_load":
        series = report["summary"]["pool"]["series"]
        warm = [sample["pss_mib"] for sample in series if sample["crawls"] >= 10]
        top = max(warm) / warm[0]
        met = "met" if top <= LOAD_FLAT_FACTOR else "missed"
        return f"{met} (at most {top:.2f}x)"
    return "met" if report["flat"] else "missed"


def render_targets(combined: dict[str, Any]) -> list[str]:
    """Return the table of targets, each with its status in the latest results."""
    lines = [
        "| comparison | target | status | section |",
        "|---|---|---|---|",
    ]
    for name, comparison, target, section in TARGET_ROWS:
        report = combined["benchmarks"].get(name)
        if not report or report.get("failed"):
            status = "no results"
        else:
            status = target_status(name, report)
        lines.append(f"| {comparison} | {target} | {status} | {section} |")
    return lines


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
    pattern = re.compile(
        r"(<!-- figures:targets -->\n).*?(<!-- /figures:targets -->)", re.DOTALL
    )
    body = "\n".join(render_targets(combined)) + "\n"
    text, count = pattern.subn(lambda match: match[1] + body + match[2], text)
    if count:
        written.append("targets")
    page.write_text(text, encoding="utf-8")
    return written


def draw_load_plot(combined: dict[str, Any], path: Path = LOAD_PLOT) -> bool:
    """Draw the memory plot of bench_load.py from the results, as its --svg does.

    Returns whether it drew one. Like a page block, the plot is left as it is
    when bench_load has no results or failed.
    """
    report = combined["benchmarks"].get("bench_load")
    if not report or report.get("failed"):
        return False
    # Imported here because bench_load imports Playwright and psutil, and is found
    # only when this file runs as a script from its folder.
    import bench_load

    path.write_text(bench_load.render_svg(report), encoding="utf-8")
    return True


def render_all(combined: dict[str, Any]) -> None:
    """Rewrite the page's blocks and draw the plot, and print what was written."""
    written = render_page(combined)
    print(f"==> rewrote {', '.join(written) or 'no'} tables in {PAGE}")
    if draw_load_plot(combined):
        print(f"==> drew {LOAD_PLOT}")


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
        help="run nothing; rewrite docs/benchmarks.md and docs/load-memory.svg "
        "from the output file",
    )
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)

    if args.render_only:
        combined = json.loads(args.output.read_text(encoding="utf-8"))
        render_all(combined)
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
    render_all(combined)
    failed = [name for name, report in reports.items() if report.get("failed")]
    if failed:
        print(f"==> failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
