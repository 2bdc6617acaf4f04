"""The reports: terminal summary, JSON, HTML, JUnit properties and CI annotations.

Two halves, which are the same process without pytest-xdist:

- Where a test runs, ``attach_record`` puts the check's record of the test (verdict,
  leaks with their sites, figures) on its teardown report, which xdist carries to
  the controller.
- On the controller, ``ReportsPlugin`` gathers the records of every worker, prints
  the summary and the annotations, and writes the JSON and HTML files. Workers
  never write report files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import pytest

from pytest_ctxleak.report import Leak
from pytest_ctxleak.reports.annotations import (
    annotation_lines,
    annotations_enabled,
)
from pytest_ctxleak.reports.html_report import write_html
from pytest_ctxleak.reports.json_report import build_report, write_json
from pytest_ctxleak.reports.junit import add_suite_properties, add_test_properties
from pytest_ctxleak.reports.options import (
    ReportPaths,
    add_report_options,
    resolve_report_paths,
)
from pytest_ctxleak.reports.record import (
    ERROR,
    LEAKED,
    PASSED,
    RECORD_ATTRIBUTE,
    UNCHECKED,
    WARNED,
    build_record,
    is_worker,
    note_peaks,
    worker_id,
)
from pytest_ctxleak.reports.results import RunResults
from pytest_ctxleak.reports.summary import late_leak_count, write_summary
from pytest_ctxleak.verdict import LATE_KEY, RunState

__all__ = [
    "ERROR",
    "LEAKED",
    "PASSED",
    "UNCHECKED",
    "WARNED",
    "ReportsPlugin",
    "add_report_options",
    "attach_record",
    "register_reports",
]

logger = logging.getLogger("pytest_ctxleak")

PLUGIN_NAME = "ctxleak-reports"


class ReportsPlugin:
    """The reports' hooks, registered once per run by the ctxleak plugin."""

    def __init__(self, config: pytest.Config, state: RunState, paths: ReportPaths):
        self.config = config
        self.state = state
        self.paths = paths
        self.results = RunResults()
        self.worker = worker_id(config)
        # How many of state.dirty_on_entry have gone out in a record already.
        self.shipped_on_entry = 0
        # (format, path) of each report written, and (format, error) of each that
        # failed. The format is JSON or HTML.
        self.written: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str]] = []

    # -- where tests run ----------------------------------------------------------

    def new_on_entry(self) -> tuple[list[str], int]:
        """Return the previous holders' leaks noted since the last record, and how
        many of them are objects made for a test after it ended."""
        found = self.state.dirty_on_entry
        if len(found) == self.shipped_on_entry:
            return [], 0  # the usual case; it copies nothing
        entries = list(found.items())[self.shipped_on_entry :]
        self.shipped_on_entry = len(found)
        late = sum(1 for key, _ in entries if key[0] == LATE_KEY)
        return [text for _, text in entries], late

    # -- the controller -----------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add_report(report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(
        self, crashitem: str, report: pytest.TestReport, sched: object
    ) -> None:
        """Keep a test whose pytest-xdist worker died: it has no teardown report."""
        node = getattr(report, "node", None)
        gateway = getattr(node, "gateway", None)
        worker = getattr(gateway, "id", None)
        self.results.add_crash(crashitem, str(worker) if worker else None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # tryfirst: before the junitxml plugin writes its file.
        if is_worker(self.config):
            return
        # Objects made for a test after it ended failed no test, so they fail the
        # run. The records hold them, so under pytest-xdist the controller, whose
        # status is the run's, finds them too.
        fails_run = late_leak_count(self.results) and self.state.settings.mode == "fail"
        if fails_run and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        add_suite_properties(self.config, self.results.records())
        if self.paths.json is None and self.paths.html is None:
            return
        settings = self.state.settings
        data = build_report(
            self.results, int(session.exitstatus), settings.mode, settings.max_contexts
        )
        for report_format, path, write in (
            ("JSON", self.paths.json, write_json),
            ("HTML", self.paths.html, write_html),
        ):
            if path is None:
                continue
            try:
                write(path, data)
            except OSError as error:
                logger.error(
                    "writing the ctxleak %s report failed: %s", report_format, error
                )
                self.failed.append((report_format, f"{path}: {error}"))
            else:
                self.written.append((report_format, str(path)))

    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter
    ) -> None:
        if is_worker(self.config):
            return
        if annotations_enabled(os.environ):
            lines = annotation_lines(
                self.results.records(), self.config.rootpath, os.environ
            )
            for line in lines:
                terminalreporter.write_line(line)
        verbosity = self.config.get_verbosity()
        write_summary(terminalreporter, self.results, verbosity)
        for report_format, path in self.written:
            if verbosity >= 0:
                terminalreporter.write_line(
                    f"ctxleak: {report_format} report written to {path}"
                )
        for report_format, problem in self.failed:
            terminalreporter.write_line(
                f"ctxleak: writing the {report_format} report failed: {problem}",
                red=True,
            )


REPORTS_KEY = pytest.StashKey[ReportsPlugin]()


def register_reports(config: pytest.Config, state: RunState) -> None:
    """Validate the report options and register the reports' hooks."""
    paths = resolve_report_paths(config)
    if REPORTS_KEY not in config.stash:
        plugin = ReportsPlugin(config, state, paths)
        config.stash[REPORTS_KEY] = plugin
        config.pluginmanager.register(plugin, PLUGIN_NAME)


def attach_record(
    item: pytest.Item,
    report: pytest.TestReport,
    verdict: str,
    leaks: Sequence[Leak] = (),
    problems: Sequence[str] = (),
) -> None:
    """Put the check's record of the test on its teardown report."""
    plugin = item.config.stash.get(REPORTS_KEY, None)
    if plugin is None:
        return
    note_peaks(item, plugin.state.watch)
    left_open, late = plugin.new_on_entry()
    record = build_record(item, verdict, leaks, problems, left_open, plugin.worker)
    record["late_leaks"] = late
    setattr(report, RECORD_ATTRIBUTE, record)
    add_test_properties(item.config, report, record)
