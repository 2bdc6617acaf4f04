"""The report options: where the JSON and HTML reports go.

A path on the command line is relative to the directory pytest was started in. A
path in the ini file is relative to that file's directory, as with other ini paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

JSON_FLAG = "--ctxleak-json"
JSON_INI = "ctxleak_json"
HTML_FLAG = "--ctxleak-html"
HTML_INI = "ctxleak_html"

JSON_HELP = (
    "Write a JSON report of every test's verdict, leaks and figures to this file. "
    "The schema is pytest_ctxleak/schema/report-1.json. Default: no JSON report."
)
HTML_HELP = (
    "Write a self-contained HTML report, with plots of open contexts, pages, "
    "browser processes and memory test by test and the table of leaks, to this "
    "file. Default: no HTML report."
)


class ReportPaths(NamedTuple):
    """The report files, each None when that report was not requested."""

    json: Path | None
    html: Path | None


def add_report_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("ctxleak")
    group.addoption(JSON_FLAG, default=None, dest="ctxleak_json", help=JSON_HELP)
    group.addoption(HTML_FLAG, default=None, dest="ctxleak_html", help=HTML_HELP)
    parser.addini(JSON_INI, JSON_HELP, default=None)
    parser.addini(HTML_INI, HTML_HELP, default=None)


def resolve_report_paths(config: pytest.Config) -> ReportPaths:
    """Read and validate both report paths; raise UsageError on a bad one."""
    json_path = _resolve(config, "ctxleak_json", JSON_FLAG, JSON_INI)
    html_path = _resolve(config, "ctxleak_html", HTML_FLAG, HTML_INI)
    if json_path is not None and json_path == html_path:
        raise pytest.UsageError(
            f"invalid report paths: {JSON_FLAG} and {HTML_FLAG} both name "
            f"{str(json_path)!r}; give each report its own file"
        )
    return ReportPaths(json_path, html_path)


def _resolve(config: pytest.Config, dest: str, flag: str, ini: str) -> Path | None:
    value = config.getoption(dest)
    if value is not None:
        source = f"command line option {flag}"
        base = config.invocation_params.dir
    else:
        value = config.getini(ini)
        if value in (None, ""):
            return None
        source = f"ini setting {ini} in {config.inipath or 'the ini file'}"
        base = config.inipath.parent if config.inipath else config.rootpath
    return validate_report_path(value, source, base)


def validate_report_path(value: object, source: str, base: Path) -> Path:
    """Return the report file's absolute path, or raise UsageError naming the value.

    The file need not exist, and missing directories are created when the report
    is written. An existing directory, or a parent that is a file, is an error at
    configure time, so that a run does not end with a report it cannot write.
    """
    if not isinstance(value, str) or not value.strip():
        raise pytest.UsageError(
            f"invalid report path {value!r} from {source}: expected a file path "
            "such as ctxleak.json"
        )
    path = Path(base, os.path.expanduser(value.strip())).resolve()
    if path.is_dir():
        raise pytest.UsageError(
            f"invalid report path {value!r} from {source}: {str(path)!r} is a "
            "directory; give a file path inside it, such as "
            f"{str(path / 'ctxleak-report')!r}"
        )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise pytest.UsageError(
            f"invalid report path {value!r} from {source}: {str(parent)!r} is a "
            "file, not a directory"
        )
    if not os.access(parent, os.W_OK):
        raise pytest.UsageError(
            f"invalid report path {value!r} from {source}: the directory "
            f"{str(parent)!r} is not writable"
        )
    return path
