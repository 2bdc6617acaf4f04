"""The terminal summary: which tests leaked what, where, and what was reclaimed.

It is short by default: one table row per finding and one line of peaks. ``-v``
adds each finding's stack and the per-worker figures, ``-q`` leaves out the peaks,
and ``-qq`` prints only the count. Tests whose worker crashed are always listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pytest_ctxleak.reports.record import CRASHED, ERROR, WARNED
from pytest_ctxleak.reports.results import ReportedTest, RunResults

# Maximum cell widths at default verbosity. With -v, cells are shown whole.
MAX_WIDTHS = (60, 14, 50, 40)
HEADER = ("test", "leaked", "at", "reclaimed")
# Stack frames shown per finding with -v, and with -vv.
STACK_LINES = (3, 6)
NOT_MEASURED = "not measured"
MIB = 1024 * 1024


class Writer(Protocol):
    """The parts of pytest's TerminalReporter the summary writes through."""

    def section(self, title: str, sep: str = ..., **markup: bool) -> None: ...

    def line(self, msg: str, **markup: bool) -> None: ...


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def leak_label(leak: dict[str, Any]) -> str:
    """Return a short name for what leaked, such as ``3 leases`` or ``page``."""
    kind = str(leak["kind"])
    if kind == "over_cap":
        return "over the cap"
    count = int(leak["count"])
    return kind if count == 1 else plural(count, kind)


def site_label(leak: dict[str, Any]) -> str:
    site = leak.get("site")
    if site is None:
        return "<unknown site>"
    return f"{site['file']}:{site['line']} in {site['function']}"


def clip(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def table(rows: Sequence[Sequence[str]], widths: Sequence[int | None]) -> list[str]:
    """Align the rows in columns, clipping each cell to its width."""
    clipped = []
    for row in rows:
        clipped.append([clip(cell, w) for cell, w in zip(row, widths, strict=True)])
    columns = [max(len(row[i]) for row in clipped) for i in range(len(widths))]
    lines = []
    for row in clipped:
        cells = [cell.ljust(columns[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def leak_rows(tests: list[ReportedTest]) -> list[tuple[ReportedTest, dict[str, Any]]]:
    return [(result, leak) for result in tests for leak in result.leaks]


def figure_text(value: int | None, scale: int = 1, unit: str = "") -> str:
    if value is None:
        return NOT_MEASURED
    if scale != 1:
        return f"{value / scale:.0f}{unit}"
    return f"{value}{unit}"


def peak_lines(results: RunResults, verbose: bool) -> list[str]:
    """Return the peak of open contexts per worker, and more figures if ``verbose``."""
    workers = results.workers()
    parts = []
    for worker in workers:
        peak = figure_text(results.peak("peak_contexts", worker))
        parts.append(f"{worker} {peak}" if worker is not None else peak)
    lines = [f"peak open contexts: {', '.join(parts)}"]
    if not verbose:
        return lines
    for worker in workers:
        tests = [r for r in results.tests.values() if r.worker == worker]
        last = tests[-1] if tests else None
        processes = last.process_count() if last else None
        pss = last.figure("pss_after") if last else None
        name = worker if worker is not None else "this process"
        lines.append(
            f"  {name}: {plural(len(tests), 'test')}, peak open contexts "
            f"{figure_text(results.peak('peak_contexts', worker))}, peak open pages "
            f"{figure_text(results.peak('peak_pages', worker))}, browser processes "
            f"at the end {figure_text(processes)}, PSS at the end "
            f"{figure_text(pss, MIB, ' MiB')}"
        )
    return lines


def title(results: RunResults) -> str:
    leaking = results.with_leaks()
    warned = sum(1 for result in leaking if result.verdict == WARNED)
    crashed = len(results.crashed())
    parts = []
    if leaking:
        findings = sum(len(result.leaks) for result in leaking)
        text = f"{plural(findings, 'finding')} in {plural(len(leaking), 'test')}"
        if warned:
            text += f" ({warned} in warn mode)"
        parts.append(text)
    elif not crashed:
        parts.append(f"no leaks in {plural(len(results.tests), 'test')}")
    if crashed:
        parts.append(f"{plural(crashed, 'test')} crashed")
    return f"ctxleak: {', '.join(parts)}"


def summary_lines(results: RunResults, verbosity: int) -> list[str]:
    """Return the summary's lines below its title."""
    lines: list[str] = []
    rows = leak_rows(results.with_leaks())
    if rows:
        cells = [HEADER]
        stacks = []
        previous = None
        for result, leak in rows:
            name = result.nodeid if result is not previous else ""
            reclaimed = "; ".join(leak["reclaimed"]) or "-"
            cells.append((name, leak_label(leak), site_label(leak), reclaimed))
            stacks.append(leak)
            previous = result
        widths = [None] * 4 if verbosity > 0 else list(MAX_WIDTHS)
        formatted = table(cells, widths)
        lines.append(formatted[0])
        for row, leak in zip(formatted[1:], stacks, strict=True):
            lines.append(row)
            if verbosity > 0:
                lines += stack_lines(leak, STACK_LINES[min(verbosity, 2) - 1])
    for result in results.crashed():
        worker = f"worker {result.worker}" if result.worker else "its worker"
        lines.append(f"{result.nodeid}: {worker} crashed while running it")
    for result in results.tests.values():
        if result.verdict == ERROR:
            lines.append(f"{result.nodeid}: the check failed; see the log")
    if verbosity >= 0:
        lines += peak_lines(results, verbose=verbosity > 0)
    return lines


def stack_lines(leak: dict[str, Any], depth: int) -> list[str]:
    frames = leak.get("stack", [])
    lines = [f"    {leak['stack_title']}:"] if frames else []
    for frame in frames[:depth]:
        lines.append(f"      {frame['file']}:{frame['line']} in {frame['function']}")
        if frame.get("source"):
            lines.append(f"          {frame['source']}")
    hidden = len(frames) - depth
    if hidden > 0:
        lines.append(f"      ({hidden} more frames in the JSON report)")
    return lines


def left_open_lines(results: RunResults) -> list[str]:
    return [
        text
        for result in results.tests.values()
        for text in (result.record or {}).get("left_open_before", [])
    ]


def late_leak_count(results: RunResults) -> int:
    """Count the objects made for a test after it ended; they fail the run."""
    return sum(
        int((result.record or {}).get("late_leaks", 0))
        for result in results.tests.values()
    )


def write_summary(writer: Writer, results: RunResults, verbosity: int) -> None:
    """Write the summary. A clean run prints nothing unless ``-v`` is given."""
    if not results.tests:
        return
    failing = any(
        result.leaks or result.verdict in (CRASHED, ERROR)
        for result in results.tests.values()
    )
    if verbosity <= -2:
        if failing:
            writer.line(title(results), red=True)
        return
    if failing or verbosity > 0:
        writer.section(title(results), sep="=", red=failing, green=not failing)
        for line in summary_lines(results, verbosity):
            writer.line(line)
    left_open = left_open_lines(results)
    if left_open:
        writer.section("ctxleak: left open by earlier tests", sep="-")
        for text in left_open:
            writer.line(text)
        late = late_leak_count(results)
        if late:
            # These fail the run, although no test failed for them.
            writer.line(
                f"the run fails: {plural(late, 'object')} made for a test after it "
                "ended, listed above",
                red=True,
            )
