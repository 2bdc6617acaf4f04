"""The documented settings match the ones the plugin really has.

docs/reference.md and the README's configuration table list every command-line
option, ini setting, marker argument and environment variable. These tests read
those tables and compare them with what ``pytest_addoption`` registers with a real
pytest parser, what the marker validation accepts, and which ``CTXLEAK_*``
variables the package's code names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import NamedTuple

import pytest

import pytest_ctxleak
from pytest_ctxleak import settings

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
README = ROOT / "README.md"
PACKAGE = Path(pytest_ctxleak.__file__).resolve().parent

OPTIONS_SECTION = "Command-line options and ini settings"
MARKER_SECTION = "Marker arguments"
ENVIRONMENT_SECTION = "Environment variables"
README_SECTION = "Configuration"

FLAG = re.compile(r"--ctxleak-[a-z0-9-]+")
INI = re.compile(r"\bctxleak_[a-z0-9_]+")
ENVIRONMENT_NAME = re.compile(r"\bCTXLEAK_[A-Z0-9_]+\b")
BACKTICKED = re.compile(r"`([^`]+)`")


class Row(NamedTuple):
    """One row of a Markdown table: its cells, and the file and line it is on."""

    cells: list[str]
    where: str


def section(path: Path, heading: str) -> list[tuple[int, str]]:
    """Return the numbered lines of the ``## heading`` section of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str]] = []
    inside = False
    for number, line in enumerate(lines, start=1):
        if line.startswith("## "):
            inside = line[3:].strip() == heading
            continue
        if inside:
            found.append((number, line))
    if not found:
        raise AssertionError(f"{path.name} has no section '## {heading}'")
    return found


def table_rows(path: Path, heading: str) -> list[Row]:
    """Return the body rows of the tables in a section, without the header rows."""
    rows = []
    previous = ""
    for number, line in section(path, heading):
        if line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line):
            is_header = False
            if not previous.startswith("|"):
                is_header = True  # the first row of a table names its columns
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not is_header:
                rows.append(Row(cells, f"{path.name}:{number}"))
        previous = line
    return rows


def parser_options(pytester: pytest.Pytester) -> tuple[set[str], set[str]]:
    """Return the ctxleak flags and ini names registered with a real parser."""
    config = pytester.parseconfig("-p", "ctxleak")
    parser = config._parser
    flags = {
        name
        for group in parser._groups
        for option in group.options
        for name in option.names()
        if name.startswith("--ctxleak")
    }
    inis = {name for name in parser._inidict if name.startswith("ctxleak")}
    return flags, inis


def environment_variables() -> set[str]:
    """Return every ``CTXLEAK_*`` name in a string constant of the package's code."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.update(ENVIRONMENT_NAME.findall(node.value))
    return names


def documented_options(path: Path, heading: str) -> tuple[set[str], set[str]]:
    flags: set[str] = set()
    inis: set[str] = set()
    for row in table_rows(path, heading):
        flags.update(FLAG.findall(row.cells[0]))
        if len(row.cells) > 1:
            inis.update(INI.findall(row.cells[1]))
    return flags, inis


@pytest.mark.parametrize(
    ("page", "heading"),
    [(REFERENCE, OPTIONS_SECTION), (README, README_SECTION)],
    ids=["reference", "readme"],
)
def test_every_option_documented(
    pytester: pytest.Pytester, page: Path, heading: str
) -> None:
    flags, inis = parser_options(pytester)
    documented_flags, documented_inis = documented_options(page, heading)
    where = f"{page.relative_to(ROOT)}, table under '## {heading}'"
    missing = [
        f"option {flag} is registered by pytest_addoption but missing from {where}"
        for flag in sorted(flags - documented_flags)
    ] + [
        f"ini setting {ini} is registered by pytest_addoption but missing from {where}"
        for ini in sorted(inis - documented_inis)
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    ("page", "heading"),
    [(REFERENCE, OPTIONS_SECTION), (README, README_SECTION)],
    ids=["reference", "readme"],
)
def test_no_unknown_option_documented(
    pytester: pytest.Pytester, page: Path, heading: str
) -> None:
    flags, inis = parser_options(pytester)
    documented_flags, documented_inis = documented_options(page, heading)
    where = f"{page.relative_to(ROOT)}, table under '## {heading}'"
    unknown = [
        f"{where} documents option {flag}, which pytest_addoption does not register"
        for flag in sorted(documented_flags - flags)
    ] + [
        f"{where} documents ini setting {ini}, which pytest_addoption does not register"
        for ini in sorted(documented_inis - inis)
    ]
    assert not unknown, "\n".join(unknown)


def test_option_rows_give_default_and_unit() -> None:
    incomplete = [
        f"{row.where}: the row of {row.cells[0] or row.cells[1]} has an empty "
        "default or unit column"
        for row in table_rows(REFERENCE, OPTIONS_SECTION)
        if len(row.cells) < 5 or not row.cells[2] or not row.cells[3]
    ]
    assert not incomplete, "\n".join(incomplete)


def documented_default(text: str) -> str:
    return text.replace("`", "").strip().lower()


def expected_default(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_documented_defaults_match_settings() -> None:
    rows = {
        flag: row
        for row in table_rows(REFERENCE, OPTIONS_SECTION)
        for flag in FLAG.findall(row.cells[0])
    }
    wrong = []
    for option in settings.OPTIONS:
        row = rows.get(option.flag)
        if row is None:
            continue  # reported by test_every_option_documented
        documented = documented_default(row.cells[2])
        expected = expected_default(option.default)
        if documented != expected:
            wrong.append(
                f"{row.where}: {option.flag} is documented with default "
                f"{documented!r}, but settings.py uses {expected!r}"
            )
    assert not wrong, "\n".join(wrong)


def test_every_marker_argument_documented() -> None:
    documented = set()
    for row in table_rows(REFERENCE, MARKER_SECTION):
        documented.update(BACKTICKED.findall(row.cells[0]))
    accepted = set(settings.MARKER_ARGUMENTS)
    where = f"docs/reference.md, table under '## {MARKER_SECTION}'"
    problems = [
        f"marker argument {name} is accepted by settings.py but missing from {where}"
        for name in sorted(accepted - documented)
    ] + [
        f"{where} documents marker argument {name}, which settings.py does not accept"
        for name in sorted(documented - accepted)
    ]
    assert not problems, "\n".join(problems)


def test_every_environment_variable_documented() -> None:
    documented = set()
    for row in table_rows(REFERENCE, ENVIRONMENT_SECTION):
        documented.update(ENVIRONMENT_NAME.findall(row.cells[0]))
    used = environment_variables()
    where = f"docs/reference.md, table under '## {ENVIRONMENT_SECTION}'"
    problems = [
        f"environment variable {name} is named in pytest_ctxleak's code but missing "
        f"from {where}"
        for name in sorted(used - documented)
    ] + [
        f"{where} documents environment variable {name}, which pytest_ctxleak's "
        "code never names"
        for name in sorted(documented - used)
    ]
    assert not problems, "\n".join(problems)


def test_table_reader_finds_rows() -> None:
    """The checks above compare sets; an empty read would make them vacuous."""
    assert len(table_rows(REFERENCE, OPTIONS_SECTION)) >= len(settings.OPTIONS)
    assert len(table_rows(REFERENCE, MARKER_SECTION)) >= len(settings.MARKER_ARGUMENTS)
    assert table_rows(REFERENCE, ENVIRONMENT_SECTION)
    assert len(table_rows(README, README_SECTION)) >= len(settings.OPTIONS)
