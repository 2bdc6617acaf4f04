"""The controller's collection of every test's result, from the reports it receives.

With pytest-xdist the reports come from the workers; without it, from this process.
Either way this is the one place the summary, the JSON and the HTML read from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_ctxleak.reports.record import (
    CRASHED,
    UNCHECKED,
    Record,
    record_of,
)

# The test's own outcome, from its setup and call. A leak fails only the teardown.
OUTCOMES = ("passed", "failed", "skipped", "error", "unknown")


@dataclass
class ReportedTest:
    """One test as the reports see it."""

    nodeid: str
    worker: str | None = None
    outcome: str = "unknown"  # one of OUTCOMES
    duration: float = 0.0  # seconds of setup, call and teardown
    record: Record | None = None  # the check's record, or None if none arrived
    crashed: bool = False  # its worker died while running it

    @property
    def verdict(self) -> str:
        if self.crashed:
            return CRASHED
        if self.record is None:
            return UNCHECKED
        return str(self.record["verdict"])

    @property
    def leaks(self) -> list[dict[str, Any]]:
        return list(self.record["leaks"]) if self.record else []

    @property
    def figures(self) -> dict[str, Any]:
        figures = self.record.get("figures") if self.record else None
        return dict(figures) if isinstance(figures, dict) else {}

    def figure(self, key: str) -> int | None:
        """Return an integer figure, or None where it was not measured."""
        value = self.figures.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value

    def process_count(self) -> int | None:
        """Return the browsers' processes after the test, or None if not measured."""
        counts = self.figures.get("processes_after")
        if not isinstance(counts, dict):
            return None
        return sum(int(count) for count in counts.values())


def merge_attempts(earlier: Record, later: Record) -> Record:
    """Return the record of a later run of a test, keeping the earlier findings."""
    return {
        **later,
        "leaks": [*earlier.get("leaks", []), *later.get("leaks", [])],
        "left_open_before": [
            *earlier.get("left_open_before", []),
            *later.get("left_open_before", []),
        ],
        "late_leaks": int(earlier.get("late_leaks", 0))
        + int(later.get("late_leaks", 0)),
    }


def worker_order(worker: str | None) -> tuple[int, str, int]:
    """Return a sort key that puts no worker first, then gw2 before gw10."""
    if worker is None:
        return (0, "", 0)
    prefix = worker.rstrip("0123456789")
    digits = worker[len(prefix) :]
    return (1, prefix, int(digits) if digits else -1)


@dataclass
class RunResults:
    """Every test's result, in the order the controller first heard of it."""

    tests: dict[str, ReportedTest] = field(default_factory=dict)

    def result(self, nodeid: str) -> ReportedTest:
        if nodeid not in self.tests:
            self.tests[nodeid] = ReportedTest(nodeid)
        return self.tests[nodeid]

    def add_report(self, report: pytest.TestReport) -> None:
        """Take in one phase's report of a test."""
        if report.when not in ("setup", "call", "teardown"):
            return  # xdist's report for a crashed test; see add_crash
        result = self.result(report.nodeid)
        result.duration += report.duration
        if report.when == "setup":
            if report.failed:
                result.outcome = "error"
            elif report.skipped:
                result.outcome = "skipped"
        elif report.when == "call":
            result.outcome = report.outcome
        else:
            if result.outcome == "unknown" and report.passed:
                result.outcome = "passed"  # setup passed, no call report
            record = record_of(report)
            if record is not None:
                if result.record:
                    # A rerun plugin runs the test again under the same node id, as
                    # does --keep-duplicates: every attempt's findings stay.
                    record = merge_attempts(result.record, record)
                result.record = record
                result.worker = record.get("worker")

    def add_crash(self, nodeid: str, worker: str | None) -> None:
        result = self.result(nodeid)
        result.crashed = True
        result.outcome = "failed"
        result.worker = worker

    def with_leaks(self) -> list[ReportedTest]:
        return [result for result in self.tests.values() if result.leaks]

    def crashed(self) -> list[ReportedTest]:
        return [result for result in self.tests.values() if result.crashed]

    def records(self) -> list[tuple[str, Record]]:
        return [
            (result.nodeid, result.record)
            for result in self.tests.values()
            if result.record is not None
        ]

    def workers(self) -> list[str | None]:
        """Return the worker ids seen, gw2 before gw10; [None] without xdist."""
        seen = {result.worker for result in self.tests.values()}
        return sorted(seen, key=worker_order)

    def peak(self, key: str, worker: str | None) -> int | None:
        """Return the highest figure ``key`` of one worker's tests, if measured."""
        values = [
            value
            for result in self.tests.values()
            if result.worker == worker and (value := result.figure(key)) is not None
        ]
        return max(values) if values else None
