"""Helpers the benchmarks share: the machine's description and timed pytest runs."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# A pytest plugin, loaded with -p, that times every test's whole run protocol
# (setup, call, teardown and the hooks around them) and writes the times to the
# JSON file named by $CTXLEAK_BENCH_TIMES. JUnit XML keeps only milliseconds, too
# coarse for tests that take a fraction of one.
TIMING_PLUGIN = """
import json
import os
import time

import pytest

_times = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _times.append(time.perf_counter() - start)


def pytest_sessionfinish(session):
    with open(os.environ["CTXLEAK_BENCH_TIMES"], "w", encoding="utf-8") as out:
        json.dump(_times, out)
"""

TIMING_PLUGIN_MODULE = "ctxleak_bench_timing"


def write_timing_plugin(folder: Path) -> None:
    """Write the timing plugin into ``folder``, which must be on the run's path."""
    path = folder / f"{TIMING_PLUGIN_MODULE}.py"
    path.write_text(TIMING_PLUGIN, encoding="utf-8")


class RunResult:
    """One pytest run: its wall time and every test's protocol time, in seconds."""

    def __init__(self, wall_seconds: float, test_seconds: list[float]) -> None:
        self.wall_seconds = wall_seconds
        self.test_seconds = test_seconds


def run_pytest(folder: Path, arguments: list[str], label: str) -> RunResult:
    """Run pytest in ``folder`` with the timing plugin; stop the script if it fails."""
    times_path = folder / f"times-{label}.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        TIMING_PLUGIN_MODULE,
        *arguments,
    ]
    environment = dict(os.environ)
    environment["CTXLEAK_BENCH_TIMES"] = str(times_path)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(folder), environment.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    start = time.perf_counter()
    completed = subprocess.run(
        command, cwd=folder, capture_output=True, text=True, env=environment
    )
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(
            f"the suite failed ({label}, exit status {completed.returncode}):\n"
            f"{completed.stdout[-4000:]}\n{completed.stderr[-2000:]}"
        )
    tests = json.loads(times_path.read_text(encoding="utf-8"))
    return RunResult(wall, tests)


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def percent_over(on: float, off: float) -> float:
    """Return how much larger ``on`` is than ``off``, in percent of ``off``."""
    return (on - off) / off * 100


def describe_machine() -> dict[str, Any]:
    """Describe the CPU, memory, OS and versions the figures were taken on."""
    versions = {}
    for package in ("pytest", "playwright", "pytest-playwright"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_total_gib": memory_total_gib(),
        "os": os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **versions,
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


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
