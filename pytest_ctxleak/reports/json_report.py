"""The JSON report: every test's verdict, leaks and figures, in one file.

The file follows the JSON Schema shipped in the package, ``schema/report-1.json``,
whose number is the report's ``version``. A new optional field keeps the version.
A removed, renamed or retyped field, or a new required one, gets a new schema file
and version.
"""

from __future__ import annotations

import datetime
import json
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from pytest_ctxleak.reports.record import (
    CRASHED,
    LEAKED,
    WARNED,
)
from pytest_ctxleak.reports.results import ReportedTest, RunResults

VERSION = 1
SCHEMA_FILE = f"report-{VERSION}.json"


def load_schema() -> dict[str, Any]:
    """Return the JSON Schema of this version of the report."""
    text = resources.files("pytest_ctxleak").joinpath("schema").joinpath(SCHEMA_FILE)
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


def _package_version() -> str:
    try:
        return metadata.version("pytest-ctxleak")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def result_data(result: ReportedTest) -> dict[str, Any]:
    record = result.record or {}
    return {
        "nodeid": result.nodeid,
        "worker": result.worker,
        "outcome": result.outcome,
        "verdict": result.verdict,
        "duration": round(result.duration, 6),
        "leaks": result.leaks,
        "problems": list(record.get("problems", [])),
        "left_open_before": list(record.get("left_open_before", [])),
        "figures": result.figures,
    }


def build_report(
    results: RunResults, exit_status: int, mode: str, max_contexts: int
) -> dict[str, Any]:
    tests = list(results.tests.values())
    verdicts = [result.verdict for result in tests]
    workers = []
    for worker in results.workers():
        workers.append(
            {
                "id": worker,
                "tests": sum(1 for result in tests if result.worker == worker),
                "peak_contexts": results.peak("peak_contexts", worker),
                "peak_pages": results.peak("peak_pages", worker),
            }
        )
    return {
        "version": VERSION,
        "generator": {"name": "pytest-ctxleak", "version": _package_version()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "exit_status": exit_status,
        "mode": mode,
        "max_contexts": max_contexts,
        "totals": {
            "tests": len(tests),
            "leaked": verdicts.count(LEAKED),
            "warned": verdicts.count(WARNED),
            "crashed": verdicts.count(CRASHED),
            "findings": sum(len(result.leaks) for result in tests),
        },
        "workers": workers,
        "tests": [result_data(result) for result in tests],
    }


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
