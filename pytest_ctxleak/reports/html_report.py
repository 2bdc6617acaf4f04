"""The HTML report: one self-contained file with four plots and the leak table.

It is rendered from the JSON report's data, so both files always agree. The page
has no script and loads nothing: the plots are inline SVG (see ``plots``) and the
style sheet is inline. Every text from the run (test ids, paths, source lines,
messages) is escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from pytest_ctxleak.reports.plots import Point, Series, line_plot
from pytest_ctxleak.reports.results import worker_order

MIB = 1024 * 1024
NOT_MEASURED = "not measured"
# Runs with fewer findings show each stack unfolded.
OPEN_STACKS_BELOW = 10

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1a1a1a; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #555; margin: 0 0 16px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
  gap: 12px; }
svg.plot { background: #fff; border: 1px solid #ddd; }
svg .frame { fill: none; stroke: #bbb; }
svg .grid { stroke: #eee; }
svg .title { font-weight: 600; font-size: 13px; }
svg .tick, svg .axis, svg .legend { font-size: 11px; fill: #555; }
svg .legend { font-weight: 600; }
svg .empty { font-size: 14px; fill: #888; }
svg .series { fill: none; stroke-width: 1.5; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid #e5e5e5; }
th { background: #f5f5f5; }
td.test, td.site { font-family: ui-monospace, monospace; font-size: 12px;
  overflow-wrap: anywhere; }
td.test { min-width: 18em; }
.verdict-leaked, .verdict-crashed, .verdict-error { color: #b00020; font-weight: 600; }
.verdict-warned { color: #9a6700; font-weight: 600; }
figure { margin: 0; }
pre { margin: 4px 0; font-size: 12px; white-space: pre-wrap; }
"""


def _metric(
    report: dict[str, Any],
    value_of: Callable[[dict[str, Any]], float | None],
    unit: str,
) -> list[Series]:
    """Return one series per worker of the tests where ``value_of`` is measured."""
    by_worker: dict[str | None, list[Point]] = {}
    for number, test in enumerate(report["tests"], start=1):
        value = value_of(test["figures"])
        points = by_worker.setdefault(test["worker"], [])
        if value is None:
            continue
        label = f"#{number} {test['nodeid']}: {value:g}{unit}"
        leaked = bool(test["leaks"])
        points.append(Point(number, value, label, leaked))
    return [
        Series(worker or "this process", by_worker[worker])
        for worker in sorted(by_worker, key=worker_order)
        if by_worker[worker]
    ]


def _figure(key: str) -> Callable[[dict[str, Any]], float | None]:
    def value_of(figures: dict[str, Any]) -> float | None:
        value = figures.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return float(value)

    return value_of


def _processes(figures: dict[str, Any]) -> float | None:
    counts = figures.get("processes_after")
    if not isinstance(counts, dict):
        return None
    return float(sum(int(count) for count in counts.values()))


def _pss_mib(figures: dict[str, Any]) -> float | None:
    value = _figure("pss_after")(figures)
    return None if value is None else round(value / MIB, 1)


def plots(report: dict[str, Any]) -> list[str]:
    """Return the four plots: open contexts, open pages, processes and PSS."""
    x_max = len(report["tests"])
    specs: list[tuple[str, str, Callable[[dict[str, Any]], float | None], str]] = [
        ("contexts", "Open contexts (peak in each test)", _figure("peak_contexts"), ""),
        ("pages", "Open pages (peak in each test)", _figure("peak_pages"), ""),
        ("processes", "Browser processes (after each test)", _processes, ""),
        ("pss", "Browser PSS in MiB (after each test)", _pss_mib, " MiB"),
    ]
    svgs = []
    for metric, title, value_of, unit in specs:
        series = _metric(report, value_of, unit)
        svgs.append(line_plot(metric, title, series, x_max, NOT_MEASURED))
    return svgs


def _site(leak: dict[str, Any]) -> str:
    site = leak.get("site")
    if site is None:
        return "&lt;unknown site&gt;"
    return escape(f"{site['file']}:{site['line']} in {site['function']}")


def _stack(leak: dict[str, Any], unfolded: bool) -> str:
    frames = leak.get("stack") or []
    if not frames:
        return ""
    lines = []
    for frame in frames:
        lines.append(f"{frame['file']}:{frame['line']} in {frame['function']}")
        if frame.get("source"):
            lines.append(f"    {frame['source']}")
    count = f"{len(frames)} frame{'' if len(frames) == 1 else 's'}"
    summary = f"{leak['stack_title']} ({count})"
    return (
        f"<details{' open' if unfolded else ''}><summary>{escape(summary)}</summary>"
        f"<pre>{escape(chr(10).join(lines))}</pre></details>"
    )


def _what(leak: dict[str, Any]) -> str:
    if leak["kind"] == "over_cap":
        return "over the cap"
    count = int(leak["count"])
    return leak["kind"] if count == 1 else f"{count} {leak['kind']}s"


def leak_table(report: dict[str, Any]) -> str:
    rows = []
    unfolded = report["totals"]["findings"] < OPEN_STACKS_BELOW
    for test in report["tests"]:
        for leak in test["leaks"]:
            verdict = escape(test["verdict"])
            rows.append(
                "<tr class='leak'>"
                f"<td class='test'>{escape(test['nodeid'])}</td>"
                f"<td class='verdict-{verdict}'>{verdict}</td>"
                f"<td>{escape(_what(leak))}</td>"
                f"<td class='site'>{_site(leak)}</td>"
                f"<td>{escape('; '.join(leak['reclaimed']) or '-')}</td>"
                f"<td>{escape(leak['message'])}{_stack(leak, unfolded)}</td>"
                "</tr>"
            )
    if not rows:
        return "<p class='no-leaks'>No test leaked.</p>"
    head = (
        "<tr><th>test</th><th>verdict</th><th>leaked</th><th>at</th>"
        "<th>reclaimed</th><th>finding and stack</th></tr>"
    )
    return (
        f"<table class='leaks'><thead>{head}</thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def crash_list(report: dict[str, Any]) -> str:
    crashed = [test for test in report["tests"] if test["verdict"] == "crashed"]
    if not crashed:
        return ""
    items = "".join(
        f"<li class='crashed'><span class='test'>{escape(test['nodeid'])}</span>: "
        f"worker {escape(test['worker'] or '?')} crashed while running it</li>"
        for test in crashed
    )
    return f"<h2>Crashed workers</h2><ul>{items}</ul>"


def worker_table(report: dict[str, Any]) -> str:
    rows = []
    for worker in report["workers"]:
        cells = [
            worker["id"] or "this process",
            str(worker["tests"]),
            NOT_MEASURED
            if worker["peak_contexts"] is None
            else str(worker["peak_contexts"]),
            NOT_MEASURED if worker["peak_pages"] is None else str(worker["peak_pages"]),
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    head = (
        "<tr><th>worker</th><th>tests</th><th>peak open contexts</th>"
        "<th>peak open pages</th></tr>"
    )
    return (
        f"<table class='workers'><thead>{head}</thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_html(report: dict[str, Any]) -> str:
    totals = report["totals"]
    meta = (
        f"{totals['tests']} tests, {totals['leaked']} leaked, {totals['warned']} "
        f"warned, {totals['crashed']} crashed; mode {report['mode']}, cap "
        f"{report['max_contexts']}; exit status {report['exit_status']}; written "
        f"{report['created']} by pytest-ctxleak {report['generator']['version']}"
    )
    plot_html = "".join(f"<figure>{svg}</figure>" for svg in plots(report))
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>pytest-ctxleak report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>pytest-ctxleak report</h1>"
        f"<p class='meta'>{escape(meta)}</p>"
        f"<section class='plots'>{plot_html}</section>"
        f"<h2>Leaks</h2>{leak_table(report)}"
        f"{crash_list(report)}"
        f"<h2>Workers</h2>{worker_table(report)}"
        "</body></html>\n"
    )


def write_html(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
