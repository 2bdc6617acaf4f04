"""The check's record of one test, built where the test ran.

The record is a plain dict set as the ``ctxleak`` attribute of the test's teardown
report. pytest keeps a report's extra attributes when it serializes the report, so
pytest-xdist carries the record from a worker to the controller, and every value in
it must survive a round trip through JSON. The controller reads it back with
``record_of``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_ctxleak.figures import figures_of
from pytest_ctxleak.report import KINDS, Leak
from pytest_ctxleak.sites import Frame, Site
from pytest_ctxleak.watch import CONTEXT, PAGE, Watch

RECORD_ATTRIBUTE = "ctxleak"

# Verdicts of the check on one test. The test's own outcome is kept apart.
PASSED = "passed"  # checked, nothing leaked
LEAKED = "leaked"  # leaks found and the test failed for them
WARNED = "warned"  # leaks found in warn mode
UNCHECKED = "unchecked"  # mode off, check=False, or no record reached the reports
ERROR = "error"  # the check itself failed
CRASHED = "crashed"  # the worker running the test died
VERDICTS = (PASSED, LEAKED, WARNED, UNCHECKED, ERROR, CRASHED)

# Frames of a leak's stack kept in the record; the text report shows fewer.
STACK_DEPTH = 10

Record = dict[str, Any]


def worker_id(config: pytest.Config) -> str | None:
    """Return the pytest-xdist worker id, such as ``gw0``, or None outside xdist."""
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict):
        return str(workerinput.get("workerid"))
    return None


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def display_path(filename: str, rootdir: Path) -> str:
    """Return ``filename`` relative to the rootdir when inside it, else as given."""
    try:
        relative = os.path.relpath(filename, rootdir)
    except ValueError:  # another drive on Windows
        return filename
    if relative.startswith(".."):
        return filename
    return Path(relative).as_posix()


def frame_data(frame: Frame, rootdir: Path) -> dict[str, Any]:
    return {
        "file": display_path(frame.filename, rootdir),
        "line": frame.lineno,
        "function": frame.function,
        "source": frame.source(),
    }


def site_data(site: Site, rootdir: Path) -> dict[str, Any] | None:
    top = site.top
    if top is None:
        return None
    return {
        "file": display_path(top.filename, rootdir),
        "line": top.lineno,
        "function": top.function,
    }


def leak_data(leak: Leak, rootdir: Path) -> dict[str, Any]:
    """Return one finding as JSON-ready data, from the same Leak the text uses."""
    return {
        "kind": leak.kind,
        "count": leak.group_size,
        "message": leak.headline,
        "holder": leak.holder,
        "site": site_data(leak.site, rootdir),
        "stack_title": leak.stack_title,
        "stack": [frame_data(f, rootdir) for f in leak.site.frames[:STACK_DEPTH]],
        "reclaimed": list(leak.reclaimed),
        "details": list(leak.details),
    }


def note_peaks(item: pytest.Item, watch: Watch) -> None:
    """Store the most contexts and pages open at once during the test."""
    figures = figures_of(item)
    figures["peak_contexts"] = watch.peaks.get(CONTEXT, 0)
    figures["peak_pages"] = watch.peaks.get(PAGE, 0)


def build_record(
    item: pytest.Item,
    verdict: str,
    leaks: Sequence[Leak] = (),
    problems: Sequence[str] = (),
    left_open_before: Sequence[str] = (),
    worker: str | None = None,
) -> Record:
    """Return the record; ``worker`` is ``worker_id(item.config)``."""
    rootdir = item.config.rootpath
    return {
        "verdict": verdict,
        "worker": worker,
        "leaks": [leak_data(leak, rootdir) for leak in leaks],
        "problems": list(problems),
        "left_open_before": list(left_open_before),
        # The item's own dict, not a copy: figures that a later makereport hook
        # adds still travel, because xdist serializes the report after every
        # makereport hook has run.
        "figures": figures_of(item),
    }


def leak_counts(record: Record) -> dict[str, int]:
    """Return the leaked leases and objects of a record by kind, every kind listed."""
    counts = dict.fromkeys(KINDS, 0)
    for leak in record.get("leaks", []):
        counts[leak["kind"]] = counts.get(leak["kind"], 0) + int(leak["count"])
    return counts


def record_of(report: pytest.TestReport) -> Record | None:
    record = getattr(report, RECORD_ATTRIBUTE, None)
    return record if isinstance(record, dict) else None
