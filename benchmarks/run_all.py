"""Run every benchmark in this folder and collect their results in one JSON file.

    .venv/bin/python benchmarks/run_all.py [--output PATH]

Each benchmark runs in its own process with its default settings and writes JSON
through its ``--json PATH`` option. To add a benchmark, add its file name to
BENCHMARKS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Scripts in this folder, run in this order. Each one must accept --json PATH.
BENCHMARKS = [
    "bench_acquire.py",
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
    start = time.perf_counter()
    completed = subprocess.run(command, check=False)
    seconds = round(time.perf_counter() - start, 1)
    report: dict[str, Any] = {}
    if json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    report["exit_status"] = completed.returncode
    report["failed"] = completed.returncode != 0 or not json_path.exists()
    report["wall_seconds"] = seconds
    if report["failed"]:
        print(
            f"==> {script} failed with exit status {completed.returncode}",
            file=sys.stderr,
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help=f"where to write the combined JSON (default: {DEFAULT_OUTPUT})",
    )
    if argv is None:
        argv = sys.argv[1:]
    args = parser.parse_args(argv)

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ctxleak-bench-") as scratch:
        reports = {
            Path(script).stem: run_benchmark(script, Path(scratch))
            for script in BENCHMARKS
        }
    combined = {
        "started_at": started,
        "command": " ".join(
            [Path(sys.executable).name, "benchmarks/run_all.py", *argv]
        ),
        "benchmarks": reports,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(combined, indent=2) + "\n", encoding="utf-8")
    print(f"==> results written to {args.output}")
    failed = [name for name, report in reports.items() if report.get("failed")]
    if failed:
        print(f"==> failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
