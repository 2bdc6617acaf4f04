"""Leak counts in pytest's JUnit XML.

Each checked test gets properties with its verdict and leak counts by kind. JUnit's
xunit2 schema, pytest's default family, allows no properties inside a testcase (pytest
warns about ``record_property`` there for that reason), so these per-test properties
are written only for the ``xunit1`` and ``legacy`` families. Every family gets
properties on the test suite: the totals, and one property per leaking test.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from _pytest.junitxml import xml_key

from pytest_ctxleak.reports.record import Record, leak_counts

PREFIX = "ctxleak_"
FAMILIES_WITH_TESTCASE_PROPERTIES = ("xunit1", "legacy")


def junit_family(config: pytest.Config) -> str | None:
    try:
        return str(config.getini("junit_family"))
    except ValueError:  # the junitxml plugin is disabled
        return None


def add_test_properties(
    config: pytest.Config, report: pytest.TestReport, record: Record
) -> None:
    """Add the test's verdict and leak counts to its teardown report's properties."""
    if junit_family(config) not in FAMILIES_WITH_TESTCASE_PROPERTIES:
        return
    counts = leak_counts(record)
    properties: list[tuple[str, object]] = [
        (f"{PREFIX}verdict", record["verdict"]),
        (f"{PREFIX}leaks", sum(counts.values())),
    ]
    properties += [(f"{PREFIX}leaks_{kind}", count) for kind, count in counts.items()]
    # A new list: the teardown report shares item.user_properties with the call
    # report, and the test's own properties must not change under it.
    report.user_properties = [*report.user_properties, *properties]


def add_suite_properties(
    config: pytest.Config, records: Iterable[tuple[str, Record]]
) -> None:
    """Add the run's leak totals to the JUnit XML test suite, if one is written."""
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    leaked_tests = 0
    total = 0
    per_test = []
    for nodeid, record in records:
        count = sum(leak_counts(record).values())
        if count:
            leaked_tests += 1
            total += count
            per_test.append((f"{PREFIX}leaks[{nodeid}]", count))
    xml.add_global_property(f"{PREFIX}leaked_tests", leaked_tests)
    xml.add_global_property(f"{PREFIX}leaks", total)
    for name, value in per_test:
        xml.add_global_property(name, value)
