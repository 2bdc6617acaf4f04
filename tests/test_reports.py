"""The reports: terminal summary, JSON, HTML, JUnit properties, GitHub annotations,
and their path through pytest-xdist, on real pytest runs with real Chromium.

Inner runs that need a browser run in a subprocess, as in test_plugin.py. The HTML is
opened in the outer run's own headless Chromium.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from playwright.sync_api import Page

from pytest_ctxleak.report import KINDS
from pytest_ctxleak.reports.annotations import (
    annotation_lines,
    escape_data,
    escape_property,
)
from pytest_ctxleak.reports.html_report import render_html
from pytest_ctxleak.reports.json_report import build_report, load_schema
from pytest_ctxleak.reports.record import RECORD_ATTRIBUTE, VERDICTS
from pytest_ctxleak.reports.results import OUTCOMES, ReportedTest, RunResults
from pytest_ctxleak.reports.summary import late_leak_count

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", *args)


def validate(report: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(load_schema()).validate(report)


def summary_section(output: str) -> str:
    """Return the ctxleak summary: from its title line to the next section line."""
    match = re.search(r"^=+ ctxleak: .*?$(.*?)(?=^[=-]{5,})", output, re.M | re.S)
    assert match is not None, output
    return match.group(0)


# An inner conftest that measures the browsers' processes and memory with psutil,
# as a process-measuring part of the plugin would, so that the reports have all
# four figures to plot. It measures after the call, because the last test's
# teardown closes the browser.
MEASURING_CONFTEST = """
import psutil
import pytest

from pytest_ctxleak.figures import figures_of


def browser_processes():
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "chrom" in process.name().lower():
                found.append(process)
        except psutil.Error:
            pass
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    counts = {}
    pss = 0
    for process in browser_processes():
        try:
            cmdline = " ".join(process.cmdline())
            pss += process.memory_full_info().pss
        except psutil.Error:
            continue
        kind = "renderer" if "--type=renderer" in cmdline else (
            "browser" if "--type=" not in cmdline else "other"
        )
        counts[kind] = counts.get(kind, 0) + 1
    figures_of(item)["processes_after"] = counts
    figures_of(item)["pss_after"] = pss
    return result
"""

TEN_TESTS_ONE_LEAK = """
import pytest

def open_context(browser):
    context = browser.new_context()
    context.new_page()
    return context

@pytest.mark.parametrize("number", range(9))
def test_clean(ctxleak_browser, number):
    context = open_context(ctxleak_browser)
    context.pages[0].set_content("<p>clean</p>")
    context.close()

def test_leaks_context(ctxleak_browser):
    open_context(ctxleak_browser)
"""


def check_html_in_chromium(
    page: Page, html: Path, tests: int, screenshot: Path
) -> None:
    page.set_viewport_size({"width": 1240, "height": 900})
    page.goto(html.as_uri())
    plots = page.locator("svg.plot")
    assert plots.count() == 4
    for metric in ("contexts", "pages", "processes", "pss"):
        plot = page.locator(f"svg.plot[data-metric='{metric}']")
        assert plot.locator("circle.point").count() == tests, metric
        assert plot.locator("polyline.series").count() >= 1, metric
        box = plot.bounding_box()
        assert box is not None and box["width"] > 100, metric
    assert page.locator("table.leaks tbody tr").count() == 1
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def test_xdist_run_reports_one_leak(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    pooled_page: Page,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    pytester.makeconftest(MEASURING_CONFTEST)
    pytester.makepyfile(test_many=TEN_TESTS_ONE_LEAK)
    result = run(
        pytester,
        "-n",
        "2",
        "--ctxleak-json=out/report.json",
        "--ctxleak-html=out/report.html",
        "--junitxml=out/junit.xml",
        "-o",
        "junit_family=xunit1",
    )
    output = result.stdout.str()

    assert result.ret == 1
    result.assert_outcomes(passed=10, errors=1)
    summary = summary_section(output)
    assert "ctxleak: 1 finding in 1 test" in summary
    assert re.search(
        r"^test_many.py::test_leaks_context +context +test_many.py:4 in "
        r"open_context +closed$",
        summary,
        re.M,
    ), summary
    assert "test_clean" not in summary
    assert re.search(r"^peak open contexts: gw0 \d+, gw1 \d+$", summary, re.M)
    assert (
        "::error file=test_many.py,line=4,title=ctxleak%3A context left open in "
        "test_many.py%3A%3Atest_leaks_context::a context was left open; created at "
        "test_many.py:4 in open_context%0Aheld by test "
        "test_many.py::test_leaks_context%0Areclaimed: closed"
    ) in output.splitlines()

    report = json.loads((pytester.path / "out/report.json").read_text())
    validate(report)
    tests = {test["nodeid"]: test for test in report["tests"]}
    assert len(tests) == 10
    assert {test["worker"] for test in tests.values()} == {"gw0", "gw1"}
    assert [w["id"] for w in report["workers"]] == ["gw0", "gw1"]
    leaked = tests["test_many.py::test_leaks_context"]
    assert leaked["verdict"] == "leaked"
    assert leaked["leaks"][0]["kind"] == "context"
    assert leaked["leaks"][0]["site"] == {
        "file": "test_many.py",
        "line": 4,
        "function": "open_context",
    }
    assert leaked["leaks"][0]["stack"][1]["function"] == "test_leaks_context"
    assert leaked["leaks"][0]["reclaimed"] == ["closed"]
    clean = [t for t in tests.values() if t["nodeid"] != leaked["nodeid"]]
    assert {t["verdict"] for t in clean} == {"passed"}
    for test in tests.values():
        assert test["figures"]["peak_contexts"] >= 1, test
        assert test["figures"]["peak_pages"] >= 1, test
        assert test["figures"]["pss_after"] > 0, test
    assert report["totals"]["leaked"] == 1

    junit = ElementTree.parse(pytester.path / "out/junit.xml")
    properties = {
        case.get("name"): {
            prop.get("name"): prop.get("value") for prop in case.iter("property")
        }
        for case in junit.iter("testcase")
    }
    assert properties["test_leaks_context"]["ctxleak_verdict"] == "leaked"
    assert properties["test_leaks_context"]["ctxleak_leaks_context"] == "1"
    assert properties["test_leaks_context"]["ctxleak_leaks"] == "1"
    assert properties["test_clean[0]"]["ctxleak_leaks"] == "0"

    check_html_in_chromium(
        pooled_page, pytester.path / "out/report.html", 10, tmp_path / "report.png"
    )


def test_record_survives_report_serialization(pytestconfig: pytest.Config) -> None:
    record = {
        "verdict": "leaked",
        "worker": "gw3",
        "leaks": [{"kind": "page", "count": 2, "site": None}],
        "figures": {"peak_pages": 2, "processes_after": {"renderer": 3}},
    }
    report = pytest.TestReport(
        "test_x.py::test_y", ("test_x.py", 1, "test_y"), {}, "failed", None, "teardown"
    )
    setattr(report, RECORD_ATTRIBUTE, record)
    hook = pytestconfig.hook
    data = hook.pytest_report_to_serializable(config=pytestconfig, report=report)
    wire = json.loads(json.dumps(data))
    back = hook.pytest_report_from_serializable(config=pytestconfig, data=wire)

    assert getattr(back, RECORD_ATTRIBUTE) == record


def test_crashed_worker_listed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_crash="""
        import os

        def test_crashes():
            os._exit(3)

        def test_fine():
            pass
        """
    )
    result = run(
        pytester, "-n", "2", "--ctxleak-json=report.json", "--ctxleak-html=report.html"
    )
    output = result.stdout.str()

    assert result.ret == 1
    summary = summary_section(output)
    assert "1 test crashed" in summary
    assert re.search(
        r"^test_crash.py::test_crashes: worker gw\d crashed while running it$",
        summary,
        re.M,
    ), summary
    report = json.loads((pytester.path / "report.json").read_text())
    validate(report)
    tests = {test["nodeid"]: test for test in report["tests"]}
    assert tests["test_crash.py::test_crashes"]["verdict"] == "crashed"
    assert tests["test_crash.py::test_crashes"]["worker"] in ("gw0", "gw1")
    assert tests["test_crash.py::test_fine"]["verdict"] == "passed"
    assert report["totals"]["crashed"] == 1
    html = (pytester.path / "report.html").read_text()
    assert re.search(
        r"<li class='crashed'><span class='test'>test_crash.py::test_crashes</span>: "
        r"worker gw\d crashed while running it</li>",
        html,
    ), html


def test_workers_write_no_report_files(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import os
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(session):
            workerinput = getattr(session.config, "workerinput", None)
            if workerinput is None:
                return
            found = [name for name in ("report.json", "report.html") if os.path.exists(name)]
            with open(f"seen-by-{workerinput['workerid']}.txt", "w") as file:
                file.write(" ".join(found) or "nothing")
        """
    )
    pytester.makepyfile(
        test_few="""
        import pytest

        @pytest.mark.parametrize("number", range(4))
        def test_number(number):
            pass
        """
    )
    result = run(
        pytester, "-n", "2", "--ctxleak-json=report.json", "--ctxleak-html=report.html"
    )

    assert result.ret == 0
    assert (pytester.path / "seen-by-gw0.txt").read_text() == "nothing"
    assert (pytester.path / "seen-by-gw1.txt").read_text() == "nothing"
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["totals"]["tests"] == 4
    assert (pytester.path / "report.html").exists()


LEAKY_AND_CLEAN = """
def helper(browser):
    return browser.new_context()

def test_leaks(ctxleak_browser):
    helper(ctxleak_browser)

def test_clean(ctxleak_browser):
    ctxleak_browser.new_context().close()
"""


def test_summary_default_is_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_summary=LEAKY_AND_CLEAN)
    result = run(pytester)
    summary = summary_section(result.stdout.str())

    assert re.search(r"^test +leaked +at +reclaimed$", summary, re.M), summary
    assert re.search(
        r"^test_summary.py::test_leaks +context +test_summary.py:2 in helper +closed$",
        summary,
        re.M,
    ), summary
    assert re.search(r"^peak open contexts: 1$", summary, re.M), summary
    assert "created at:" not in summary
    assert "test_clean" not in summary


def test_summary_verbose_adds_stacks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_summary=LEAKY_AND_CLEAN)
    result = run(pytester, "-v")
    summary = summary_section(result.stdout.str())

    assert "    created at:" in summary
    assert "      test_summary.py:5 in test_leaks" in summary
    assert "          helper(ctxleak_browser)" in summary
    # Processes are counted by default; memory only when asked for.
    result.stdout.fnmatch_lines(
        [
            "  this process: 2 tests, peak open contexts 1, peak open pages 0, "
            "browser processes at the end *, PSS at the end not measured"
        ]
    )


def test_summary_quiet_leaves_out_peaks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_summary=LEAKY_AND_CLEAN)
    result = run(pytester, "-q")
    summary = summary_section(result.stdout.str())

    assert "test_summary.py::test_leaks" in summary
    assert "peak open contexts" not in summary


def test_summary_silent_on_clean_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_clean="""
        def test_clean(ctxleak_browser):
            ctxleak_browser.new_context().close()
        """
    )
    quiet = run(pytester)
    verbose = run(pytester, "-v")

    assert quiet.ret == 0
    assert "ctxleak:" not in quiet.stdout.str()
    verbose.stdout.fnmatch_lines(
        ["*= ctxleak: no leaks in 1 test =*", "peak open contexts: 1"]
    )


def test_peaks_count_pages_of_closed_context(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_peaks="""
        def test_three(ctxleak_browser):
            contexts = [ctxleak_browser.new_context() for _ in range(3)]
            for context in contexts:
                context.new_page()
                context.new_page()
            for context in contexts:
                context.close()

        def test_one(ctxleak_browser):
            context = ctxleak_browser.new_context()
            context.new_page()
            context.close()
        """
    )
    result = run(pytester, "--ctxleak-json=report.json")
    assert result.ret == 0
    report = json.loads((pytester.path / "report.json").read_text())
    figures = {test["nodeid"]: test["figures"] for test in report["tests"]}

    assert figures["test_peaks.py::test_three"]["peak_contexts"] == 3
    assert figures["test_peaks.py::test_three"]["peak_pages"] == 6
    assert figures["test_peaks.py::test_one"]["peak_contexts"] == 1
    assert figures["test_peaks.py::test_one"]["peak_pages"] == 1


def test_json_without_xdist_has_verdicts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_verdicts="""
        import pytest

        def test_leaks_lease(context_pool):
            context_pool.acquire(locale="de-DE")

        @pytest.mark.ctxleak(mode="warn")
        def test_warns(ctxleak_browser):
            ctxleak_browser.new_context().new_page()

        @pytest.mark.ctxleak(check=False)
        def test_unchecked(ctxleak_browser):
            pass

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
        """
    )
    result = run(pytester, "--ctxleak-json=report.json", "-W", "default")
    assert result.ret == 1
    report = json.loads((pytester.path / "report.json").read_text())
    validate(report)
    tests = {test["nodeid"].split("::")[1]: test for test in report["tests"]}

    assert tests["test_leaks_lease"]["verdict"] == "leaked"
    assert tests["test_leaks_lease"]["leaks"][0]["kind"] == "lease"
    assert tests["test_leaks_lease"]["leaks"][0]["reclaimed"] == [
        "released; context #1 reset"
    ]
    assert tests["test_leaks_lease"]["worker"] is None
    assert tests["test_warns"]["verdict"] == "warned"
    assert tests["test_warns"]["leaks"][0]["kind"] == "context"
    assert tests["test_unchecked"]["verdict"] == "unchecked"
    assert tests["test_skipped"]["outcome"] == "skipped"
    # test_warns's own context, and the pool's idle one that test_leaks_lease
    # left after its lease was reclaimed.
    assert report["workers"] == [
        {"id": None, "tests": 4, "peak_contexts": 2, "peak_pages": 1}
    ]


def test_warned_leak_annotated_as_warning(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    pytester.makepyfile(
        test_warn="""
        def test_warns(ctxleak_browser):
            ctxleak_browser.new_context()
        """
    )
    result = run(pytester, "--ctxleak-mode=warn", "-W", "default")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["::warning file=test_warn.py,line=2,title=ctxleak%3A context left open in *"]
    )


def test_no_annotations_outside_github(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pytester.makepyfile(test_plain=LEAKY_AND_CLEAN)
    result = run(pytester)
    assert result.ret == 1
    assert "::error" not in result.stdout.str()


def test_junit_xunit2_keeps_testcases_plain(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_junit=LEAKY_AND_CLEAN)
    result = run(pytester, "--junitxml=junit.xml")
    assert result.ret == 1
    tree = ElementTree.parse(pytester.path / "junit.xml")
    suite = tree.getroot().find("testsuite")
    assert suite is not None
    suite_properties = {
        prop.get("name"): prop.get("value") for prop in suite.iterfind("properties/")
    }

    for case in tree.iter("testcase"):
        assert case.find("properties") is None, case.get("name")
    assert suite_properties["ctxleak_leaked_tests"] == "1"
    assert suite_properties["ctxleak_leaks"] == "1"
    assert suite_properties["ctxleak_leaks[test_junit.py::test_leaks]"] == "1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100% done", "100%25 done"),
        ("one\ntwo\r\n", "one%0Atwo%0D%0A"),
        ("a:b,c", "a:b,c"),
    ],
)
def test_annotation_data_escaping(text: str, expected: str) -> None:
    assert escape_data(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t.py::test_a[1,2]", "t.py%3A%3Atest_a[1%2C2]"),
        ("50%\n", "50%25%0A"),
    ],
)
def test_annotation_property_escaping(text: str, expected: str) -> None:
    assert escape_property(text) == expected


def leak(file: str, kind: str = "page") -> dict[str, Any]:
    return {
        "kind": kind,
        "count": 1,
        "message": f"a {kind} was left open; opened at {file}:7 in f",
        "holder": "test t.py::test_a",
        "site": {"file": file, "line": 7, "function": "f"},
        "stack_title": "opened at",
        "stack": [{"file": file, "line": 7, "function": "f", "source": "x = 1"}],
        "reclaimed": ["closed"],
        "details": ["held by test t.py::test_a", "reclaimed: closed"],
    }


def results_with(*tests: ReportedTest) -> RunResults:
    results = RunResults()
    for test in tests:
        results.tests[test.nodeid] = test
    return results


def record(verdict: str, *leaks: dict[str, Any]) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "worker": None,
        "leaks": list(leaks),
        "problems": [],
        "left_open_before": [],
        "figures": {"peak_contexts": 1},
    }


def test_annotation_path_relative_to_workspace(tmp_path: Path) -> None:
    rootdir = tmp_path / "checkout" / "tests"
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "checkout")}
    lines = annotation_lines(
        [("t.py::test_a", record("leaked", leak("pkg/scrape.py")))], rootdir, environ
    )

    assert lines == [
        "::error file=tests/pkg/scrape.py,line=7,title=ctxleak%3A page left open in "
        "t.py%3A%3Atest_a::a page was left open; opened at pkg/scrape.py:7 in f%0A"
        "held by test t.py::test_a%0Areclaimed: closed"
    ]


def test_annotation_outside_workspace_keeps_path(tmp_path: Path) -> None:
    environ = {"GITHUB_WORKSPACE": str(tmp_path / "elsewhere")}
    lines = annotation_lines(
        [("t.py::test_a", record("leaked", leak("t.py")))], tmp_path, environ
    )

    assert lines[0].startswith("::error file=t.py,line=7,")


def test_html_escapes_run_text() -> None:
    hostile = "t.py::test_a[<script>alert(1)</script>&\"']"
    bad_file = "pkg/<img src=x onerror=alert(1)>.py"
    result = ReportedTest(hostile, record=record("leaked", leak(bad_file)))
    report = build_report(results_with(result), 1, "fail", 8)
    html = render_html(report)

    assert "<script>" not in html
    assert "<img" not in html
    assert (
        "t.py::test_a[&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#x27;]" in html
    )
    assert "pkg/&lt;img src=x onerror=alert(1)&gt;.py:7 in f" in html


def test_html_marks_unmeasured_plots() -> None:
    result = ReportedTest("t.py::test_a", record=record("passed"))
    html = render_html(build_report(results_with(result), 0, "fail", 8))

    assert html.count('<svg class="plot"') == 4
    assert html.count(">not measured</text>") == 3
    assert 'data-metric="contexts" data-points="1"' in html


def test_schema_enums_match_code() -> None:
    definitions = load_schema()["$defs"]

    assert definitions["test"]["properties"]["verdict"]["enum"] == list(VERDICTS)
    assert definitions["test"]["properties"]["outcome"]["enum"] == list(OUTCOMES)
    assert definitions["leak"]["properties"]["kind"]["enum"] == list(KINDS)


def test_schema_rejects_unknown_verdict() -> None:
    result = ReportedTest("t.py::test_a", record=record("passed"))
    report = build_report(results_with(result), 0, "fail", 8)
    validate(report)
    report["tests"][0]["verdict"] = "fine"

    with pytest.raises(jsonschema.ValidationError, match="'fine' is not one of"):
        validate(report)


def test_schema_rejects_missing_leak_site_key() -> None:
    result = ReportedTest("t.py::test_a", record=record("leaked", leak("t.py")))
    report = build_report(results_with(result), 1, "fail", 8)
    del report["tests"][0]["leaks"][0]["site"]["line"]

    with pytest.raises(
        jsonschema.ValidationError, match="is not valid under any of the given schemas"
    ):
        validate(report)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ctxleak-json="],
            "invalid report path '' from command line option --ctxleak-json: "
            "expected a file path such as ctxleak.json",
        ),
        (
            ["--ctxleak-html=existing_dir"],
            "invalid report path 'existing_dir' from command line option "
            "--ctxleak-html: '*existing_dir' is a directory; give a file path "
            "inside it, such as '*existing_dir/ctxleak-report'",
        ),
        (
            ["--ctxleak-json=a_file/report.json"],
            "invalid report path 'a_file/report.json' from command line option "
            "--ctxleak-json: '*a_file' is a file, not a directory",
        ),
        (
            ["--ctxleak-json=same", "--ctxleak-html=same"],
            "invalid report paths: --ctxleak-json and --ctxleak-html both name "
            "'*same'; give each report its own file",
        ),
    ],
)
def test_bad_report_path_is_usage_error(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    (pytester.path / "existing_dir").mkdir()
    (pytester.path / "a_file").write_text("")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = run(pytester, *args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "INTERNALERROR" not in result.stderr.str()


def test_report_paths_from_ini_relative_to_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(
        """
        [pytest]
        ctxleak_json = reports/run.json
        ctxleak_html = reports/run.html
        """
    )
    pytester.makepyfile(test_x="def test_x(): pass")
    monkeypatch.chdir(pytester.mkdir("elsewhere"))
    result = run(pytester, str(pytester.path))

    assert result.ret == 0
    report = json.loads((pytester.path / "reports/run.json").read_text())
    validate(report)
    assert [test["nodeid"] for test in report["tests"]] == ["test_x.py::test_x"]
    assert (pytester.path / "reports/run.html").read_text().startswith("<!doctype")
    assert not (pytester.path / "elsewhere/reports").exists()


class TeardownReport:
    """The parts of a teardown report that RunResults reads."""

    def __init__(self, nodeid: str, data: dict[str, Any]) -> None:
        self.nodeid = nodeid
        self.when = "teardown"
        self.duration = 0.0
        self.passed = True
        self.failed = False
        self.skipped = False
        self.outcome = "passed"
        setattr(self, RECORD_ATTRIBUTE, data)


def test_late_count_survives_rerun() -> None:
    """A second attempt's record keeps the first one's findings."""
    first = record("passed")
    first["left_open_before"] = ["a browser made for test t.py::test_a, after ..."]
    first["late_leaks"] = 1
    second = record("passed")
    second["late_leaks"] = 0
    results = RunResults()
    for data in (first, second):
        results.add_report(TeardownReport("t.py::test_b", data))  # type: ignore[arg-type]

    assert late_leak_count(results) == 1
    merged = results.tests["t.py::test_b"].record
    assert merged is not None
    assert merged["left_open_before"] == first["left_open_before"]


def test_late_count_ignores_wording() -> None:
    """A node id that happens to contain the late-leak wording fails nothing."""
    data = record("passed")
    data["left_open_before"] = [
        "lease #1 was already outstanding when t.py::test[x, after that test ended] "
        "started; it is the previous holder's leak, not this test's"
    ]
    results = RunResults()
    results.add_report(TeardownReport("t.py::test_b", data))  # type: ignore[arg-type]

    assert late_leak_count(results) == 0
