"""Compare reuse of a pooled context with creating and closing a new context.

Every pair runs in one process against one Chromium, in alternating rounds. Each
round times a batch of operations of every variant, and the order of the variants
flips from one round to the next, so machine noise falls on both sides of a pair
alike. For each variant the script prints the median time per operation over the
rounds, with the 10th and 90th percentiles, and for each pair the median of the
per-round ratios direct/pooled. A second table splits each operation into its
steps (acquire, new_context, new_page, release, close).

    .venv/bin/python benchmarks/bench_acquire.py [--rounds N] [--ops N] [--json PATH]

See --help for the other options.

No page navigates anywhere, so every page stays at about:blank.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, sync_playwright

from pytest_ctxleak.launch import find_chromium, launch_chromium
from pytest_ctxleak.pool import ContextPool
from pytest_ctxleak.settings import BROWSER_PATH_ENV

OPTIONS: dict[str, Any] = {"locale": "en-US"}

# Pause before each timed batch, because Chromium keeps tearing down closed pages
# and contexts after close() returns, and calls sent meanwhile wait. In a one-off
# check on the machine in docs/benchmarks.md, a clear_cookies() sent right after a
# page.close() took about 20 ms instead of about 2 ms. Without the pause, that work
# would land on whichever batch runs next.
SETTLE_SECONDS = 0.25

# A timed operation, which runs its steps and returns how long each took, in seconds.
Operation = Callable[[], dict[str, float]]


@dataclass
class Variant:
    """A labeled operation, its batch size, and what each round measured for it."""

    label: str
    run: Operation
    ops: int
    # Mean seconds per operation, one value per round.
    seconds_per_op: list[float] = field(default_factory=list)
    # Step name -> mean seconds of that step per operation, one value per round.
    step_seconds: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Pair:
    """A pooled variant and the direct variant it is compared with."""

    name: str
    pooled: Variant
    direct: Variant
    primary: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=15,
        help="number of alternating rounds (default: 15)",
    )
    parser.add_argument(
        "--ops",
        type=positive_int,
        default=40,
        help="operations per variant in each round, without pages (default: 40)",
    )
    parser.add_argument(
        "--page-ops",
        type=positive_int,
        default=10,
        help=(
            "operations per variant in each round for the variants that open a "
            "page, which are far slower (default: 10)"
        ),
    )
    parser.add_argument(
        "--warmup",
        type=positive_int,
        default=10,
        help="untimed operations per variant before the first round (default: 10)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the results and the machine description to PATH as JSON",
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


# -- the timed operations ---------------------------------------------------------
# Each operation reads the clock between its steps. These extra perf_counter() calls
# cost well under a microsecond per operation, against about a millisecond for the
# fastest operation.


def pooled_acquire(pool: ContextPool) -> Operation:
    def run() -> dict[str, float]:
        start = time.perf_counter()
        with pool.acquire(**OPTIONS):
            acquired = time.perf_counter()
        released = time.perf_counter()
        return {"acquire": acquired - start, "release": released - acquired}

    return run


def pooled_acquire_page(pool: ContextPool) -> Operation:
    def run() -> dict[str, float]:
        start = time.perf_counter()
        with pool.acquire(**OPTIONS) as lease:
            acquired = time.perf_counter()
            lease.new_page()
            opened = time.perf_counter()
        released = time.perf_counter()
        return {
            "acquire": acquired - start,
            "new_page": opened - acquired,
            "release": released - opened,
        }

    return run


def direct_context(browser: Browser) -> Operation:
    def run() -> dict[str, float]:
        start = time.perf_counter()
        context = browser.new_context(**OPTIONS)
        created = time.perf_counter()
        context.close()
        closed = time.perf_counter()
        return {"new_context": created - start, "close": closed - created}

    return run


def direct_context_page(browser: Browser) -> Operation:
    def run() -> dict[str, float]:
        start = time.perf_counter()
        context = browser.new_context(**OPTIONS)
        created = time.perf_counter()
        context.new_page()
        opened = time.perf_counter()
        context.close()
        closed = time.perf_counter()
        return {
            "new_context": created - start,
            "new_page": opened - created,
            "close": closed - opened,
        }

    return run


def round_trip(context: BrowserContext) -> Operation:
    def run() -> dict[str, float]:
        start = time.perf_counter()
        context.clear_cookies()
        return {"clear_cookies": time.perf_counter() - start}

    return run


def make_pairs(
    pool: ContextPool, browser: Browser, ops: int, page_ops: int
) -> list[Pair]:
    return [
        Pair(
            "context",
            Variant("pooled: acquire + release", pooled_acquire(pool), ops),
            Variant("direct: new_context + close", direct_context(browser), ops),
            primary=True,
        ),
        Pair(
            "context + page",
            Variant(
                "pooled: acquire + new_page + release",
                pooled_acquire_page(pool),
                page_ops,
            ),
            Variant(
                "direct: new_context + new_page + close",
                direct_context_page(browser),
                page_ops,
            ),
            primary=False,
        ),
    ]


# -- running ----------------------------------------------------------------------


def run_batch(variant: Variant, ops: int) -> tuple[float, dict[str, float]]:
    """Run ``ops`` operations and return seconds per operation, in total and by step."""
    step_totals: dict[str, float] = {}
    start = time.perf_counter()
    for _ in range(ops):
        for step, seconds in variant.run().items():
            step_totals[step] = step_totals.get(step, 0.0) + seconds
    per_op = (time.perf_counter() - start) / ops
    return per_op, {step: total / ops for step, total in step_totals.items()}


def pooled_context(pool: ContextPool) -> BrowserContext:
    with pool.acquire(**OPTIONS) as lease:
        return lease.context


def run_rounds(
    pairs: list[Pair],
    references: list[Variant],
    pool: ContextPool,
    rounds: int,
    warmup: int,
) -> None:
    """Time every variant in every round, flipping the order each round.

    Raises RuntimeError when the pool stops reusing its one context, because the
    pooled figures would then not measure reuse.
    """
    variants = [v for pair in pairs for v in (pair.pooled, pair.direct)]
    variants += references
    for variant in variants:
        run_batch(variant, warmup)
    warm_context = pooled_context(pool)
    for index in range(rounds):
        order = variants if index % 2 == 0 else variants[::-1]
        for variant in order:
            time.sleep(SETTLE_SECONDS)
            per_op, steps = run_batch(variant, variant.ops)
            variant.seconds_per_op.append(per_op)
            for step, seconds in steps.items():
                variant.step_seconds.setdefault(step, []).append(seconds)
        # Checked between rounds, outside the timing.
        if pooled_context(pool) is not warm_context or pool.open_contexts != 1:
            raise RuntimeError(
                f"after round {index + 1} the pool no longer reuses the context it "
                f"created during warm-up ({pool!r}), so the pooled figures would "
                "not measure reuse. The pytest_ctxleak logger reports failed resets "
                "at INFO level."
            )
        print(f"  round {index + 1}/{rounds} done", file=sys.stderr, flush=True)


# -- statistics and output --------------------------------------------------------


def summarize(values: list[float]) -> dict[str, float]:
    """Return the median and the 10th and 90th percentiles of ``values``."""
    if len(values) == 1:
        return {"median": values[0], "p10": values[0], "p90": values[0]}
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return {
        "median": statistics.median(values),
        "p10": deciles[0],
        "p90": deciles[-1],
    }


def variant_result(variant: Variant) -> dict[str, Any]:
    """Return the per-operation statistics of one variant, in milliseconds."""
    milliseconds = [s * 1000 for s in variant.seconds_per_op]
    stats = summarize(milliseconds)
    return {
        "label": variant.label,
        "ops_per_round": variant.ops,
        "median_ms": stats["median"],
        "p10_ms": stats["p10"],
        "p90_ms": stats["p90"],
        "per_round_ms": milliseconds,
        "step_median_ms": {
            step: statistics.median(values) * 1000
            for step, values in variant.step_seconds.items()
        },
    }


def pair_result(pair: Pair) -> dict[str, Any]:
    # Ratios are taken per round, so each one compares batches that ran back to back.
    ratios = [
        direct / pooled
        for pooled, direct in zip(
            pair.pooled.seconds_per_op, pair.direct.seconds_per_op, strict=True
        )
    ]
    return {
        "name": pair.name,
        "primary": pair.primary,
        "pooled": variant_result(pair.pooled),
        "direct": variant_result(pair.direct),
        "ratio_direct_over_pooled": summarize(ratios),
    }


def describe_machine(browser: Browser, browser_source: str) -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_total_gib": memory_total_gib(),
        "os": os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "playwright": importlib.metadata.version("playwright"),
        "chromium": browser.version,
        "chromium_source": browser_source,
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    kibibytes = int(line.split()[1])
                    return round(kibibytes / 1024**2, 1)
    except OSError:
        pass
    return None


def os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return platform.platform()
    return release.get("PRETTY_NAME", platform.platform())


def load_average() -> list[float] | None:
    """Return the 1, 5 and 15 minute load averages, where the OS reports them."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def print_table(
    results: list[dict[str, Any]],
    references: list[dict[str, Any]],
    machine: dict[str, Any],
) -> None:
    header = f"{'operation':<40} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8}"
    print(header)
    print("-" * len(header))
    for result in results:
        for side in ("pooled", "direct"):
            row = result[side]
            print(
                f"{row['label']:<40} {row['median_ms']:>10.3f} "
                f"{row['p10_ms']:>8.3f} {row['p90_ms']:>8.3f}"
            )
        ratio = result["ratio_direct_over_pooled"]
        role = "" if result["primary"] else " (informative)"
        print(
            f"  ratio direct/pooled, {result['name']}{role}: median "
            f"{ratio['median']:.1f}x (p10 {ratio['p10']:.1f}x, "
            f"p90 {ratio['p90']:.1f}x)"
        )
    for row in references:
        print(
            f"{row['label']:<40} {row['median_ms']:>10.3f} "
            f"{row['p10_ms']:>8.3f} {row['p90_ms']:>8.3f}"
        )
    print()
    print("median ms per step")
    for result in results:
        for side in ("pooled", "direct"):
            row = result[side]
            steps = ", ".join(
                f"{step} {ms:.3f}" for step, ms in row["step_median_ms"].items()
            )
            print(f"  {row['label']:<40} {steps}")
    print()
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    with sync_playwright() as playwright:
        explicit = os.environ.get(BROWSER_PATH_ENV) or None
        bundled = playwright.chromium.executable_path
        browser_source = find_chromium(bundled, explicit).how
        browser = launch_chromium(playwright, explicit)
        try:
            pool = ContextPool(browser)
            try:
                pairs = make_pairs(pool, browser, args.ops, args.page_ops)
                # One round trip to the browser, on a context outside the pool, as
                # a reference for the pooled release step.
                spare = browser.new_context(**OPTIONS)
                references = [
                    Variant(
                        "reference: clear_cookies() alone",
                        round_trip(spare),
                        args.ops,
                    )
                ]
                run_rounds(pairs, references, pool, args.rounds, args.warmup)
                spare.close()
                close_problems = [problem._asdict() for problem in pool.close_problems]
            finally:
                pool.close()
            machine = describe_machine(browser, browser_source)
        finally:
            browser.close()
    machine["load_average_before"] = load_before
    machine["load_average_after"] = load_average()

    results = [pair_result(pair) for pair in pairs]
    reference_results = [variant_result(variant) for variant in references]
    print_table(results, reference_results, machine)
    if close_problems:
        print(f"the pool reported close problems: {close_problems}")
    if args.json is not None:
        report = {
            "benchmark": "bench_acquire",
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": {
                "rounds": args.rounds,
                "ops": args.ops,
                "page_ops": args.page_ops,
                "warmup": args.warmup,
                "context_options": OPTIONS,
            },
            "machine": machine,
            "results": results,
            "references": reference_results,
            "pool_close_problems": close_problems,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if close_problems else 0


if __name__ == "__main__":
    sys.exit(main())
